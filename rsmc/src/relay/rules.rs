//! The rules by which an intermediary or a payee decides an HTLC's fate from what happened
//! downstream, upstream, on chain or to itself: each takes what was observed and says what to
//! do; [`super::Relay`] applies them.

use crate::{
	bank::Bank,
	chain::BlockNumber,
	driver::DriveError,
	route::{next_hop, payee_accepts, Forwarding, Hop},
	Htlc, HtlcUpdate,
};
use sp_core::H256;
use vbank_primitives::{Balance, ChannelId, Preimage};

/// What to do about an HTLC the peer added to us, once final.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Incoming {
	/// Pass it on: make `update` on our bank `channel`. If our offer never leaves, fail the
	/// incoming HTLC; once it has left, the incoming one stays until the outgoing one is
	/// settled, failed or gone on chain (C2 of the HTLC review).
	Forward { channel: ChannelId, update: HtlcUpdate },
	/// We are its payee and it pays our invoice in full, in time: settle it.
	Settle(Preimage),
	/// Give it back, for this reason.
	Fail(&'static str),
}

/// An invoice of ours: its preimage and the amount it asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Invoice {
	pub preimage: Preimage,
	pub amount: Balance,
}

/// The account's view an [`on_incoming`] decision needs.
pub struct View<'a> {
	/// Block the chain is at.
	pub now: u32,
	pub forwarding: Forwarding,
	/// Each live bank of ours.
	pub ours: &'a dyn Fn(ChannelId) -> Option<&'a Bank>,
	/// Our invoice under a hashlock, if we made one.
	pub invoice: &'a dyn Fn(&H256) -> Option<Invoice>,
	/// Whether an HTLC we sent under a hashlock may still be paid out ([`offering`]).
	pub offering: &'a dyn Fn(&H256) -> bool,
}

/// What to do about `htlc`, which the peer added to us on our bank `from` asking us to pass
/// it on along `onward` (empty: we are its payee). A forward is refused when an HTLC of ours
/// under its lock may still be paid out (a payer's retry, or a loop: with two outgoing HTLCs
/// under one lock we could not tell which incoming one to fail), when [`next_hop`] refuses it,
/// when the next hop is no live bank of ours other than `from`, when our share there would end
/// below the bank's reserve, or when our HTLCs pending on it would lock more than
/// [`MAX_IN_FLIGHT_PERCENT`] of our money there. A payee settles only an
/// invoice it made, paid in full with time left to claim on chain ([`payee_accepts`]).
pub fn on_incoming(htlc: &Htlc, onward: &[Hop], from: ChannelId, view: &View) -> Incoming {
	let lock = htlc.hashlock;
	if onward.is_empty() {
		let Some(invoice) = (view.invoice)(&lock) else {
			return Incoming::Fail("no invoice of ours");
		};
		return match payee_accepts(htlc, invoice.amount, view.now, view.forwarding.min_final()) {
			Ok(()) => Incoming::Settle(invoice.preimage),
			Err(why) => Incoming::Fail(why),
		};
	}
	if (view.offering)(&lock) {
		return Incoming::Fail("an HTLC of ours under its hashlock is pending");
	}
	let (next, rest) = match next_hop(htlc, onward, view.forwarding, view.now) {
		Ok(hop) => hop,
		Err(why) => return Incoming::Fail(why),
	};
	let out = next.channel;
	let Some(bank) = (view.ours)(out).filter(|_| out != from) else {
		return Incoming::Fail("the next hop is no live bank of ours");
	};
	if next.amount > bank.spendable(bank.me()) {
		return Incoming::Fail("the next bank holds too little of ours above its reserve");
	}
	if !room_in_flight(bank, next.amount) {
		return Incoming::Fail("our HTLCs pending on the next bank lock as much as we allow");
	}
	Incoming::Forward { channel: out, update: next.update(bank.me, lock, rest) }
}

/// The most of our money in a bank that HTLCs we send on it may lock at once, in percent:
/// whoever routes through us can tie up at most this share of our liquidity on a bank for as
/// long as its HTLCs last (value jamming, H1 of the HTLC review); the rest stays ours to pay
/// and forward with.
pub const MAX_IN_FLIGHT_PERCENT: u128 = 50;

