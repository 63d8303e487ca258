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
	/// What each client brought: at the opening, then with every top-up.
	pub(super) brought: Shares,
	/// What each client took out with splices.
	pub(super) taken: Shares,
	/// The most the bank ever held: all of it may go to a client that punishes.
	pub(super) most: Balance,
	/// The nonce of the last splice: sheets and closes below it are void.
	pub(super) spliced_at: Option<Nonce>,
	/// What the last splice that added anything added.
	pub(super) last_added: Balance,
	pub(super) sheets: Vec<Sheet>,
	/// Balances both clients signed a close over.
	pub(super) closes: Vec<Shares>,
	/// Dust each client got because the other's share could not be paid.
	pub(super) trimmed_to: Shares,
	/// The HTLCs of the sheet the bank was liquidated with, as the model signed them.
	pub(super) liquidated_htlcs: Vec<Htlc<u64>>,
}

impl Bank {
	/// What the bank holds now (while it runs).
	pub(super) fn total(&self) -> Balance {
		let taken = self.taken[0].saturating_add(self.taken[1]);
		self.brought[0].saturating_add(self.brought[1]).saturating_sub(taken)
	}

	/// The nonce the next sheet signed gets: after every sheet, and not below the last
	/// splice.
	pub(super) fn next_nonce(&self) -> Nonce {
		let after_sheets = self.sheets.iter().map(|s| s.nonce + 1).max().unwrap_or(0);
		after_sheets.max(self.spliced_at.unwrap_or(0))
	}

	/// Whether a sheet or close at `nonce` is from before the last splice: void.
	pub(super) fn void(&self, nonce: Nonce) -> bool {
		self.spliced_at.is_some_and(|at| nonce < at)
	}

	/// The most client `side` can rightly end with out of this bank, besides what it took
	/// out with splices.
	pub(super) fn entitlement(&self, side: usize) -> Balance {
		let other_revoked = self.sheets.iter().any(|s| s.holder != side && s.revealed);
		let best = if other_revoked {
			self.most
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
