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
	secrets::{self, RevealedSecrets, Secret, SecretError},
};
use codec::{Decode, Encode};
use sp_core::{Pair, H256};
use sp_runtime::{AccountId32, MultiSignature};
use vbank_primitives::{
	close_payload, sheet_payload, verify_signature, waiver_payload, Balance, Balances, ChannelId,
	Nonce,
};

/// What the caller should do about an [`Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
	/// Nothing happened and nothing needs to: a duplicate or stale message.
	Ignore,
	/// The request or message is invalid: refuse it; the bank is unchanged and still usable.
	Refuse,
	/// Try again once the payment in flight is final.
	Retry,
}

/// Why a message or a request was refused. The bank is left as it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
	/// The message belongs to another bank.
	WrongChannel { expected: ChannelId, got: ChannelId },
	/// The message does not fit the bank's phase (e.g. a payment before the handshake).
	UnexpectedMessage { phase: &'static str, message: &'static str },
	/// A message for a nonce this bank has already passed: a duplicate or a replay.
	Stale { nonce: Nonce },
	/// A message for a nonce this bank has not reached.
	UnexpectedNonce { expected: Nonce, got: Nonce },
	/// A payment is already in flight on this bank.
	Busy,
	/// The signature is not the peer's over the expected sheet.
	BadSignature,
	/// The balances do not add up to the bank's total.
	BalanceMismatch,
	/// The proposed sheet does not pay this party a positive amount out of the peer's share.
	NotAPayment,
	/// The revealed secret does not open the waiver key the peer announced.
	WrongSecret { nonce: Nonce },
	/// The revealed secret is inconsistent with those revealed before.
	Secret(SecretError),
	/// The amount is zero.
	ZeroAmount,
	/// The amount exceeds this party's share.
	InsufficientFunds { available: Balance, requested: Balance },
	/// The handshake's terms do not name this party, or name it twice.
	BadTerms,
	/// All 2^48 nonces of this bank are used: close it.
	NoncesExhausted,
	/// The bank is being closed cooperatively: no more payments.
	Closing,
	/// The close proposed does not match the newest sheet we hold.
	CloseMismatch,
}

impl Error {
	/// What the caller should do.
	pub fn action(&self) -> Action {
		match self {
			Self::Stale { .. } => Action::Ignore,
			Self::Busy => Action::Retry,
			_ => Action::Refuse,
		}
	}
}

impl core::fmt::Display for Error {
	fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
		match self {
			Self::WrongChannel { expected, got } => {
				write!(f, "message for bank {got} delivered to bank {expected}")
			},
			Self::UnexpectedMessage { phase, message } => {
				write!(f, "a {message} message is not expected while the bank is {phase}")
			},
			Self::Stale { nonce } => write!(f, "message for nonce {nonce}, already passed"),
			Self::UnexpectedNonce { expected, got } => {
				write!(f, "message for nonce {got}, expected nonce {expected}")
			},
			Self::Busy => write!(f, "a payment is already in flight on this bank; retry after it"),
			Self::BadSignature => write!(f, "the signature is not the peer's over this sheet"),
			Self::BalanceMismatch => write!(f, "the balances do not add up to the bank's total"),
			Self::NotAPayment => write!(
				f,
				"the proposed sheet does not pay us a positive amount from the peer's share"
			),
			Self::WrongSecret { nonce } => {
				write!(f, "the secret for nonce {nonce} does not open the announced waiver key")
			},
			Self::Secret(e) => write!(f, "{e}"),
			Self::ZeroAmount => write!(f, "the amount must be positive"),
			Self::InsufficientFunds { available, requested } => {
				write!(f, "cannot pay {requested}: only {available} is ours in this bank")
			},
			Self::BadTerms => write!(f, "the bank's terms do not name us as exactly one client"),
			Self::NoncesExhausted => write!(f, "every nonce of this bank is used; close it"),
			Self::Closing => write!(f, "the bank is being closed: no more payments"),
			Self::CloseMismatch => {
				write!(f, "the close proposed does not match the newest sheet we hold")
			},
		}
	}
}

