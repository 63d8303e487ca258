//! What links one account's banks (SPEC section 6, `docs/htlc.md`): the [`Relay`], which
//! forwards an HTLC paid to us, settles or fails it once its fate downstream is known, keeps
//! the preimages and the forwarding table durably in the helper's store, and resumes after a
//! restart. Sans-IO: it is told what [`Happened`] and answers with [`Command`]s for the node
//! (or a test) to carry out; the rules it applies are in [`rules`].

mod rules;

pub use rules::*;

use crate::{
	bank::Bank,
	driver::DriveError,
	route::Forwarding,
	store::{Store, StoreError},
	Htlc, HtlcUpdate,
};
use codec::{Decode, Encode};
use sp_core::H256;
use std::collections::BTreeMap;
use vbank_primitives::{hashlock, Balance, ChannelId, Preimage};

/// A preimage the account knows: one it made for an invoice (with the amount it asks), or one
/// it learned downstream, kept while an HTLC paid to us is locked under it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Known {
	pub preimage: Preimage,
	/// The amount an invoice asks; `None` for a preimage learned.
	pub invoice: Option<Balance>,
}

/// An entry of the forwarding table: HTLC `htlc`, paid to us on bank `from`, passed on as an
/// HTLC under the same lock on bank `to`. The incoming one is failed only once the outgoing
/// one is irrevocably gone, and settled as soon as its preimage is known.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Forward {
	pub from: ChannelId,
	pub htlc: Htlc,
	pub to: ChannelId,
}

/// What the relay reads of the account: its banks as its helpers hold them, and the chain.
pub trait Links {
	/// The block the chain is at.
	fn now(&self) -> u32;
	/// Every bank of the account.
	fn banks(&self) -> Vec<Bank>;
	/// The HTLCs the chain holds for liquidated bank `channel`, by index (`None` once paid
	/// out); `None` when the chain can't be read, which counts as pending.
	fn on_chain(&self, channel: ChannelId) -> Option<Vec<Option<Htlc>>>;
	/// The preimage of `lock` if a claim on chain showed it (one made while we were stopped).
	fn shown_on_chain(&self, lock: &H256) -> Option<Preimage>;
}

/// An update the relay asks for, made against the bank as it is when it is proposed (an
/// index may have moved meanwhile).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Proposal {
	/// Add this HTLC (a forward, or a payment of ours).
	Offer(HtlcUpdate),
	/// Settle or fail the HTLCs under `lock` paid to us ([`Resolve`]).
	Resolve { lock: H256, resolve: Resolve },
}

impl Proposal {
	/// The update to propose on `bank` now; `None` when there is nothing left to do.
	pub fn update(&self, bank: &Bank) -> Option<HtlcUpdate> {
		match self {
			Self::Offer(update) => Some(update.clone()),
			Self::Resolve { lock, resolve } => resolve.next(bank, *lock).map(|(_, update)| update),
		}
	}

	/// The hashlock it is about.
	pub fn hashlock(&self) -> H256 {
		match self {
			Self::Offer(update) => update.hashlock(),
			Self::Resolve { lock, .. } => *lock,
		}
	}
}

/// What the relay is told.
#[derive(Debug)]
pub enum Happened {
	/// An HTLC update on bank `channel` became final: the peer's (`by_us` false) once it
	/// revoked its older sheets, ours once it accepted.
	Final { channel: ChannelId, update: HtlcUpdate, by_us: bool },
	/// A [`Command::Propose`] on `channel` did not become final, for `error`.
	NotFinal { channel: ChannelId, proposal: Proposal, error: DriveError },
	/// A preimage was shown to us: in the peer's settlement (before it is final), or by a
	/// claim on chain.
	Shown(Preimage),
	/// An HTLC we sent under `lock` is gone for good without its preimage: refunded on chain,
	/// or left off the sheet its bank was liquidated with.
	Gone(H256),
	/// The helpers started again: every HTLC paid to us is looked at again.
	Restarted,
	/// The chain removed bank `channel` and the account's helper forgot it: what the relay
	/// kept for it alone goes.
	Removed(ChannelId),
	/// A block, or a timer's tick: every HTLC paid to us on a live bank whose preimage we
	/// learned (downstream, or from a claim on chain) and that no resolution is under way for
	/// is settled again. A settlement that did not become final for a reason of our own side
	/// (a step of ours on the bank, our helper busy resuming) is not left to the HTLC's expiry.
	Tick,
}

