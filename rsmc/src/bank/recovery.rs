//! A stale store never costs its owner (issue 28, part 3; `docs/recovery.md`), after BOLT #2's
//! `channel_reestablish` with data-loss protection.
//!
//! After a start, each helper sends `Reestablish`: the nonce of its newest sheet and the newest
//! of the receiver's waiver secrets it holds. An honest helper never reveals the secret of its
//! newest sheet, so a helper shown a secret of its own for its newest sheet or a later one
//! (checked against its own seed: nobody else can make one) knows its store is older than what
//! it signed since: it is *behind*. A behind helper never liquidates with its own sheets (they
//! may be revoked, and the peer would take everything) and signs nothing but a close at the
//! peer's newest sheet, which the peer proves with the behind helper's own signature over it
//! (`Newest`). With HTLCs pending there is no close: the peer goes on chain with that sheet
//! as their expiry nears.
//!
//! A peer that lies about being ahead is caught by the signatures: a secret not made from our
//! seed, or a sheet we never signed, is refused and changes nothing.

use super::*;

impl Bank {
	/// A bank known only from the chain: our store of it is lost. Our waiver secrets are
	/// derived again from `seed` (made from the account key, [`Signer::waiver_seed`]); nothing
	/// else of ours is known, so the bank is behind from the start: it never liquidates, and
	/// signs nothing but a close at the newest sheet the peer proves we signed (a secret of
	/// ours shows we are behind whatever our nonce). Its ledger holds no sheet anybody signed:
	/// a placeholder at nonce 0 with an empty signature, which a behind bank never uses.
	pub fn lost(terms: Terms, me: u8, seed: Secret) -> Self {
		let placeholder = sp_core::sr25519::Signature::from_raw([0; 64]).into();
		let sheet = SignedSheet {
			nonce: 0,
			balances: terms.balances,
			htlcs: Vec::new(),
			signature: placeholder,
		};
		let phase = Phase::Active(Box::new(Ledger::new(sheet, Vec::new())));
		let waivers = WaiverKeys::default();
		Self { terms, me: me.min(1), seed, phase, reserve: 0, behind: true, waivers }
	}

	/// Our `Reestablish`, asking for the peer's (`answer`): where our newest sheet is, and the
	/// newest of the peer's secrets we hold. `None` before the handshake is done.
	pub fn reestablish(&self, signer: &dyn Signer, answer: bool) -> Option<Message> {
		let ledger = self.ledger()?;
		let body = Body::Reestablish {
			nonce: ledger.sheet.nonce,
			your_secret: self.newest_peer_secret(),
			answer,
		};
		Some(self.message(body, signer))
	}

	/// The newest of the peer's waiver secrets we hold, with its nonce.
	fn newest_peer_secret(&self) -> Option<(Nonce, Secret)> {
		let nonce = self.ledger()?.peer_revoked().checked_sub(1)?;
		Some((nonce, self.penalty_secret(nonce)?))
	}

	/// Whether the peer showed us that our store is older than what we signed: we then never
	/// liquidate with our own sheets, and sign nothing but a close at the peer's newest.
	pub fn is_behind(&self) -> bool {
		self.behind
	}

	/// A secret of ours the peer shows us: it must be ours (made from our seed), and it says
	/// we are behind when it is that of our newest sheet or a later one.
	fn shows_us_behind(&self, (nonce, secret): &(Nonce, Secret)) -> Result<bool, Error> {
		if self.my_secret(*nonce)? != *secret {
			return Err(Error::WrongSecret { nonce: *nonce });
		}
		Ok(*nonce >= self.nonce())
	}