impl std::error::Error for Error {}

/// What a bank is between its two clients, as opened on chain.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Terms {
	pub channel: ChannelId,
	pub genesis_hash: H256,
	pub clients: [AccountId32; 2],
	/// The amounts each brings: the balances of sheet 0.
	pub balances: Balances,
}

/// A sheet this party can liquidate with: its balances and the peer's signature over it.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct SignedSheet {
	pub nonce: Nonce,
	pub balances: Balances,
	pub signature: MultiSignature,
}

/// The life of a bank, as one party sees it.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub enum Phase {
	/// Opener: sent `Open`, waiting for the peer's keys and its signature on our sheet 0.
	AwaitingOpenAccept,
	/// Peer: signed the opener's sheet 0, waiting for its signature on ours.
	AwaitingOpenConfirm { peer_waivers: [AccountId32; 2] },
	/// Both hold a signed sheet: payments flow.
	Active(Box<Ledger>),
}

impl Phase {
	fn name(&self) -> &'static str {
		match self {
			Self::AwaitingOpenAccept => "awaiting the peer's answer to Open",
			Self::AwaitingOpenConfirm { .. } => "awaiting the opener's confirmation",
			Self::Active(_) => "active",
		}
	}
}

/// The payment in flight on an active bank, if any.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub enum InFlight {
	/// We are paying: we signed the peer's sheet `nonce` and wait for `Accept`.
	Proposed { nonce: Nonce, balances: Balances, signature: MultiSignature },
	/// We are paid: we hold sheet `nonce`, revealed our secret for `nonce - 1`, and wait for
	/// the peer's `Revoke` of its sheet `nonce - 1`. Not received until then.
	Accepted { nonce: Nonce },
}

/// The state of an active bank.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Ledger {
	/// Our newest sheet, signed by the peer; we have revealed the secrets of every older one.
	pub sheet: SignedSheet,
	/// The newest of the peer's sheets that we signed.
	pub peer_nonce: Nonce,
	pub peer_balances: Balances,
	/// The waiver key of the peer's oldest sheet not yet revoked, and of the one after it.
	pub peer_waivers: [AccountId32; 2],
	/// Every waiver secret the peer revealed: its revoked sheets.
	pub peer_secrets: RevealedSecrets,
	pub in_flight: Option<InFlight>,
	/// The cooperative close under way: once set, no payment is made or accepted.
	pub closing: Option<Closing>,
}

/// A cooperative close of the newest sheet: both clients' signatures on its close payload.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Closing {
	pub nonce: Nonce,
	pub balances: Balances,
	/// By client index; complete when both are there.
	pub signatures: [Option<MultiSignature>; 2],
}

impl Closing {
	/// Both signatures, once the peer has given its own.
	pub fn signatures(&self) -> Option<[MultiSignature; 2]> {
		Some([self.signatures[0].clone()?, self.signatures[1].clone()?])
	}
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
}

/// What a liquidation needs: the sheet and the waiver key it names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Liquidation {
	pub channel: ChannelId,
	pub nonce: Nonce,
	pub balances: Balances,
	pub waiver: AccountId32,
	pub peer_signature: MultiSignature,
}

impl Bank {
	/// Open a bank as client 0 (after the on-chain `open`): the state and the `Open` message.
	pub fn open(terms: Terms, seed: Secret, signer: &dyn Signer) -> Result<(Self, Message), Error> {
		if terms.clients[0] != signer.account() || terms.clients[1] == terms.clients[0] {
			return Err(Error::BadTerms);
		}
		let bank = Self { terms, me: 0, seed, phase: Phase::AwaitingOpenAccept };
		let message = bank.message(Body::Open {
			clients: bank.terms.clients.clone(),
			balances: bank.terms.balances,
			waivers: [bank.my_waiver(0)?, bank.my_waiver(1)?],
		});
		Ok((bank, message))
	}

