//! The RSMC helpers this node runs (SPEC sections 4 and 5): one per account named with
//! `--rsmc-account`, each with its durable store under the node's base path. They pay and are
//! paid through the `rsmc_` RPC methods ([`rpc`]), reach helpers on other nodes through those
//! nodes' `rsmc_message`, and follow the chain as a watchtower ([`watchtower`]). What peers
//! send them and what each step's progress sets off is in `inbound`; payments through other
//! banks (invoices, routes, forwarding) in `routing`.
//!
//! A helper never holds its lock while it waits for the peer or the chain: a payment is a
//! series of short steps (`pay`, `handle` of each reply), each committed to the store before
//! its message leaves.

mod account;
pub mod chain;
pub mod events;
mod guard;
mod inbound;
mod opening;
pub mod p2p;
mod recovery;
mod routing;
pub mod rpc;
mod splicing;
mod tower;
pub mod transport;
pub mod watchtower;

use account::Account;
use chain::NodeChain;
use codec::DecodeAll;
use events::{announce, announce_event};
pub use events::{Event, EventKind};
use rsmc::{
	bank::Action,
	driver::{DriveError, Driver},
	route::Forwarding,
	HelperError, Htlc, LiquidationSheet, Message, Policy, Progress,
};
use std::{
	collections::{BTreeMap, BTreeSet},
	path::PathBuf,
	sync::{Arc, Mutex, Weak},
	time::Duration,
};
use tokio::sync::broadcast;
use transport::{NodeTransport, Remotes};
use vbank_primitives::{Balance, Balances, ChannelId, ChannelState, Nonce};
use vbank_runtime::{AccountId, BlockNumber, RuntimeCall, RuntimeEvent};

const LOG: &str = "rsmc";

/// What a helper keeps aside, beyond what it locks in a bank, for the fees of the calls it
/// may owe the chain for that bank (deposit, liquidate, a withdrawal or a penalty).
pub const FEE_RESERVE: Balance = vbank_runtime::UNIT;

/// What the node's command line says about its helpers.
#[derive(Clone, Debug)]
pub struct Settings {
	/// The accounts to serve, as secret URIs (`//Alice`, a mnemonic, a hex seed).
	pub accounts: Vec<String>,
	/// Where each helper keeps its store: `<dir>/<address>/`.
	pub dir: PathBuf,
	/// This node's RPC URL, as helpers on other nodes reach it.
	pub own_url: String,
	/// How long a peer may stay silent before a payment or a close gives up on it.
	pub peer_timeout: Duration,
	/// Serve `rsmc_liquidateRevoked` (tests only).
	pub test_cheats: bool,
	/// Which banks opened by others the helpers join without asking (SPEC section 4).
	pub policy: Policy,
	/// The fee our helpers take for passing a payment on, and the blocks they keep between
	/// an incoming HTLC's expiry and the outgoing one's (SPEC section 6).
	pub forwarding: Forwarding,
	/// Serve as a watchtower for others (`--rsmc-tower`): the most banks of one client it
	/// watches.
	pub tower: Option<usize>,
	/// The watchtower our helpers hand the secrets they learn to (`--rsmc-tower-url`).
	pub tower_url: Option<String>,
}

/// Why a request failed; each becomes a JSON-RPC error whose message names the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
	/// The request itself is wrong: nothing was done.
	BadRequest(String),
	/// The protocol refused it (our helper or the peer's); the bank is unchanged.
	Refused(String),
	/// A payment is in flight on the bank: try again once it is final.
	Busy(String),
	/// The peer did not answer in time.
	PeerSilent(String),
	/// The chain refused a transaction, or could not be read.
	Chain(String),
	/// The helper's store failed: nothing was sent.
	Store(String),
	/// Outside the helper's policy (lock period, inbound amount).
	Policy(String),
}

impl core::fmt::Display for Failure {
	fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
		match self {
			Self::BadRequest(e)
			| Self::Refused(e)
			| Self::Busy(e)
			| Self::PeerSilent(e)
			| Self::Chain(e)
			| Self::Store(e)
			| Self::Policy(e) => f.write_str(e),
		}
	}
}

impl From<HelperError> for Failure {
	fn from(e: HelperError) -> Self {
		match e {
			HelperError::Protocol(e) if e.action() == Action::Retry => Self::Busy(e.to_string()),
			HelperError::Protocol(e) => Self::Refused(e.to_string()),
			HelperError::Store(e) => Self::Store(e.to_string()),
			HelperError::UnknownBank(channel) => {
				Self::BadRequest(format!("no bank {channel} here"))
			},
			HelperError::Policy(e) => Self::Policy(e),
		}
	}
}

