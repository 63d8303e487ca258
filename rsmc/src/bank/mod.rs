//! The protocol core: one party's state of one bank, and the transitions of the RSMC protocol
//! (SPEC section 4). No I/O: messages come in and go out as values, and a refused message
//! leaves the state exactly as it was.
//!
//! A payment of `x` from A to B at nonce `n` is three messages:
//! `Propose` (A signs B's sheet `n + 1`), `Accept` (B signs A's sheet `n + 1` and reveals its
//! waiver secret for `n`) and `Revoke` (A reveals its waiver secret for `n`). Before funding,
//! a handshake (`Open`, `OpenAccept`, `OpenConfirm`) gives each side a signed sheet 0.

use crate::{
	keys::{waiver_key, waiver_pair, waiver_secret, Signer},
	message::{Body, Message},
	secrets::{self, Secret},
};
use codec::{Decode, Encode};
use sp_core::{Pair, H256};
use sp_runtime::{AccountId32, MultiSignature};
use vbank_primitives::{
	close_payload, htlc_sheet_payload, verify_signature, waiver_payload, Balance, Balances,
	ChannelId, Nonce,
};

mod close;
mod error;
mod handshake;
mod htlc;
mod ledger;
mod legacy;
mod waivers;

use waivers::WaiverKeys;

pub use error::{Action, Error, Progress, Step};
pub use htlc::{Htlc, HtlcUpdate, MAX_HTLCS};
pub use ledger::{
	Closing, InFlight, Ledger, Liquidation, OnChainLiquidation, Phase, SignedSheet, Terms,
};

/// What the peer proposes for its next sheet of ours: a payment (`Propose`), or an HTLC
/// update (`Update`).
enum Proposal {
	Payment(Balances),
	Update(HtlcUpdate),
}

/// One party's state of one bank.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Bank {
	pub terms: Terms,
	/// Our index among the clients.
	pub me: u8,
	/// The root of our waiver secrets. Never leaves this party but as revealed secrets.
	seed: Secret,
	pub phase: Phase,
	/// Our waiver keys derived lately; never stored.
	#[codec(skip)]
	waivers: WaiverKeys,
}

impl Bank {
	pub fn channel(&self) -> ChannelId {
		self.terms.channel
	}

	pub fn me(&self) -> usize {
		usize::from(self.me)
	}

	pub fn peer(&self) -> &AccountId32 {
		&self.terms.clients[1 - self.me()]
	}

	/// The ledger, once the handshake is done.
	pub fn ledger(&self) -> Option<&Ledger> {
		match &self.phase {
			Phase::Active(ledger) => Some(ledger),
			_ => None,
		}
	}

	fn ledger_mut(&mut self) -> Option<&mut Ledger> {
		match &mut self.phase {
			Phase::Active(ledger) => Some(ledger),
			_ => None,
		}
	}

	/// Whether the bank waits for our operator's `rsmc_accept`.
	pub fn is_offered(&self) -> bool {
		matches!(self.phase, Phase::Offered { .. })
	}

	/// The balances of our newest sheet (the opening amounts before the handshake is done).
	pub fn balances(&self) -> Balances {
		self.ledger().map_or(self.terms.balances, |l| l.sheet.balances)
	}

	/// The nonce of our newest sheet.
	pub fn nonce(&self) -> Nonce {
		self.ledger().map_or(0, |l| l.sheet.nonce)
	}

	/// The HTLCs pending on our newest sheet.
	pub fn htlcs(&self) -> &[Htlc] {
		self.ledger().map_or(&[], |l| &l.sheet.htlcs)
	}

	fn total(&self) -> Balance {
		// Checked when the terms were made.
		self.terms.balances[0].saturating_add(self.terms.balances[1])
	}

	/// Our waiver key for sheet `nonce`.
	pub fn my_waiver(&self, nonce: Nonce) -> Result<AccountId32, Error> {
		self.waivers.get_or(nonce, || Ok(waiver_key(&self.my_secret(nonce)?)))
	}

