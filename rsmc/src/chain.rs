//! What a helper learns from the chain and owes it: the events the watchtower follows, and
//! the calls it submits on a bank's behalf until they are included or moot.

use crate::{
	bank::{Bank, Htlc, LiquidationSheet, OnChainLiquidation},
	route::Forwarding,
};
use sp_core::H256;
use sp_runtime::{AccountId32, MultiSignature};
use vbank_primitives::{Balances, Channel, ChannelId, ChannelState, Nonce, Preimage};

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
	/// The liquidation of bank `channel` we were told of is in no block of the best chain any
	/// more (a reorg dropped it, and nothing brought it back): the chain runs the bank again.
	LiquidationUndone { channel: ChannelId },
	/// The pallet's `Spliced` event, in a final block: sheets before `nonce` are void.
	Spliced { channel: ChannelId, nonce: Nonce },
}

/// A call a helper submits, signed by its account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChainCall {
	Liquidate(LiquidationSheet),
	WithdrawByMaster {
		channel: ChannelId,
	},
	WithdrawByPeer {
		channel: ChannelId,
		waiver_signature: MultiSignature,
	},
	/// Take HTLC `index` of a liquidated bank, paid to us, with its preimage.
	ClaimHtlc {
		channel: ChannelId,
		index: u32,
		preimage: Preimage,
	},
	/// Take back HTLC `index` of a liquidated bank, which we sent, after its expiry.
	RefundHtlc {
		channel: ChannelId,
		index: u32,
	},
	/// Lock our side of a bank whose handshake is done, while the chain waits for it.
	Deposit {
		channel: ChannelId,
	},
	/// Make the splice both clients signed (`docs/splice.md`).
	Splice {
		channel: ChannelId,
		nonce: Nonce,
		amounts_in: Balances,
		amounts_out: Balances,
		signatures: [MultiSignature; 2],
	},
	/// Close a bank whose store was behind at the peer's newest sheet, which both signed
	/// (`docs/recovery.md`).
	Close {
		channel: ChannelId,
		nonce: Nonce,
		balances: Balances,
		signatures: [MultiSignature; 2],
	},
}

impl ChainCall {
	/// The bank the call is about.
	pub fn channel(&self) -> ChannelId {
		match self {
			Self::Liquidate(sheet) => sheet.channel,
			Self::WithdrawByMaster { channel }
			| Self::WithdrawByPeer { channel, .. }
			| Self::ClaimHtlc { channel, .. }
			| Self::RefundHtlc { channel, .. }
			| Self::Deposit { channel }
			| Self::Splice { channel, .. }
			| Self::Close { channel, .. } => *channel,
		}
	}

	/// Penalties go before any other call of the same account: they expire with the lock.
	pub fn is_penalty(&self) -> bool {
		matches!(self, Self::WithdrawByPeer { .. })
	}

