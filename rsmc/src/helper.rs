//! A party's helper: its banks, kept in a [`Store`] and driven through the protocol core.
//! Every change is committed to the store before the message that depends on it is
//! returned for sending, so a crash at any point leaves a state the helper can resume from.

use crate::{
	bank::{Bank, Error, LiquidationSheet, Step, Terms},
	chain::{owed, recovery_close_owed, splice_owed, BlockNumber, ChainCall, ChainEvent},
	keys::Signer,
	message::{Body, Message},
	store::{Store, StoreError},
};
use sp_core::H256;
use std::{collections::BTreeMap, sync::Arc};
use vbank_primitives::{Balance, Balances, ChannelId};

/// Why a helper refused a request or a message.
#[derive(Debug)]
pub enum HelperError {
	/// The protocol refused it; see [`Error::action`].
	Protocol(Error),
	/// The store failed: nothing was sent, and the bank is as it was before.
	Store(StoreError),
	/// We have no bank with this id.
	UnknownBank(ChannelId),
	/// The bank is outside the operator's policy (SPEC section 4).
	Policy(String),
}

impl core::fmt::Display for HelperError {
	fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
		match self {
			Self::Protocol(e) => write!(f, "{e}"),
			Self::Store(e) => write!(f, "{e}"),
			Self::UnknownBank(channel) => write!(f, "no bank {channel} here"),
			Self::Policy(e) => write!(f, "{e}"),
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

/// Which banks opened by others the helper joins (deposits into) without asking its
/// operator: SPEC section 4's `--rsmc-inbound-limit` and `--rsmc-min-lock`, and
/// `--rsmc-max-lock`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
	/// The most we deposit into one bank someone else opened.
	pub inbound_limit: Balance,
	/// The shortest lock period we accept, in blocks.
	pub min_lock: BlockNumber,
	/// The longest lock period we accept, in blocks: whoever liquidates a bank has its share
	/// frozen that long, and a peer can make us liquidate (an HTLC it never resolves), so a
	/// long lock lets a stranger freeze our money for the price of one planck (H1 of the HTLC
	/// review).
	pub max_lock: BlockNumber,
	/// The reserve we want in a bank, in percent of its total: the least a client's share may
	/// be left at by its own payment, HTLC or withdrawal, so that cheating always costs.
	pub reserve_percent: u8,
	/// The least reserve we want, whatever the total (the chain's existential deposit, say).
	pub min_reserve: Balance,
}

impl Policy {
	/// Join every bank offered: for tests.
	pub const ACCEPT_ALL: Self = Self {
		inbound_limit: Balance::MAX,
		min_lock: 0,
		max_lock: BlockNumber::MAX,
		reserve_percent: 0,
		min_reserve: 0,
	};

	/// The reserve we propose for a bank opened with `balances`: our percentage of its total,
	/// and never below our least.
	pub fn reserve(&self, balances: &Balances) -> Balance {
		let total = balances[0].saturating_add(balances[1]);
		let percent = Balance::from(self.reserve_percent);
		let share =
			(total / 100).saturating_mul(percent).saturating_add(total % 100 * percent / 100);
		share.max(self.min_reserve)
	}

	/// The longest lock period joined without asking by default: a day of 6-second blocks.
	pub const DEFAULT_MAX_LOCK: BlockNumber = 14_400;

