//! The RSMC helpers this node runs (SPEC sections 4 and 5): one per account named with
//! `--rsmc-account`, each with its durable store under the node's base path. They pay and are
//! paid through the `rsmc_` RPC methods ([`rpc`]), reach helpers on other nodes through those
//! nodes' `rsmc_message`, and follow the chain as a watchtower ([`watchtower`]).
//!
//! A helper never holds its lock while it waits for the peer or the chain: a payment is a
//! series of short steps (`pay`, `handle` of each reply), each committed to the store before
//! its message leaves.

pub mod chain;
pub mod rpc;
pub mod watchtower;

use chain::{NodeChain, OnChain};
use codec::{Decode, Encode};
use jsonrpsee::{core::client::ClientT, rpc_params};
use jsonrpsee_ws_client::{WsClient, WsClientBuilder};
use rsmc::{
	bank::Action,
	chain::{ChainCall, ChainEvent},
	keys::Sr25519Signer,
	store::RedbStore,
	Body, Helper, HelperError, Liquidation, Message, Terms,
};
use sp_core::{sr25519, Pair};
use std::{
	collections::{BTreeMap, HashMap},
	path::{Path, PathBuf},
	sync::{Arc, Mutex},
	time::{Duration, Instant},
};
use tokio::sync::{broadcast, mpsc};
use vbank_primitives::{Balance, Balances, ChannelId, ChannelState, Nonce};
use vbank_runtime::{AccountId, BlockNumber, RuntimeCall, RuntimeEvent};

const LOG: &str = "rsmc";

/// How long `rsmc_open` waits for the peer's deposit.
const FUNDING_TIMEOUT: Duration = Duration::from_secs(120);

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
}

impl core::fmt::Display for Failure {
	fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
		match self {
			Self::BadRequest(e)
			| Self::Refused(e)
			| Self::Busy(e)
			| Self::PeerSilent(e)
			| Self::Chain(e)
			| Self::Store(e) => f.write_str(e),
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
			HelperError::Chain(e) => Self::Chain(e),
		}
	}
}

/// Something a helper saw or did, for `rsmc_subscribeEvents` and the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
	pub account: AccountId,
	pub kind: EventKind,
	pub channel: ChannelId,
	pub nonce: Nonce,
	pub balances: Balances,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
	/// The bank is open on chain (`rsmc_open`'s first step).
	Opened,
	/// The nonce-0 handshake is done: each side holds a signed sheet 0.
	Handshake,
	/// This helper's deposit is held.
	Deposited,
	/// Both deposits are held: payments may flow.
	Running,
	/// We paid: the payment is final.
	Paid,
	/// We were paid: the peer revoked its old sheet.
	Received,
	/// The bank was liquidated (by either side).
	Liquidated,
	/// A liquidation with a revoked sheet was punished: the master's share went to the peer.
	Punished,
	/// The master withdrew its share after the lock.
	Withdrawn,
	/// The bank was closed cooperatively.
	Closed,
}

impl EventKind {
	pub fn name(self) -> &'static str {
		match self {
			Self::Opened => "Opened",
			Self::Handshake => "Handshake",
			Self::Deposited => "Deposited",
			Self::Running => "Running",
			Self::Paid => "Paid",
			Self::Received => "Received",
			Self::Liquidated => "Liquidated",
			Self::Punished => "Punished",
			Self::Withdrawn => "Withdrawn",
			Self::Closed => "Closed",
		}
	}
}

/// The banks each helper talks to on other nodes: channel → RPC URL of the peer's node,
/// kept beside the store so that a restarted helper still knows where its peers are.
struct PeerBook {
	path: PathBuf,
	urls: Mutex<BTreeMap<ChannelId, String>>,
}

impl PeerBook {
	fn open(path: PathBuf) -> Result<Self, String> {
		let urls = match std::fs::read(&path) {
			Ok(raw) => serde_json::from_slice(&raw)
				.map_err(|e| format!("{} is not a peer book: {e}", path.display()))?,
			Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
			Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
		};
		Ok(Self { path, urls: Mutex::new(urls) })
	}

