//! What a helper saw or did, told to the log and to `rsmc_subscribeEvents` subscribers.

use super::{account::Account, LOG};
use sp_core::H256;
use tokio::sync::broadcast;
use vbank_primitives::{Balances, ChannelId, Nonce};
use vbank_runtime::AccountId;

/// Something a helper saw or did, for `rsmc_subscribeEvents` and the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
	pub account: AccountId,
	pub kind: EventKind,
	pub channel: ChannelId,
	pub nonce: Nonce,
	pub balances: Balances,
	/// The HTLC an `Htlc*` event is about.
	pub hashlock: Option<H256>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum EventKind {
	/// The bank is open on chain (`rsmc_open`'s first step).
	Opened,
	/// A bank another account opened waits for our operator's `rsmc_accept`; or, to the
	/// opener, the peer's helper holds it so.
	Offered,
	/// The nonce-0 handshake is done: each side holds a signed sheet 0.
	Handshake,
	/// This helper's deposit is held.
	Deposited,
	/// Both deposits are held: payments may flow.
	Running,
	/// We paid: the payment is final.
	Paid,
	/// We were paid: the peer revoked its old sheet.
	Received,
	/// The bank was liquidated (by either side).
	Liquidated,
	/// A liquidation with a revoked sheet was punished: the master's share went to the peer.
	Punished,
	/// The master withdrew its share after the lock.
	Withdrawn,
	/// The bank was closed cooperatively.
	Closed,
	/// An HTLC was added to the newest sheet (by either side), final once revoked.
	HtlcAdded,
	/// An HTLC was settled with its preimage: its amount is the receiver's.
	HtlcSettled,
	/// An HTLC was failed: its amount went back to its payer.
	HtlcFailed,
	/// We passed a payment on: an HTLC paid to us is matched by this one we added.
	Forwarded,
	/// A splice of the bank is final on chain: what it holds changed, and payments go on
	/// from the sheet at the splice's nonce.
	Spliced,
}

impl EventKind {
	pub fn name(self) -> &'static str {
		match self {
			Self::Opened => "Opened",
			Self::Offered => "Offered",
			Self::Handshake => "Handshake",
			Self::Deposited => "Deposited",
			Self::Running => "Running",
			Self::Paid => "Paid",
			Self::Received => "Received",
			Self::Liquidated => "Liquidated",
			Self::Punished => "Punished",
			Self::Withdrawn => "Withdrawn",
			Self::Closed => "Closed",
			Self::HtlcAdded => "HtlcAdded",
			Self::HtlcSettled => "HtlcSettled",
			Self::HtlcFailed => "HtlcFailed",
			Self::Forwarded => "Forwarded",
			Self::Spliced => "Spliced",
		}
	}
}

/// Tell the log and the subscribers what `party` saw or did on `channel`, with the newest
/// sheet it holds.
pub(super) fn announce(
	events: &broadcast::Sender<Event>,
	party: &Account,
	kind: EventKind,
	channel: ChannelId,
) {
	let (nonce, balances) =
		party.bank(channel).map(|b| (b.nonce(), b.balances())).unwrap_or_default();
	let event =
		Event { account: party.account.clone(), kind, channel, nonce, balances, hashlock: None };
	announce_event(events, event);
}

pub(super) fn announce_event(events: &broadcast::Sender<Event>, event: Event) {
	let Event { account, kind, channel, nonce, balances, .. } = &event;
	log::info!(
		target: LOG,
		"💸 {account} bank {channel}: {} (nonce {nonce}, balances {} / {})",
		kind.name(),
		balances[0],
		balances[1]
	);
	// Nobody listening is fine.
	let _ = events.send(event);
}
