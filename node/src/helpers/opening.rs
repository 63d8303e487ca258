//! Opening a bank: the on-chain `open`, the nonce-0 handshake and both deposits, from the
//! opener's side (`rsmc_open`), from the side that accepts an offer (`rsmc_accept`), and the
//! checks an `Open` from a peer must pass before its answer.

use super::events::EventKind;
use super::{Account, Accounts, BankView, Failure, FEE_RESERVE, LOG};
use rsmc::{driver::Opened, Body, Message, Terms};
use std::{
	sync::Arc,
	time::{Duration, Instant},
};
use vbank_primitives::{Balances, ChannelId, ChannelState};
use vbank_runtime::{AccountId, BlockNumber, RuntimeEvent};

/// How many banks the opener's node may be ahead of ours when its `Open` arrives.
const OPENS_AHEAD: ChannelId = 16;
/// How many `Open`s may wait at once for their bank to reach our chain (each for up to the
/// peer timeout). Anyone can send an `Open` for a bank a coming block may bring, signed by
/// itself as the opener: without a bound, a stranger's burst of them (2,000 over p2p, more
/// over WebSocket connections) would hold as many tasks reading the chain ten times a second.
/// One over the bound is answered `Busy` at once; an honest opener asks again.
pub(super) const OPENS_WAITING: usize = 32;

/// How long `rsmc_open` waits for the peer's deposit.
const FUNDING_TIMEOUT: Duration = Duration::from_secs(120);

impl Accounts {
	/// Open a bank with `peer`: on chain, the nonce-0 handshake, both deposits. Returns once
	/// the bank is `Running`, or once the peer's helper holds it for its operator.
	pub async fn open(
		&self,
		account: &AccountId,
		peer: AccountId,
		amounts: Balances,
		lock_period: BlockNumber,
		peer_url: Option<String>,
	) -> Result<BankView, Failure> {
		let party = self.party(account)?;
		let peer_url = super::peer_url(peer_url)?;
		if peer == *account {
			return Err(Failure::BadRequest("a bank needs two different clients".into()));
		}
		if peer_url.is_none() && !self.parties.contains_key(&peer) {
			// Found on the p2p network before anything is paid for, or named by URL.
			let Some(p2p) = &self.p2p else {
				return Err(Failure::BadRequest(format!(
					"{peer} is not served by this node: give the RPC URL of its node"
				)));
			};
			p2p.find(&self.chain.genesis, &peer).await.map_err(|miss| {
				Failure::BadRequest(format!(
					"{peer} is not served by this node, nor found on its network ({miss}): \
					 give the RPC URL of its node"
				))
			})?;
		}
		// What the chain would refuse, refused before anything is paid for.
		if amounts == [0, 0] {
			return Err(Failure::BadRequest("a bank needs something to lock".into()));
		}
		if amounts[0].checked_add(amounts[1]).is_none() {
			return Err(Failure::BadRequest("the amounts add up past the largest balance".into()));
		}
		let max_lock =
			<<vbank_runtime::Runtime as pallet_virtual_bank::Config>::MaxLockPeriod as sp_core::Get<_>>::get();
		if lock_period > max_lock {
			return Err(Failure::BadRequest(format!(
				"a lock period of {lock_period} blocks is above the chain's maximum of {max_lock}"
			)));
		}
		let min_lock = self.settings.policy.min_lock;
		if u64::from(lock_period) < min_lock {
			return Err(Failure::Policy(format!(
				"a lock period of {lock_period} blocks is below this helper's minimum of \
				 {min_lock} (--rsmc-min-lock)"
			)));
		}
		let deposit = <vbank_runtime::Runtime as pallet_virtual_bank::Config>::OpenDeposit::get();
		let needed = amounts[0].saturating_add(deposit).saturating_add(FEE_RESERVE);
		let free = self.chain.free_balance(account).map_err(Failure::Chain)?;
		if free < needed {
			return Err(Failure::Policy(format!(
				"{account} has {free} planck free; this bank needs {needed}: its {} and the \
				 storage deposit of {deposit}, with {FEE_RESERVE} kept for the fees of the calls \
				 the helper may owe the chain for it",
				amounts[0]
			)));
		}
		let call = pallet_virtual_bank::Call::open {
			peer: peer.clone(),
			my_amount: amounts[0],
			peer_amount: amounts[1],
			lock_period,
		};
		let events = self.chain.submit(&party.pair, call.into()).await.map_err(Failure::Chain)?;
		let channel = events
			.iter()
			.find_map(|e| match e {
				RuntimeEvent::VirtualBank(pallet_virtual_bank::Event::Opened {
					channel, ..
				}) => Some(*channel),
				_ => None,
			})
			.ok_or_else(|| Failure::Chain("`open` emitted no `Opened` event".into()))?;
		self.emit_with(account, EventKind::Opened, channel, 0, amounts);

		party.peers.set(channel, peer_url).map_err(Failure::Store)?;
		let terms = Terms {
			channel,
			genesis_hash: self.chain.genesis,
			clients: [account.clone(), peer],
			balances: amounts,
			lock_period: lock_period.into(),
		};
		match self.drive(party, channel, async |d| d.open(terms).await).await? {
			Opened::Handshake => {},
			Opened::Offered => return self.bank(account, channel),
		}
		self.await_running(party, channel).await?;
		self.bank(account, channel)
	}