impl From<DriveError> for Failure {
	fn from(e: DriveError) -> Self {
		match e {
			DriveError::Helper(e) => e.into(),
			DriveError::Refused(e) => Self::Refused(format!("the peer refused: {e}")),
			DriveError::Busy(e) => Self::Busy(e),
			DriveError::Silent { why, .. } => Self::PeerSilent(why),
		}
	}
}

/// A peer's node URL as we accept it: `ws://` or `wss://` only.
fn peer_url(url: Option<String>) -> Result<Option<String>, Failure> {
	match url {
		Some(url) if !(url.starts_with("ws://") || url.starts_with("wss://")) => {
			Err(Failure::BadRequest(format!(
				"{} is not a ws:// or wss:// URL of a peer's node",
				rpc::quoted(&url.as_str().into())
			)))
		},
		url => Ok(url),
	}
}

/// A call owed to the chain on its way: the account, the bank, whether it is a penalty, and
/// the HTLC a claim or refund pays out (those of different HTLCs go at once).
type Submitting = (AccountId, ChannelId, bool, Option<u32>);

/// Every account this node serves ([`Account`]: its helpers, store and relay), and what they
/// share: the chain, the way to peers, the events.
pub struct Accounts {
	parties: BTreeMap<AccountId, Arc<Account>>,
	pub chain: Arc<NodeChain>,
	settings: Settings,
	events: broadcast::Sender<Event>,
	remotes: Remotes,
	/// The node's p2p network, where helpers of other nodes are found by account.
	p2p: Option<Arc<p2p::P2p>>,
	/// Calls owed to the chain being submitted now, so that each goes once at a time.
	submitting: Arc<Mutex<BTreeSet<Submitting>>>,
	/// Ourselves, for the work a helper's progress starts (forwarding, settling upstream).
	me: Weak<Self>,
	/// Each preimage a helper sees for an HTLC it sent, as (account, hashlock), for the
	/// `rsmc_send` waiting for it.
	receipts: broadcast::Sender<(AccountId, sp_core::H256, vbank_primitives::Preimage)>,
	/// The `Open`s that may wait at once for their bank to reach our chain
	/// ([`opening::OPENS_WAITING`]).
	opens_waiting: tokio::sync::Semaphore,
	/// With `--rsmc-tower`: the banks this node watches for others.
	tower: Option<tower::Serving>,
	/// With `--rsmc-tower-url`: the tower our helpers use.
	using_tower: Option<tower::Using>,
}

/// A bank as `rsmc_banks` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BankView {
	pub channel: ChannelId,
	pub clients: [AccountId; 2],
	pub me: u8,
	/// `None` once the chain has removed the bank.
	pub state: Option<ChannelState>,
	/// Waiting for an operator's `rsmc_accept`: ours, or the peer's for a bank we opened.
	pub offered: bool,
	pub nonce: Nonce,
	pub balances: Balances,
	/// The bank's reserve, agreed at the handshake, and what each client may still pay, lock
	/// in an HTLC or withdraw above it.
	pub reserve: Balance,
	pub spendable: Balances,
	pub lock_period: BlockNumber,
	pub unlock_at: Option<BlockNumber>,
	/// The HTLCs pending on the newest sheet.
	pub htlcs: Vec<Htlc>,
}

impl Accounts {
	/// Start the helpers of `settings.accounts`, resuming each from its store; they reach
	/// other nodes' helpers over `p2p` too when the node has a network.
	pub fn start(
		settings: Settings,
		chain: Arc<NodeChain>,
		p2p: Option<Arc<p2p::P2p>>,
	) -> Result<Arc<Self>, String> {
		let mut parties = BTreeMap::new();
		for suri in &settings.accounts {
			let party = Account::open(
				suri,
				&settings.dir,
				chain.genesis,
				settings.test_cheats,
				settings.policy,
				settings.forwarding,
			)?;
			log::info!(
				target: LOG,
				"💸 helper for {} ({} banks in {})",
				party.account,
				party.channels().len(),
				settings.dir.display()
			);
			parties.insert(party.account.clone(), Arc::new(party));
		}
		let tower = match settings.tower {
			Some(limit) => {
				Some(tower::Serving::open(&settings.dir.join("tower"), chain.genesis, limit)?)
			},
			None => None,
		};
		let using_tower = peer_url(settings.tower_url.clone())
			.map_err(|e| format!("--rsmc-tower-url: {e}"))?
			.map(tower::Using::new);
		let (events, _) = broadcast::channel(4096);
		Ok(Arc::new_cyclic(|me| Self {
			parties,
			chain,
			settings,
			events,
			remotes: Default::default(),
			p2p,
			submitting: Default::default(),
			me: me.clone(),
			receipts: broadcast::channel(1024).0,
			opens_waiting: tokio::sync::Semaphore::new(opening::OPENS_WAITING),
			tower,
			using_tower,
		}))
	}