/// Whether an HTLC of `amount` more, sent by us on `bank`, keeps our HTLCs pending there
/// within [`MAX_IN_FLIGHT_PERCENT`] of our money in it (our balance and those HTLCs).
pub fn room_in_flight(bank: &Bank, amount: Balance) -> bool {
	let pending: Balance = bank.offered_htlcs().map(|h| h.amount).sum();
	let ours = bank.balances()[bank.me()].saturating_add(pending);
	let after = pending.saturating_add(amount);
	after.saturating_mul(100) <= ours.saturating_mul(MAX_IN_FLIGHT_PERCENT)
}

/// Whether an HTLC we sent under `lock` may still be paid out of any of `banks`: offered off
/// chain on a bank not liquidated ([`Bank::offers`]), or pending on a liquidated one, where
/// the chain's list (`on_chain`: by index, `None` once paid out; `None` when the chain can't
/// be read, which counts as pending) is what counts, not the bank's newest sheet (C3 of the
/// HTLC review).
pub fn offering<'a>(
	banks: impl IntoIterator<Item = &'a Bank>,
	lock: H256,
	on_chain: impl Fn(ChannelId) -> Option<Vec<Option<Htlc>>>,
) -> bool {
	banks.into_iter().any(|bank| {
		let Some(ledger) = bank.ledger() else { return false };
		if ledger.liquidated.is_none() {
			return bank.offers(lock);
		}
		let me = u8::try_from(bank.me()).unwrap_or(u8::MAX);
		on_chain(bank.channel())
			.is_none_or(|htlcs| htlcs.iter().flatten().any(|h| h.hashlock == lock && h.from == me))
	})
}

/// Our live banks among `banks` with an HTLC under `lock` paid to us: where a preimage learned
/// downstream settles, and a failure downstream fails.
pub fn upstream<'a>(banks: impl IntoIterator<Item = &'a Bank>, lock: H256) -> Vec<ChannelId> {
	banks.into_iter().filter(|b| b.is_live() && b.owes_us(lock)).map(Bank::channel).collect()
}

/// Whether a failure downstream under `lock` fails what is paid to us under it upstream:
/// only once nothing we sent under it may still be paid out (`offering`) and we know no
/// preimage for it (with one, the upstream HTLCs are ours to settle).
pub fn fails_upstream(offering: bool, preimage_known: bool) -> bool {
	!offering && !preimage_known
}

/// What the HTLCs under one lock paid to us on a bank become.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolve {
	/// Settle every one: any HTLC under the lock is ours with the preimage.
	Settle(Preimage),
	/// Fail this one (its amount and expiry pick it among several under one lock).
	Fail(Htlc),
	/// Fail every one.
	FailAny,
}

impl Resolve {
	/// The HTLC under `lock` paid to us on `bank` to resolve next, and the update that does:
	/// `None` once none is left. A settlement or [`Self::FailAny`] is made again until none is
	/// (M7 of the HTLC review: only the first under a reused lock was resolved, the others
	/// left to the chain); [`Self::Fail`] names one.
	pub fn next(&self, bank: &Bank, lock: H256) -> Option<(Htlc, HtlcUpdate)> {
		let index = bank.htlcs().iter().position(|h| {
			h.hashlock == lock
				&& usize::from(h.from) != bank.me()
				&& match self {
					Self::Fail(htlc) => h == htlc,
					Self::Settle(_) | Self::FailAny => true,
				}
		})?;
		let htlc = bank.htlcs()[index].clone();
		let index = u32::try_from(index).ok()?;
		let update = match self {
			Self::Settle(preimage) => HtlcUpdate::Settle { index, preimage: *preimage },
			Self::Fail(_) | Self::FailAny => HtlcUpdate::Fail { index, hashlock: lock },
		};
		Some((htlc, update))
	}

	/// Whether one more is resolved once one is: every HTLC under the lock, but for
	/// [`Self::Fail`].
	pub fn every(&self) -> bool {
		!matches!(self, Self::Fail(_))
	}
}

