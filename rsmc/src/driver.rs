//! The driver: carries a helper's messages to its peer and the answers back until a payment,
//! a handshake or a close is done, over any [`Transport`]. It asks again a busy or silent peer
//! until its timeout, and never holds the helper's lock while it waits. A handler answers; it
//! never calls the peer back: two payers acting at once meet in the protocol core, whose
//! collision rule lets both payments complete.

use crate::{
	bank::{Action, Bank, Closing, Error, HtlcUpdate, Ledger, Progress, Splicing, Terms},
	helper::{Helper, HelperError},
	message::Message,
	store::Store,
	transport::{Miss, Transport},
};
use sp_runtime::AccountId32;
use std::{
	sync::Mutex,
	time::{Duration, Instant},
};
use vbank_primitives::{Balance, Balances, ChannelId, Nonce};

/// Why a driven step did not complete.
#[derive(Debug)]
pub enum DriveError {
	/// Our helper refused, or failed to store.
	Helper(HelperError),
	/// The peer refused a message; the bank is as the last completed step left it.
	Refused(String),
	/// The peer stayed busy with a payment of its own until the timeout.
	Busy(String),
	/// The peer did not answer in time. `in_flight` says whether a payment or a close is left
	/// unfinished, so that the newest state can't be agreed without the chain.
	Silent { why: String, in_flight: bool },
}

impl core::fmt::Display for DriveError {
	fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
		match self {
			Self::Helper(e) => write!(f, "{e}"),
			Self::Refused(e) | Self::Busy(e) => write!(f, "{e}"),
			Self::Silent { why, .. } => write!(f, "{why}"),
		}
	}
}

impl std::error::Error for DriveError {}

impl From<HelperError> for DriveError {
	fn from(e: HelperError) -> Self {
		Self::Helper(e)
	}
}

/// How a handshake we started ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Opened {
	/// Each side holds a signed sheet 0.
	Handshake,
	/// The peer's helper holds the bank for its operator's `rsmc_accept`.
	Offered,
}

/// One helper's driver.
pub struct Driver<'a, S, T> {
	pub helper: &'a Mutex<Helper<S>>,
	pub transport: &'a T,
	/// How long a peer may stay silent or busy before a step gives up on it.
	pub timeout: Duration,
	/// Told of every progress the driver's own steps make (payments final, handshakes), so
	/// the caller can report them; progress made while answering the peer is reported by
	/// whoever calls [`crate::transport::answer`].
	pub observer: &'a (dyn Fn(ChannelId, &Progress) + Sync),
}