	/// Accept a bank offered to `account` (outside its policy): the handshake and our
	/// deposit; returns once the bank is `Running`.
	pub async fn accept(
		&self,
		account: &AccountId,
		channel: ChannelId,
	) -> Result<BankView, Failure> {
		let party = self.party(account)?;
		if !party.bank(channel).is_some_and(|b| b.is_offered()) {
			return Err(Failure::BadRequest(format!("{account} has no bank {channel} on offer")));
		}
		self.drive(party, channel, async |d| d.accept(channel).await).await?;
		self.await_running(party, channel).await?;
		self.bank(account, channel)
	}

	/// Wait until the chain shows bank `channel` running (both deposits, ours made by
	/// [`Self::deposit_later`] once the handshake was done) in a final block: on a network
	/// of validators, a bank takes payments once its deposits can no longer be undone, as
	/// Lightning waits for its funding depth. `Running` is reported then, once per bank
	/// (the opener's `rsmc_open`, and each side once its own deposit is in a block).
	pub(super) async fn await_running(
		&self,
		party: &Account,
		channel: ChannelId,
	) -> Result<(), Failure> {
		let deadline = Instant::now() + FUNDING_TIMEOUT;
		loop {
			if self.deposits_final(channel)? {
				if party.first_report(channel, EventKind::Running) {
					self.emit(party, EventKind::Running, channel);
				}
				return Ok(());
			}
			match self.chain.channel(channel).map_err(Failure::Chain)? {
				Some(bank)
					if matches!(bank.state, ChannelState::Funding | ChannelState::Running) => {},
				other => {
					return Err(Failure::Chain(format!(
						"bank {channel} left funding without running: {:?}",
						other.map(|b| b.state)
					)))
				},
			}
			if Instant::now() > deadline {
				return Err(Failure::PeerSilent(format!(
					"bank {channel} is not funded after {FUNDING_TIMEOUT:?}; \
					 `virtualBank.cancel` returns what was deposited"
				)));
			}
			tokio::time::sleep(Duration::from_millis(100)).await;
		}
	}

	/// Whether bank `channel`'s deposits are in a final block: it runs there, or has gone on
	/// from running (a liquidation, a close: what the protocol itself then refuses).
	pub(super) fn deposits_final(&self, channel: ChannelId) -> Result<bool, Failure> {
		let bank = self.chain.final_channel(channel).map_err(Failure::Chain)?;
		Ok(bank.is_some_and(|bank| bank.state != ChannelState::Funding))
	}

