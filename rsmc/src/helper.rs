//! A party's helper: its banks, kept in a [`Store`] and driven through the protocol core.
//! Every change is committed to the store before the message that depends on it is
//! returned for sending, so a crash at any point leaves a state the helper can resume from.

use crate::{
	bank::{Bank, Error, Liquidation, Terms},
	chain::{judge, BlockNumber, Chain, ChainCall, ChainEvent, Verdict},
	keys::Signer,
	message::{Body, Message},
	store::{Store, StoreError},
};
use sp_core::H256;
use std::{collections::BTreeMap, sync::Arc};
use vbank_primitives::{Balance, ChannelId};

/// Why a helper refused a request or a message.
#[derive(Debug)]
pub enum HelperError {
	/// The protocol refused it; see [`Error::action`].
	Protocol(Error),
	/// The store failed: nothing was sent, and the bank is as it was before.
	Store(StoreError),
	/// We have no bank with this id.
	UnknownBank(ChannelId),
	/// The chain refused a call.
	Chain(String),
}

impl core::fmt::Display for HelperError {
	fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
		match self {
			Self::Protocol(e) => write!(f, "{e}"),
			Self::Store(e) => write!(f, "{e}"),
			Self::UnknownBank(channel) => write!(f, "no bank {channel} here"),
			Self::Chain(e) => write!(f, "chain: {e}"),
		}
	}
}

impl std::error::Error for HelperError {}

impl From<Error> for HelperError {
	fn from(e: Error) -> Self {
		Self::Protocol(e)
	}
}

impl From<StoreError> for HelperError {
	fn from(e: StoreError) -> Self {
		Self::Store(e)
	}
}

/// One party's helper.
pub struct Helper<S> {
	signer: Arc<dyn Signer>,
	genesis_hash: H256,
	store: S,
	banks: BTreeMap<ChannelId, Bank>,
	/// Our own liquidations, by the block from which we may withdraw.
	unlocks: BTreeMap<ChannelId, BlockNumber>,
}

impl<S: Store> Helper<S> {
	/// A helper for `signer`'s account on the chain `genesis_hash`, resuming from `store`.
	pub fn new(signer: Arc<dyn Signer>, genesis_hash: H256, store: S) -> Result<Self, HelperError> {
		let banks = store.load_all()?.into_iter().map(|bank| (bank.channel(), bank)).collect();
		Ok(Self { signer, genesis_hash, store, banks, unlocks: BTreeMap::new() })
	}

	pub fn signer(&self) -> &dyn Signer {
		&*self.signer
	}

	pub fn store(&self) -> &S {
		&self.store
	}

	pub fn bank(&self, channel: ChannelId) -> Option<&Bank> {
		self.banks.get(&channel)
	}

	pub fn banks(&self) -> impl Iterator<Item = &Bank> {
		self.banks.values()
	}

	/// Start the handshake of a bank we opened on chain (as client 0): the `Open` message.
	pub fn open(&mut self, terms: Terms) -> Result<Message, HelperError> {
		let (bank, message) = Bank::open(terms, rand::random(), &*self.signer)?;
		self.commit(bank)?;
		Ok(message)
	}

	/// Start paying `amount` on `channel`: the `Propose` message.
	pub fn pay(&mut self, channel: ChannelId, amount: Balance) -> Result<Message, HelperError> {
		self.transition(channel, |bank, signer| bank.propose(amount, signer))
	}

	/// Start closing `channel` cooperatively with the newest sheet: the `Close` message. Once
	/// the peer's `CloseAccept` is handled, [`Bank::closing`] holds both signatures.
	pub fn close(&mut self, channel: ChannelId) -> Result<Message, HelperError> {
		self.transition(channel, |bank, signer| bank.close(signer))
	}

	/// Handle a message from a peer: the reply to send, if any.
	pub fn handle(&mut self, message: &Message) -> Result<Option<Message>, HelperError> {
		if let (Body::Open { .. }, None) = (&message.body, self.banks.get(&message.channel)) {
			let (bank, reply) =
				Bank::accept_open(message, self.genesis_hash, rand::random(), &*self.signer)?;
			self.commit(bank)?;
			return Ok(Some(reply));
		}
		if let (Body::Open { .. }, Some(bank)) = (&message.body, self.banks.get(&message.channel)) {
			// Our answer was lost: answer again, or ignore it once the handshake is done.
			return match bank.ledger() {
				None => Ok(bank.retransmission(&*self.signer)),
				Some(_) => Err(Error::Stale { nonce: 0 }.into()),
			};
		}
		self.transition(message.channel, |bank, signer| bank.handle(message, signer))
	}

	/// What to send again on `channel` when the peer has not answered.
	pub fn retransmission(&self, channel: ChannelId) -> Option<Message> {
		self.banks.get(&channel)?.retransmission(&*self.signer)
	}

	/// The newest sheet we can liquidate `channel` with.
	pub fn liquidation(&self, channel: ChannelId) -> Result<Liquidation, HelperError> {
		let bank = self.banks.get(&channel).ok_or(HelperError::UnknownBank(channel))?;
		bank.liquidation().ok_or(HelperError::Protocol(Error::UnexpectedMessage {
			phase: "opening",
			message: "liquidation",
		}))
	}

	/// The watchtower: act on what the chain reports, submitting through `chain`. Returns
	/// the calls submitted.
	pub fn on_chain_event(
		&mut self,
		event: &ChainEvent,
		chain: &dyn Chain,
	) -> Result<Vec<ChainCall>, HelperError> {
		let mut calls = Vec::new();
		match event {
			ChainEvent::Liquidated { channel, master, nonce, unlock_at, .. } => {
				let Some(bank) = self.banks.get(channel) else { return Ok(calls) };
				match judge(bank, master, *nonce, *unlock_at) {
					Verdict::Punish { waiver_signature } => calls
						.push(ChainCall::WithdrawByPeer { channel: *channel, waiver_signature }),
					Verdict::WithdrawAt(at) => {
						self.unlocks.insert(*channel, at);
					},
					Verdict::Accept => {},
				}
			},
			ChainEvent::Block { number } => {
				let due: Vec<_> = self
					.unlocks
					.iter()
					.filter(|(_, at)| **at <= *number)
					.map(|(c, _)| *c)
					.collect();
				for channel in due {
					self.unlocks.remove(&channel);
					calls.push(ChainCall::WithdrawByMaster { channel });
				}
			},
		}
		for call in &calls {
			chain.submit(call.clone()).map_err(HelperError::Chain)?;
		}
		Ok(calls)
	}

	/// Forget a bank that is settled on chain.
	pub fn forget(&mut self, channel: ChannelId) -> Result<(), HelperError> {
		self.store.remove(channel)?;
		self.banks.remove(&channel);
		self.unlocks.remove(&channel);
		Ok(())
	}

	/// Apply `step` to a copy of the bank; commit the copy only if the step succeeds and
	/// changed something, then hand back its message.
	fn transition<T>(
		&mut self,
		channel: ChannelId,
		step: impl FnOnce(&mut Bank, &dyn Signer) -> Result<T, Error>,
	) -> Result<T, HelperError> {
		let bank = self.banks.get(&channel).ok_or(HelperError::UnknownBank(channel))?;
		let mut next = bank.clone();
		let out = step(&mut next, &*self.signer)?;
		if next != *bank {
			self.commit(next)?;
		}
		Ok(out)
	}

	fn commit(&mut self, bank: Bank) -> Result<(), HelperError> {
		self.store.save(&bank)?;
		self.banks.insert(bank.channel(), bank);
		Ok(())
	}
}