	fn my_secret(&self, nonce: Nonce) -> Result<Secret, Error> {
		waiver_secret(&self.seed, nonce).ok_or(Error::NoncesExhausted)
	}

	/// Our secrets of the two sheets before `nonce` (one before sheet 1), oldest first: what
	/// revokes them once we hold sheet `nonce`. The second is new to the peer; the first is
	/// new only after a collision skipped a nonce, and the peer checks it against its store.
	fn my_secrets_before(&self, nonce: Nonce) -> Result<Vec<Secret>, Error> {
		(nonce.saturating_sub(2)..nonce).map(|n| self.my_secret(n)).collect()
	}

	fn message(&self, body: Body, signer: &dyn Signer) -> Message {
		Message::signed(&self.terms.genesis_hash, self.terms.channel, body, signer)
	}

	fn sign_sheet(
		&self,
		signer: &dyn Signer,
		nonce: Nonce,
		(balances, htlcs): (Balances, &[Htlc]),
		waiver: &AccountId32,
	) -> MultiSignature {
		signer.sign(&self.sheet_payload(nonce, &balances, htlcs, waiver))
	}

	/// The bytes either client signs for a sheet of this bank: with no HTLC, SPEC section 3's.
	fn sheet_payload(
		&self,
		nonce: Nonce,
		balances: &Balances,
		htlcs: &[Htlc],
		waiver: &AccountId32,
	) -> Vec<u8> {
		let t = &self.terms;
		htlc_sheet_payload(&t.genesis_hash, t.channel, nonce, balances, waiver, htlcs)
	}

	/// Our signature on the peer's sheet `nonce`. Never two different sheets at one nonce:
	/// the peer would liquidate with whichever suits it.
	fn sign_peer_sheet(
		&self,
		signer: &dyn Signer,
		nonce: Nonce,
		balances: Balances,
		htlcs: &[Htlc],
	) -> Result<MultiSignature, Error> {
		let ledger = self
			.ledger()
			.ok_or(Error::UnexpectedMessage { phase: self.phase.name(), message: "payment" })?;
		if nonce < ledger.peer_nonce
			|| (nonce == ledger.peer_nonce
				&& (balances != ledger.peer_balances || htlcs != ledger.peer_htlcs))
		{
			return Err(Error::AlreadySigned { nonce });
		}
		let waiver = ledger
			.peer_waiver(nonce)
			.ok_or(Error::UnexpectedNonce { expected: ledger.peer_revoked() + 1, got: nonce })?;
		Ok(self.sign_sheet(signer, nonce, (balances, htlcs), waiver))
	}

	/// Whether `signature` is the peer's over our sheet `nonce`.
	fn peer_signed_my_sheet(
		&self,
		nonce: Nonce,
		(balances, htlcs): (&Balances, &[Htlc]),
		signature: &MultiSignature,
	) -> Result<bool, Error> {
		let payload = self.sheet_payload(nonce, balances, htlcs, &self.my_waiver(nonce)?);
		Ok(verify_signature(signature, &payload, self.peer()))
	}

	/// The ledger, when a new payment or HTLC update may start: active, not liquidated, not
	/// closing, nothing in flight.
	fn idle_ledger(&self) -> Result<&Ledger, Error> {
		let ledger = self
			.ledger()
			.ok_or(Error::UnexpectedMessage { phase: self.phase.name(), message: "payment" })?;
		if ledger.liquidated.is_some() {
			return Err(Error::Liquidated);
		}
		if ledger.closing.is_some() {
			return Err(Error::Closing);
		}
		if ledger.in_flight.is_some() {
			return Err(Error::Busy);
		}
		Ok(ledger)
	}