	/// The HTLC the call pays out, by index: claims and refunds authorize themselves (the
	/// pallet's `claim_htlc`, `refund_htlc`), so those of different HTLCs of one bank go at
	/// once.
	pub fn htlc(&self) -> Option<u32> {
		match self {
			Self::ClaimHtlc { index, .. } | Self::RefundHtlc { index, .. } => Some(*index),
			_ => None,
		}
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

/// The close a bank whose store was behind owes the chain: the one at the peer's newest sheet,
/// once both signed it, until the bank is liquidated (`docs/recovery.md`). A close made the
/// usual way is sent by the helper that asked for it, as the answer to its operator.
pub fn recovery_close_owed(bank: &Bank) -> Option<ChainCall> {
	let unliquidated = bank.ledger().is_some_and(|l| l.liquidated.is_none());
	let closing = bank.closing().filter(|_| bank.is_behind() && unliquidated)?;
	Some(ChainCall::Close {
		channel: bank.channel(),
		nonce: closing.nonce,
		balances: closing.balances,
		signatures: closing.signatures()?,
	})
}

/// The splice of ours `bank` has both clients' signatures on, owed to the chain until it is
/// final there: the proposer's to send (the peer may too; the chain takes it once).
pub fn splice_owed(bank: &Bank) -> Option<ChainCall> {
	let splicing = bank.splicing().filter(|s| s.by_us)?;
	Some(ChainCall::Splice {
		channel: bank.channel(),
		nonce: splicing.nonce,
		amounts_in: splicing.amounts_in,
		amounts_out: splicing.amounts_out,
		signatures: splicing.signatures()?,
	})
}

/// The deposit we owe `bank`, which the chain holds as `on_chain`: once the handshake is done
/// (each side holds a signed sheet 0, so the money can always come back) while the chain
/// still waits for our share, if it is not zero. Owed again at every block and tick until the
/// chain has it, like every other call: a deposit lost once is never left until a restart.
pub fn deposit_owed<A>(bank: &Bank, on_chain: &Channel<A, u32>) -> Option<ChainCall> {
	let me = bank.me();
	let waiting = on_chain.state == ChannelState::Funding
		&& !on_chain.deposited[me]
		&& on_chain.balances[me] > 0;
	(waiting && bank.is_live()).then_some(ChainCall::Deposit { channel: bank.channel() })
}

/// What the watchtower owes the chain for the HTLCs a liquidated bank holds (`htlcs`, by
/// index, `None` once paid out), as client `me`, when the next block is `now + 1`: a claim of
/// each paid to us whose preimage we know, while it can be claimed; a refund of each we sent,
/// once it has expired. The largest first.
pub fn owed_htlcs(
	channel: ChannelId,
	me: usize,
	htlcs: &[Option<Htlc>],
	preimage: impl Fn(&H256) -> Option<Preimage>,
	now: BlockNumber,
) -> Vec<ChainCall> {
	let next = now.saturating_add(1);
	let mut owed: Vec<_> = htlcs
		.iter()
		.enumerate()
		.filter_map(|(index, htlc)| {
			let htlc = htlc.as_ref()?;
			let index = u32::try_from(index).ok()?;
			let expired = next >= BlockNumber::from(htlc.expiry);
			let call = if usize::from(htlc.from) == me {
				expired.then_some(ChainCall::RefundHtlc { channel, index })?
			} else if expired {
				return None;
			} else {
				let preimage = preimage(&htlc.hashlock)?;
				ChainCall::ClaimHtlc { channel, index, preimage }
			};
			Some((htlc.amount, call))
		})
		.collect();
	owed.sort_by_key(|(amount, _)| core::cmp::Reverse(*amount));
	owed.into_iter().map(|(_, call)| call).collect()
}

/// Why a running `bank` must go on chain at block `now`, if it must: an HTLC we sent (on our
/// newest sheet, or only offered, the peer silent since) has expired with the peer neither
/// settling nor failing it (only the chain gives it back, or a liquidation with our sheet
/// rules it out), or one paid to us whose preimage we know is within the forwarding's
/// [`Forwarding::margin`] of its expiry, the peer not having taken our settlement. An HTLC
/// under the forwarding's `dust` is never a reason.
pub fn htlc_deadline(
	bank: &Bank,
	preimage: impl Fn(&H256) -> Option<Preimage>,
	now: BlockNumber,
	forwarding: Forwarding,
) -> Option<&'static str> {
	let next = now.saturating_add(1);
	let margin = BlockNumber::from(forwarding.margin());
	let owed_to_us = bank.htlcs().iter().filter(|h| h.from != bank.me);
	let worth_a_claim = |htlc: &&Htlc| htlc.amount >= forwarding.dust;
	bank.offered_htlcs().chain(owed_to_us).filter(worth_a_claim).find_map(|htlc| {
		let expiry = BlockNumber::from(htlc.expiry);
		if usize::from(htlc.from) == bank.me() {
			(next >= expiry).then_some("an HTLC we sent expired unresolved")
		} else {
			let due = (expiry.saturating_sub(margin)..expiry).contains(&next);
			(due && preimage(&htlc.hashlock).is_some())
				.then_some("the peer did not take the preimage of an HTLC it owes us")
		}
	})
}
