//! What a helper needs of the chain, behind the [`Chain`] trait, and the watchtower's
//! decisions: given a liquidation of one of our banks, what to submit and when.

use crate::bank::{Bank, Liquidation};
use sp_runtime::{AccountId32, MultiSignature};
use vbank_primitives::{Balances, ChannelId, Nonce};

/// Block numbers, as the chain counts them.
pub type BlockNumber = u64;

/// What a helper learns from the chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChainEvent {
	/// The pallet's `Liquidated` event.
	Liquidated {
		channel: ChannelId,
		master: AccountId32,
		nonce: Nonce,
		balances: Balances,
		unlock_at: BlockNumber,
	},
	/// A block was imported.
	Block { number: BlockNumber },
}

/// A call a helper submits, signed by its account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChainCall {
	Liquidate(Liquidation),
	WithdrawByMaster { channel: ChannelId },
	WithdrawByPeer { channel: ChannelId, waiver_signature: MultiSignature },
}

/// Submits calls to the chain.
pub trait Chain {
	fn submit(&self, call: ChainCall) -> Result<(), String>;
}

/// What the watchtower does about a liquidation of a bank we are a client of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
	/// The peer liquidated with a sheet it had revoked: take its share now.
	Punish { waiver_signature: MultiSignature },
	/// We liquidated: take our share once the lock ends.
	WithdrawAt(BlockNumber),
	/// The peer liquidated with a sheet it had not revoked: we were paid already.
	Accept,
}

/// The watchtower's decision about `bank` being liquidated by `master` with sheet `nonce`.
pub fn judge(bank: &Bank, master: &AccountId32, nonce: Nonce, unlock_at: BlockNumber) -> Verdict {
	if *master == bank.terms.clients[bank.me()] {
		return Verdict::WithdrawAt(unlock_at);
	}
	match bank.penalty(nonce) {
		Some(waiver_signature) => Verdict::Punish { waiver_signature },
		None => Verdict::Accept,
	}
}