	/// Start paying `amount` to the peer: the `Propose` message. One payment at a time.
	pub fn propose(&mut self, amount: Balance, signer: &dyn Signer) -> Result<Message, Error> {
		let me = self.me();
		let ledger = self.idle_ledger()?;
		if amount == 0 {
			return Err(Error::ZeroAmount);
		}
		let available = ledger.sheet.balances[me];
		if amount > available {
			return Err(Error::InsufficientFunds { available, requested: amount });
		}
		let mut balances = ledger.sheet.balances;
		balances[me] -= amount;
		balances[1 - me] += amount;
		let htlcs = ledger.sheet.htlcs.clone();
		self.start_proposal(balances, htlcs, None, signer)
	}

	/// Start changing the HTLCs pending on the newest sheet: the `Update` message, carried as
	/// a payment is. One payment or update at a time; several HTLCs may be pending at once.
	pub fn propose_update(
		&mut self,
		update: HtlcUpdate,
		signer: &dyn Signer,
	) -> Result<Message, Error> {
		let ledger = self.idle_ledger()?;
		let (balances, htlcs) =
			update.apply(self.me(), &ledger.sheet.balances, &ledger.sheet.htlcs)?;
		self.start_proposal(balances, htlcs, Some(update), signer)
	}

	/// Sign the peer's next sheet with `balances` and `htlcs` (made by `update`, or by a
	/// payment) and wait for its `Accept`.
	fn start_proposal(
		&mut self,
		balances: Balances,
		htlcs: Vec<Htlc>,
		update: Option<HtlcUpdate>,
		signer: &dyn Signer,
	) -> Result<Message, Error> {
		let nonce = self.nonce() + 1;
		let message = self.propose_message(nonce, (balances, &htlcs), update.as_ref(), signer)?;
		let ledger = self.ledger_mut().expect("an idle ledger");
		ledger.peer_nonce = nonce;
		ledger.peer_balances = balances;
		ledger.peer_htlcs = htlcs.clone();
		ledger.in_flight = Some(InFlight::Proposed { nonce, balances, htlcs, update });
		Ok(message)
	}

	/// Our proposal of the peer's sheet `nonce`: a `Propose` (a payment; the HTLCs stay), or
	/// an `Update` that makes the sheet with `update`.
	fn propose_message(
		&self,
		nonce: Nonce,
		(balances, htlcs): (Balances, &[Htlc]),
		update: Option<&HtlcUpdate>,
		signer: &dyn Signer,
	) -> Result<Message, Error> {
		let signature = self.sign_peer_sheet(signer, nonce, balances, htlcs)?;
		let waivers = [self.my_waiver(nonce)?, self.my_waiver(nonce + 1)?];
		// The key after those must exist too, for the payment after this one.
		self.my_secret(nonce + 2)?;
		let body = match update {
			None => Body::Propose { nonce, balances, signature, waivers },
			Some(update) => Body::Update { nonce, update: update.clone(), signature, waivers },
		};
		Ok(self.message(body, signer))
	}

	/// The message to send again when the peer has not answered: our last unanswered one.
	pub fn retransmission(&self, signer: &dyn Signer) -> Option<Message> {
		match &self.phase {
			Phase::AwaitingOpenAccept => self.open_message(signer).ok(),
			Phase::Offered { .. } => None,
			Phase::AwaitingOpenConfirm { .. } => self.open_accept_message(signer).ok(),
			Phase::Active(ledger) if ledger.liquidated.is_some() => None,
			Phase::Active(ledger) => match &ledger.in_flight {
				Some(InFlight::Proposed { nonce, balances, htlcs, update }) => {
					self.propose_message(*nonce, (*balances, htlcs), update.as_ref(), signer).ok()
				},
				Some(InFlight::Yielded { nonce, update }) => {
					let sheet = (ledger.peer_balances, &ledger.peer_htlcs[..]);
					self.propose_message(*nonce, sheet, update.as_ref(), signer).ok()
				},
				Some(InFlight::Accepted { nonce, .. }) => self.accept_message(*nonce, signer).ok(),
				None => None,
			},
		}
	}