/// Whether our settlement of `htlc` that the peer did not take, at block `now`, sends the bank
/// on chain, where the watchtower claims the HTLC with its preimage: yes when the peer stayed
/// silent, stayed busy with a round of its own it never finished (a `Revoke` it never sends
/// keeps the bank busy for ever: H2 of the HTLC review), or refused it, since waiting for the
/// expiry then costs us the HTLC; unless our own helper refused (the bank is closing, or on
/// its way on chain already), the HTLC is dust, or there is no time left for a liquidation
/// and then a claim before its expiry (a frozen share for nothing).
pub fn settlement_goes_on_chain(
	error: &DriveError,
	htlc: &Htlc,
	now: BlockNumber,
	forwarding: Forwarding,
) -> bool {
	let peer_failed = match error {
		DriveError::Silent { .. } | DriveError::Busy(_) | DriveError::Refused(_) => true,
		DriveError::Helper(_) => false,
	};
	let claimable = now.saturating_add(2) < BlockNumber::from(htlc.expiry);
	peer_failed && claimable && htlc.amount >= forwarding.dust
}

/// What becomes of an HTLC paid to us, found on a live bank after a restart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resumed {
	/// We know its preimage (an invoice of ours, or learned downstream): settle it.
	Settle(Htlc, Preimage),
	/// Nothing of ours under its lock may still be paid out and we know no preimage: it was
	/// never passed on (the node stopped between taking it and forwarding it: M6 of the HTLC
	/// review), or what was passed on is gone. Fail it, before its expiry sends the payer on
	/// chain.
	Fail(Htlc),
}

/// After a restart, what to do about each HTLC paid to us on `bank`: settle those whose
/// preimage we know (`preimage`), fail those with nothing of ours under their lock that may
/// still be paid out (`offering`); the others wait for their fate downstream.
pub fn on_resume(
	bank: &Bank,
	preimage: impl Fn(&H256) -> Option<Preimage>,
	offering: impl Fn(&H256) -> bool,
) -> Vec<Resumed> {
	if !bank.is_live() {
		return Vec::new();
	}
	let owed_to_us = bank.htlcs().iter().filter(|h| usize::from(h.from) != bank.me());
	owed_to_us
		.filter_map(|htlc| match preimage(&htlc.hashlock) {
			Some(preimage) => Some(Resumed::Settle(htlc.clone(), preimage)),
			None if !offering(&htlc.hashlock) => Some(Resumed::Fail(htlc.clone())),
			None => None,
		})
		.collect()
}

#[cfg(test)]
mod tests {
	use super::*;
	use crate::{bank::Error, helper::HelperError};

	fn htlc(amount: u128, expiry: u32) -> Htlc {
		Htlc { from: 1, amount, hashlock: H256::repeat_byte(1), expiry }
	}

	/// H2: a peer that never sends its `Revoke` keeps our settlement `Busy` for ever; before,
	/// only a silent peer sent the bank on chain, and the HTLC waited for the last margin.
	#[test]
	fn a_settlement_the_peer_never_takes_goes_on_chain_while_a_claim_can_make_it() {
		let f = Forwarding { fee: 0, delta: 40, dust: 10 };
		let silent = DriveError::Silent { why: String::new(), in_flight: true };
		let busy = DriveError::Busy("a payment of the peer's stayed in flight".into());
		let refused = DriveError::Refused("no".into());
		let ours = DriveError::Helper(HelperError::Protocol(Error::Closing));
		for error in [&silent, &busy, &refused] {
			assert!(settlement_goes_on_chain(error, &htlc(10, 100), 97, f), "{error}");
			// Liquidated in block 98, claimed in 99: the last that can; from 98 on, too late.
			assert!(!settlement_goes_on_chain(error, &htlc(10, 100), 98, f), "{error}");
			assert!(!settlement_goes_on_chain(error, &htlc(9, 100), 10, f), "dust: {error}");
		}
		assert!(!settlement_goes_on_chain(&ours, &htlc(10, 100), 10, f));
	}
}