	/// Wait, at most the peer timeout, until bank `channel`'s deposits are final: a payment
	/// on a bank whose funding a fork could still undo would be a payment out of nothing.
	pub(super) async fn await_deposits_final(&self, channel: ChannelId) -> Result<(), Failure> {
		let deadline = Instant::now() + self.settings.peer_timeout;
		while !self.deposits_final(channel)? {
			let best = self.chain.channel(channel).map_err(Failure::Chain)?;
			if !best
				.is_some_and(|b| matches!(b.state, ChannelState::Funding | ChannelState::Running))
			{
				// Gone from funding and running at the best block: the protocol refuses what
				// it must (a liquidated bank signs nothing more).
				return Ok(());
			}
			if Instant::now() > deadline {
				return Err(Failure::Busy(format!(
					"bank {channel}: its deposits are not in a finalized block yet"
				)));
			}
			tokio::time::sleep(Duration::from_millis(100)).await;
		}
		Ok(())
	}

	/// Before answering an `Open`: the chain must hold that very bank, still funding. The
	/// opener's node may be a block ahead of ours, so wait a little for it.
	pub(super) async fn check_open(&self, message: &Message) -> Result<(), Failure> {
		let Body::Open { clients, balances, lock_period, .. } = &message.body else {
			return Ok(());
		};
		let channel = message.channel;
		if !message.is_signed_by(&self.chain.genesis, &clients[0]) {
			return Err(Failure::Refused("the Open is not signed by the opener it names".into()));
		}
		let deadline = Instant::now() + self.settings.peer_timeout;
		let mut waiting = None;
		loop {
			// Read before the bank, so that a block arriving between the two reads can't make
			// a bank that has just opened look gone.
			let next = self.chain.next_channel_id().map_err(Failure::Chain)?;
			if let Some(bank) = self.chain.channel(channel).map_err(Failure::Chain)? {
				return if bank.clients == *clients
					&& bank.balances == *balances
					&& u64::from(bank.lock_period) == *lock_period
					&& bank.state == ChannelState::Funding
				{
					Ok(())
				} else {
					Err(Failure::Refused(format!(
						"the terms offered for bank {channel} are not the chain's"
					)))
				};
			}
			// Wait only for a bank the next few blocks may bring: a stranger's `Open` of a
			// bank that was never opened, or is gone, must not hold an answer for long.
			if Instant::now() >= deadline || channel < next || channel >= next + OPENS_AHEAD {
				return Err(Failure::Refused(format!("the chain has no bank {channel}")));
			}
			if waiting.is_none() {
				let permit = self.opens_waiting.try_acquire().map_err(|_| {
					Failure::Busy(format!(
						"{OPENS_WAITING} Opens already wait for banks this node's chain does not \
						 hold yet; ask again"
					))
				})?;
				waiting = Some(permit);
			}
			tokio::time::sleep(Duration::from_millis(100)).await;
		}
	}

	/// Deposit our side of `channel` (if the chain still waits for it) without holding up the
	/// answer to the peer: the deposit is owed to the chain like every other call
	/// ([`rsmc::chain::deposit_owed`]), submitted now and again at every block and tick until
	/// the chain has it.
	pub(super) fn deposit_later(&self, party: Arc<Account>, channel: ChannelId) {
		let free = self.chain.free_balance(&party.account).unwrap_or_default();
		if let Ok(Some(on_chain)) = self.chain.channel(channel) {
			let me = on_chain.client_index(&party.account).unwrap_or_default();
			if free < on_chain.balances[me].saturating_add(FEE_RESERVE) {
				log::warn!(
					target: LOG,
					"💸 {} bank {channel}: {free} planck free, not enough to deposit {} and keep \
					 {FEE_RESERVE} for the fees the watchtower may need",
					party.account,
					on_chain.balances[me]
				);
			}
		}
		self.submit_owed(&party);
	}
}