	/// Handle a message from the peer: the reply to send, if any, and what it achieved. A
	/// refused message leaves the bank unchanged: the transitions work on a copy, kept only
	/// when they succeed.
	pub fn handle(&mut self, message: &Message, signer: &dyn Signer) -> Result<Step, Error> {
		let mut next = self.clone();
		let step = next.dispatch(message, signer)?;
		*self = next;
		Ok(step)
	}

	fn dispatch(&mut self, message: &Message, signer: &dyn Signer) -> Result<Step, Error> {
		if message.channel != self.terms.channel {
			return Err(Error::WrongChannel { expected: self.terms.channel, got: message.channel });
		}
		if !message.is_signed_by(&self.terms.genesis_hash, self.peer()) {
			return Err(Error::NotFromPeer);
		}
		if let Some(ledger) = self.ledger().filter(|l| l.liquidated.is_some()) {
			return self.after_liquidation(ledger.clone(), &message.body);
		}
		let unexpected = |phase: &Phase| Error::UnexpectedMessage {
			phase: phase.name(),
			message: message.body.name(),
		};
		match (&self.phase, &message.body) {
			(Phase::AwaitingOpenAccept, Body::Offered) => {
				Ok(Step::default().with(Progress::Offered))
			},
			(Phase::AwaitingOpenAccept, Body::OpenAccept { waivers, signature }) => {
				let balances = self.terms.balances;
				if !self.peer_signed_my_sheet(0, (&balances, &[]), signature)? {
					return Err(Error::BadSignature);
				}
				let reply = self.sign_sheet(signer, 0, (balances, &[]), &waivers[0]);
				self.phase = Phase::Active(Box::new(Ledger::new(
					SignedSheet { nonce: 0, balances, htlcs: vec![], signature: signature.clone() },
					waivers.to_vec(),
				)));
				Ok(Step::reply(self.message(Body::OpenConfirm { signature: reply }, signer))
					.with(Progress::Handshake))
			},
			(Phase::AwaitingOpenConfirm { peer_waivers }, Body::OpenConfirm { signature }) => {
				let balances = self.terms.balances;
				if !self.peer_signed_my_sheet(0, (&balances, &[]), signature)? {
					return Err(Error::BadSignature);
				}
				self.phase = Phase::Active(Box::new(Ledger::new(
					SignedSheet { nonce: 0, balances, htlcs: vec![], signature: signature.clone() },
					peer_waivers.to_vec(),
				)));
				Ok(Step::default().with(Progress::Handshake))
			},
			// The opener answers a repeated `OpenAccept` (its confirmation was lost) with the
			// same sheet 0 it signed: the waiver key stored from the handshake, never one the
			// message brings.
			(Phase::Active(ledger), Body::OpenAccept { waivers, signature })
				if ledger.is_fresh() && self.me == 0 =>
			{
				if waivers[..] != ledger.peer_waivers[..]
					|| !self.peer_signed_my_sheet(0, (&self.terms.balances, &[]), signature)?
				{
					return Err(Error::Stale { nonce: 0 });
				}
				let signature = self.sign_peer_sheet(signer, 0, self.terms.balances, &[])?;
				Ok(Step::reply(self.message(Body::OpenConfirm { signature }, signer)))
			},
			(
				Phase::Active(_),
				Body::Open { .. }
				| Body::OpenAccept { .. }
				| Body::OpenConfirm { .. }
				| Body::Offered,
			) => Err(Error::Stale { nonce: 0 }),
			(Phase::Active(_), Body::Propose { nonce, balances, signature, waivers }) => {
				let proposal = Proposal::Payment(*balances);
				self.on_propose(*nonce, proposal, signature, waivers, signer)
			},
			(Phase::Active(_), Body::Update { nonce, update, signature, waivers }) => {
				let proposal = Proposal::Update(update.clone());
				self.on_propose(*nonce, proposal, signature, waivers, signer)
			},
			(Phase::Active(_), Body::Accept { nonce, signature, secrets, next_waiver }) => {
				self.on_accept(*nonce, signature, secrets, next_waiver, signer)
			},
			(Phase::Active(_), Body::Revoke { nonce, secrets, next_waiver }) => {
				self.on_revoke(*nonce, secrets, next_waiver)
			},
			(Phase::Active(_), Body::Close { nonce, balances, signature }) => {
				self.on_close(*nonce, *balances, signature, signer)
			},
			(Phase::Active(_), Body::CloseAccept { nonce, signature }) => {
				self.on_close_accept(*nonce, signature)
			},
			(phase, _) => Err(unexpected(phase)),
		}
	}

