//! Payments and HTLC updates: proposing the peer's next sheet (`Propose`, `Update`),
//! accepting the peer's (`Accept`), revoking the older sheets (`Revoke`), and the collision
//! rule when both sides propose at one nonce (SPEC section 4, `docs/htlc.md`).

use super::*;

/// What the peer proposes for its next sheet of ours: a payment (`Propose`), or an HTLC
/// update (`Update`).
pub(super) enum Proposal {
	Payment(Balances),
	Update(HtlcUpdate),
}

impl Bank {
	/// The ledger, when a new payment or HTLC update may start: active, not liquidated, not
	/// closing, nothing in flight.
	fn idle_ledger(&self) -> Result<&Ledger, Error> {
		let ledger = self.quiet_ledger("payment")?;
		if ledger.closing.is_some() {
			return Err(Error::Closing);
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
		self.check_reserve(&ledger.sheet.balances, &balances)?;
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
		self.check_reserve(&ledger.sheet.balances, &balances)?;
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
	pub(super) fn propose_message(
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

	/// Payee: the peer signed our next sheet. Store it, sign theirs, reveal our old secrets.
	/// A proposal that meets ours at the same nonce is a collision: `clients[0]`'s stands and
	/// is made again at the next nonce, ours gives way and is proposed again after it. An HTLC
	/// update is handled as a payment is: the sheet it proposes is our newest one with the
	/// update applied.
	pub(super) fn on_propose(
		&mut self,
		nonce: Nonce,
		proposal: Proposal,
		signature: &MultiSignature,
		waivers: &[AccountId32; 2],
		signer: &dyn Signer,
	) -> Result<Step, Error> {
		let mut ledger = self.ledger().expect("matched by the caller").clone();
		let current = ledger.sheet.nonce;
		if ledger.closing.is_some() && nonce > current {
			return Err(Error::Closing);
		}
		// A splice of ours the peer has not accepted gives way to its proposal at the same
		// nonce.
		if matches!(&ledger.in_flight, Some(InFlight::Splicing(ours)) if ours.nonce == nonce) {
			Self::give_way(&mut ledger);
		}
		if let Some(InFlight::Accepted { nonce: accepted, update: accepted_update }) =
			&ledger.in_flight
		{
			// Our `Accept` was lost: the same proposal comes again; send it again. (An update
			// is compared as such: applied again, to the sheet it made, it would not match.)
			let repeated = *accepted == nonce
				&& match &proposal {
					Proposal::Payment(balances) => {
						accepted_update.is_none() && ledger.sheet.balances == *balances
					},
					Proposal::Update(update) => accepted_update.as_ref() == Some(update),
				};
			if repeated {
				return self.accept_message(nonce, signer).map(Step::reply);
			}
			// The payer proposes again while we still wait for its `Revoke`: it never got our
			// `Accept` (or lost its own `Revoke`). Our `Accept`, sent again, makes it send
			// the `Revoke` it owes; its proposal comes after.
			if nonce > current {
				return self.accept_message(*accepted, signer).map(Step::reply);
			}
		}
		if nonce <= current {
			return Err(Error::Stale { nonce });
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
	/// they are (an update's sheet was made by applying it); nobody's share shrinks below the
	/// reserve; signed by the peer, with waiver keys that agree with those it announced.
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
		self.check_reserve(&ledger.sheet.balances, balances)?;
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
	pub(super) fn accept_message(
		&self,
		nonce: Nonce,
		signer: &dyn Signer,
	) -> Result<Message, Error> {
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
	pub(super) fn on_accept(
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
	pub(super) fn on_revoke(
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
}