	pub fn accounts(&self) -> Vec<AccountId> {
		self.parties.keys().cloned().collect()
	}

	pub fn test_cheats(&self) -> bool {
		self.settings.test_cheats
	}

	pub fn subscribe(&self) -> broadcast::Receiver<Event> {
		self.events.subscribe()
	}

	fn party(&self, account: &AccountId) -> Result<&Arc<Account>, Failure> {
		self.parties
			.get(account)
			.ok_or_else(|| Failure::BadRequest(format!("this node serves no helper for {account}")))
	}

	fn emit(&self, party: &Account, kind: EventKind, channel: ChannelId) {
		announce(&self.events, party, kind, channel);
	}

	fn emit_with(
		&self,
		account: &AccountId,
		kind: EventKind,
		channel: ChannelId,
		nonce: Nonce,
		balances: Balances,
	) {
		let event =
			Event { account: account.clone(), kind, channel, nonce, balances, hashlock: None };
		announce_event(&self.events, event);
	}

	/// Run `f` with the driver of `party`'s bank `channel` (made empty for a bank we open).
	async fn drive<T>(
		&self,
		party: &Arc<Account>,
		channel: ChannelId,
		f: impl AsyncFnOnce(&Driver<'_, account::NodeStore, NodeTransport<'_>>) -> T,
	) -> T {
		// Our own steps on a bank take turns (payments, HTLC updates, closes started by
		// different requests or by forwarding); the peer's messages are answered meanwhile.
		let turn = party.turn(channel);
		let _turn = turn.lock().await;
		let helper = party.helper_or_new(channel);
		if let Ok(mut helper) = helper.lock() {
			helper.set_height(self.chain.best().1.into());
		}
		let transport = NodeTransport { helpers: self, party };
		let observer =
			|channel: ChannelId, progress: &Progress| self.progressed(party, channel, progress);
		let driver = Driver {
			helper: &helper,
			transport: &transport,
			timeout: self.settings.peer_timeout,
			observer: &observer,
		};
		f(&driver).await
	}

	/// The banks of `account`, off-chain state joined with the chain's.
	pub fn banks(&self, account: &AccountId) -> Result<Vec<BankView>, Failure> {
		let party = self.party(account)?;
		let banks: Vec<_> = party.channels().into_iter().filter_map(|c| party.bank(c)).collect();
		banks
			.into_iter()
			.map(|bank| {
				// What the chain can no longer undo (SPEC: a view follows the finalized chain).
				let on_chain = self.chain.final_channel(bank.channel()).map_err(Failure::Chain)?;
				// A helper behind (its store stale or lost) knows its newest sheet only once the
				// peer has shown it, to close at; it can spend nothing.
				let (nonce, balances) = match bank.closing().filter(|_| bank.is_behind()) {
					Some(closing) => (closing.nonce, closing.balances),
					None => (bank.nonce(), bank.balances()),
				};
				let spendable = match bank.is_behind() {
					true => [0, 0],
					false => [bank.spendable(0), bank.spendable(1)],
				};
				Ok(BankView {
					channel: bank.channel(),
					clients: bank.terms.clients.clone(),
					me: bank.me,
					state: on_chain.as_ref().map(|c| c.state),
					// Ours waits for our operator, or (we opened it) for the peer's.
					offered: bank.is_offered()
						|| matches!(bank.phase, rsmc::Phase::AwaitingOpenAccept),
					nonce,
					balances,
					reserve: bank.reserve,
					spendable,
					htlcs: bank.htlcs().to_vec(),
					lock_period: on_chain.as_ref().map_or(0, |c| c.lock_period),
					unlock_at: on_chain.and_then(|c| c.liquidation).map(|l| l.unlock_at),
				})
			})
			.collect()
	}

	pub fn bank(&self, account: &AccountId, channel: ChannelId) -> Result<BankView, Failure> {
		self.banks(account)?
			.into_iter()
			.find(|b| b.channel == channel)
			.ok_or_else(|| Failure::BadRequest(format!("{account} has no bank {channel}")))
	}