	/// Once the bank is liquidated we sign nothing more; but a secret the peer still reveals
	/// (in an `Accept` or a `Revoke` that was on its way) is kept, since it may make the
	/// liquidation punishable.
	fn after_liquidation(&mut self, mut ledger: Ledger, body: &Body) -> Result<Step, Error> {
		let (end, secrets) = match body {
			Body::Accept { nonce, secrets, .. } => (nonce.checked_sub(1), secrets),
			Body::Revoke { nonce, secrets, .. } => (Some(*nonce), secrets),
			_ => return Err(Error::Liquidated),
		};
		let end = end.ok_or(Error::Liquidated)?;
		let before = ledger.peer_revoked();
		ledger.take_peer_secrets(end, secrets)?;
		if ledger.peer_revoked() == before {
			return Err(Error::Stale { nonce: end });
		}
		self.phase = Phase::Active(Box::new(ledger));
		Ok(Step::default().with(Progress::SecretsLearned))
	}

	/// Payee: the peer signed our next sheet. Store it, sign theirs, reveal our old secrets.
	/// A proposal that meets ours at the same nonce is a collision: `clients[0]`'s stands and
	/// is made again at the next nonce, ours gives way and is proposed again after it. An HTLC
	/// update is handled as a payment is: the sheet it proposes is our newest one with the
	/// update applied.
	fn on_propose(
		&mut self,
		nonce: Nonce,
		proposal: Proposal,
		signature: &MultiSignature,
		waivers: &[AccountId32; 2],
		signer: &dyn Signer,
	) -> Result<Step, Error> {
		let ledger = self.ledger().expect("matched by the caller").clone();
		let current = ledger.sheet.nonce;
		if ledger.closing.is_some() && nonce > current {
			return Err(Error::Closing);
		}
		let (balances, htlcs, update) = match proposal {
			Proposal::Payment(balances) => (balances, ledger.sheet.htlcs.clone(), None),
			Proposal::Update(update) => {
				let (balances, htlcs) =
					update.apply(1 - self.me(), &ledger.sheet.balances, &ledger.sheet.htlcs)?;
				(balances, htlcs, Some(update))
			},
		};
		let sheet = (&balances, &htlcs[..]);
		match &ledger.in_flight {
			// Our `Accept` was lost: send it again.
			Some(InFlight::Accepted { nonce: accepted, .. })
				if *accepted == nonce
					&& ledger.sheet.balances == balances
					&& ledger.sheet.htlcs == htlcs =>
			{
				return self.accept_message(nonce, signer).map(Step::reply)
			},
			// The payer proposes again while we still wait for its `Revoke`: it never got our
			// `Accept` (or lost its own `Revoke`). Our `Accept`, sent again, makes it send
			// the `Revoke` it owes; its proposal comes after.
			Some(InFlight::Accepted { nonce: accepted, .. }) if nonce > current => {
				return self.accept_message(*accepted, signer).map(Step::reply)
			},
			// The peer's proposal collides with ours.
			Some(InFlight::Proposed {
				nonce: ours,
				balances: our_balances,
				htlcs: our_htlcs,
				update: our_update,
			}) if *ours == nonce => {
				self.check_proposal(&ledger, nonce, sheet, update.is_some(), signature, waivers)?;
				let mut next = ledger.clone();
				next.learn_peer_waiver(nonce + 1, &waivers[1])?;
				let ours = (*our_balances, &our_htlcs[..]);
				if self.me == 0 {
					// Ours stands: made again at the next nonce, the peer's key now known.
					next.in_flight = Some(InFlight::Proposed {
						nonce: nonce + 1,
						balances: *our_balances,
						htlcs: our_htlcs.clone(),
						update: our_update.clone(),
					});
					next.peer_nonce = nonce + 1;
					// `handle` keeps none of this if signing fails.
					self.phase = Phase::Active(Box::new(next));
					let again =
						self.propose_message(nonce + 1, ours, our_update.as_ref(), signer)?;
					return Ok(Step::reply(again));
				}
				// The peer's stands. Our proposal, sent back, gives it our key for the next
				// nonce, where it will propose again.
				next.in_flight = Some(InFlight::Yielded { nonce, update: our_update.clone() });
				next.yielded += 1;
				self.phase = Phase::Active(Box::new(next));
				let ours = self.propose_message(nonce, ours, our_update.as_ref(), signer)?;
				return Ok(Step::reply(ours).with(Progress::Yielded));
			},
			// The winner repeats its part of a collision it already resolved.
			Some(InFlight::Proposed {
				nonce: ours,
				balances: our_balances,
				htlcs: our_htlcs,
				update: our_update,
			}) if self.me == 0 && *ours == current + 2 && nonce == current + 1 => {
				let ours_again = (*our_balances, &our_htlcs[..]);
				return self
					.propose_message(*ours, ours_again, our_update.as_ref(), signer)
					.map(Step::reply);
			},
			Some(InFlight::Yielded { nonce: yielded, update: our_update }) if nonce == *yielded => {
				let ours_again = (ledger.peer_balances, &ledger.peer_htlcs[..]);
				let ours =
					self.propose_message(*yielded, ours_again, our_update.as_ref(), signer)?;
				return Ok(Step::reply(ours));
			},
			_ => {},
		}
		if nonce <= current {
			return Err(Error::Stale { nonce });
		}
		// After a collision the proposal that stands comes one nonce later; a collision we did
		// not see (the peer's first proposal lost) shows as the same.
		let (skipped, yields) = match &ledger.in_flight {
			None => (false, false),
			Some(InFlight::Yielded { nonce: yielded, .. }) if nonce == yielded + 1 => (true, false),
			Some(InFlight::Proposed { nonce: ours, .. }) if self.me == 1 && nonce == ours + 1 => {
				(true, true)
			},
			Some(_) => return Err(Error::Busy),
		};
		let expected = if skipped { current + 2 } else { current + 1 };
		if nonce != expected {
			return Err(Error::UnexpectedNonce { expected, got: nonce });
		}
		self.check_proposal(&ledger, nonce, sheet, update.is_some(), signature, waivers)?;
		let mut next = ledger;
		next.learn_peer_waiver(nonce, &waivers[0])?;
		next.learn_peer_waiver(nonce + 1, &waivers[1])?;
		next.sheet =
			SignedSheet { nonce, balances, htlcs: htlcs.clone(), signature: signature.clone() };
		next.in_flight = Some(InFlight::Accepted { nonce, update });
		next.peer_nonce = nonce;
		next.peer_balances = balances;
		next.peer_htlcs = htlcs;
		next.yielded += u64::from(yields);
		self.phase = Phase::Active(Box::new(next));
		let step = Step::reply(self.accept_message(nonce, signer)?);
		Ok(if yields { step.with(Progress::Yielded) } else { step })
	}

