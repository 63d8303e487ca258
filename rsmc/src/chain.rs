//! What a helper learns from the chain and owes it: the events the watchtower follows, and
//! the calls it submits on a bank's behalf until they are included or moot.

use crate::bank::{Bank, Liquidation, OnChainLiquidation};
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
		release_at: BlockNumber,
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

impl ChainCall {
	/// The bank the call is about.
	pub fn channel(&self) -> ChannelId {
		match self {
			Self::Liquidate(sheet) => sheet.channel,
			Self::WithdrawByMaster { channel } | Self::WithdrawByPeer { channel, .. } => *channel,
		}
	}

	/// Penalties go before any other call of the same account: they expire with the lock.
	pub fn is_penalty(&self) -> bool {
		matches!(self, Self::WithdrawByPeer { .. })
	}
}

/// What the watchtower owes the chain for a liquidated `bank` at block `now`: the penalty
/// while the lock lasts if the master used a sheet it had revoked; if the master is us, the
/// withdrawal between the lock's end and the block the chain releases the share by itself
/// (later than the lock's end only when that block's schedule was full); or nothing.
pub fn owed(bank: &Bank, liquidation: &OnChainLiquidation, now: BlockNumber) -> Option<ChainCall> {
	let channel = bank.channel();
	if usize::from(liquidation.master) == bank.me() {
		let early = (liquidation.unlock_at..liquidation.release_at).contains(&now);
		return early.then_some(ChainCall::WithdrawByMaster { channel });
	}
	if now >= liquidation.unlock_at {
		return None;
	}
	let waiver_signature = bank.penalty(liquidation.nonce)?;
	Some(ChainCall::WithdrawByPeer { channel, waiver_signature })
}