	/// The peer's `Reestablish`: learn from its secret whether we are behind; show it our
	/// newest sheet when we hold its secret of the sheet it calls its newest (it is behind);
	/// or answer with ours when asked. Nothing of ours changes but learning we are behind: a
	/// `Reestablish` replayed later makes us show our newest sheet again, nothing more.
	pub(super) fn on_reestablish(
		&mut self,
		nonce: Nonce,
		your_secret: Option<&(Nonce, Secret)>,
		answer: bool,
		signer: &dyn Signer,
	) -> Result<Step, Error> {
		if let Some(secret) = your_secret {
			if self.shows_us_behind(secret)? && !self.behind {
				self.behind = true;
				// A close under way in our old store is moot: we close at the peer's newest.
				if let Some(ledger) = self.ledger_mut() {
					ledger.closing = None;
				}
				let reply = answer.then(|| self.reestablish(signer, false)).flatten();
				let step = Step { reply, progress: None };
				return Ok(step.with(Progress::Behind { nonce: secret.0 + 1 }));
			}
		}
		if !self.behind && self.is_revoked_by_peer(nonce) {
			let progress = Progress::PeerBehind { nonce: self.nonce() };
			return self.newest(signer).map(|newest| Step::reply(newest).with(progress));
		}
		Ok(Step {
			reply: answer.then(|| self.reestablish(signer, false)).flatten(),
			progress: None,
		})
	}

	/// Our `Newest`, for a peer that is behind: our newest sheet with its signature, and the
	/// proof that it is behind. The peer answers with its `Close` at that sheet, which we take
	/// as any `Close` (only at our newest sheet, with nothing in flight and no HTLC pending).
	fn newest(&self, signer: &dyn Signer) -> Result<Message, Error> {
		let ledger = self.ledger().expect("checked by the caller");
		let your_secret = self.newest_peer_secret().ok_or(Error::Stale { nonce: 0 })?;
		let sheet = &ledger.sheet;
		let body = Body::Newest {
			nonce: sheet.nonce,
			balances: sheet.balances,
			htlcs: sheet.htlcs.clone(),
			waiver: self.my_waiver(sheet.nonce)?,
			signature: sheet.signature.clone(),
			your_secret,
		};
		Ok(self.message(body, signer))
	}

	/// The peer's newest sheet, shown to us because we are behind: it must prove that (a secret
	/// of ours for our newest sheet or later), be a sheet we signed, and be newer than the
	/// secret. With no HTLC pending on it, we ask to close at it: our `Close`, the close owed to
	/// the chain by us once the peer signs it too. With HTLCs there is no close: the peer goes
	/// on chain with the sheet when they near their expiry, as it would with any silent peer.
	pub(super) fn on_newest(
		&mut self,
		(nonce, balances, htlcs): (Nonce, Balances, &[Htlc]),
		waiver: &AccountId32,
		signature: &MultiSignature,
		your_secret: &(Nonce, Secret),
		signer: &dyn Signer,
	) -> Result<Step, Error> {
		if !self.shows_us_behind(your_secret)? {
			return Err(Error::Stale { nonce: your_secret.0 });
		}
		if nonce <= your_secret.0 {
			return Err(Error::UnexpectedNonce { expected: your_secret.0 + 1, got: nonce });
		}
		let t = &self.terms;
		let payload =
			htlc_sheet_payload(&t.genesis_hash, t.channel, nonce, &balances, waiver, htlcs);
		if !verify_signature(signature, &payload, &t.clients[self.me()]) {
			return Err(Error::BadSignature);
		}
		// One close only: a peer showing us another sheet after we signed a close would
		// collect a close signature for each, and submit the one it likes best. The same one
		// again is answered with our `Close` again (the first may have been lost). A close
		// under way from before we learned we are behind is moot, and replaced.
		let under_way = self.ledger().and_then(|l| l.closing.clone());
		if let Some(closing) = under_way.filter(|_| self.behind) {
			if (closing.nonce, closing.balances) != (nonce, balances) {
				return Err(Error::UnexpectedNonce { expected: closing.nonce, got: nonce });
			}
			let signature = closing.signatures[self.me()].clone().ok_or(Error::BadSignature)?;
			let reply = self.message(Body::Close { nonce, balances, signature }, signer);
			return Ok(Step::reply(reply));
		}
		self.behind = true;
		let step = Step::default().with(Progress::Behind { nonce });
		if !htlcs.is_empty() {
			return Ok(step);
		}
		let me = self.me();
		let mine = self.sign_close(signer, nonce, &balances);
		let mut signatures = [None, None];
		signatures[me] = Some(mine.clone());
		let ledger = self.ledger_mut().expect("matched by the caller");
		ledger.in_flight = None;
		ledger.closing = Some(Closing { nonce, balances, signatures });
		let reply = self.message(Body::Close { nonce, balances, signature: mine }, signer);
		Ok(Step { reply: Some(reply), ..step })
	}
}