	/// A proposal of the peer's at `nonce`: its sheet adds up to the bank's total; a payment
	/// (no `update`) pays us a positive amount out of the peer's share and leaves the HTLCs as
	/// they are (an update's sheet was made by applying it); signed by the peer, with waiver
	/// keys that agree with those it announced.
	fn check_proposal(
		&self,
		ledger: &Ledger,
		nonce: Nonce,
		(balances, htlcs): (&Balances, &[Htlc]),
		update: bool,
		signature: &MultiSignature,
		waivers: &[AccountId32; 2],
	) -> Result<(), Error> {
		let me = self.me();
		let total = balances[0]
			.checked_add(balances[1])
			.and_then(|sum| htlcs.iter().try_fold(sum, |sum, h| sum.checked_add(h.amount)));
		if total != Some(self.total()) {
			return Err(Error::BalanceMismatch);
		}
		if !update && (balances[me] <= ledger.sheet.balances[me] || htlcs != ledger.sheet.htlcs) {
			return Err(Error::NotAPayment);
		}
		self.my_secret(nonce + 1)?;
		if let Some(known) = ledger.peer_waiver(nonce) {
			if *known != waivers[0] {
				return Err(Error::WaiverMismatch { nonce });
			}
		}
		if !self.peer_signed_my_sheet(nonce, (balances, htlcs), signature)? {
			return Err(Error::BadSignature);
		}
		Ok(())
	}