impl<S: Store, T: Transport> Driver<'_, S, T> {
	fn with<R>(&self, f: impl FnOnce(&mut Helper<S>) -> R) -> R {
		f(&mut self.helper.lock().expect("a helper step does not panic"))
	}

	fn account(&self) -> AccountId32 {
		self.with(|h| h.signer().account())
	}

	fn peer(&self, channel: ChannelId) -> Result<AccountId32, DriveError> {
		self.with(|h| h.bank(channel).map(|b| b.peer().clone()))
			.ok_or(DriveError::Helper(HelperError::UnknownBank(channel)))
	}

	/// Whether a payment or a close on `channel` waits on the peer.
	fn in_flight(&self, channel: ChannelId) -> bool {
		self.with(|h| {
			h.bank(channel).and_then(|b| b.ledger()).is_some_and(|l| {
				l.in_flight.is_some()
					|| l.closing.as_ref().is_some_and(|c| c.signatures().is_none())
			})
		})
	}

	fn silent(&self, channel: ChannelId, why: String) -> DriveError {
		DriveError::Silent { why, in_flight: self.in_flight(channel) }
	}

	/// Carry `message` to the peer of `channel` and each answer back to our helper, until
	/// neither side has more to say; what our helper's steps achieved.
	pub async fn exchange(
		&self,
		channel: ChannelId,
		mut message: Message,
	) -> Result<Vec<Progress>, DriveError> {
		let (me, peer) = (self.account(), self.peer(channel)?);
		let deadline = Instant::now() + self.timeout;
		let mut progress = Vec::new();
		loop {
			let reply = match self.transport.request(&me, &peer, &message).await {
				Ok(reply) => reply,
				Err(Miss::Refused(why)) => return Err(DriveError::Refused(why)),
				Err(miss) if Instant::now() >= deadline => {
					return Err(match miss {
						Miss::Busy(why) => DriveError::Busy(why),
						miss => self.silent(
							channel,
							format!(
								"{miss}: no answer to {} within {:?}",
								message.body.name(),
								self.timeout
							),
						),
					})
				},
				Err(_) => {
					self.transport.pause().await;
					continue;
				},
			};
			let Some(reply) = reply else { return Ok(progress) };
			match self.with(|h| h.handle(&reply)) {
				Ok(step) => {
					if let Some(p) = step.progress {
						(self.observer)(channel, &p);
						progress.push(p);
					}
					match step.reply {
						Some(next) => message = next,
						None => return Ok(progress),
					}
				},
				Err(HelperError::Protocol(e)) if e.action() == Action::Ignore => {
					return Ok(progress)
				},
				Err(e) => return Err(e.into()),
			}
		}
	}

	/// Send again what `channel` still waits an answer to, if anything.
	pub async fn resume(&self, channel: ChannelId) -> Result<Vec<Progress>, DriveError> {
		match self.with(|h| h.retransmission(channel)) {
			Some(message) => self.exchange(channel, message).await,
			None => Ok(Vec::new()),
		}
	}

	/// After a start, before anything else: compare where we are with the peer
	/// (`docs/recovery.md`). What it achieved: [`Progress::Behind`] when our store turns out
	/// older than what we signed (and, with the peer's newest sheet, the close we now owe),
	/// [`Progress::PeerBehind`] when the peer's is.
	pub async fn reestablish(&self, channel: ChannelId) -> Result<Vec<Progress>, DriveError> {
		match self.with(|h| h.reestablish(channel)) {
			Some(message) => self.exchange(channel, message).await,
			None => Ok(Vec::new()),
		}
	}

	/// Open the handshake of a bank we opened on chain.
	pub async fn open(&self, terms: Terms) -> Result<Opened, DriveError> {
		let channel = terms.channel;
		let open = self.with(|h| h.open(terms))?;
		let progress = self.exchange(channel, open).await?;
		if progress.contains(&Progress::Handshake) {
			Ok(Opened::Handshake)
		} else if progress.contains(&Progress::Offered) {
			Ok(Opened::Offered)
		} else {
			Err(DriveError::Refused("the peer's answer did not complete the handshake".into()))
		}
	}

	/// Accept a bank offered to us: the handshake, from our side.
	pub async fn accept(&self, channel: ChannelId) -> Result<(), DriveError> {
		let accept = self.with(|h| h.accept(channel))?;
		self.exchange(channel, accept).await?;
		match self.with(|h| h.bank(channel).map(|b| b.ledger().is_some())) {
			Some(true) => Ok(()),
			_ => Err(DriveError::Refused("the opener did not confirm the handshake".into())),
		}
	}

	/// Pay `amount` on `channel`; returns the newest sheet once the payment is final for us
	/// (we hold the peer's signature on it and revoked our older sheets). A payment that
	/// collides with the peer's and gives way is proposed again after the peer's.
	pub async fn pay(
		&self,
		channel: ChannelId,
		amount: Balance,
	) -> Result<(Nonce, Balances), DriveError> {
		self.until_final(channel, |h| h.pay(channel, amount), |l| l.paid).await
	}

	/// Make the HTLC update `make` returns on `channel` (asked anew before each proposal, so
	/// that an index another update moved is looked up again); returns the newest sheet once
	/// it is final for us, as [`Self::pay`] does.
	pub async fn update(
		&self,
		channel: ChannelId,
		make: impl Fn(&Bank) -> Result<HtlcUpdate, Error>,
	) -> Result<(Nonce, Balances), DriveError> {
		let propose = |h: &mut Helper<S>| {
			let bank = h.bank(channel).ok_or(HelperError::UnknownBank(channel))?;
			let update = make(bank)?;
			h.update(channel, update)
		};
		self.until_final(channel, propose, |l| l.updated).await
	}

	/// Propose what `propose` makes on `channel` and carry it until the count `made` of our
	/// proposals made final grows: finish first what is in flight (ours after a crash, or the
	/// peer's), and propose again after the peer's when ours gave way in a collision.
	///
	/// One such step per bank at a time (the node takes turns per bank): a second one of ours
	/// made final meanwhile would grow the same count.
	async fn until_final(
		&self,
		channel: ChannelId,
		propose: impl Fn(&mut Helper<S>) -> Result<Message, HelperError>,
		made: fn(&Ledger) -> u64,
	) -> Result<(Nonce, Balances), DriveError> {
		let deadline = Instant::now() + self.timeout;
		// Counts of our proposals made and given way, once ours is proposed.
		let mut proposed: Option<(u64, u64)> = None;
		loop {
			let counts = self.counts(channel, made);
			if let (Some((done, yielded)), Some((now_done, now_yielded, nonce, balances))) =
				(proposed, counts)
			{
				if now_done > done {
					return Ok((nonce, balances));
				}
				if now_yielded > yielded {
					proposed = None;
				}
			}
			if Instant::now() >= deadline {
				return Err(match proposed {
					Some(_) => self.silent(
						channel,
						format!("the payment was not final within {:?}", self.timeout),
					),
					None => DriveError::Busy(format!(
						"a payment of the peer's stayed in flight for {:?}",
						self.timeout
					)),
				});
			}
			let step = if proposed.is_none() {
				let ours = self.with(|h| {
					let message = propose(h)?;
					let ledger = h.bank(channel).and_then(|b| b.ledger()).expect("just proposed");
					Ok::<_, HelperError>((message, (made(ledger), ledger.yielded)))
				});
				match ours {
					Ok((message, counts)) => {
						proposed = Some(counts);
						self.exchange(channel, message).await
					},
					Err(HelperError::Protocol(Error::Busy)) => self.resume(channel).await,
					Err(e) => return Err(e.into()),
				}
			} else {
				self.resume(channel).await
			};
			match step {
				Ok(progress) if progress.is_empty() => self.transport.pause().await,
				Ok(_) => {},
				Err(DriveError::Busy(_)) => self.transport.pause().await,
				// Only our `Revoke` may be lost: the payment is final for us all the same, and
				// the peer asks for the `Revoke` again when it is back.
				Err(e) => {
					return match (proposed, self.counts(channel, made)) {
						(Some((done, _)), Some((now_done, _, nonce, balances)))
							if now_done > done =>
						{
							Ok((nonce, balances))
						},
						_ => Err(e),
					}
				},
			}
		}
	}

	/// Our proposals made final (as `made` counts them) and given way on `channel`, and its
	/// newest sheet.
	fn counts(
		&self,
		channel: ChannelId,
		made: fn(&Ledger) -> u64,
	) -> Option<(u64, u64, Nonce, Balances)> {
		self.with(|h| {
			let ledger = h.bank(channel)?.ledger()?;
			Some((made(ledger), ledger.yielded, ledger.sheet.nonce, ledger.sheet.balances))
		})
	}

	/// Splice `channel` (`docs/splice.md`): we add `amount_in` or take `amount_out` out of our
	/// share. Returns the splice once both clients signed it; it is then owed to the chain
	/// ([`Helper::owed_calls`]) and the bank takes no payment until the chain holds it. What
	/// is in flight is finished first; a splice of ours that gave way to the peer's proposal
	/// is proposed again after it (after the peer's splice is final on chain, if it was one).
	/// A splice of ours of other amounts still in flight is not this one: refused.
	pub async fn splice(
		&self,
		channel: ChannelId,
		amount_in: Balance,
		amount_out: Balance,
	) -> Result<Splicing, DriveError> {
		let deadline = Instant::now() + self.timeout;
		let ours = || {
			self.with(|h| h.bank(channel).and_then(|b| b.splicing()).filter(|s| s.by_us).cloned())
		};
		let sum = |amounts: &Balances| amounts[0].saturating_add(amounts[1]);
		if let Some(other) =
			ours().filter(|s| (sum(&s.amounts_in), sum(&s.amounts_out)) != (amount_in, amount_out))
		{
			return Err(HelperError::Protocol(Error::SplicePending { nonce: other.nonce }).into());
		}
		let mut waiting_for_the_chain = None;
		loop {
			let splicing = ours();
			if let Some(signed) = splicing.clone().filter(|s| s.signatures().is_some()) {
				return Ok(signed);
			}
			if Instant::now() >= deadline {
				return Err(match waiting_for_the_chain {
					Some(pending) => HelperError::Protocol(pending).into(),
					None => self.silent(channel, "the splice was not signed in time".into()),
				});
			}
			let step = match splicing {
				Some(_) => self.resume(channel).await,
				None => match self.with(|h| h.splice(channel, amount_in, amount_out)) {
					Ok(splice) => self.exchange(channel, splice).await,
					Err(HelperError::Protocol(Error::Busy)) => self.resume(channel).await,
					// The peer's splice waits for the chain: ours goes after it.
					Err(HelperError::Protocol(pending @ Error::SplicePending { .. })) => {
						waiting_for_the_chain = Some(pending);
						Ok(Vec::new())
					},
					Err(e) => return Err(e.into()),
				},
			};
			match step {
				Ok(_) | Err(DriveError::Busy(_)) => {},
				Err(e) => return Err(e),
			}
			if ours().and_then(|s| s.signatures()).is_none() {
				self.transport.pause().await;
			}
		}
	}

	/// Close `channel` cooperatively with the newest sheet: both signatures, ready to submit.
	pub async fn close(&self, channel: ChannelId) -> Result<Closing, DriveError> {
		let deadline = Instant::now() + self.timeout;
		let complete = || {
			self.with(|h| h.bank(channel).and_then(|b| b.closing().cloned()))
				.filter(|c| c.signatures().is_some())
		};
		loop {
			if let Some(closing) = complete() {
				return Ok(closing);
			}
			if Instant::now() >= deadline {
				return Err(self.silent(channel, "the close was not signed in time".into()));
			}
			// A payment still in flight (ours or the peer's) is finished first; the peer may
			// also answer our `Close` with what finishes it.
			let step = match self.with(|h| h.close(channel)) {
				Ok(close) => self.exchange(channel, close).await,
				Err(HelperError::Protocol(Error::Busy)) => self.resume(channel).await,
				Err(e) => return Err(e.into()),
			};
			match step {
				Ok(_) | Err(DriveError::Busy(_)) => {},
				Err(e) => return Err(e),
			}
			if complete().is_none() {
				self.transport.pause().await;
			}
		}
	}
}