	/// Pay `amount` on `channel`; returns once the payment is final (we hold the peer's
	/// signature on the new sheet and revoked the old one). When the peer stays silent past
	/// the timeout with the payment unfinished, the newest state can't be agreed: liquidate
	/// with the newest sheet and say so.
	pub async fn pay(
		&self,
		account: &AccountId,
		channel: ChannelId,
		amount: Balance,
	) -> Result<(Nonce, Balances), Failure> {
		let party = self.party(account)?;
		if party.bank(channel).is_none() {
			return Err(Failure::BadRequest(format!("{account} has no bank {channel}")));
		}
		// The watchtower may not have seen the liquidation's block yet: ask the chain too.
		if self.chain.channel(channel).map_err(Failure::Chain)?.map(|c| c.state)
			== Some(ChannelState::Liquidating)
		{
			return Err(Failure::Refused(rsmc::Error::Liquidated.to_string()));
		}
		self.await_deposits_final(channel).await?;
		match self.drive(party, channel, async |d| d.pay(channel, amount).await).await {
			Ok(paid) => Ok(paid),
			Err(DriveError::Silent { why, in_flight: true }) => {
				let (nonce, unlock_at) = self.liquidate(account, channel).await?;
				Err(Failure::PeerSilent(format!(
					"{why}; the newest state could not be agreed, so bank {channel} is liquidated \
					 with sheet {nonce}, ours to withdraw at block {unlock_at}"
				)))
			},
			Err(e) => Err(e.into()),
		}
	}

	/// Close `channel` cooperatively; liquidate with the newest sheet if the peer does not
	/// sign in time.
	pub async fn close(
		&self,
		account: &AccountId,
		channel: ChannelId,
	) -> Result<(&'static str, Balances), Failure> {
		let party = self.party(account)?;
		if party.bank(channel).is_none() {
			return Err(Failure::BadRequest(format!("{account} has no bank {channel}")));
		}
		let closing = match self.drive(party, channel, async |d| d.close(channel).await).await {
			Ok(closing) => closing,
			Err(DriveError::Silent { why, .. }) => {
				log::warn!(target: LOG, "💸 {account} bank {channel}: {why}; liquidating");
				self.liquidate(account, channel).await?;
				let balances = party.bank(channel).map(|b| b.balances());
				return Ok(("liquidate", balances.unwrap_or_default()));
			},
			Err(e) => return Err(e.into()),
		};
		let signatures = closing.signatures().expect("the driver returns a complete close");
		let call = pallet_virtual_bank::Call::close {
			channel,
			nonce: closing.nonce,
			balances: closing.balances,
			signatures,
		};
		self.chain.submit(&party.pair, call.into()).await.map_err(Failure::Chain)?;
		Ok(("close", closing.balances))
	}

	/// Liquidate `channel` with our newest sheet: `(nonce, unlock_at)`. The bank is marked
	/// first, durably: from then on nothing more is signed or revealed on it, and the
	/// watchtower owes the liquidation to the chain until it is there.
	pub async fn liquidate(
		&self,
		account: &AccountId,
		channel: ChannelId,
	) -> Result<(Nonce, BlockNumber), Failure> {
		let party = self.party(account)?;
		let sheet = party
			.with(channel, |h| h.liquidate(channel))
			.unwrap_or(Err(HelperError::UnknownBank(channel)))?;
		self.submit_liquidation(party, sheet).await
	}

	/// Tests only (`--rsmc-test-cheats`): from now on `account`'s helper answers no message of
	/// its peer on `channel`, as a peer gone silent (it still sends its own).
	pub fn test_ignore(&self, account: &AccountId, channel: ChannelId) -> Result<(), Failure> {
		let party = self.party(account)?;
		if party.bank(channel).is_none() {
			return Err(Failure::BadRequest(format!("{account} has no bank {channel}")));
		}
		let ignored = party.ignored.as_ref().ok_or_else(|| {
			Failure::BadRequest("this node was not started with --rsmc-test-cheats".into())
		})?;
		ignored.lock().expect("not poisoned").insert(channel);
		Ok(())
	}

