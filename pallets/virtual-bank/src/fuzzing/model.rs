//! What the fuzzer knows of each bank, and the most each client may rightly end with.

use crate::mock::{AccountId, Shares};
use vbank_primitives::{Balance, Htlc, Nonce};

/// A sheet the fuzzer's accounts signed, as the model knows it.
#[derive(Debug)]
pub(super) struct Sheet {
	pub(super) nonce: Nonce,
	pub(super) balances: Shares,
	pub(super) htlcs: Vec<Htlc<u64>>,
	/// The client who can liquidate with it (the other signed it); its waiver key is this
	/// client's.
	pub(super) holder: usize,
	pub(super) revealed: bool,
}

/// What the model remembers of a bank, also after the chain removed it.
#[derive(Debug)]
pub(super) struct Bank {
	pub(super) clients: [AccountId; 2],
	pub(super) brought: Shares,
	pub(super) sheets: Vec<Sheet>,
	/// Balances both clients signed a close over.
	pub(super) closes: Vec<Shares>,
	/// Dust each client got because the other's share could not be paid.
	pub(super) trimmed_to: Shares,
	/// The HTLCs of the sheet the bank was liquidated with, as the model signed them.
	pub(super) liquidated_htlcs: Vec<Htlc<u64>>,
}

impl Bank {
	pub(super) fn total(&self) -> Balance {
		self.brought[0].saturating_add(self.brought[1])
	}

	/// The most client `side` can rightly end with out of this bank.
	pub(super) fn entitlement(&self, side: usize) -> Balance {
		let other_revoked = self.sheets.iter().any(|s| s.holder != side && s.revealed);
		let best = if other_revoked {
			self.total()
		} else {
			// An HTLC may end with either side: its receiver claims it, or its sender gets it
			// back.
			self.sheets
				.iter()
				.map(|s| s.htlcs.iter().fold(s.balances[side], |sum, h| sum + h.amount))
				.chain(self.closes.iter().map(|c| c[side]))
				.fold(self.brought[side], Balance::max)
		};
		best.saturating_add(self.trimmed_to[side])
	}
}