	/// Answer an `Open` as client 1: the state and the `OpenAccept` message. The caller checks
	/// the terms against the chain before depositing.
	pub fn accept_open(
		message: &Message,
		genesis_hash: H256,
		seed: Secret,
		signer: &dyn Signer,
	) -> Result<(Self, Message), Error> {
		let Body::Open { clients, balances, waivers } = &message.body else {
			return Err(Error::UnexpectedMessage {
				phase: "unknown",
				message: message.body.name(),
			});
		};
		if clients[1] != signer.account() || clients[0] == clients[1] {
			return Err(Error::BadTerms);
		}
		if balances[0].checked_add(balances[1]).is_none() {
			return Err(Error::BalanceMismatch);
		}
		let terms = Terms {
			channel: message.channel,
			genesis_hash,
			clients: clients.clone(),
			balances: *balances,
		};
		let bank = Self {
			terms,
			me: 1,
			seed,
			phase: Phase::AwaitingOpenConfirm { peer_waivers: waivers.clone() },
		};
		let signature = bank.sign_peer_sheet(signer, 0, *balances, &waivers[0]);
		let reply = bank.message(Body::OpenAccept {
			waivers: [bank.my_waiver(0)?, bank.my_waiver(1)?],
			signature,
		});
		Ok((bank, reply))
	}

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

	/// The balances of our newest sheet (the opening amounts before the handshake is done).
	pub fn balances(&self) -> Balances {
		self.ledger().map_or(self.terms.balances, |l| l.sheet.balances)
	}

	/// The nonce of our newest sheet.
	pub fn nonce(&self) -> Nonce {
		self.ledger().map_or(0, |l| l.sheet.nonce)
	}

	fn total(&self) -> Balance {
		// Checked when the terms were made.
		self.terms.balances[0].saturating_add(self.terms.balances[1])
	}

	/// Our waiver key for sheet `nonce`.
	pub fn my_waiver(&self, nonce: Nonce) -> Result<AccountId32, Error> {
		Ok(waiver_key(&self.my_secret(nonce)?))
	}

	fn my_secret(&self, nonce: Nonce) -> Result<Secret, Error> {
		waiver_secret(&self.seed, nonce).ok_or(Error::NoncesExhausted)
	}

	fn message(&self, body: Body) -> Message {
		Message { channel: self.terms.channel, body }
	}

	fn sign_peer_sheet(
		&self,
		signer: &dyn Signer,
		nonce: Nonce,
		balances: Balances,
		waiver: &AccountId32,
	) -> MultiSignature {
		let t = &self.terms;
		signer.sign(&sheet_payload(&t.genesis_hash, t.channel, nonce, &balances, waiver))
	}

	/// Whether `signature` is the peer's over our sheet `nonce`.
	fn peer_signed_my_sheet(
		&self,
		nonce: Nonce,
		balances: &Balances,
		signature: &MultiSignature,
	) -> Result<bool, Error> {
		let t = &self.terms;
		let payload =
			sheet_payload(&t.genesis_hash, t.channel, nonce, balances, &self.my_waiver(nonce)?);
		Ok(verify_signature(signature, &payload, self.peer()))
	}

	/// Start paying `amount` to the peer: the `Propose` message. One payment at a time.
	pub fn propose(&mut self, amount: Balance, signer: &dyn Signer) -> Result<Message, Error> {
		let me = self.me();
		let ledger = self
			.ledger()
			.ok_or(Error::UnexpectedMessage { phase: self.phase.name(), message: "payment" })?;
		if ledger.closing.is_some() {
			return Err(Error::Closing);
		}
		if ledger.in_flight.is_some() {
			return Err(Error::Busy);
		}
		if amount == 0 {
			return Err(Error::ZeroAmount);
		}
		let available = ledger.sheet.balances[me];
		if amount > available {
			return Err(Error::InsufficientFunds { available, requested: amount });
		}
		let nonce = ledger.sheet.nonce + 1;
		// Our next waiver key after this payment must exist too.
		self.my_secret(nonce + 1)?;
		let mut balances = ledger.sheet.balances;
		balances[me] -= amount;
		balances[1 - me] += amount;
		let signature = self.sign_peer_sheet(signer, nonce, balances, &ledger.peer_waivers[1]);
		let Phase::Active(ledger) = &mut self.phase else { unreachable!("checked above") };
		ledger.peer_nonce = nonce;
		ledger.peer_balances = balances;
		ledger.in_flight =
			Some(InFlight::Proposed { nonce, balances, signature: signature.clone() });
		Ok(self.message(Body::Propose { nonce, balances, signature }))
	}