/// What the relay asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
	/// Propose `proposal` on bank `channel` (after whatever of ours is under way on it), and
	/// tell the relay what became of it: [`Happened::Final`] or [`Happened::NotFinal`].
	Propose { channel: ChannelId, proposal: Proposal },
	/// Liquidate bank `channel`: a settlement the peer did not take is claimed on chain.
	Liquidate(ChannelId),
	/// An HTLC under `lock` paid to us on `from` was passed on, final on `to`.
	Forwarded { from: ChannelId, to: ChannelId, lock: H256 },
	/// A preimage of an HTLC we sent came back: the payer's receipt, for a waiting send.
	Receipt(Preimage),
	/// The store failed; the relay went on as safely as it could without it.
	Warn(String),
}

/// The key of a preimage's entry in the store, and of a forward's.
fn key(kind: u8, lock: &H256) -> Vec<u8> {
	let mut key = vec![kind];
	key.extend_from_slice(lock.as_bytes());
	key
}

const PREIMAGE: u8 = b'p';
const FORWARD: u8 = b'f';

/// One account's relay; see the module's documentation.
pub struct Relay<S> {
	store: S,
	forwarding: Forwarding,
	preimages: BTreeMap<H256, Known>,
	/// The forwarding table, by lock: at most one outgoing HTLC of ours under a lock is
	/// pending at a time (a second forward under it is refused).
	forwards: BTreeMap<H256, Forward>,
	/// The resolutions under way, by bank and lock: each final one is followed by the next.
	resolving: BTreeMap<(ChannelId, H256), Resolve>,
}

impl<S: Store> Relay<S> {
	/// The relay of the account whose store is `store`, with what it kept there.
	pub fn new(store: S, forwarding: Forwarding) -> Result<Self, StoreError> {
		let mut relay = Self {
			store,
			forwarding,
			preimages: BTreeMap::new(),
			forwards: BTreeMap::new(),
			resolving: BTreeMap::new(),
		};
		for (key, value) in relay.store.load_entries()? {
			let bad = || StoreError(format!("the relay's entry {} does not decode", hex(&key)));
			let (&kind, lock) = key.split_first().ok_or_else(bad)?;
			let lock = <[u8; 32]>::try_from(lock).map(H256).map_err(|_| bad())?;
			match kind {
				PREIMAGE => {
					relay
						.preimages
						.insert(lock, Decode::decode(&mut &value[..]).map_err(|_| bad())?);
				},
				FORWARD => {
					relay
						.forwards
						.insert(lock, Decode::decode(&mut &value[..]).map_err(|_| bad())?);
				},
				_ => return Err(bad()),
			}
		}
		Ok(relay)
	}

	/// The forwarding terms it applies.
	pub fn forwarding(&self) -> Forwarding {
		self.forwarding
	}

	/// The preimage of `lock`, if the account knows it.
	pub fn preimage(&self, lock: &H256) -> Option<Preimage> {
		self.preimages.get(lock).map(|known| known.preimage)
	}

	/// Every preimage the account knows, by lock.
	pub fn preimages(&self) -> &BTreeMap<H256, Known> {
		&self.preimages
	}

	/// The forwarding table, by lock.
	pub fn forwards(&self) -> &BTreeMap<H256, Forward> {
		&self.forwards
	}

	/// Keep `preimage` for an invoice of `amount`, durably: its hashlock.
	pub fn invoice(&mut self, preimage: Preimage, amount: Balance) -> Result<H256, StoreError> {
		self.remember(Known { preimage, invoice: Some(amount) })
	}

