//! The cooperative close: both clients sign the newest balances with the close payload, and
//! either sends `close` with both signatures; no lock, nobody waits.

use super::*;

impl Bank {
	/// Start closing cooperatively with the newest sheet: the `Close` message. Refused while
	/// a payment is in flight or HTLCs are pending; once sent, no payment is made or accepted on
	/// this bank.
	pub fn close(&mut self, signer: &dyn Signer) -> Result<Message, Error> {
		let me = self.me();
		let ledger = self.quiet_ledger("close")?;
		if !ledger.sheet.htlcs.is_empty() {
			return Err(Error::HtlcsPending);
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
		let message = self.message(Body::Close { nonce, balances, signature }, signer);
		let ledger = self.ledger_mut().expect("checked above");
		ledger.closing = Some(Closing { nonce, balances, signatures });
		Ok(message)
	}

	/// The close under way, if any.
	pub fn closing(&self) -> Option<&Closing> {
		self.ledger()?.closing.as_ref()
	}

	pub(super) fn sign_close(
		&self,
		signer: &dyn Signer,
		nonce: Nonce,
		balances: &Balances,
	) -> MultiSignature {
		let t = &self.terms;
		signer.sign(&close_payload(&t.genesis_hash, t.channel, nonce, balances))
	}

	pub(super) fn peer_signed_close(
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
	pub(super) fn on_close(
		&mut self,
		nonce: Nonce,
		balances: Balances,
		signature: &MultiSignature,
		signer: &dyn Signer,
	) -> Result<Step, Error> {
		let me = self.me();
		let mut ledger = self.ledger().expect("matched by the caller").clone();
		// A splice of ours the peer has not accepted gives way to the close, as to a payment.
		Self::give_way(&mut ledger);
		match ledger.in_flight {
			// As for a proposal: the peer still owes us a `Revoke`; our `Accept` again.
			Some(InFlight::Accepted { nonce: accepted, .. }) => {
				return self.accept_message(accepted, signer).map(Step::reply)
			},
			Some(_) => return Err(Error::Busy),
			None => {},
		}
		if !ledger.sheet.htlcs.is_empty() {
			return Err(Error::HtlcsPending);
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
		let reply = self.message(Body::CloseAccept { nonce, signature: mine }, signer);
		ledger.closing = Some(Closing { nonce, balances, signatures });
		self.phase = Phase::Active(Box::new(ledger));
		Ok(Step::reply(reply))
	}

	/// The peer signed our close: both signatures are there to submit.
	pub(super) fn on_close_accept(
		&mut self,
		nonce: Nonce,
		signature: &MultiSignature,
	) -> Result<Step, Error> {
		let me = self.me();
		let Some(closing) = self.closing().filter(|c| c.nonce == nonce).cloned() else {
			return Err(Error::UnexpectedMessage { phase: "not closing", message: "CloseAccept" });
		};
		if !self.peer_signed_close(nonce, &closing.balances, signature) {
			return Err(Error::BadSignature);
		}
		let mut closing = closing;
		closing.signatures[1 - me] = Some(signature.clone());
		self.ledger_mut().expect("closing is active").closing = Some(closing);
		Ok(Step::default())
	}
}
