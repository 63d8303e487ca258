//! What reaches the helpers from outside and what they do about it: the protocol messages of
//! peers and strangers (`rsmc_message`, or a helper of this node), and the progress each step
//! makes — a handshake followed by a deposit, an HTLC added to us paid on or settled, a
//! preimage seen settled upstream at once.

use super::{account::Account, peer_url, Accounts, EventKind, Failure, LOG};
use rsmc::{
	relay::Happened,
	transport::{answer, Miss},
	Body, HtlcUpdate, Message, Progress,
};
use std::sync::Arc;
use vbank_primitives::ChannelId;

impl Accounts {
	/// Report what a helper's step achieved, and act on it: a handshake done is followed by
	/// our deposit; a secret learned after a liquidation by the watchtower's next look.
	pub(super) fn progressed(&self, party: &Arc<Account>, channel: ChannelId, progress: &Progress) {
		party.remember(channel);
		self.to_tower(party, channel);
		// The peer of the opener hears of the bank first here: `Opened` for it too.
		let peer_of_opener = party.bank(channel).is_some_and(|b| b.me() == 1);
		if peer_of_opener
			&& matches!(progress, Progress::Handshake | Progress::Offered)
			&& party.first_report(channel, EventKind::Opened)
		{
			self.emit(party, EventKind::Opened, channel);
		}
		let kind = match progress {
			Progress::Handshake => {
				self.deposit_later(party.clone(), channel);
				EventKind::Handshake
			},
			Progress::Offered => EventKind::Offered,
			Progress::Paid { .. } => EventKind::Paid,
			Progress::Received { .. } => EventKind::Received,
			Progress::Yielded => {
				log::debug!(target: LOG, "💸 {} bank {channel}: our payment gave way to the peer's; proposing it again after", party.account);
				return;
			},
			Progress::SecretsLearned => {
				log::info!(target: LOG, "💸 {} bank {channel}: the peer revealed a secret after the liquidation", party.account);
				self.submit_owed(party);
				return;
			},
			Progress::Htlc { update, by_us, .. } => {
				self.htlc_progressed(party, channel, update, *by_us);
				return;
			},
			// Owed to the chain from now: the watchtower sends it (the proposer's), and the
			// bank reports `Spliced` once it is final.
			Progress::SpliceSigned { nonce } => {
				log::info!(target: LOG, "💸 {} bank {channel}: the splice of sheet {nonce} is signed by both", party.account);
				self.submit_owed(party);
				return;
			},
			// A store restored from an older copy: we close at the peer's newest sheet, or it
			// liquidates with it; we never liquidate with ours (`docs/recovery.md`).
			Progress::Behind { nonce } => {
				log::warn!(target: LOG, "💸 {} bank {channel}: our store is older than what we signed; closing at the peer's newest sheet {nonce}", party.account);
				self.submit_owed(party);
				return;
			},
			Progress::PeerBehind { nonce } => {
				log::warn!(target: LOG, "💸 {} bank {channel}: the peer's store is behind; we showed it our newest sheet {nonce} to close at", party.account);
				self.submit_owed(party);
				return;
			},
		};
		self.emit(party, kind, channel);
	}

	/// Report an HTLC update made final on `channel`, and tell the relay: an HTLC added to us
	/// is paid on, settled or failed; one of ours settled gives us its preimage to settle
	/// upstream with (and a waiting `rsmc_send` its receipt, before the event); one of ours
	/// failed is failed upstream once nothing under its lock may still be paid out.
	fn htlc_progressed(
		&self,
		party: &Arc<Account>,
		channel: ChannelId,
		update: &HtlcUpdate,
		by_us: bool,
	) {
		let kind = match update {
			HtlcUpdate::Add(_) | HtlcUpdate::AddRouted { .. } => EventKind::HtlcAdded,
			HtlcUpdate::Settle { .. } => EventKind::HtlcSettled,
			HtlcUpdate::Fail { .. } => EventKind::HtlcFailed,
		};
		let lock = update.hashlock();
		let added_to_us = !by_us && matches!(kind, EventKind::HtlcAdded);
		// A payee or intermediary held by a test neither settles, fails nor passes on what is
		// paid to it (until a restart, which forgets the hold).
		let held = added_to_us && party.holds.load(std::sync::atomic::Ordering::Relaxed);
		if held {
			log::info!(target: LOG, "💸 {} bank {channel}: holding {lock:?} (a test's cheat)", party.account);
		}
		let happened = Happened::Final { channel, update: update.clone(), by_us };
		// The receipt of a settlement goes before its event; an addition's event before
		// what the relay makes of it (the forward's own event).
		let receipt_first = !by_us && matches!(kind, EventKind::HtlcSettled);
		if receipt_first {
			self.relay(party, happened);
			self.emit_htlc(party, kind, channel, lock);
			return;
		}
		self.emit_htlc(party, kind, channel, lock);
		if !held {
			self.relay(party, happened);
		}
	}