	/// Keep a preimage the account knew before its relay did (a book of an older version),
	/// durably: its hashlock. One already known stays as it is.
	pub fn remember(&mut self, known: Known) -> Result<H256, StoreError> {
		let lock = hashlock(&known.preimage);
		if !self.preimages.contains_key(&lock) {
			self.keep_preimage(lock, Some(known))?;
		}
		Ok(lock)
	}

	/// Whether an HTLC we sent under `lock` may still be paid out, off chain or on
	/// ([`offering`]).
	pub fn offering(&self, lock: H256, links: &dyn Links) -> bool {
		offering(&links.banks(), lock, |channel| links.on_chain(channel))
	}

	/// What to do about what happened.
	pub fn on(&mut self, happened: Happened, links: &dyn Links) -> Vec<Command> {
		let mut commands = Vec::new();
		match happened {
			Happened::Final { channel, update, by_us } => {
				self.on_final(channel, &update, by_us, links, &mut commands)
			},
			Happened::NotFinal { channel, proposal, error } => {
				self.on_not_final(channel, proposal, &error, links, &mut commands)
			},
			Happened::Shown(preimage) => self.shown(preimage, links, &mut commands),
			Happened::Gone(lock) => self.gone(lock, links, &mut commands),
			Happened::Restarted => self.restarted(links, &mut commands),
			Happened::Removed(_) => self.tidy(&links.banks(), &mut commands),
			Happened::Tick => self.settle_learned(links, &mut commands),
		}
		commands
	}

	fn on_final(
		&mut self,
		channel: ChannelId,
		update: &HtlcUpdate,
		by_us: bool,
		links: &dyn Links,
		commands: &mut Vec<Command>,
	) {
		let lock = update.hashlock();
		match (update, by_us) {
			(HtlcUpdate::Add(_) | HtlcUpdate::AddRouted { .. }, false) => {
				let Some((htlc, onward)) = update.added() else { return };
				let (htlc, onward) = (htlc.clone(), onward.to_vec());
				self.incoming(channel, htlc, &onward, links, commands)
			},
			(HtlcUpdate::Add(_) | HtlcUpdate::AddRouted { .. }, true) => {
				if let Some(forward) = self.forwards.get(&lock).filter(|f| f.to == channel) {
					commands.push(Command::Forwarded { from: forward.from, to: channel, lock });
				}
			},
			// The peer settled ours: seen already if its `Update` came as a request.
			(HtlcUpdate::Settle { preimage, .. }, false) => self.shown(*preimage, links, commands),
			(HtlcUpdate::Fail { .. }, false) => self.gone(lock, links, commands),
			(HtlcUpdate::Settle { .. } | HtlcUpdate::Fail { .. }, true) => {
				self.resolved(channel, lock, links, commands)
			},
		}
	}

	/// An HTLC the peer added to us on `from` is final: pass it on along `onward`, or, with no
	/// hop left, settle it against our invoice; fail it when neither is possible
	/// ([`on_incoming`]). A forward is in the table, durably, before it is offered.
	fn incoming(
		&mut self,
		from: ChannelId,
		htlc: Htlc,
		onward: &[crate::route::Hop],
		links: &dyn Links,
		commands: &mut Vec<Command>,
	) {
		let lock = htlc.hashlock;
		// Decided already: after a restart, an HTLC on our newest sheet is settled or failed
		// before the peer's `Revoke` makes it final here (passing it on as well would leave
		// us paying out what we gave back).
		if self.resolving.contains_key(&(from, lock)) {
			return;
		}
		let banks = links.banks();
		let decision = {
			let ours = |c: ChannelId| banks.iter().find(|b| b.channel() == c && b.is_live());
			let invoice = |lock: &H256| {
				let known = self.preimages.get(lock)?;
				Some(Invoice { preimage: known.preimage, amount: known.invoice? })
			};
			let offering = |lock: &H256| offering(&banks, *lock, |c| links.on_chain(c));
			let view = View {
				now: links.now(),
				forwarding: self.forwarding,
				ours: &ours,
				invoice: &invoice,
				offering: &offering,
			};
			on_incoming(&htlc, onward, from, &view)
		};
		match decision {
			Incoming::Settle(preimage) => {
				self.resolve(from, lock, Resolve::Settle(preimage), commands)
			},
			Incoming::Forward { channel: to, update } => {
				let forward = Forward { from, htlc: htlc.clone(), to };
				match self.keep_forward(lock, Some(forward)) {
					Ok(()) => commands
						.push(Command::Propose { channel: to, proposal: Proposal::Offer(update) }),
					Err(e) => {
						commands.push(Command::Warn(format!(
							"{e}; failing {lock:?} rather than forward it unrecorded"
						)));
						self.resolve(from, lock, Resolve::Fail(htlc), commands)
					},
				}
			},
			Incoming::Fail(_) => self.resolve(from, lock, Resolve::Fail(htlc), commands),
		}
	}

