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
mod payment;
mod recovery;
mod splice;
mod step;
mod waivers;

use payment::Proposal;
use waivers::WaiverKeys;

pub use crate::message::{Htlc, HtlcUpdate};
pub use error::{Action, Error};
pub use htlc::{MAX_HTLCS, MAX_HTLCS_PER_SIDE};
pub use ledger::{
	Closing, InFlight, Ledger, LiquidationSheet, OnChainLiquidation, Phase, SignedSheet, Splicing,
	Terms,
};
pub use step::{Progress, Step};

/// How many of our secrets an `Accept` or a `Revoke` reveals, ending at the sheet before the
/// new one: enough for a collision's skipped nonce after two splices in a row, each of which
/// leaves the sheet before it unrevoked until the next payment (`docs/splice.md`).
pub const SECRETS_REVEALED: Nonce = 4;

/// One party's state of one bank.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Bank {
	pub terms: Terms,
	/// Our index among the clients.
	pub me: u8,
	/// The root of our waiver secrets. Never leaves this party but as revealed secrets.
	seed: Secret,
	pub phase: Phase,
	/// The least either client's share may be left at by its own payment, HTLC or withdrawal,
	/// agreed at the handshake: so that liquidating with a revoked sheet always costs the
	/// cheat something. A share below it (from the opening amounts) may only grow. Kept
	/// after `phase`, so that stores written before reserves read with none.
	pub reserve: Balance,
	/// Set once the peer showed us a secret of our newest sheet (`docs/recovery.md`): our
	/// store is older than what we signed, so we never liquidate with our own sheets and sign
	/// nothing but a close at the peer's newest. Kept last, as `reserve`.
	behind: bool,
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

	/// The ledger, for a `request` of ours that needs it active, not liquidated, and with
	/// nothing in flight.
	fn quiet_ledger(&self, request: &'static str) -> Result<&Ledger, Error> {
		let ledger = self
			.ledger()
			.ok_or(Error::UnexpectedMessage { phase: self.phase.name(), message: request })?;
		if ledger.is_going_on_chain() {
			return Err(Error::Liquidated);
		}
		if self.behind {
			return Err(Error::Behind);
		}
		match &ledger.in_flight {
			None => Ok(ledger),
			Some(InFlight::Splicing(splicing)) if splicing.signatures().is_some() => {
				Err(Error::SplicePending { nonce: splicing.nonce })
			},
			Some(_) => Err(Error::Busy),
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

	/// What client `who` may still pay, lock in an HTLC or withdraw: its share on our newest
	/// sheet above the reserve.
	pub fn spendable(&self, who: usize) -> Balance {
		self.balances()[who].saturating_sub(self.reserve)
	}

	/// A change of shares from `old` to `new` leaves no client that pays below the reserve:
	/// a share that shrinks must end at the reserve or above.
	fn check_reserve(&self, old: &Balances, new: &Balances) -> Result<(), Error> {
		for who in 0..2 {
			if new[who] < old[who] && new[who] < self.reserve {
				return Err(Error::BelowReserve { left: new[who], reserve: self.reserve });
			}
		}
		Ok(())
	}

	/// What the bank holds: the opening amounts, and after a splice what our newest sheet
	/// shares out with its HTLCs (checked when each was made).
	fn total(&self) -> Balance {
		let Some(ledger) = self.ledger() else {
			return self.terms.balances[0].saturating_add(self.terms.balances[1]);
		};
		let sheet = &ledger.sheet;
		let shares = sheet.balances[0].saturating_add(sheet.balances[1]);
		sheet.htlcs.iter().fold(shares, |sum, h| sum.saturating_add(h.amount))
	}

	/// Our waiver key for sheet `nonce`.
	pub fn my_waiver(&self, nonce: Nonce) -> Result<AccountId32, Error> {
		self.waivers.get_or(nonce, || Ok(waiver_key(&self.my_secret(nonce)?)))
	}

	fn my_secret(&self, nonce: Nonce) -> Result<Secret, Error> {
		waiver_secret(&self.seed, nonce).ok_or(Error::NoncesExhausted)
	}

	/// Our secrets of the sheets before `nonce` (up to [`SECRETS_REVEALED`] of them), oldest
	/// first: what revokes them once we hold sheet `nonce`. The newest is new to the peer; the
	/// one before it is new after a collision skipped a nonce or a splice left its sheet
	/// unrevoked, two more after two splices; the peer checks those it knows against its
	/// store.
	fn my_secrets_before(&self, nonce: Nonce) -> Result<Vec<Secret>, Error> {
		(nonce.saturating_sub(SECRETS_REVEALED)..nonce).map(|n| self.my_secret(n)).collect()
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

	/// The message to send again when the peer has not answered: our last unanswered one.
	pub fn retransmission(&self, signer: &dyn Signer) -> Option<Message> {
		match &self.phase {
			Phase::AwaitingOpenAccept => self.open_message(signer).ok(),
			Phase::Offered { .. } => None,
			Phase::AwaitingOpenConfirm { .. } => self.open_accept_message(signer).ok(),
			Phase::Active(ledger) if ledger.is_going_on_chain() || self.behind => None,
			Phase::Active(ledger) => match &ledger.in_flight {
				Some(InFlight::Proposed { nonce, balances, htlcs, update }) => {
					self.propose_message(*nonce, (*balances, htlcs), update.as_ref(), signer).ok()
				},
				Some(InFlight::Yielded { nonce, update }) => {
					let sheet = (ledger.peer_balances, &ledger.peer_htlcs[..]);
					self.propose_message(*nonce, sheet, update.as_ref(), signer).ok()
				},
				Some(InFlight::Accepted { nonce, .. }) => self.accept_message(*nonce, signer).ok(),
				Some(InFlight::Splicing(splicing)) => self.splice_retransmission(splicing, signer),
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
		if let Some(ledger) = self.ledger().filter(|l| l.is_going_on_chain()) {
			return self.after_liquidation(ledger.clone(), &message.body);
		}
		if self.behind
			&& !matches!(
				message.body,
				Body::Reestablish { .. } | Body::Newest { .. } | Body::CloseAccept { .. }
			) {
			return Err(Error::Behind);
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
			(
				Phase::Active(_),
				Body::Splice { nonce, amounts_in, amounts_out, signature, waivers },
			) => self.on_splice(*nonce, (*amounts_in, *amounts_out), signature, waivers, signer),
			(
				Phase::Active(_),
				Body::SpliceAccept { nonce, signature, splice_signature, next_waiver },
			) => self.on_splice_accept(*nonce, signature, splice_signature, next_waiver, signer),
			(Phase::Active(_), Body::SpliceSigned { nonce, splice_signature }) => {
				self.on_splice_signed(*nonce, splice_signature)
			},
			(Phase::Active(_), Body::Reestablish { nonce, your_secret, answer }) => {
				self.on_reestablish(*nonce, your_secret.as_ref(), *answer, signer)
			},
			(
				Phase::Active(_),
				Body::Newest { nonce, balances, htlcs, waiver, signature, your_secret },
			) => self.on_newest(
				(*nonce, *balances, &htlcs[..]),
				waiver,
				signature,
				your_secret,
				signer,
			),
			(phase, _) => Err(unexpected(phase)),
		}
	}

	/// Once the bank is liquidated, or our liquidation is on its way, we sign nothing more; but a secret the peer still reveals
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

	/// Record that the chain shows the bank liquidated by client `master` with sheet `nonce`.
	pub fn mark_liquidated(&mut self, master: u8, nonce: Nonce, unlock_at: u64, release_at: u64) {
		if let Some(ledger) = self.ledger_mut() {
			ledger.liquidated = Some(OnChainLiquidation { master, nonce, unlock_at, release_at });
		}
	}

	/// The chain no longer shows the liquidation we were told of (a reorg dropped it). Both
	/// sides stopped signing when they saw it, so our newest sheet is still the newest: we
	/// liquidate with it ourselves. Going back to paying instead would leave the dropped
	/// liquidation valid, to be included later with what would then be a revoked sheet.
	/// Whether anything changed (false for a bank the chain never showed liquidated).
	pub fn undo_liquidation(&mut self) -> bool {
		let Some(ledger) = self.ledger_mut() else { return false };
		if ledger.liquidated.take().is_none() {
			return false;
		}
		ledger.liquidating.get_or_insert(ledger.sheet.nonce);
		true
	}

	/// Decide to liquidate with our newest sheet: mark the bank so that nothing more is signed
	/// or revealed (a `Propose` answered now would reveal the secret of the very sheet on its
	/// way to the chain), then hand back the sheet. Marked already, the same sheet again.
	pub fn begin_liquidation(&mut self) -> Option<LiquidationSheet> {
		let ledger = self.ledger_mut()?;
		if ledger.liquidating.is_none() {
			ledger.liquidating = Some(ledger.sheet.nonce);
		}
		self.liquidation()
	}

	/// The sheet of a liquidation we decided on that the chain has not shown yet: owed to the
	/// chain until it is there (or the peer's is).
	pub fn pending_liquidation(&self) -> Option<LiquidationSheet> {
		let ledger = self.ledger()?;
		ledger.liquidating.filter(|_| ledger.liquidated.is_none())?;
		self.liquidation()
	}

	/// Whether payments and HTLC updates may still be made on the bank: active, neither
	/// liquidated nor on its way to be.
	pub fn is_live(&self) -> bool {
		!self.behind && self.ledger().is_some_and(|l| !l.is_going_on_chain())
	}

	/// Whether an HTLC we sent under `lock` may still be paid out of this bank off chain: on
	/// a sheet either side holds our signature on and has not revoked (our newest, the peer's
	/// newest, what we proposed), or being taken off by the peer's update we accepted while
	/// its older sheets are not revoked yet. Once the bank is on chain, only the chain knows.
	pub fn offers(&self, lock: H256) -> bool {
		let Some(ledger) = self.ledger() else { return false };
		let removing = matches!(
			&ledger.in_flight,
			Some(InFlight::Accepted { update: Some(update), .. })
				if !matches!(update, HtlcUpdate::Add(_) | HtlcUpdate::AddRouted { .. })
					&& update.hashlock() == lock
		);
		self.offered_htlcs().any(|h| h.hashlock == lock) || removing
	}

	/// The HTLCs we sent that a sheet either side holds our signature on may carry: those of
	/// our newest sheet, then those of the peer's newest (what we proposed last), once each.
	pub fn offered_htlcs(&self) -> impl Iterator<Item = &Htlc> {
		let (ours, peers) =
			self.ledger().map_or((&[][..], &[][..]), |l| (&l.sheet.htlcs[..], &l.peer_htlcs[..]));
		let only_proposed = peers.iter().filter(move |h| !ours.contains(h));
		ours.iter().chain(only_proposed).filter(move |h| h.from == self.me)
	}

	/// Whether an HTLC under `lock` is paid to us on our newest sheet.
	pub fn owes_us(&self, lock: H256) -> bool {
		self.htlcs().iter().any(|h| h.hashlock == lock && h.from != self.me)
	}

	/// The newest sheet we can liquidate with: none once we know we are behind, when our
	/// newest may be revoked.
	pub fn liquidation(&self) -> Option<LiquidationSheet> {
		let ledger = self.ledger().filter(|_| !self.behind)?;
		Some(LiquidationSheet {
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