	/// A protocol message from anybody (`rsmc_message`): the answer of the helper it is for,
	/// the other client of its bank. `from_url`, where the sender's node is reached, is kept
	/// only for a bank a signed `Open` starts. Anything not signed by a bank's other client
	/// is ignored.
	pub async fn receive(
		&self,
		message: &Message,
		from_url: Option<String>,
	) -> Result<Option<Message>, Failure> {
		let channel = message.channel;
		let genesis = self.chain.genesis;
		let party = match &message.body {
			Body::Open { clients, .. } => self.parties.get(&clients[1]),
			_ => self.parties.values().find(|p| {
				p.bank(channel).is_some_and(|b| message.is_signed_by(&genesis, b.peer()))
			}),
		};
		let Some(party) = party else { return Ok(None) };
		let from_url = peer_url(from_url)?;
		self.answer(party, message, from_url).await.map_err(|miss| match miss {
			Miss::Busy(e) => Failure::Busy(e),
			Miss::Refused(e) | Miss::Unreachable(e) => Failure::Refused(e),
		})
	}

	/// `party`'s answer to `message`, with what it takes besides the protocol: the chain
	/// must hold a bank a new `Open` speaks of, on the terms it states.
	pub(super) async fn answer(
		&self,
		party: &Arc<Account>,
		message: &Message,
		from_url: Option<String>,
	) -> Result<Option<Message>, Miss> {
		let channel = message.channel;
		if party.ignores(channel) {
			// Gone silent (`rsmc_testIgnore`): the sender times out first.
			tokio::time::sleep(self.settings.peer_timeout * 2).await;
			return Err(Miss::Unreachable(format!("bank {channel} is ignored (a test's cheat)")));
		}
		let opening = matches!(message.body, Body::Open { .. }) && party.bank(channel).is_none();
		if opening {
			self.check_open(message).await.map_err(|e| match e {
				Failure::Busy(why) => Miss::Busy(why),
				e => Miss::Refused(e.to_string()),
			})?;
		}
		// A payment, or an HTLC added, only on a bank whose deposits are final: ask again.
		let pays = matches!(
			message.body,
			Body::Propose { .. }
				| Body::Update { update: HtlcUpdate::Add(_) | HtlcUpdate::AddRouted { .. }, .. }
		);
		if pays && !self.deposits_final(channel).map_err(|e| Miss::Refused(e.to_string()))? {
			return Err(Miss::Busy(format!(
				"bank {channel}: its deposits are not in a finalized block yet"
			)));
		}
		let helper = match (opening, party.helper(channel)) {
			(_, Some(helper)) => helper,
			(true, None) => party.helper_or_new(channel),
			(false, None) => return Err(Miss::Refused(format!("no bank {channel} here"))),
		};
		// HTLC updates whose time has passed are refused at the chain's height (M1 of the
		// HTLC review).
		if let Ok(mut helper) = helper.lock() {
			helper.set_height(self.chain.best().1.into());
		}
		let (reply, progress) = answer(&helper, message);
		if opening {
			party.drop_if_empty(channel);
		}
		if opening && party.bank(channel).is_some() {
			if let Some(url) = from_url {
				party.peers.set(channel, Some(url)).map_err(Miss::Refused)?;
			}
			if party.bank(channel).is_some_and(|b| b.is_offered()) {
				self.emit(party, EventKind::Offered, channel);
			}
		}
		// A preimage the next hop shows us settles upstream at once, while its own settlement
		// finishes: whatever becomes of that, the preimage is ours to claim with. Even if we
		// refused the settlement (too late): the upstream HTLC may still have time.
		if let Body::Update { update: HtlcUpdate::Settle { preimage, .. }, .. } = &message.body {
			self.relay(party, Happened::Shown(*preimage));
		}
		if let Some(progress) = progress {
			self.progressed(party, channel, &progress);
		}
		reply
	}
}
