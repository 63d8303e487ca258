//! Splices (`docs/splice.md`, after Sprites): one client adds to a running bank or takes out
//! of its own share, and the bank keeps running, with its HTLCs.
//!
//! The splice of sheet `n` is three messages and a call: `Splice` (the proposer signs the
//! peer's sheet `n`, which shares out the new total), `SpliceAccept` (the peer signs the
//! proposer's sheet `n` and the splice payload), `SpliceSigned` (the proposer signs the splice
//! payload); either then sends the pallet's `splice`. Each signs the splice payload only once it
//! holds a sheet `n` of its own signed by the other, so that whichever way the chain goes it
//! can liquidate: with sheet `n - 1` before the splice, with sheet `n` after (the chain refuses
//! older ones). Nothing is revoked before the splice is final: sheet `n - 1`, void once the
//! splice is in, is revoked with the next payment. No payment is made while a splice waits
//! for the chain.

use super::*;
use crate::message::Body;
use vbank_primitives::splice_payload;

impl Bank {
	/// Start a splice of ours at the next nonce: we add `amount_in` and take `amount_out` out
	/// of our share (one of them, the other zero). The `Splice` message; one step at a time,
	/// as payments.
	pub fn propose_splice(
		&mut self,
		amount_in: Balance,
		amount_out: Balance,
		signer: &dyn Signer,
	) -> Result<Message, Error> {
		let me = self.me();
		let ledger = self.quiet_ledger("splice")?;
		if ledger.closing.is_some() {
			return Err(Error::Closing);
		}
		let mut amounts_in = [0; 2];
		let mut amounts_out = [0; 2];
		amounts_in[me] = amount_in;
		amounts_out[me] = amount_out;
		let balances = self.spliced(ledger, me, &amounts_in, &amounts_out)?;
		let nonce = ledger.sheet.nonce + 1;
		Self::check_revoked_since(ledger, nonce)?;
		let splicing = Splicing {
			nonce,
			amounts_in,
			amounts_out,
			balances,
			by_us: true,
			sheet: None,
			signatures: [None, None],
		};
		let message = self.splice_message(&splicing, signer)?;
		let ledger = self.ledger_mut().expect("a quiet ledger");
		// We signed the peer's sheet at `nonce`: no other of its sheets there, but where the
		// splice gives way to a payment (`Self::give_way`).
		ledger.peer_nonce = nonce;
		ledger.peer_balances = balances;
		ledger.in_flight = Some(InFlight::Splicing(Box::new(splicing)));
		Ok(message)
	}

	/// A splice leaves the sheet before it unrevoked until the next payment, whose messages
	/// reveal at most [`SECRETS_REVEALED`] secrets: a third splice in a row waits for one.
	fn check_revoked_since(ledger: &Ledger, nonce: Nonce) -> Result<(), Error> {
		if nonce.saturating_sub(ledger.peer_revoked()) > 2 {
			return Err(Error::BadSplice(
				"two splices since the last payment: the sheets before them are not revoked yet",
			));
		}
		Ok(())
	}

	/// Drop a splice of ours the peer has not accepted, for the peer's payment, HTLC update
	/// or close at its nonce. We never sign that splice, so the sheet we signed the peer for
	/// it is void: it shares out another total than the bank's at a nonce below any splice the
	/// chain may take later (a payment or update keeps the total; the close ends the bank).
	/// Whether there was one.
	pub(super) fn give_way(ledger: &mut Ledger) -> bool {
		if !matches!(&ledger.in_flight, Some(InFlight::Splicing(s)) if s.by_us && s.sheet.is_none())
		{
			return false;
		}
		ledger.in_flight = None;
		ledger.peer_nonce = ledger.sheet.nonce;
		ledger.peer_balances = ledger.sheet.balances;
		ledger.peer_htlcs = ledger.sheet.htlcs.clone();
		true
	}

	/// The splice in flight, if any.
	pub fn splicing(&self) -> Option<&Splicing> {
		match &self.ledger()?.in_flight {
			Some(InFlight::Splicing(splicing)) => Some(splicing),
			_ => None,
		}
	}