	/// Why a bank with these terms and the opener's `reserve` needs the operator, if it does:
	/// a reserve below ours leaves a cheat less to lose than we want; one above half the
	/// bank's total would freeze most of it.
	pub fn objection(&self, terms: &Terms, me: usize, reserve: Balance) -> Option<String> {
		let wanted = self.reserve(&terms.balances);
		if reserve < wanted {
			return Some(format!(
				"bank {} has a reserve of {reserve}, below ours of {wanted}",
				terms.channel
			));
		}
		let half = terms.balances[0].saturating_add(terms.balances[1]) / 2;
		if reserve > half.max(self.min_reserve) {
			return Some(format!(
				"bank {} has a reserve of {reserve}, above half its total",
				terms.channel
			));
		}
		let amount = terms.balances[me];
		if amount > self.inbound_limit {
			return Some(format!(
				"bank {} asks us to deposit {amount}, above the inbound limit of {}",
				terms.channel, self.inbound_limit
			));
		}
		if terms.lock_period < self.min_lock {
			return Some(format!(
				"bank {} has a lock period of {} blocks, below the minimum of {}",
				terms.channel, terms.lock_period, self.min_lock
			));
		}
		if terms.lock_period > self.max_lock {
			return Some(format!(
				"bank {} has a lock period of {} blocks, above the maximum of {}",
				terms.channel, terms.lock_period, self.max_lock
			));
		}
		None
	}
}

impl Default for Policy {
	/// SPEC section 4's defaults: nothing deposited without the operator, a lock of 100 to
	/// [`Self::DEFAULT_MAX_LOCK`], a reserve of 1% (Lightning's usual channel reserve).
	fn default() -> Self {
		Self {
			inbound_limit: 0,
			min_lock: 100,
			max_lock: Self::DEFAULT_MAX_LOCK,
			reserve_percent: 1,
			min_reserve: 0,
		}
	}
}

/// One party's helper.
pub struct Helper<S> {
	signer: Arc<dyn Signer>,
	genesis_hash: H256,
	store: S,
	banks: BTreeMap<ChannelId, Bank>,
	policy: Policy,
	/// The newest block the helper was told of ([`Self::set_height`], or a
	/// [`ChainEvent::Block`]): what an HTLC's expiry is measured against.
	height: BlockNumber,
}

impl<S: Store> Helper<S> {
	/// A helper for `signer`'s account on the chain `genesis_hash`, resuming from `store`,
	/// with the default [`Policy`].
	pub fn new(signer: Arc<dyn Signer>, genesis_hash: H256, store: S) -> Result<Self, HelperError> {
		let banks = store.load_all()?;
		Ok(Self::with_banks(signer, genesis_hash, store, banks))
	}

	/// A helper for some of the banks in `store` (already loaded): one helper per bank lets
	/// banks of one account move at once, each behind its own lock.
	pub fn with_banks(
		signer: Arc<dyn Signer>,
		genesis_hash: H256,
		store: S,
		banks: impl IntoIterator<Item = Bank>,
	) -> Self {
		let banks = banks.into_iter().map(|bank| (bank.channel(), bank)).collect();
		Self { signer, genesis_hash, store, banks, policy: Policy::default(), height: 0 }
	}

	pub fn with_policy(mut self, policy: Policy) -> Self {
		self.policy = policy;
		self
	}

	/// The chain is at block `now`: HTLC updates whose time has passed are refused from now
	/// on ([`crate::HtlcUpdate::too_late`]). A height that goes back is ignored.
	pub fn set_height(&mut self, now: BlockNumber) {
		self.height = self.height.max(now);
	}