	fn get(&self, channel: ChannelId) -> Option<String> {
		self.urls.lock().expect("not poisoned").get(&channel).cloned()
	}

	/// Record (or with `None`, forget) the peer of `channel`, durably: written aside, synced,
	/// then renamed over the old book.
	fn set(&self, channel: ChannelId, url: Option<String>) -> Result<(), String> {
		let mut urls = self.urls.lock().expect("not poisoned");
		let changed = match url {
			Some(url) => urls.insert(channel, url.clone()).as_ref() != Some(&url),
			None => urls.remove(&channel).is_some(),
		};
		if !changed {
			return Ok(());
		}
		let write = || -> std::io::Result<()> {
			let aside = self.path.with_extension("json.new");
			let mut file = std::fs::File::create(&aside)?;
			std::io::Write::write_all(&mut file, &serde_json::to_vec(&*urls)?)?;
			file.sync_all()?;
			std::fs::rename(&aside, &self.path)
		};
		write().map_err(|e| format!("cannot write {}: {e}", self.path.display()))
	}
}

/// One account's helper.
pub struct Party {
	pub account: AccountId,
	pair: sr25519::Pair,
	helper: Mutex<Helper<RedbStore>>,
	peers: PeerBook,
	/// With `--rsmc-test-cheats` only: every sheet this party could once liquidate with, so
	/// that a test can make it cheat. Never stored.
	history: Option<Mutex<BTreeMap<(ChannelId, Nonce), Liquidation>>>,
}

impl Party {
	fn open(suri: &str, dir: &Path, genesis: sp_core::H256, cheats: bool) -> Result<Self, String> {
		let pair = sr25519::Pair::from_string(suri, None)
			.map_err(|e| format!("--rsmc-account {suri}: not a secret URI ({e:?})"))?;
		let account = AccountId::from(pair.public());
		let dir = dir.join(account.to_string());
		std::fs::create_dir_all(&dir)
			.map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
		let store = RedbStore::open(&dir.join("banks.redb")).map_err(|e| e.to_string())?;
		let signer = Arc::new(Sr25519Signer::new(pair.clone()));
		let helper = Helper::new(signer, genesis, store).map_err(|e| e.to_string())?;
		let peers = PeerBook::open(dir.join("peers.json"))?;
		let history = cheats.then(Default::default);
		Ok(Self { account, pair, helper: Mutex::new(helper), peers, history })
	}

	/// Run `f` on the helper; never held across an `await`.
	fn with<T>(&self, f: impl FnOnce(&mut Helper<RedbStore>) -> T) -> T {
		f(&mut self.helper.lock().expect("a helper step does not panic"))
	}

	/// Keep the newest sheet of `channel` for the cheat method (test builds of the flag).
	fn remember(&self, channel: ChannelId) {
		let Some(history) = &self.history else { return };
		if let Ok(sheet) = self.with(|h| h.liquidation(channel)) {
			history.lock().expect("not poisoned").insert((channel, sheet.nonce), sheet);
		}
	}
}

/// Every helper of this node, and what they share: the chain, the way to peers, the events.
pub struct Helpers {
	parties: BTreeMap<AccountId, Arc<Party>>,
	pub chain: Arc<NodeChain>,
	settings: Settings,
	events: broadcast::Sender<Event>,
	/// Calls the watchtower decided on, submitted in order by one task.
	calls: mpsc::UnboundedSender<(AccountId, ChainCall)>,
	remotes: tokio::sync::Mutex<HashMap<String, Arc<WsClient>>>,
}

/// The watchtower's way to submit: the helper decides, the submitting task sends.
struct Queue<'a> {
	who: &'a AccountId,
	calls: &'a mpsc::UnboundedSender<(AccountId, ChainCall)>,
}