	/// The shares of both sheets after client `who` adds `amounts_in[who]` and takes
	/// `amounts_out[who]` from the newest sheet: the other client's stay as they are, the
	/// HTLCs too, a withdrawal leaves the reserve, and the bank must hold something after.
	fn spliced(
		&self,
		ledger: &Ledger,
		who: usize,
		amounts_in: &Balances,
		amounts_out: &Balances,
	) -> Result<Balances, Error> {
		let other = 1 - who;
		if amounts_in[other] != 0 || amounts_out[other] != 0 {
			return Err(Error::BadSplice("a splice changes only its proposer's share"));
		}
		let (add, take) = (amounts_in[who], amounts_out[who]);
		if (add == 0) == (take == 0) {
			return Err(Error::BadSplice("a splice adds or takes a positive amount, not both"));
		}
		let mut balances = ledger.sheet.balances;
		let available = balances[who];
		balances[who] = balances[who]
			.checked_sub(take)
			.ok_or(Error::InsufficientFunds { available, requested: take })?
			.checked_add(add)
			.ok_or(Error::BalanceMismatch)?;
		self.check_reserve(&ledger.sheet.balances, &balances)?;
		let total = balances[0]
			.checked_add(balances[1])
			.and_then(|sum| {
				ledger.sheet.htlcs.iter().try_fold(sum, |sum, h| sum.checked_add(h.amount))
			})
			.ok_or(Error::BalanceMismatch)?;
		if total == 0 {
			return Err(Error::BadSplice("the bank would hold nothing: close it instead"));
		}
		Ok(balances)
	}

	/// Our `Splice`: our signature on the peer's sheet at the splice's nonce, and our waiver
	/// keys for it and the next.
	fn splice_message(&self, splicing: &Splicing, signer: &dyn Signer) -> Result<Message, Error> {
		let ledger = self.ledger().expect("an active bank");
		let nonce = splicing.nonce;
		let signature =
			self.sign_peer_sheet(signer, nonce, splicing.balances, &ledger.sheet.htlcs)?;
		let waivers = [self.my_waiver(nonce)?, self.my_waiver(nonce + 1)?];
		self.my_secret(nonce + 2)?;
		let Splicing { amounts_in, amounts_out, .. } = *splicing;
		Ok(self
			.message(Body::Splice { nonce, amounts_in, amounts_out, signature, waivers }, signer))
	}

	fn sign_splice(&self, signer: &dyn Signer, splicing: &Splicing) -> MultiSignature {
		signer.sign(&self.splice_payload(splicing))
	}

	fn splice_payload(&self, splicing: &Splicing) -> Vec<u8> {
		let t = &self.terms;
		let Splicing { nonce, amounts_in, amounts_out, .. } = splicing;
		splice_payload(&t.genesis_hash, t.channel, *nonce, amounts_in, amounts_out)
	}