	/// The message to send again when the peer has not answered: our last unanswered one.
	pub fn retransmission(&self, signer: &dyn Signer) -> Option<Message> {
		match &self.phase {
			Phase::AwaitingOpenAccept => Some(self.message(Body::Open {
				clients: self.terms.clients.clone(),
				balances: self.terms.balances,
				waivers: [self.my_waiver(0).ok()?, self.my_waiver(1).ok()?],
			})),
			Phase::AwaitingOpenConfirm { peer_waivers } => Some(self.message(Body::OpenAccept {
				waivers: [self.my_waiver(0).ok()?, self.my_waiver(1).ok()?],
				signature: self.sign_peer_sheet(signer, 0, self.terms.balances, &peer_waivers[0]),
			})),
			Phase::Active(ledger) => match &ledger.in_flight {
				Some(InFlight::Proposed { nonce, balances, signature }) => {
					Some(self.message(Body::Propose {
						nonce: *nonce,
						balances: *balances,
						signature: signature.clone(),
					}))
				},
				Some(InFlight::Accepted { nonce }) => {
					self.accept_message(ledger, *nonce, signer).ok()
				},
				None => None,
			},
		}
	}

	/// Handle a message from the peer: the reply to send, if any. A refused message leaves
	/// the bank unchanged.
	pub fn handle(
		&mut self,
		message: &Message,
		signer: &dyn Signer,
	) -> Result<Option<Message>, Error> {
		if message.channel != self.terms.channel {
			return Err(Error::WrongChannel { expected: self.terms.channel, got: message.channel });
		}
		let unexpected = |phase: &Phase| Error::UnexpectedMessage {
			phase: phase.name(),
			message: message.body.name(),
		};
		match (&self.phase, &message.body) {
			(Phase::AwaitingOpenAccept, Body::OpenAccept { waivers, signature }) => {
				let balances = self.terms.balances;
				if !self.peer_signed_my_sheet(0, &balances, signature)? {
					return Err(Error::BadSignature);
				}
				let reply = self.sign_peer_sheet(signer, 0, balances, &waivers[0]);
				self.phase = Phase::Active(Box::new(Ledger::new(
					SignedSheet { nonce: 0, balances, signature: signature.clone() },
					waivers.clone(),
				)));
				Ok(Some(self.message(Body::OpenConfirm { signature: reply })))
			},
			(Phase::AwaitingOpenConfirm { peer_waivers }, Body::OpenConfirm { signature }) => {
				let balances = self.terms.balances;
				if !self.peer_signed_my_sheet(0, &balances, signature)? {
					return Err(Error::BadSignature);
				}
				self.phase = Phase::Active(Box::new(Ledger::new(
					SignedSheet { nonce: 0, balances, signature: signature.clone() },
					peer_waivers.clone(),
				)));
				Ok(None)
			},
			// The opener answers a repeated `OpenAccept` (its confirmation was lost).
			(Phase::Active(ledger), Body::OpenAccept { waivers, .. }) if ledger.is_fresh() => {
				Ok(Some(self.message(Body::OpenConfirm {
					signature: self.sign_peer_sheet(signer, 0, self.terms.balances, &waivers[0]),
				})))
			},
			(
				Phase::Active(_),
				Body::Open { .. } | Body::OpenAccept { .. } | Body::OpenConfirm { .. },
			) => Err(Error::Stale { nonce: 0 }),
			(Phase::Active(_), Body::Propose { nonce, balances, signature }) => {
				self.on_propose(*nonce, *balances, signature, signer)
			},
			(Phase::Active(_), Body::Accept { nonce, signature, secret, next_waiver }) => {
				self.on_accept(*nonce, signature, secret, next_waiver, signer)
			},
			(Phase::Active(_), Body::Revoke { nonce, secret, next_waiver }) => {
				self.on_revoke(*nonce, secret, next_waiver)
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

	/// Payee: the peer signed our next sheet. Store it, sign theirs, reveal our old secret.
	fn on_propose(
		&mut self,
		nonce: Nonce,
		balances: Balances,
		signature: &MultiSignature,
		signer: &dyn Signer,
	) -> Result<Option<Message>, Error> {
		let me = self.me();
		let total = self.total();
		let Phase::Active(ledger) = &self.phase else { unreachable!("matched by the caller") };
		let current = ledger.sheet.nonce;
		if ledger.closing.is_some() && nonce > current {
			return Err(Error::Closing);
		}
		match &ledger.in_flight {
			// Our `Accept` was lost: send it again.
			Some(InFlight::Accepted { nonce: accepted })
				if *accepted == nonce && ledger.sheet.balances == balances =>
			{
				return self.accept_message(ledger, nonce, signer).map(Some)
			},
			Some(_) if nonce == current + 1 => return Err(Error::Busy),
			_ => {},
		}
		if nonce <= current {
			return Err(Error::Stale { nonce });
		}
		if nonce != current + 1 || ledger.in_flight.is_some() {
			return Err(Error::UnexpectedNonce { expected: current + 1, got: nonce });
		}
		if balances[0].checked_add(balances[1]) != Some(total) {
			return Err(Error::BalanceMismatch);
		}
		if balances[me] <= ledger.sheet.balances[me] {
			return Err(Error::NotAPayment);
		}
		self.my_secret(nonce + 1)?;
		if !self.peer_signed_my_sheet(nonce, &balances, signature)? {
			return Err(Error::BadSignature);
		}
		let Phase::Active(ledger) = &mut self.phase else { unreachable!() };
		ledger.sheet = SignedSheet { nonce, balances, signature: signature.clone() };
		ledger.peer_nonce = nonce;
		ledger.peer_balances = balances;
		ledger.in_flight = Some(InFlight::Accepted { nonce });
		let ledger = self.ledger().expect("active");
		self.accept_message(ledger, nonce, signer).map(Some)
	}

	/// Our `Accept` of sheet `nonce`: our signature on the peer's, our secret for `nonce - 1`,
	/// and our waiver key for `nonce + 1`.
	fn accept_message(
		&self,
		ledger: &Ledger,
		nonce: Nonce,
		signer: &dyn Signer,
	) -> Result<Message, Error> {
		let signature =
			self.sign_peer_sheet(signer, nonce, ledger.peer_balances, &ledger.peer_waivers[1]);
		Ok(self.message(Body::Accept {
			nonce,
			signature,
			secret: self.my_secret(nonce - 1)?,
			next_waiver: self.my_waiver(nonce + 1)?,
		}))
	}

	/// Payer: the peer signed our next sheet and revoked its old one. Store both, then
	/// revoke ours.
	fn on_accept(
		&mut self,
		nonce: Nonce,
		signature: &MultiSignature,
		secret: &Secret,
		next_waiver: &AccountId32,
		_signer: &dyn Signer,
	) -> Result<Option<Message>, Error> {
		let Phase::Active(ledger) = &self.phase else { unreachable!("matched by the caller") };
		// Our `Revoke` was lost and the peer repeats its `Accept` of our newest sheet: send it
		// again, even if we have started the next payment (the peer can't accept it before).
		// It reveals nothing new: only secrets of sheets we already hold a newer one for.
		let awaiting_revoke = matches!(ledger.in_flight, Some(InFlight::Accepted { .. }));
		if !awaiting_revoke && nonce == ledger.sheet.nonce && nonce > 0 {
			return self.revoke_message(nonce - 1).map(Some);
		}
		let Some(InFlight::Proposed { nonce: proposed, balances, .. }) = &ledger.in_flight else {
			return Err(if nonce <= ledger.sheet.nonce {
				Error::Stale { nonce }
			} else {
				Error::UnexpectedNonce { expected: ledger.sheet.nonce + 1, got: nonce }
			});
		};
		if nonce != *proposed {
			return Err(Error::UnexpectedNonce { expected: *proposed, got: nonce });
		}
		let balances = *balances;
		if !self.peer_signed_my_sheet(nonce, &balances, signature)? {
			return Err(Error::BadSignature);
		}
		let mut ledger = ledger.clone();
		ledger.take_peer_secret(nonce - 1, secret, next_waiver)?;
		ledger.sheet = SignedSheet { nonce, balances, signature: signature.clone() };
		ledger.in_flight = None;
		self.phase = Phase::Active(ledger);
		self.revoke_message(nonce - 1).map(Some)
	}

	fn revoke_message(&self, nonce: Nonce) -> Result<Message, Error> {
		Ok(self.message(Body::Revoke {
			nonce,
			secret: self.my_secret(nonce)?,
			next_waiver: self.my_waiver(nonce + 2)?,
		}))
	}

	/// Payee: the peer revoked its old sheet. The payment is received.
	fn on_revoke(
		&mut self,
		nonce: Nonce,
		secret: &Secret,
		next_waiver: &AccountId32,
	) -> Result<Option<Message>, Error> {
		let Phase::Active(ledger) = &self.phase else { unreachable!("matched by the caller") };
		match ledger.in_flight {
			Some(InFlight::Accepted { nonce: accepted }) if accepted == nonce + 1 => {},
			_ if matches!(
				(ledger.peer_secrets.newest_index(), secrets::index_of(nonce)),
				(Some(newest), Some(index)) if newest <= index
			) =>
			{
				return Err(Error::Stale { nonce })
			},
			_ => {
				return Err(Error::UnexpectedMessage {
					phase: "not awaiting a revocation",
					message: "Revoke",
				})
			},
		}
		let mut ledger = ledger.clone();
		ledger.take_peer_secret(nonce, secret, next_waiver)?;
		ledger.in_flight = None;
		self.phase = Phase::Active(ledger);
		Ok(None)
	}

	/// Start closing cooperatively with the newest sheet: the `Close` message. Refused while
	/// a payment is in flight; once sent, no payment is made or accepted on this bank.
	pub fn close(&mut self, signer: &dyn Signer) -> Result<Message, Error> {
		let me = self.me();
		let ledger = self
			.ledger()
			.ok_or(Error::UnexpectedMessage { phase: self.phase.name(), message: "close" })?;
		if ledger.in_flight.is_some() {
			return Err(Error::Busy);
		}
		let (nonce, balances) = (ledger.sheet.nonce, ledger.sheet.balances);
		let signature = match &ledger.closing {
			Some(closing) if closing.nonce == nonce => closing.signatures[me].clone(),
			_ => None,
		}
		.unwrap_or_else(|| self.sign_close(signer, nonce, &balances));
		let mut signatures = [None, None];
		signatures[me] = Some(signature.clone());
		if let Some(Closing { signatures: kept, .. }) = &ledger.closing {
			signatures[1 - me] = kept[1 - me].clone();
		}
		let Phase::Active(ledger) = &mut self.phase else { unreachable!("checked above") };
		ledger.closing = Some(Closing { nonce, balances, signatures });
		Ok(self.message(Body::Close { nonce, balances, signature }))
	}

	/// The close under way, if any.
	pub fn closing(&self) -> Option<&Closing> {
		self.ledger()?.closing.as_ref()
	}

	fn sign_close(&self, signer: &dyn Signer, nonce: Nonce, balances: &Balances) -> MultiSignature {
		let t = &self.terms;
		signer.sign(&close_payload(&t.genesis_hash, t.channel, nonce, balances))
	}

	fn peer_signed_close(
		&self,
		nonce: Nonce,
		balances: &Balances,
		signature: &MultiSignature,
	) -> bool {
		let t = &self.terms;
		verify_signature(
			signature,
			&close_payload(&t.genesis_hash, t.channel, nonce, balances),
			self.peer(),
		)
	}

	/// The peer asks to close with the newest sheet: check it is the one we hold and that it
	/// carries the peer's signature, then sign it too.
	fn on_close(
		&mut self,
		nonce: Nonce,
		balances: Balances,
		signature: &MultiSignature,
		signer: &dyn Signer,
	) -> Result<Option<Message>, Error> {
		let me = self.me();
		let Phase::Active(ledger) = &self.phase else { unreachable!("matched by the caller") };
		if ledger.in_flight.is_some() {
			return Err(Error::Busy);
		}
		if nonce != ledger.sheet.nonce || balances != ledger.sheet.balances {
			return Err(Error::CloseMismatch);
		}
		if !self.peer_signed_close(nonce, &balances, signature) {
			return Err(Error::BadSignature);
		}
		let mine = self.sign_close(signer, nonce, &balances);
		let mut signatures = [None, None];
		signatures[me] = Some(mine.clone());
		signatures[1 - me] = Some(signature.clone());
		let Phase::Active(ledger) = &mut self.phase else { unreachable!() };
		ledger.closing = Some(Closing { nonce, balances, signatures });
		Ok(Some(self.message(Body::CloseAccept { nonce, signature: mine })))
	}

	/// The peer signed our close: both signatures are there to submit.
	fn on_close_accept(
		&mut self,
		nonce: Nonce,
		signature: &MultiSignature,
	) -> Result<Option<Message>, Error> {
		let me = self.me();
		let Some(closing) = self.closing().filter(|c| c.nonce == nonce).cloned() else {
			return Err(Error::UnexpectedMessage { phase: "not closing", message: "CloseAccept" });
		};
		if !self.peer_signed_close(nonce, &closing.balances, signature) {
			return Err(Error::BadSignature);
		}
		let Phase::Active(ledger) = &mut self.phase else { unreachable!("closing is active") };
		let mut closing = closing;
		closing.signatures[1 - me] = Some(signature.clone());
		ledger.closing = Some(closing);
		Ok(None)
	}

	/// The newest sheet we can liquidate with.
	pub fn liquidation(&self) -> Option<Liquidation> {
		let ledger = self.ledger()?;
		Some(Liquidation {
			channel: self.terms.channel,
			nonce: ledger.sheet.nonce,
			balances: ledger.sheet.balances,
			waiver: self.my_waiver(ledger.sheet.nonce).ok()?,
			peer_signature: ledger.sheet.signature.clone(),
		})
	}

	/// The proof that the peer's sheet `nonce` is revoked, if it is: a signature by its
	/// waiver key over the waiver payload, which lets anybody hand the peer's frozen share
	/// to us with `withdraw_by_peer`.
	pub fn penalty(&self, nonce: Nonce) -> Option<MultiSignature> {
		let ledger = self.ledger()?;
		let secret = ledger.peer_secrets.get(secrets::index_of(nonce)?)?;
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

impl Ledger {
	fn new(sheet: SignedSheet, peer_waivers: [AccountId32; 2]) -> Self {
		Self {
			peer_nonce: 0,
			peer_balances: sheet.balances,
			sheet,
			peer_waivers,
			peer_secrets: RevealedSecrets::default(),
			in_flight: None,
			closing: None,
		}
	}

	/// Whether no payment has been made yet.
	fn is_fresh(&self) -> bool {
		self.sheet.nonce == 0 && self.peer_nonce == 0 && self.in_flight.is_none()
	}

	/// Check that `secret` opens the peer's waiver key for `nonce`, store it, and move the
	/// announced keys on by one.
	fn take_peer_secret(
		&mut self,
		nonce: Nonce,
		secret: &Secret,
		next_waiver: &AccountId32,
	) -> Result<(), Error> {
		if waiver_key(secret) != self.peer_waivers[0] {
			return Err(Error::WrongSecret { nonce });
		}
		let index = secrets::index_of(nonce).ok_or(Error::NoncesExhausted)?;
		self.peer_secrets.insert(index, *secret).map_err(Error::Secret)?;
		self.peer_waivers = [self.peer_waivers[1].clone(), next_waiver.clone()];
		Ok(())
	}
}