	pub fn height(&self) -> BlockNumber {
		self.height
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

	/// Start the handshake of a bank we opened on chain (as client 0), with the reserve of our
	/// policy: the `Open` message.
	pub fn open(&mut self, terms: Terms) -> Result<Message, HelperError> {
		if self.banks.contains_key(&terms.channel) {
			return Err(HelperError::Protocol(Error::Stale { nonce: 0 }));
		}
		let reserve = self.policy.reserve(&terms.balances);
		let seed = self.signer.waiver_seed(&self.genesis_hash, terms.channel);
		let (bank, message) = Bank::open(terms, reserve, seed, &*self.signer)?;
		self.commit(bank)?;
		Ok(message)
	}

	/// Accept a bank offered to us (outside the policy, or asked again): the `OpenAccept`.
	pub fn accept(&mut self, channel: ChannelId) -> Result<Message, HelperError> {
		self.transition(channel, |bank, signer| bank.accept(signer))
	}

	/// Start paying `amount` on `channel`: the `Propose` message.
	pub fn pay(&mut self, channel: ChannelId, amount: Balance) -> Result<Message, HelperError> {
		self.transition(channel, |bank, signer| bank.propose(amount, signer))
	}

	/// Start changing the HTLCs pending on `channel`: the `Update` message.
	pub fn update(
		&mut self,
		channel: ChannelId,
		update: crate::bank::HtlcUpdate,
	) -> Result<Message, HelperError> {
		self.transition(channel, |bank, signer| bank.propose_update(update, signer))
	}

	/// Start a splice of ours on `channel` (`docs/splice.md`): we add `amount_in` or take
	/// `amount_out` out of our share. The `Splice` message; once the peer's `SpliceAccept` is
	/// handled, [`Bank::splicing`] holds both signatures and the splice is owed to the chain
	/// ([`Self::owed_calls`]).
	pub fn splice(
		&mut self,
		channel: ChannelId,
		amount_in: Balance,
		amount_out: Balance,
	) -> Result<Message, HelperError> {
		self.transition(channel, |bank, signer| bank.propose_splice(amount_in, amount_out, signer))
	}

	/// Take back a bank the chain holds with us as client `me` and our store has lost
	/// (`docs/recovery.md`): rebuilt from its `terms` and our account key ([`Bank::lost`]),
	/// stored, and behind until the peer shows us its newest sheet and we close at it. Its
	/// [`Self::reestablish`] asks the peer for that. Refused for a bank we hold.
	pub fn recover_lost(&mut self, terms: Terms, me: u8) -> Result<(), HelperError> {
		if self.banks.contains_key(&terms.channel)
			|| terms.clients[usize::from(me.min(1))] != self.signer.account()
		{
			return Err(HelperError::Protocol(Error::BadTerms));
		}
		let seed = self.signer.waiver_seed(&self.genesis_hash, terms.channel);
		self.commit(Bank::lost(terms, me, seed))
	}

	/// Our `Reestablish` for `channel`, asking for the peer's (`docs/recovery.md`): sent after
	/// a start, before anything else, so that a store restored from an older copy learns it is
	/// behind before it acts. `None` before the handshake is done.
	pub fn reestablish(&self, channel: ChannelId) -> Option<Message> {
		self.banks.get(&channel)?.reestablish(&*self.signer, true)
	}

	/// Start closing `channel` cooperatively with the newest sheet: the `Close` message. Once
	/// the peer's `CloseAccept` is handled, [`Bank::closing`] holds both signatures.
	pub fn close(&mut self, channel: ChannelId) -> Result<Message, HelperError> {
		self.transition(channel, |bank, signer| bank.close(signer))
	}

	/// Handle a message from anybody: the reply to send, if any, and what it achieved. A
	/// message not signed by the bank's other client is refused with [`Error::NotFromPeer`]
	/// and changes nothing.
	///
	/// A new HTLC update is refused when its time has passed at the helper's height
	/// ([`crate::HtlcUpdate::too_late`]); one made final already is answered as before.
	pub fn handle(&mut self, message: &Message) -> Result<Step, HelperError> {
		let Body::Open { clients, balances, lock_period, reserve, .. } = &message.body else {
			if let Some(e) = self.too_late(message) {
				return Err(e.into());
			}
			return self.transition(message.channel, |bank, signer| bank.handle(message, signer));
		};
		let Some(bank) = self.banks.get(&message.channel) else {
			let terms = Terms {
				channel: message.channel,
				genesis_hash: self.genesis_hash,
				clients: clients.clone(),
				balances: *balances,
				lock_period: *lock_period,
			};
			let accept = self.policy.objection(&terms, 1, *reserve).is_none();
			let seed = self.signer.waiver_seed(&self.genesis_hash, message.channel);
			let (bank, reply) =
				Bank::offered(message, self.genesis_hash, seed, &*self.signer, accept)?;
			self.commit(bank)?;
			return Ok(Step { reply: Some(reply), progress: None });
		};
		if !message.is_signed_by(&self.genesis_hash, bank.peer()) {
			return Err(Error::NotFromPeer.into());
		}
		// Our answer was lost: answer again, or ignore it once the handshake is done.
		let reply = if bank.is_offered() {
			Some(Message::signed(&self.genesis_hash, message.channel, Body::Offered, &*self.signer))
		} else if bank.ledger().is_none() {
			bank.retransmission(&*self.signer)
		} else {
			return Err(Error::Stale { nonce: 0 }.into());
		};
		Ok(Step { reply, progress: None })
	}

	/// Why the peer's `Update` in `message` is refused at our height, if it is new and is.
	fn too_late(&self, message: &Message) -> Option<Error> {
		let Body::Update { nonce, update, .. } = &message.body else { return None };
		let bank = self.banks.get(&message.channel)?;
		if *nonce <= bank.nonce() || !message.is_signed_by(&self.genesis_hash, bank.peer()) {
			return None;
		}
		update.too_late(bank.htlcs(), self.height)
	}

	/// What to send again on `channel` when the peer has not answered.
	pub fn retransmission(&self, channel: ChannelId) -> Option<Message> {
		self.banks.get(&channel)?.retransmission(&*self.signer)
	}

	/// Decide to liquidate `channel` with our newest sheet: the bank is marked, durably, before
	/// the sheet is handed back, and from then on nothing more is signed or revealed on it;
	/// the liquidation is owed to the chain ([`Self::owed_calls`]) until the chain shows it.
	pub fn liquidate(&mut self, channel: ChannelId) -> Result<LiquidationSheet, HelperError> {
		self.transition(channel, |bank, _| {
			bank.begin_liquidation()
				.ok_or(Error::UnexpectedMessage { phase: "opening", message: "liquidation" })
		})
	}

	/// The newest sheet we can liquidate `channel` with, changing nothing: a liquidation goes
	/// through [`Self::liquidate`].
	pub fn liquidation(&self, channel: ChannelId) -> Result<LiquidationSheet, HelperError> {
		let bank = self.banks.get(&channel).ok_or(HelperError::UnknownBank(channel))?;
		bank.liquidation().ok_or(HelperError::Protocol(Error::UnexpectedMessage {
			phase: "opening",
			message: "liquidation",
		}))
	}

	/// The watchtower: record what the chain reports, and return the calls owed to it now,
	/// penalties first. A liquidation is stored with its bank, so the calls are owed again at
	/// every block (and after a restart) until the chain settles the bank and it is
	/// forgotten; a secret the peer reveals later makes its liquidation punishable then.
	pub fn on_chain_event(&mut self, event: &ChainEvent) -> Result<Vec<ChainCall>, HelperError> {
		match event {
			ChainEvent::Liquidated { channel, master, nonce, unlock_at, release_at, .. } => {
				let Some(bank) = self.banks.get(channel) else { return Ok(Vec::new()) };
				let Some(master) = bank.terms.clients.iter().position(|c| c == master) else {
					return Ok(Vec::new());
				};
				let mut next = bank.clone();
				next.mark_liquidated(master as u8, *nonce, *unlock_at, *release_at);
				if next != *bank {
					self.commit(next)?;
				}
				// Nothing is owed before the lock ends but a penalty, which is due at once.
				Ok(self
					.owed_calls(unlock_at.saturating_sub(1))
					.into_iter()
					.filter(|c| c.is_penalty())
					.collect())
			},
			ChainEvent::Block { number } => {
				self.set_height(*number);
				Ok(self.owed_calls(*number))
			},
			ChainEvent::LiquidationUndone { channel } => {
				let Some(bank) = self.banks.get(channel) else { return Ok(Vec::new()) };
				let mut next = bank.clone();
				if !next.undo_liquidation() {
					return Ok(Vec::new());
				}
				let owed = next.pending_liquidation().map(ChainCall::Liquidate);
				self.commit(next)?;
				Ok(owed.into_iter().collect())
			},
			ChainEvent::Spliced { channel, nonce } => {
				let Some(bank) = self.banks.get(channel) else { return Ok(Vec::new()) };
				let mut next = bank.clone();
				if next.splice_landed(*nonce) {
					self.commit(next)?;
				}
				Ok(Vec::new())
			},
		}
	}

	/// Every call owed to the chain at block `now`, penalties first: a liquidation we decided on
	/// and the chain has not shown yet, what a liquidated bank owes, a splice of ours both
	/// clients signed that the chain has not made final yet (the caller leaves out one the best
	/// block holds already), and the close of a bank whose store was behind.
	pub fn owed_calls(&self, now: BlockNumber) -> Vec<ChainCall> {
		let mut calls: Vec<_> = self
			.banks
			.values()
			.filter_map(|bank| match bank.pending_liquidation() {
				Some(sheet) => Some(ChainCall::Liquidate(sheet)),
				None if bank.is_live() => splice_owed(bank),
				None => recovery_close_owed(bank)
					.or_else(|| owed(bank, bank.ledger()?.liquidated.as_ref()?, now)),
			})
			.collect();
		calls.sort_by_key(|call| !call.is_penalty());
		calls
	}

	/// Forget a bank that is settled on chain.
	pub fn forget(&mut self, channel: ChannelId) -> Result<(), HelperError> {
		self.store.remove(channel)?;
		self.banks.remove(&channel);
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