	/// The peer proposes a splice at `nonce`: check it changes only its own share, that its
	/// signature is on our sheet with the new total, then sign its sheet and the splice. A
	/// payment or update of ours in flight stands: the peer's splice gives way to it. Two
	/// splices at one nonce: each side signed a sheet of the other's there, so neither splice
	/// may be signed at it; `clients[0]`'s is made again at the next nonce, and the other side
	/// drops its own for it (the chain then voids every sheet at the first nonce).
	pub(super) fn on_splice(
		&mut self,
		nonce: Nonce,
		(amounts_in, amounts_out): (Balances, Balances),
		signature: &MultiSignature,
		waivers: &[AccountId32; 2],
		signer: &dyn Signer,
	) -> Result<Step, Error> {
		let mut ledger = self.ledger().expect("matched by the caller").clone();
		if ledger.closing.is_some() {
			return Err(Error::Closing);
		}
		let current = ledger.sheet.nonce;
		let mut expected = current + 1;
		match &ledger.in_flight {
			// Our `SpliceAccept` was lost: the same splice again.
			Some(InFlight::Splicing(ours))
				if !ours.by_us
					&& ours.nonce == nonce
					&& (ours.amounts_in, ours.amounts_out) == (amounts_in, amounts_out) =>
			{
				return self.splice_accept_message(ours, signer).map(Step::reply)
			},
			// Two splices at one nonce.
			Some(InFlight::Splicing(ours))
				if ours.by_us && ours.sheet.is_none() && ours.nonce == nonce =>
			{
				let ours = (**ours).clone();
				return self.collide(ours, waivers, signer);
			},
			// `clients[0]`'s splice, made again at the next nonce after two met: ours drops.
			Some(InFlight::Splicing(ours))
				if ours.by_us
					&& ours.sheet.is_none()
					&& self.me == 1 && ours.nonce == current + 1
					&& nonce == current + 2 =>
			{
				ledger.in_flight = None;
				expected = nonce;
			},
			None => {},
			Some(_) if nonce <= current => return Err(Error::Stale { nonce }),
			Some(_) => return Err(Error::Busy),
		}
		if nonce <= current {
			return Err(Error::Stale { nonce });
		}
		if nonce != expected {
			return Err(Error::UnexpectedNonce { expected, got: nonce });
		}
		Self::check_revoked_since(&ledger, nonce)?;
		let peer = 1 - self.me();
		let balances = self.spliced(&ledger, peer, &amounts_in, &amounts_out)?;
		if ledger.peer_waiver(nonce).is_some_and(|known| *known != waivers[0]) {
			return Err(Error::WaiverMismatch { nonce });
		}
		let htlcs = ledger.sheet.htlcs.clone();
		self.my_secret(nonce + 1)?;
		if !self.peer_signed_my_sheet(nonce, (&balances, &htlcs), signature)? {
			return Err(Error::BadSignature);
		}
		ledger.learn_peer_waiver(nonce, &waivers[0])?;
		ledger.learn_peer_waiver(nonce + 1, &waivers[1])?;
		let mut splicing = Splicing {
			nonce,
			amounts_in,
			amounts_out,
			balances,
			by_us: false,
			sheet: Some(SignedSheet { nonce, balances, htlcs, signature: signature.clone() }),
			signatures: [None, None],
		};
		splicing.signatures[self.me()] = Some(self.sign_splice(signer, &splicing));
		self.phase = Phase::Active(Box::new(ledger));
		// Signs the peer's sheet at `nonce`; `handle` keeps nothing if it fails.
		let reply = self.splice_accept_message(&splicing, signer)?;
		let ledger = self.ledger_mut().expect("active");
		ledger.peer_nonce = nonce;
		ledger.peer_balances = balances;
		ledger.in_flight = Some(InFlight::Splicing(Box::new(splicing)));
		Ok(Step::reply(reply))
	}

	/// The peer's splice met our unaccepted `ours` at the same nonce. `clients[0]` makes its
	/// own again at the next nonce, with the peer's waiver key for it that its `Splice`
	/// brought; the other side sends its `Splice` back, so that `clients[0]` sees the collision
	/// (as a payment collision is resolved), and drops its own once the next one comes.
	fn collide(
		&mut self,
		mut ours: Splicing,
		waivers: &[AccountId32; 2],
		signer: &dyn Signer,
	) -> Result<Step, Error> {
		if self.me == 1 {
			return self.splice_message(&ours, signer).map(Step::reply);
		}
		let mut ledger = self.ledger().expect("active").clone();
		let nonce = ours.nonce;
		if ledger.peer_waiver(nonce).is_some_and(|known| *known != waivers[0]) {
			return Err(Error::WaiverMismatch { nonce });
		}
		ledger.learn_peer_waiver(nonce + 1, &waivers[1])?;
		ours.nonce = nonce + 1;
		self.my_secret(nonce + 3)?;
		self.phase = Phase::Active(Box::new(ledger));
		// `handle` keeps none of this if signing fails.
		let again = self.splice_message(&ours, signer)?;
		let ledger = self.ledger_mut().expect("active");
		ledger.peer_nonce = ours.nonce;
		ledger.in_flight = Some(InFlight::Splicing(Box::new(ours)));
		Ok(Step::reply(again))
	}

	/// Our `SpliceAccept` of the peer's `splicing`: our signatures on its sheet and on the
	/// splice, and our waiver key for the nonce after.
	fn splice_accept_message(
		&self,
		splicing: &Splicing,
		signer: &dyn Signer,
	) -> Result<Message, Error> {
		let ledger = self.ledger().expect("an active bank");
		let nonce = splicing.nonce;
		let signature =
			self.sign_peer_sheet(signer, nonce, splicing.balances, &ledger.sheet.htlcs)?;
		let splice_signature = splicing.signatures[self.me()]
			.clone()
			.unwrap_or_else(|| self.sign_splice(signer, splicing));
		let next_waiver = self.my_waiver(nonce + 1)?;
		Ok(self.message(
			Body::SpliceAccept { nonce, signature, splice_signature, next_waiver },
			signer,
		))
	}