	/// Tests only (`--rsmc-test-cheats`): from now on `account`'s helper neither settles nor
	/// fails the HTLCs paid to it, as a payee that never reveals its preimage.
	pub fn test_hold(&self, account: &AccountId) -> Result<(), Failure> {
		let party = self.party(account)?;
		if !self.settings.test_cheats {
			return Err(Failure::BadRequest(
				"this node was not started with --rsmc-test-cheats".into(),
			));
		}
		party.holds.store(true, std::sync::atomic::Ordering::Relaxed);
		Ok(())
	}

	/// Tests only (`--rsmc-test-cheats`): liquidate with an older sheet, revoked or not.
	pub async fn liquidate_revoked(
		&self,
		account: &AccountId,
		channel: ChannelId,
		nonce: Nonce,
	) -> Result<(Nonce, BlockNumber), Failure> {
		let party = self.party(account)?;
		let history = party.history.as_ref().ok_or_else(|| {
			Failure::BadRequest("this node was not started with --rsmc-test-cheats".into())
		})?;
		let sheet =
			history.lock().expect("not poisoned").get(&(channel, nonce)).cloned().ok_or_else(
				|| Failure::BadRequest(format!("no sheet {nonce} of bank {channel} was kept")),
			)?;
		self.submit_liquidation(party, sheet).await
	}

	async fn submit_liquidation(
		&self,
		party: &Account,
		sheet: LiquidationSheet,
	) -> Result<(Nonce, BlockNumber), Failure> {
		let call = liquidate_call(sheet);
		let events = self.chain.submit(&party.pair, call).await.map_err(Failure::Chain)?;
		events
			.iter()
			.find_map(|e| match e {
				RuntimeEvent::VirtualBank(pallet_virtual_bank::Event::Liquidated {
					nonce,
					unlock_at,
					..
				}) => Some((*nonce, *unlock_at)),
				_ => None,
			})
			.ok_or_else(|| Failure::Chain("`liquidate` emitted no `Liquidated` event".into()))
	}
}

/// The call that liquidates with `sheet`: `liquidate`, or with HTLCs pending
/// `liquidate_with_htlcs` (a helper signs no sheet with more than the chain takes).
pub(crate) fn liquidate_call(sheet: LiquidationSheet) -> RuntimeCall {
	let LiquidationSheet { channel, nonce, balances, htlcs, waiver, peer_signature } = sheet;
	if htlcs.is_empty() {
		return pallet_virtual_bank::Call::liquidate {
			channel,
			nonce,
			balances,
			waiver,
			peer_signature,
		}
		.into();
	}
	let htlcs = htlcs.try_into().expect("at most rsmc::MAX_HTLCS, the runtime's MaxHtlcs");
	pallet_virtual_bank::Call::liquidate_with_htlcs {
		channel,
		nonce,
		balances,
		waiver,
		htlcs,
		peer_signature,
	}
	.into()
}

/// A protocol message from its `0x` hex SCALE form.
pub fn decode_message(hex_message: &str) -> Result<Message, String> {
	let raw = hex::decode(hex_message.trim_start_matches("0x"))
		.map_err(|e| format!("the message is not hex: {e}"))?;
	Message::decode_all(&mut &raw[..]).map_err(|e| format!("the message does not decode: {e}"))
}

#[cfg(test)]
mod tests {
	use super::*;
	use frame_support::traits::Get;

	/// Every sheet a helper signs can be liquidated: it never carries more HTLCs than the
	/// runtime takes, and goes on chain with the call that carries them.
	#[test]
	fn a_sheet_liquidates_with_the_call_for_its_htlcs() {
		let max: u32 = <vbank_runtime::Runtime as pallet_virtual_bank::Config>::MaxHtlcs::get();
		assert_eq!(max as usize, rsmc::bank::MAX_HTLCS);
		let sheet = |htlcs| LiquidationSheet {
			channel: 1,
			nonce: 2,
			balances: [3, 4],
			htlcs,
			waiver: AccountId::new([5; 32]),
			peer_signature: sp_core::sr25519::Signature::from_raw([6; 64]).into(),
		};
		let call = liquidate_call(sheet(vec![]));
		assert!(matches!(
			call,
			RuntimeCall::VirtualBank(pallet_virtual_bank::Call::liquidate { .. })
		));
		let htlc = Htlc { from: 0, amount: 1, hashlock: [7; 32].into(), expiry: 9 };
		let full = vec![htlc; max as usize];
		match liquidate_call(sheet(full.clone())) {
			RuntimeCall::VirtualBank(pallet_virtual_bank::Call::liquidate_with_htlcs {
				htlcs,
				..
			}) => assert_eq!(htlcs.into_inner(), full),
			other => panic!("{other:?}"),
		}
	}
}