	/// Start resolving the HTLCs under `lock` paid to us on `channel`.
	fn resolve(
		&mut self,
		channel: ChannelId,
		lock: H256,
		resolve: Resolve,
		commands: &mut Vec<Command>,
	) {
		self.resolving.insert((channel, lock), resolve.clone());
		commands.push(Command::Propose { channel, proposal: Proposal::Resolve { lock, resolve } });
	}

	/// Our settlement or failure under `lock` on `channel` is final: the next one, if the
	/// resolution goes on and one is left; otherwise done, and what it leaves is forgotten.
	fn resolved(
		&mut self,
		channel: ChannelId,
		lock: H256,
		links: &dyn Links,
		commands: &mut Vec<Command>,
	) {
		let banks = links.banks();
		let bank = banks.iter().find(|b| b.channel() == channel);
		if let Some(resolve) = self.resolving.get(&(channel, lock)).cloned() {
			let more = resolve.every()
				&& bank.is_some_and(|b| b.is_live() && resolve.next(b, lock).is_some());
			if more {
				commands.push(Command::Propose {
					channel,
					proposal: Proposal::Resolve { lock, resolve },
				});
				return;
			}
			self.resolving.remove(&(channel, lock));
		}
		let incoming_gone =
			|f: &Forward| f.from == channel && !bank.is_some_and(|b| b.htlcs().contains(&f.htlc));
		if self.forwards.get(&lock).is_some_and(incoming_gone) {
			self.forget_forward(lock, commands);
		}
		self.forget_preimage_if_done(lock, &banks, commands);
	}

	fn on_not_final(
		&mut self,
		channel: ChannelId,
		proposal: Proposal,
		error: &DriveError,
		links: &dyn Links,
		commands: &mut Vec<Command>,
	) {
		let lock = proposal.hashlock();
		let banks = links.banks();
		let bank = banks.iter().find(|b| b.channel() == channel);
		match proposal {
			Proposal::Offer(_) => {
				// Our signed offer left: the peer may take it later, or liquidate with it and
				// claim; the incoming HTLC stays until its fate is known (C2 of the review).
				if bank.is_some_and(|b| b.offers(lock)) {
					return;
				}
				let Some(forward) = self.forwards.get(&lock).filter(|f| f.to == channel).cloned()
				else {
					return;
				};
				self.forget_forward(lock, commands);
				self.resolve(forward.from, lock, Resolve::Fail(forward.htlc), commands)
			},
			Proposal::Resolve { resolve, .. } => {
				self.resolving.remove(&(channel, lock));
				let Resolve::Settle(_) = resolve else { return };
				// A failure the peer does not take is left to expire: the peer takes it back.
				let Some((htlc, _)) =
					bank.filter(|b| b.is_live()).and_then(|b| resolve.next(b, lock))
				else {
					return;
				};
				let now = links.now().into();
				if settlement_goes_on_chain(error, &htlc, now, self.forwarding) {
					commands.push(Command::Liquidate(channel));
				}
			},
		}
	}