impl rsmc::chain::Chain for Queue<'_> {
	fn submit(&self, call: ChainCall) -> Result<(), String> {
		self.calls.send((self.who.clone(), call)).map_err(|_| "the node is stopping".into())
	}
}

/// The calls the watchtower decided on, by the account that submits them.
pub type DecidedCalls = mpsc::UnboundedReceiver<(AccountId, ChainCall)>;

/// Why a message did not reach the peer's helper, or what it said instead of an answer.
enum Miss {
	Refused(String),
	Busy(String),
	Unreachable(String),
}

/// A bank as `rsmc_banks` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BankView {
	pub channel: ChannelId,
	pub clients: [AccountId; 2],
	pub me: u8,
	/// `None` once the chain has removed the bank.
	pub state: Option<ChannelState>,
	pub nonce: Nonce,
	pub balances: Balances,
	pub lock_period: BlockNumber,
	pub unlock_at: Option<BlockNumber>,
}

impl Helpers {
	/// Start the helpers of `settings.accounts`, resuming each from its store. Returns the
	/// helpers and the receiving end of the watchtower's call queue, for [`watchtower::run`].
	pub fn start(
		settings: Settings,
		chain: Arc<NodeChain>,
	) -> Result<(Arc<Self>, DecidedCalls), String> {
		let mut parties = BTreeMap::new();
		for suri in &settings.accounts {
			let party = Party::open(suri, &settings.dir, chain.genesis, settings.test_cheats)?;
			log::info!(
				target: LOG,
				"💸 helper for {} ({} banks in {})",
				party.account,
				party.with(|h| h.banks().count()),
				settings.dir.display()
			);
			parties.insert(party.account.clone(), Arc::new(party));
		}
		let (events, _) = broadcast::channel(4096);
		let (calls, queue) = mpsc::unbounded_channel();
		let helpers = Self { parties, chain, settings, events, calls, remotes: Default::default() };
		Ok((Arc::new(helpers), queue))
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

	fn party(&self, account: &AccountId) -> Result<&Arc<Party>, Failure> {
		self.parties
			.get(account)
			.ok_or_else(|| Failure::BadRequest(format!("this node serves no helper for {account}")))
	}

	fn emit(&self, account: &AccountId, kind: EventKind, channel: ChannelId) {
		if let Some(party) = self.parties.get(account) {
			announce(&self.events, party, kind, channel);
		}
	}

	fn emit_with(
		&self,
		account: &AccountId,
		kind: EventKind,
		channel: ChannelId,
		nonce: Nonce,
		balances: Balances,
	) {
		let event = Event { account: account.clone(), kind, channel, nonce, balances };
		announce_event(&self.events, event);
	}

	/// The banks of `account`, off-chain state joined with the chain's.
	pub fn banks(&self, account: &AccountId) -> Result<Vec<BankView>, Failure> {
		let party = self.party(account)?;
		let banks: Vec<_> = party.with(|h| h.banks().cloned().collect());
		banks
			.into_iter()
			.map(|bank| {
				let on_chain = self.chain.channel(bank.channel()).map_err(Failure::Chain)?;
				Ok(BankView {
					channel: bank.channel(),
					clients: bank.terms.clients.clone(),
					me: bank.me,
					state: on_chain.as_ref().map(|c| c.state),
					nonce: bank.nonce(),
					balances: bank.balances(),
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

	/// Open a bank with `peer`: on chain, the nonce-0 handshake, both deposits. Returns once
	/// the bank is `Running`.
	pub async fn open(
		&self,
		account: &AccountId,
		peer: AccountId,
		amounts: Balances,
		lock_period: BlockNumber,
		peer_url: Option<String>,
	) -> Result<BankView, Failure> {
		let party = self.party(account)?;
		if peer == *account {
			return Err(Failure::BadRequest("a bank needs two different clients".into()));
		}
		if peer_url.is_none() && !self.parties.contains_key(&peer) {
			return Err(Failure::BadRequest(format!(
				"{peer} is not served by this node: give the RPC URL of its node"
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
		};
		let open = party.with(|h| h.open(terms))?;
		self.exchange(party, channel, open).await?;
		party.remember(channel);
		self.emit(account, EventKind::Handshake, channel);

		if amounts[0] > 0 {
			self.deposit(party, channel).await?;
		}
		self.await_running(account, channel).await?;
		self.bank(account, channel)
	}

	async fn deposit(&self, party: &Party, channel: ChannelId) -> Result<(), Failure> {
		let call = pallet_virtual_bank::Call::deposit { channel };
		self.chain.submit(&party.pair, call.into()).await.map_err(Failure::Chain)?;
		self.emit(&party.account, EventKind::Deposited, channel);
		Ok(())
	}

	/// Wait until the chain shows bank `channel` running (the peer deposits on its side).
	async fn await_running(&self, account: &AccountId, channel: ChannelId) -> Result<(), Failure> {
		let deadline = Instant::now() + FUNDING_TIMEOUT;
		loop {
			match self.chain.channel(channel).map_err(Failure::Chain)? {
				Some(bank) if bank.state == ChannelState::Running => {
					self.emit(account, EventKind::Running, channel);
					return Ok(());
				},
				Some(bank) if bank.state == ChannelState::Funding => {},
				other => {
					return Err(Failure::Chain(format!(
						"bank {channel} left funding without running: {:?}",
						other.map(|b| b.state)
					)))
				},
			}
			if Instant::now() > deadline {
				return Err(Failure::PeerSilent(format!(
					"the peer has not deposited into bank {channel} after {FUNDING_TIMEOUT:?}; \
					 `virtualBank.cancel` returns what was deposited"
				)));
			}
			tokio::time::sleep(Duration::from_millis(100)).await;
		}
	}

	/// Pay `amount` on `channel`; returns once the payment is final (the peer has our
	/// revocation). When the peer stays silent past the timeout, liquidate with the newest
	/// sheet and say so.
	pub async fn pay(
		&self,
		account: &AccountId,
		channel: ChannelId,
		amount: Balance,
	) -> Result<(Nonce, Balances), Failure> {
		let party = self.party(account)?;
		// A payment interrupted earlier (a crash, a silent peer) is finished first.
		self.resume(party, channel).await?;
		let propose = party.with(|h| h.pay(channel, amount))?;
		party.remember(channel);
		match self.exchange(party, channel, propose).await {
			Ok(()) => {},
			Err(Failure::PeerSilent(why)) => {
				let (nonce, unlock_at) = self.liquidate(account, channel).await?;
				return Err(Failure::PeerSilent(format!(
					"{why}; liquidated bank {channel} with sheet {nonce}, ours to withdraw at \
					 block {unlock_at}"
				)));
			},
			Err(e) => return Err(e),
		}
		let (nonce, balances) =
			party.with(|h| h.bank(channel).map(|b| (b.nonce(), b.balances()))).unwrap_or_default();
		self.emit(account, EventKind::Paid, channel);
		Ok((nonce, balances))
	}

	/// Send again what `channel` still waits an answer to, if anything.
	async fn resume(&self, party: &Party, channel: ChannelId) -> Result<(), Failure> {
		if party.with(|h| h.bank(channel).is_none()) {
			return Err(Failure::BadRequest(format!("{} has no bank {channel}", party.account)));
		}
		match party.with(|h| h.retransmission(channel)) {
			Some(message) => self.exchange(party, channel, message).await,
			None => Ok(()),
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
		self.resume(party, channel).await?;
		let close = party.with(|h| h.close(channel))?;
		match self.exchange(party, channel, close).await {
			Ok(()) => {},
			Err(Failure::PeerSilent(why)) => {
				log::warn!(target: LOG, "💸 {account} bank {channel}: {why}; liquidating");
				self.liquidate(account, channel).await?;
				let balances = party.with(|h| h.bank(channel).map(|b| b.balances()));
				return Ok(("liquidate", balances.unwrap_or_default()));
			},
			Err(e) => return Err(e),
		}
		let closing =
			party.with(|h| h.bank(channel).and_then(|b| b.closing().cloned())).ok_or_else(
				|| Failure::Refused("the peer's answer did not complete the close".into()),
			)?;
		let signatures = closing.signatures().ok_or_else(|| {
			Failure::Refused("the peer's answer did not complete the close".into())
		})?;
		let call = pallet_virtual_bank::Call::close {
			channel,
			nonce: closing.nonce,
			balances: closing.balances,
			signatures,
		};
		self.chain.submit(&party.pair, call.into()).await.map_err(Failure::Chain)?;
		Ok(("close", closing.balances))
	}

	/// Liquidate `channel` with our newest sheet: `(nonce, unlock_at)`.
	pub async fn liquidate(
		&self,
		account: &AccountId,
		channel: ChannelId,
	) -> Result<(Nonce, BlockNumber), Failure> {
		let party = self.party(account)?;
		let sheet = party.with(|h| h.liquidation(channel))?;
		self.submit_liquidation(party, sheet).await
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
		party: &Party,
		sheet: Liquidation,
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

	/// Carry `message` to the peer of `channel` and each answer back to our helper, until
	/// neither side has more to say.
	async fn exchange(
		&self,
		party: &Party,
		channel: ChannelId,
		mut message: Message,
	) -> Result<(), Failure> {
		let deadline = Instant::now() + self.settings.peer_timeout;
		loop {
			let reply = match self.deliver(party, channel, &message).await {
				// The peer is finishing a payment of its own on this bank: ask again.
				Err(Failure::Busy(_)) if Instant::now() < deadline => {
					tokio::time::sleep(Duration::from_millis(100)).await;
					continue;
				},
				reply => reply?,
			};
			let Some(reply) = reply else { return Ok(()) };
			match party.with(|h| h.handle(&reply)) {
				Ok(Some(next)) => {
					party.remember(channel);
					message = next;
				},
				Ok(None) => return Ok(()),
				Err(HelperError::Protocol(e)) if e.action() == Action::Ignore => return Ok(()),
				Err(e) => return Err(e.into()),
			}
		}
	}

	/// One message to the peer of `channel` and its answer; a silent peer is asked again until
	/// the timeout. The peer may be a helper of this node or of another.
	async fn deliver(
		&self,
		party: &Party,
		channel: ChannelId,
		message: &Message,
	) -> Result<Option<Message>, Failure> {
		let Some(url) = party.peers.get(channel) else {
			let peer = party.with(|h| h.bank(channel).map(|b| b.peer().clone()));
			let peer =
				peer.ok_or_else(|| Failure::BadRequest(format!("no bank {channel} here")))?;
			return self.receive(Some(&peer), message, None).await;
		};
		let deadline = Instant::now() + self.settings.peer_timeout;
		let hex_message = format!("0x{}", hex::encode(message.encode()));
		loop {
			let attempt = async {
				let client = self.remote(&url).await?;
				client
					.request::<Option<String>, _>(
						"rsmc_message",
						rpc_params![hex_message.clone(), self.settings.own_url.clone()],
					)
					.await
					.map_err(|e| match e {
						jsonrpsee::core::ClientError::Call(e) if e.code() == rpc::BUSY => {
							Miss::Busy(e.message().to_string())
						},
						jsonrpsee::core::ClientError::Call(e) => {
							Miss::Refused(e.message().to_string())
						},
						e => Miss::Unreachable(e.to_string()),
					})
			};
			let left = deadline.saturating_duration_since(Instant::now());
			match tokio::time::timeout(left, attempt).await {
				Ok(Ok(None)) => return Ok(None),
				Ok(Ok(Some(reply))) => {
					return decode_message(&reply)
						.map(Some)
						.map_err(|e| Failure::Refused(format!("the peer answered nonsense: {e}")))
				},
				// The peer's helper refused the message: say why.
				Ok(Err(Miss::Refused(why))) => {
					return Err(Failure::Refused(format!("the peer refused: {why}")))
				},
				Ok(Err(Miss::Busy(why))) => {
					return Err(Failure::Busy(format!("the peer is busy: {why}")))
				},
				// The connection failed: reconnect and ask again until the timeout.
				Ok(Err(Miss::Unreachable(why))) => {
					self.remotes.lock().await.remove(&url);
					log::debug!(target: LOG, "peer at {url} unreachable: {why}");
				},
				Err(_) => {},
			}
			if Instant::now() >= deadline {
				return Err(Failure::PeerSilent(format!(
					"the peer at {url} did not answer {} within {:?}",
					message.body.name(),
					self.settings.peer_timeout
				)));
			}
			tokio::time::sleep(Duration::from_millis(200)).await;
		}
	}

	async fn remote(&self, url: &str) -> Result<Arc<WsClient>, Miss> {
		let mut remotes = self.remotes.lock().await;
		if let Some(client) = remotes.get(url).filter(|c| c.is_connected()) {
			return Ok(client.clone());
		}
		let client = WsClientBuilder::default()
			.request_timeout(self.settings.peer_timeout)
			.build(url)
			.await
			.map_err(|e| Miss::Unreachable(format!("cannot connect to {url}: {e}")))?;
		let client = Arc::new(client);
		remotes.insert(url.to_string(), client.clone());
		Ok(client)
	}

	/// A protocol message from a peer (`rsmc_message`, or a helper of this node): the answer.
	/// `to` is the recipient when the sender knows it (a helper of this node); `from_url`
	/// is where the sender's node is reached, remembered for the bank it opens.
	pub async fn receive(
		&self,
		to: Option<&AccountId>,
		message: &Message,
		from_url: Option<String>,
	) -> Result<Option<Message>, Failure> {
		let channel = message.channel;
		let party = match (to, &message.body) {
			(Some(to), _) => self.party(to)?.clone(),
			(None, body) => match (self.holders(channel).into_iter().next(), body) {
				(Some(party), _) => party,
				(None, Body::Open { clients, .. }) => self.party(&clients[1])?.clone(),
				(None, _) => {
					return Err(Failure::BadRequest(format!("no helper here has bank {channel}")))
				},
			},
		};
		if let Body::Open { clients, balances, .. } = &message.body {
			if party.with(|h| h.bank(channel).is_none()) {
				self.check_open(channel, clients, balances).await?;
				party.peers.set(channel, from_url).map_err(Failure::Store)?;
			}
		}
		let received_before = party.with(|h| {
			h.bank(channel).and_then(|b| b.ledger().map(|l| l.peer_secrets.newest_index()))
		});
		let mut handled = party.with(|h| h.handle(message));
		if matches!(&handled, Err(HelperError::Protocol(e)) if e.action() == Action::Retry)
			&& party.with(|h| h.retransmission(channel)).is_some()
		{
			// We still wait on the peer for a payment it may have forgotten it was making
			// (its node restarted): finish that first, then answer.
			Box::pin(self.resume(&party, channel)).await?;
			handled = party.with(|h| h.handle(message));
		}
		let reply = match handled {
			Ok(reply) => reply,
			Err(HelperError::Protocol(e)) if e.action() == Action::Ignore => return Ok(None),
			Err(e) => return Err(e.into()),
		};
		party.remember(channel);
		match &message.body {
			Body::OpenConfirm { .. } => {
				self.emit(&party.account, EventKind::Handshake, channel);
				self.deposit_later(party.clone(), channel);
			},
			Body::Revoke { .. } => {
				let received_now = party.with(|h| {
					h.bank(channel).and_then(|b| b.ledger().map(|l| l.peer_secrets.newest_index()))
				});
				if received_now != received_before {
					self.emit(&party.account, EventKind::Received, channel);
				}
			},
			_ => {},
		}
		Ok(reply)
	}

	/// Before answering an `Open`: the chain must hold that very bank, still funding. The
	/// opener's node may be a block ahead of ours, so wait a little for it.
	async fn check_open(
		&self,
		channel: ChannelId,
		clients: &[AccountId; 2],
		balances: &Balances,
	) -> Result<(), Failure> {
		let deadline = Instant::now() + self.settings.peer_timeout;
		loop {
			if let Some(bank) = self.chain.channel(channel).map_err(Failure::Chain)? {
				return if bank.clients == *clients
					&& bank.balances == *balances
					&& bank.state == ChannelState::Funding
				{
					Ok(())
				} else {
					Err(Failure::Refused(format!(
						"the terms offered for bank {channel} are not the chain's"
					)))
				};
			}
			if Instant::now() >= deadline {
				return Err(Failure::Refused(format!("the chain has no bank {channel}")));
			}
			tokio::time::sleep(Duration::from_millis(100)).await;
		}
	}

	/// Deposit our side of `channel` (if it is not there yet) without holding up the answer
	/// to the peer. A deposit reported lost may still land: the chain is asked before each
	/// new attempt.
	fn deposit_later(&self, party: Arc<Party>, channel: ChannelId) {
		let chain = self.chain.clone();
		let events = self.events.clone();
		tokio::spawn(async move {
			for attempt in 1..=3 {
				let Ok(Some(on_chain)) = chain.channel(channel) else { return };
				let Some(me) = on_chain.client_index(&party.account) else { return };
				if on_chain.state != ChannelState::Funding
					|| on_chain.deposited[me]
					|| on_chain.balances[me] == 0
				{
					return;
				}
				let call = pallet_virtual_bank::Call::deposit { channel };
				match chain.submit(&party.pair, call.into()).await {
					Ok(_) => {
						announce(&events, &party, EventKind::Deposited, channel);
						return;
					},
					Err(e) => log::warn!(
						target: LOG,
						"💸 {} bank {channel}: deposit failed (attempt {attempt} of 3): {e}",
						party.account
					),
				}
				tokio::time::sleep(Duration::from_secs(2)).await;
			}
		});
	}

	/// After a restart: finish what each bank was doing (a deposit, a payment in flight, a
	/// liquidation to punish or to withdraw from), and forget banks the chain has settled.
	pub async fn resume_all(self: &Arc<Self>) {
		for party in self.parties.values() {
			let banks: Vec<_> = party.with(|h| h.banks().map(|b| b.channel()).collect());
			for channel in banks {
				let on_chain = match self.chain.channel(channel) {
					Ok(on_chain) => on_chain,
					Err(e) => {
						log::warn!(target: LOG, "💸 cannot resume bank {channel}: {e}");
						continue;
					},
				};
				match on_chain {
					None => self.forget(party, channel),
					Some(bank) => self.resume_bank(party, channel, bank).await,
				}
			}
		}
	}

	async fn resume_bank(&self, party: &Arc<Party>, channel: ChannelId, bank: OnChain) {
		let active = party.with(|h| h.bank(channel).and_then(|b| b.ledger()).is_some());
		match (bank.state, &bank.liquidation) {
			(ChannelState::Funding, _) if active => self.deposit_later(party.clone(), channel),
			(ChannelState::Liquidating, Some(liquidation)) => {
				let event = ChainEvent::Liquidated {
					channel,
					master: bank.clients[usize::from(liquidation.master)].clone(),
					nonce: liquidation.nonce,
					balances: bank.balances,
					unlock_at: liquidation.unlock_at.into(),
				};
				self.watch(party, &event);
			},
			_ => {
				if let Err(e) = self.resume(party, channel).await {
					log::warn!(target: LOG, "💸 {} bank {channel}: cannot resume: {e}", party.account);
				}
			},
		}
	}

	/// The watchtower's decision for one party about one chain event; the calls it decides on
	/// go to the submission queue.
	fn watch(&self, party: &Party, event: &ChainEvent) {
		let queue = Queue { who: &party.account, calls: &self.calls };
		match party.with(|h| h.on_chain_event(event, &queue)) {
			Ok(calls) => {
				for call in calls {
					log::info!(target: LOG, "💸 {} watchtower: {}", party.account, describe_call(&call));
				}
			},
			Err(e) => log::warn!(target: LOG, "💸 {} watchtower: {e}", party.account),
		}
	}

	fn forget(&self, party: &Party, channel: ChannelId) {
		if let Err(e) = party.with(|h| h.forget(channel)) {
			log::warn!(target: LOG, "💸 {} bank {channel}: cannot forget: {e}", party.account);
		}
		let _ = party.peers.set(channel, None);
	}

	/// The parties holding bank `channel`.
	fn holders(&self, channel: ChannelId) -> Vec<Arc<Party>> {
		self.parties.values().filter(|p| p.with(|h| h.bank(channel).is_some())).cloned().collect()
	}

	/// Submit a call the watchtower decided on.
	pub async fn submit_decided(&self, who: &AccountId, call: ChainCall) {
		let Some(party) = self.parties.get(who) else { return };
		let what = describe_call(&call);
		let call = match call {
			ChainCall::Liquidate(sheet) => liquidate_call(sheet),
			ChainCall::WithdrawByMaster { channel } => {
				pallet_virtual_bank::Call::withdraw_by_master { channel }.into()
			},
			ChainCall::WithdrawByPeer { channel, waiver_signature } => {
				pallet_virtual_bank::Call::withdraw_by_peer { channel, waiver_signature }.into()
			},
		};
		match self.chain.submit(&party.pair, call).await {
			Ok(_) => log::info!(target: LOG, "💸 {who} watchtower: {what}: in a block"),
			Err(e) => log::warn!(target: LOG, "💸 {who} watchtower: {what}: {e}"),
		}
	}
}

/// Tell the log and the subscribers what `party` saw or did on `channel`, with the newest
/// sheet it holds.
fn announce(events: &broadcast::Sender<Event>, party: &Party, kind: EventKind, channel: ChannelId) {
	let (nonce, balances) =
		party.with(|h| h.bank(channel).map(|b| (b.nonce(), b.balances()))).unwrap_or_default();
	let event = Event { account: party.account.clone(), kind, channel, nonce, balances };
	announce_event(events, event);
}

fn announce_event(events: &broadcast::Sender<Event>, event: Event) {
	let Event { account, kind, channel, nonce, balances } = &event;
	log::info!(
		target: LOG,
		"💸 {account} bank {channel}: {} (nonce {nonce}, balances {} / {})",
		kind.name(),
		balances[0],
		balances[1]
	);
	// Nobody listening is fine.
	let _ = events.send(event);
}

fn liquidate_call(sheet: Liquidation) -> RuntimeCall {
	pallet_virtual_bank::Call::liquidate {
		channel: sheet.channel,
		nonce: sheet.nonce,
		balances: sheet.balances,
		waiver: sheet.waiver,
		peer_signature: sheet.peer_signature,
	}
	.into()
}

fn describe_call(call: &ChainCall) -> String {
	match call {
		ChainCall::Liquidate(sheet) => {
			format!("liquidate bank {} with sheet {}", sheet.channel, sheet.nonce)
		},
		ChainCall::WithdrawByMaster { channel } => format!("withdraw_by_master on bank {channel}"),
		ChainCall::WithdrawByPeer { channel, .. } => {
			format!("withdraw_by_peer on bank {channel}: the peer liquidated with a revoked sheet")
		},
	}
}

/// A protocol message from its `0x` hex SCALE form.
pub fn decode_message(hex_message: &str) -> Result<Message, String> {
	let raw = hex::decode(hex_message.trim_start_matches("0x"))
		.map_err(|e| format!("the message is not hex: {e}"))?;
	Message::decode(&mut &raw[..]).map_err(|e| format!("the message does not decode: {e}"))
}
