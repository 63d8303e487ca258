//! The handshake before funding: `Open` (the opener's terms and first waiver keys),
//! `OpenAccept` (the peer signs the opener's sheet 0) and `OpenConfirm`; each side ends with
//! a sheet 0 the other signed.

use super::*;

impl Bank {
	/// Open a bank as client 0 (after the on-chain `open`) with `reserve` proposed to the peer:
	/// the state and the `Open` message.
	pub fn open(
		terms: Terms,
		reserve: Balance,
		seed: Secret,
		signer: &dyn Signer,
	) -> Result<(Self, Message), Error> {
		if terms.clients[0] != signer.account() || terms.clients[1] == terms.clients[0] {
			return Err(Error::BadTerms);
		}
		let phase = Phase::AwaitingOpenAccept;
		let waivers = WaiverKeys::default();
		let bank = Self { terms, me: 0, seed, phase, reserve, behind: false, waivers };
		let message = bank.open_message(signer)?;
		Ok((bank, message))
	}

	pub(super) fn open_message(&self, signer: &dyn Signer) -> Result<Message, Error> {
		Ok(self.message(
			Body::Open {
				clients: self.terms.clients.clone(),
				balances: self.terms.balances,
				lock_period: self.terms.lock_period,
				waivers: [self.my_waiver(0)?, self.my_waiver(1)?],
				reserve: self.reserve,
			},
			signer,
		))
	}

	/// A bank from an `Open` addressed to us as client 1, signed by the opener it names. With
	/// `accept`, the state and the `OpenAccept` reply; without, the bank waits as
	/// [`Phase::Offered`] and the reply says so. The caller checks the terms against the chain.
	pub fn offered(
		message: &Message,
		genesis_hash: H256,
		seed: Secret,
		signer: &dyn Signer,
		accept: bool,
	) -> Result<(Self, Message), Error> {
		let Body::Open { clients, balances, lock_period, waivers, reserve } = &message.body else {
			return Err(Error::UnexpectedMessage {
				phase: "unknown",
				message: message.body.name(),
			});
		};
		if clients[1] != signer.account() || clients[0] == clients[1] {
			return Err(Error::BadTerms);
		}
		if !message.is_signed_by(&genesis_hash, &clients[0]) {
			return Err(Error::NotFromPeer);
		}
		if balances[0].checked_add(balances[1]).is_none() {
			return Err(Error::BalanceMismatch);
		}
		let terms = Terms {
			channel: message.channel,
			genesis_hash,
			clients: clients.clone(),
			balances: *balances,
			lock_period: *lock_period,
		};
		let mut bank = Self {
			terms,
			me: 1,
			seed,
			phase: Phase::Offered { peer_waivers: waivers.clone() },
			reserve: *reserve,
			behind: false,
			waivers: WaiverKeys::default(),
		};
		let reply = if accept { bank.accept(signer)? } else { bank.message(Body::Offered, signer) };
		Ok((bank, reply))
	}

	/// Accept a bank offered to us: sign the opener's sheet 0; the `OpenAccept` message.
	pub fn accept(&mut self, signer: &dyn Signer) -> Result<Message, Error> {
		let Phase::Offered { peer_waivers } = &self.phase else {
			return Err(Error::UnexpectedMessage { phase: self.phase.name(), message: "accept" });
		};
		self.phase = Phase::AwaitingOpenConfirm { peer_waivers: peer_waivers.clone() };
		self.open_accept_message(signer)
	}

	pub(super) fn open_accept_message(&self, signer: &dyn Signer) -> Result<Message, Error> {
		let Phase::AwaitingOpenConfirm { peer_waivers } = &self.phase else {
			return Err(Error::UnexpectedMessage { phase: self.phase.name(), message: "accept" });
		};
		let signature = self.sign_sheet(signer, 0, (self.terms.balances, &[]), &peer_waivers[0]);
		let waivers = [self.my_waiver(0)?, self.my_waiver(1)?];
		Ok(self.message(Body::OpenAccept { waivers, signature }, signer))
	}
}