	/// A preimage was shown to us. Where an HTLC under it is paid to us, on a live bank or a
	/// liquidated one (where the watchtower claims it), keep it (durably, before anything
	/// depends on it), then settle with it every HTLC under it paid to us on a live bank that
	/// is not being settled already. The payer's receipt either way.
	fn shown(&mut self, preimage: Preimage, links: &dyn Links, commands: &mut Vec<Command>) {
		let lock = hashlock(&preimage);
		commands.push(Command::Receipt(preimage));
		let banks = links.banks();
		if !self.preimages.contains_key(&lock) && banks.iter().any(|b| b.owes_us(lock)) {
			let known = Known { preimage, invoice: None };
			if let Err(e) = self.keep_preimage(lock, Some(known)) {
				// Settled at once all the same: the settlement is what makes it ours.
				commands.push(Command::Warn(format!(
					"{e}; settling {lock:?} without keeping its preimage"
				)));
				self.preimages.insert(lock, known);
			}
		}
		let settling =
			|c: &ChannelId| matches!(self.resolving.get(&(*c, lock)), Some(Resolve::Settle(_)));
		let owed: Vec<ChannelId> =
			upstream(&banks, lock).into_iter().filter(|c| !settling(c)).collect();
		for channel in owed {
			self.resolve(channel, lock, Resolve::Settle(preimage), commands);
		}
	}

	/// An HTLC we sent under `lock` is gone for good: fail the one we took for it, once
	/// nothing we sent under `lock` may still be paid out and we know no preimage for it.
	/// One gone from a liquidated bank's list by a claim (the chain read ahead of the block we
	/// look at) has its preimage on chain: that settles upstream instead.
	fn gone(&mut self, lock: H256, links: &dyn Links, commands: &mut Vec<Command>) {
		if !self.preimages.contains_key(&lock) {
			if let Some(preimage) = links.shown_on_chain(&lock) {
				return self.shown(preimage, links, commands);
			}
		}
		if !fails_upstream(self.offering(lock, links), self.preimages.contains_key(&lock)) {
			return;
		}
		let Some(forward) = self.forwards.get(&lock).cloned() else { return };
		self.forget_forward(lock, commands);
		self.resolve(forward.from, lock, Resolve::Fail(forward.htlc), commands)
	}

	/// After a restart: settle each HTLC paid to us whose preimage we know, fail those with
	/// nothing of ours under their lock that may still be paid out ([`on_resume`]); forget
	/// what no bank needs any more ([`Self::tidy`]: a removal may have been missed).
	fn restarted(&mut self, links: &dyn Links, commands: &mut Vec<Command>) {
		let banks = links.banks();
		for bank in &banks {
			let preimage = |lock: &H256| self.preimage(lock).or_else(|| links.shown_on_chain(lock));
			let offering = |lock: &H256| offering(&banks, *lock, |c| links.on_chain(c));
			for resumed in on_resume(bank, preimage, offering) {
				let channel = bank.channel();
				match resumed {
					Resumed::Settle(htlc, preimage) => {
						self.resolve(channel, htlc.hashlock, Resolve::Settle(preimage), commands)
					},
					Resumed::Fail(htlc) => {
						self.resolve(channel, htlc.hashlock, Resolve::Fail(htlc), commands)
					},
				}
			}
		}
		self.tidy(&banks, commands);
	}