	/// Our `Accept` of sheet `nonce`: our signature on the peer's, our secrets of the sheets
	/// before it, and our waiver key for `nonce + 1`.
	fn accept_message(&self, nonce: Nonce, signer: &dyn Signer) -> Result<Message, Error> {
		let ledger = self
			.ledger()
			.ok_or(Error::UnexpectedMessage { phase: self.phase.name(), message: "Accept" })?;
		let signature =
			self.sign_peer_sheet(signer, nonce, ledger.peer_balances, &ledger.peer_htlcs)?;
		let body = Body::Accept {
			nonce,
			signature,
			secrets: self.my_secrets_before(nonce)?,
			next_waiver: self.my_waiver(nonce + 1)?,
		};
		Ok(self.message(body, signer))
	}

	/// Payer: the peer signed our next sheet and revoked its old ones. Store both, then
	/// revoke ours.
	fn on_accept(
		&mut self,
		nonce: Nonce,
		signature: &MultiSignature,
		secrets: &[Secret],
		next_waiver: &AccountId32,
		signer: &dyn Signer,
	) -> Result<Step, Error> {
		let ledger = self.ledger().expect("matched by the caller");
		// Our `Revoke` was lost and the peer repeats its `Accept` of our newest sheet: send it
		// again, even if we have started the next payment (the peer can't accept it before).
		// It reveals nothing new: only secrets of sheets we already hold a newer one for.
		let awaiting_revoke = matches!(ledger.in_flight, Some(InFlight::Accepted { .. }));
		if !awaiting_revoke && nonce == ledger.sheet.nonce && nonce > 0 {
			return self.revoke_message(nonce - 1, signer).map(Step::reply);
		}
		let Some(InFlight::Proposed { nonce: proposed, balances, htlcs, update }) =
			ledger.in_flight.clone()
		else {
			return Err(if nonce <= ledger.sheet.nonce {
				Error::Stale { nonce }
			} else {
				Error::UnexpectedNonce { expected: ledger.sheet.nonce + 1, got: nonce }
			});
		};
		if nonce != proposed {
			return Err(Error::UnexpectedNonce { expected: proposed, got: nonce });
		}
		if !self.peer_signed_my_sheet(nonce, (&balances, &htlcs), signature)? {
			return Err(Error::BadSignature);
		}
		let mut next = ledger.clone();
		next.take_peer_secrets(nonce - 1, secrets)?;
		if next.peer_revoked() != nonce {
			return Err(Error::UnexpectedNonce { expected: nonce - 1, got: next.peer_revoked() });
		}
		next.learn_peer_waiver(nonce + 1, next_waiver)?;
		next.sheet = SignedSheet { nonce, balances, htlcs, signature: signature.clone() };
		next.in_flight = None;
		let progress = match update {
			Some(update) => {
				next.updated += 1;
				Progress::Htlc { nonce, update, by_us: true }
			},
			None => {
				next.paid += 1;
				Progress::Paid { nonce }
			},
		};
		let revoke = self.revoke_message(nonce - 1, signer)?;
		self.phase = Phase::Active(Box::new(next));
		Ok(Step::reply(revoke).with(progress))
	}