	/// The peer accepted our splice: keep its signature on our sheet and on the splice, sign
	/// the splice too, and send it. Both signatures are then ours to submit.
	pub(super) fn on_splice_accept(
		&mut self,
		nonce: Nonce,
		signature: &MultiSignature,
		splice_signature: &MultiSignature,
		next_waiver: &AccountId32,
		signer: &dyn Signer,
	) -> Result<Step, Error> {
		let mut ledger = self.ledger().expect("matched by the caller").clone();
		let Some(InFlight::Splicing(splicing)) = &ledger.in_flight else {
			return Err(Error::Stale { nonce });
		};
		let mut splicing = (**splicing).clone();
		if !splicing.by_us || splicing.nonce != nonce {
			return Err(Error::Stale { nonce });
		}
		let me = self.me();
		if let Some(ours) = splicing.signatures[me].clone().filter(|_| splicing.sheet.is_some()) {
			// Our `SpliceSigned` was lost.
			return Ok(Step::reply(
				self.message(Body::SpliceSigned { nonce, splice_signature: ours }, signer),
			));
		}
		let htlcs = ledger.sheet.htlcs.clone();
		if !self.peer_signed_my_sheet(nonce, (&splicing.balances, &htlcs), signature)? {
			return Err(Error::BadSignature);
		}
		if !verify_signature(splice_signature, &self.splice_payload(&splicing), self.peer()) {
			return Err(Error::BadSignature);
		}
		ledger.learn_peer_waiver(nonce + 1, next_waiver)?;
		let sheet =
			SignedSheet { nonce, balances: splicing.balances, htlcs, signature: signature.clone() };
		let ours = self.sign_splice(signer, &splicing);
		splicing.sheet = Some(sheet);
		splicing.signatures[me] = Some(ours.clone());
		splicing.signatures[1 - me] = Some(splice_signature.clone());
		ledger.peer_nonce = nonce;
		ledger.peer_balances = splicing.balances;
		ledger.in_flight = Some(InFlight::Splicing(Box::new(splicing)));
		self.phase = Phase::Active(Box::new(ledger));
		let reply = self.message(Body::SpliceSigned { nonce, splice_signature: ours }, signer);
		Ok(Step::reply(reply).with(Progress::SpliceSigned { nonce }))
	}

	/// The proposer's signature on the splice we accepted: either of us may now submit it.
	pub(super) fn on_splice_signed(
		&mut self,
		nonce: Nonce,
		splice_signature: &MultiSignature,
	) -> Result<Step, Error> {
		let mut ledger = self.ledger().expect("matched by the caller").clone();
		let Some(InFlight::Splicing(splicing)) = &mut ledger.in_flight else {
			return Err(Error::Stale { nonce });
		};
		if splicing.by_us || splicing.nonce != nonce {
			return Err(Error::Stale { nonce });
		}
		let peer = 1 - self.me();
		if splicing.signatures[peer].is_some() {
			return Err(Error::Stale { nonce });
		}
		if !verify_signature(splice_signature, &self.splice_payload(splicing), self.peer()) {
			return Err(Error::BadSignature);
		}
		splicing.signatures[peer] = Some(splice_signature.clone());
		self.phase = Phase::Active(Box::new(ledger));
		Ok(Step::default().with(Progress::SpliceSigned { nonce }))
	}

	/// The chain holds the splice of sheet `nonce`, final: our sheet at `nonce` becomes the one
	/// we liquidate with (the chain refuses older ones), and payments go on from it. Whether
	/// anything changed (false for a splice we do not hold signed).
	pub fn splice_landed(&mut self, nonce: Nonce) -> bool {
		let Some(ledger) = self.ledger_mut() else { return false };
		let Some(InFlight::Splicing(splicing)) = &ledger.in_flight else { return false };
		let Some(sheet) = splicing.sheet.clone().filter(|_| splicing.nonce == nonce) else {
			return false;
		};
		ledger.sheet = sheet;
		ledger.in_flight = None;
		true
	}

	/// What to send again for the splice in flight: ours before the peer accepted it, our
	/// acceptance before the proposer's signature came. Nothing once both signed: the chain
	/// is all that is left.
	pub(super) fn splice_retransmission(
		&self,
		splicing: &Splicing,
		signer: &dyn Signer,
	) -> Option<Message> {
		match (splicing.by_us, splicing.sheet.is_some()) {
			(true, false) => self.splice_message(splicing, signer).ok(),
			(false, _) if splicing.signatures().is_none() => {
				self.splice_accept_message(splicing, signer).ok()
			},
			_ => None,
		}
	}
}