	/// Settle each HTLC paid to us on a live bank, not expired, whose preimage we learned (or a
	/// claim on chain showed) and that nothing resolves now ([`Happened::Tick`]). An invoice's HTLC is
	/// left as [`on_incoming`] decided: one it refused (short, or late) is not settled here.
	fn settle_learned(&mut self, links: &dyn Links, commands: &mut Vec<Command>) {
		let (banks, now) = (links.banks(), links.now());
		let mut owed: Vec<(ChannelId, H256, Preimage)> = Vec::new();
		for bank in banks.iter().filter(|b| b.is_live()) {
			let channel = bank.channel();
			// An expired one is the peer's to take back: asking again would only be refused.
			let ours = |h: &&Htlc| usize::from(h.from) != bank.me() && now < h.expiry;
			for htlc in bank.htlcs().iter().filter(ours) {
				let lock = htlc.hashlock;
				if self.resolving.contains_key(&(channel, lock))
					|| owed.iter().any(|(c, l, _)| (*c, *l) == (channel, lock))
				{
					continue;
				}
				let preimage = match self.preimages.get(&lock) {
					Some(Known { invoice: Some(_), .. }) => continue,
					Some(known) => Some(known.preimage),
					None => links.shown_on_chain(&lock),
				};
				if let Some(preimage) = preimage {
					owed.push((channel, lock, preimage));
				}
			}
		}
		for (channel, lock, preimage) in owed {
			if self.resolving.contains_key(&(channel, lock)) {
				continue;
			}
			if !self.preimages.contains_key(&lock) {
				// Kept before anything depends on it, as when it is shown.
				self.shown(preimage, links, commands);
				continue;
			}
			self.resolve(channel, lock, Resolve::Settle(preimage), commands);
		}
	}

	/// Forget what no bank of ours needs any more (L3 of the HTLC review): a forward whose
	/// incoming HTLC is gone, a learned preimage no HTLC of ours is locked under (one claimed
	/// on chain, its bank since removed). An invoice's preimage stays: its payment may come.
	fn tidy(&mut self, banks: &[Bank], commands: &mut Vec<Command>) {
		let stale: Vec<H256> = self
			.forwards
			.iter()
			.filter(|(_, f)| {
				!banks.iter().any(|b| b.channel() == f.from && b.htlcs().contains(&f.htlc))
			})
			.map(|(lock, _)| *lock)
			.collect();
		for lock in stale {
			self.forget_forward(lock, commands);
		}
		let learned: Vec<H256> = self
			.preimages
			.iter()
			.filter(|(_, known)| known.invoice.is_none())
			.map(|(lock, _)| *lock)
			.collect();
		for lock in learned {
			self.forget_preimage_if_done(lock, banks, commands);
		}
	}

	fn keep_preimage(&mut self, lock: H256, known: Option<Known>) -> Result<(), StoreError> {
		let value = known.map(|k| k.encode());
		self.store.save_entry(&key(PREIMAGE, &lock), value.as_deref())?;
		match known {
			Some(known) => self.preimages.insert(lock, known),
			None => self.preimages.remove(&lock),
		};
		Ok(())
	}

	fn keep_forward(&mut self, lock: H256, forward: Option<Forward>) -> Result<(), StoreError> {
		let value = forward.as_ref().map(Encode::encode);
		self.store.save_entry(&key(FORWARD, &lock), value.as_deref())?;
		match forward {
			Some(forward) => self.forwards.insert(lock, forward),
			None => self.forwards.remove(&lock),
		};
		Ok(())
	}

	fn forget_forward(&mut self, lock: H256, commands: &mut Vec<Command>) {
		if let Err(e) = self.keep_forward(lock, None) {
			// Left in the store, the entry is forgotten after the next restart.
			self.forwards.remove(&lock);
			commands.push(Command::Warn(format!("{e}; the forward of {lock:?} stays stored")));
		}
	}

	/// Forget the preimage of `lock` once no bank of ours holds an HTLC under it: settled
	/// everywhere, nothing left to claim with it (the book stays as small as what is
	/// pending: L4 of the HTLC review).
	fn forget_preimage_if_done(&mut self, lock: H256, banks: &[Bank], commands: &mut Vec<Command>) {
		let held = banks.iter().any(|b| b.htlcs().iter().any(|h| h.hashlock == lock));
		if held || !self.preimages.contains_key(&lock) {
			return;
		}
		if let Err(e) = self.keep_preimage(lock, None) {
			self.preimages.remove(&lock);
			commands.push(Command::Warn(format!("{e}; the preimage of {lock:?} stays stored")));
		}
	}
}

fn hex(bytes: &[u8]) -> String {
	bytes.iter().map(|b| format!("{b:02x}")).collect()
}