	fn revoke_message(&self, nonce: Nonce, signer: &dyn Signer) -> Result<Message, Error> {
		let body = Body::Revoke {
			nonce,
			secrets: self.my_secrets_before(nonce + 1)?,
			next_waiver: self.my_waiver(nonce + 2)?,
		};
		Ok(self.message(body, signer))
	}

	/// Payee: the peer revoked its old sheets. The payment is received.
	fn on_revoke(
		&mut self,
		nonce: Nonce,
		secrets: &[Secret],
		next_waiver: &AccountId32,
	) -> Result<Step, Error> {
		let ledger = self.ledger().expect("matched by the caller");
		let update = match &ledger.in_flight {
			Some(InFlight::Accepted { nonce: accepted, update }) if *accepted == nonce + 1 => {
				update.clone()
			},
			_ if nonce < ledger.peer_revoked() => return Err(Error::Stale { nonce }),
			_ => {
				return Err(Error::UnexpectedMessage {
					phase: "not awaiting a revocation",
					message: "Revoke",
				})
			},
		};
		let mut next = ledger.clone();
		next.take_peer_secrets(nonce, secrets)?;
		if next.peer_revoked() != nonce + 1 {
			return Err(Error::UnexpectedNonce { expected: nonce, got: next.peer_revoked() });
		}
		next.learn_peer_waiver(nonce + 2, next_waiver)?;
		next.in_flight = None;
		self.phase = Phase::Active(Box::new(next));
		let progress = match update {
			Some(update) => Progress::Htlc { nonce: nonce + 1, update, by_us: false },
			None => Progress::Received { nonce: nonce + 1 },
		};
		Ok(Step::default().with(progress))
	}

	/// Record that the chain shows the bank liquidated by client `master` with sheet `nonce`.
	pub fn mark_liquidated(&mut self, master: u8, nonce: Nonce, unlock_at: u64, release_at: u64) {
		if let Some(ledger) = self.ledger_mut() {
			ledger.liquidated = Some(OnChainLiquidation { master, nonce, unlock_at, release_at });
		}
	}

	/// The newest sheet we can liquidate with.
	pub fn liquidation(&self) -> Option<Liquidation> {
		let ledger = self.ledger()?;
		Some(Liquidation {
			channel: self.terms.channel,
			nonce: ledger.sheet.nonce,
			balances: ledger.sheet.balances,
			htlcs: ledger.sheet.htlcs.clone(),
			waiver: self.my_waiver(ledger.sheet.nonce).ok()?,
			peer_signature: ledger.sheet.signature.clone(),
		})
	}

	/// The proof that the peer's sheet `nonce` is revoked, if it is: a signature by its
	/// waiver key over the waiver payload, which lets anybody hand the peer's frozen share
	/// to us with `withdraw_by_peer`.
	pub fn penalty(&self, nonce: Nonce) -> Option<MultiSignature> {
		let secret = self.penalty_secret(nonce)?;
		let t = &self.terms;
		let payload = waiver_payload(&t.genesis_hash, t.channel, nonce);
		Some(waiver_pair(&secret).sign(&payload).into())
	}

	/// Whether the peer has revoked its sheet `nonce`.
	pub fn is_revoked_by_peer(&self, nonce: Nonce) -> bool {
		self.penalty_secret(nonce).is_some()
	}

	fn penalty_secret(&self, nonce: Nonce) -> Option<Secret> {
		self.ledger()?.peer_secrets.get(secrets::index_of(nonce)?)
	}
}
