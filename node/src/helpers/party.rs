//! One account's helpers: a helper per bank behind its own lock, the account's store and key,
//! and the book of its peers' node URLs.

use rsmc::{
	keys::Sr25519Signer,
	store::{RedbStore, Store, StoreError},
	Bank, Helper, Liquidation, Policy,
};
use serde::{de::DeserializeOwned, Serialize};
use sp_core::{sr25519, Pair};
use std::{
	collections::BTreeMap,
	path::{Path, PathBuf},
	sync::{Arc, Mutex},
};
use vbank_primitives::{ChannelId, Nonce};
use vbank_runtime::AccountId;

/// A small map kept durably in a JSON file beside an account's store: each change is written
/// aside, synced, then renamed over the old file.
pub(super) struct Book<K, V> {
	path: PathBuf,
	entries: Mutex<BTreeMap<K, V>>,
}

impl<K, V> Book<K, V>
where
	K: Ord + Clone + Serialize + DeserializeOwned,
	V: Clone + PartialEq + Serialize + DeserializeOwned,
{
	pub(super) fn open(path: PathBuf) -> Result<Self, String> {
		let entries = match std::fs::read(&path) {
			Ok(raw) => serde_json::from_slice(&raw)
				.map_err(|e| format!("{} does not decode: {e}", path.display()))?,
			Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
			Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
		};
		Ok(Self { path, entries: Mutex::new(entries) })
	}

	pub(super) fn get(&self, key: &K) -> Option<V> {
		self.entries.lock().expect("not poisoned").get(key).cloned()
	}

	/// Record (or with `None`, forget) the entry of `key`, durably.
	pub(super) fn set(&self, key: K, value: Option<V>) -> Result<(), String> {
		let mut entries = self.entries.lock().expect("not poisoned");
		if !Self::change(&mut entries, key, value) {
			return Ok(());
		}
		let write = || -> std::io::Result<()> {
			let aside = self.path.with_extension("json.new");
			let mut file = std::fs::File::create(&aside)?;
			std::io::Write::write_all(&mut file, &serde_json::to_vec(&*entries)?)?;
			file.sync_all()?;
			std::fs::rename(&aside, &self.path)
		};
		NodeStore::blocking(write).map_err(|e| format!("cannot write {}: {e}", self.path.display()))
	}

	/// Record (or forget) the entry of `key` in memory only: it is written with the next
	/// durable change, and lost if none comes before a crash.
	pub(super) fn set_lazily(&self, key: K, value: Option<V>) {
		Self::change(&mut self.entries.lock().expect("not poisoned"), key, value);
	}

	/// Whether the entry of `key` changed.
	fn change(entries: &mut BTreeMap<K, V>, key: K, value: Option<V>) -> bool {
		match value {
			Some(value) => entries.insert(key, value.clone()).as_ref() != Some(&value),
			None => entries.remove(&key).is_some(),
		}
	}
}

/// The banks each helper talks to on other nodes: channel → RPC URL of the peer's node, so
/// that a restarted helper still knows where its peers are.
pub(super) type PeerBook = Book<ChannelId, String>;

/// A preimage this account knows: one it made for an invoice (with the amount it asks), or
/// one it learned from a payment it passed on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub(super) struct Known {
	#[serde(with = "hex_bytes")]
	pub preimage: vbank_primitives::Preimage,
	/// The amount an invoice asks, as a decimal string; `None` for a preimage learned.
	pub invoice: Option<String>,
}

mod hex_bytes {
	use serde::{Deserialize, Deserializer, Serializer};

	pub fn serialize<S: Serializer>(bytes: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
		s.serialize_str(&format!("0x{}", hex::encode(bytes)))
	}

	pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
		let text = String::deserialize(d)?;
		let raw = hex::decode(text.trim_start_matches("0x")).map_err(serde::de::Error::custom)?;
		raw.try_into().map_err(|_| serde::de::Error::custom("not 32 bytes"))
	}
}

/// The preimages an account knows, by hashlock, kept until the HTLCs they unlock are paid.
pub(super) type PreimageBook = Book<sp_core::H256, Known>;

/// A bank's helper: one per bank, each behind its own lock, all of an account's sharing its
/// store, so that the banks of one account never wait on each other.
pub(super) type BankHelper = Helper<NodeStore>;

/// An account's store as the node's async tasks use it. A write waits for a durable commit
/// (its own, or the group commit it joins): it runs in `block_in_place`, so the runtime
/// worker it blocks hands its other tasks to another thread first, and the RPC server, the
/// other banks and the peers' messages go on meanwhile.
#[derive(Clone)]
pub(super) struct NodeStore(Arc<RedbStore>);

impl NodeStore {
	fn blocking<T>(f: impl FnOnce() -> T) -> T {
		use tokio::runtime::{Handle, RuntimeFlavor};
		match Handle::try_current() {
			Ok(runtime) if runtime.runtime_flavor() == RuntimeFlavor::MultiThread => {
				tokio::task::block_in_place(f)
			},
			_ => f(),
		}
	}
}

impl Store for NodeStore {
	fn save(&self, bank: &Bank) -> Result<(), StoreError> {
		Self::blocking(|| self.0.save(bank))
	}

	fn remove(&self, channel: ChannelId) -> Result<(), StoreError> {
		Self::blocking(|| self.0.remove(channel))
	}

	fn load_all(&self) -> Result<Vec<Bank>, StoreError> {
		self.0.load_all()
	}

	fn stored_bytes(&self) -> Result<u64, StoreError> {
		self.0.stored_bytes()
	}

	fn save_entry(&self, key: &[u8], value: Option<&[u8]>) -> Result<(), StoreError> {
		Self::blocking(|| self.0.save_entry(key, value))
	}

	fn load_entries(&self) -> Result<Vec<rsmc::store::Entry>, StoreError> {
		self.0.load_entries()
	}
}

/// One account's helpers.
pub struct Party {
	pub account: AccountId,
	pub(super) pair: sr25519::Pair,
	signer: Arc<Sr25519Signer>,
	genesis: sp_core::H256,
	policy: Policy,
	store: NodeStore,
	pub(super) banks: std::sync::RwLock<BTreeMap<ChannelId, Arc<Mutex<BankHelper>>>>,
	pub(super) peers: PeerBook,
	pub(super) preimages: PreimageBook,
	/// With `--rsmc-test-cheats` only: every sheet this party could once liquidate with, so
	/// that a test can make it cheat. Never stored.
	pub(super) history: Option<Mutex<BTreeMap<(ChannelId, Nonce), Liquidation>>>,
	/// With `--rsmc-test-cheats` only: the banks whose peer this party ignores
	/// (`rsmc_testIgnore`).
	pub(super) ignored: Option<Mutex<std::collections::BTreeSet<ChannelId>>>,
	/// With `--rsmc-test-cheats` only: set by `rsmc_testHold`, this party neither settles,
	/// fails nor passes on the HTLCs paid to it, as a payee that never reveals its preimage,
	/// or an intermediary stopped before forwarding. Forgotten on a restart.
	pub(super) holds: std::sync::atomic::AtomicBool,
	/// Per bank, the turn to drive it: one payment, update or close of ours at a time, so
	/// that a step waiting for its own proposal to become final never counts another's.
	turns: Mutex<BTreeMap<ChannelId, Arc<tokio::sync::Mutex<()>>>>,
}

impl Party {
	pub(super) fn open(
		suri: &str,
		dir: &Path,
		genesis: sp_core::H256,
		cheats: bool,
		policy: Policy,
	) -> Result<Self, String> {
		let pair = sr25519::Pair::from_string(suri, None)
			.map_err(|e| format!("--rsmc-account {suri}: not a secret URI ({e:?})"))?;
		let account = AccountId::from(pair.public());
		let dir = dir.join(account.to_string());
		std::fs::create_dir_all(&dir)
			.map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
		let store = RedbStore::open(&dir.join("banks.redb")).map_err(|e| e.to_string())?;
		let store = NodeStore(Arc::new(store));
		let signer = Arc::new(Sr25519Signer::new(pair.clone()));
		let peers = PeerBook::open(dir.join("peers.json"))?;
		let preimages = PreimageBook::open(dir.join("preimages.json"))?;
		let history = cheats.then(Default::default);
		let ignored = cheats.then(Default::default);
		let party = Self {
			account,
			pair,
			signer,
			genesis,
			policy,
			store: store.clone(),
			banks: Default::default(),
			peers,
			preimages,
			history,
			ignored,
			holds: Default::default(),
			turns: Default::default(),
		};
		for bank in store.load_all().map_err(|e| e.to_string())? {
			let channel = bank.channel();
			let helper = party.helper_with([bank]);
			party.banks.write().expect("not poisoned").insert(channel, helper);
		}
		Ok(party)
	}

	pub(super) fn helper_with(
		&self,
		banks: impl IntoIterator<Item = Bank>,
	) -> Arc<Mutex<BankHelper>> {
		let signer = self.signer.clone();
		let helper = Helper::with_banks(signer, self.genesis, self.store.clone(), banks);
		Arc::new(Mutex::new(helper.with_policy(self.policy)))
	}

	/// The helper of bank `channel`, if we hold it.
	pub(super) fn helper(&self, channel: ChannelId) -> Option<Arc<Mutex<BankHelper>>> {
		self.banks.read().expect("not poisoned").get(&channel).cloned()
	}

	/// The helper of bank `channel`, made empty if we do not hold it yet (for the `Open` of a
	/// bank the chain holds, or our own).
	pub(super) fn helper_or_new(&self, channel: ChannelId) -> Arc<Mutex<BankHelper>> {
		let mut banks = self.banks.write().expect("not poisoned");
		banks.entry(channel).or_insert_with(|| self.helper_with([])).clone()
	}

	/// The turn to drive bank `channel` (see [`Party::turns`]).
	pub(super) fn turn(&self, channel: ChannelId) -> Arc<tokio::sync::Mutex<()>> {
		self.turns.lock().expect("not poisoned").entry(channel).or_default().clone()
	}

	/// Drop the helper of `channel` if it holds no bank (an `Open` it refused).
	pub(super) fn drop_if_empty(&self, channel: ChannelId) {
		if self.bank(channel).is_none() {
			self.banks.write().expect("not poisoned").remove(&channel);
		}
	}

	/// Run `f` on the helper of bank `channel`; never held across an `await`. `None` when we
	/// hold no such bank.
	pub(super) fn with<T>(
		&self,
		channel: ChannelId,
		f: impl FnOnce(&mut BankHelper) -> T,
	) -> Option<T> {
		let helper = self.helper(channel)?;
		// A step that panicked (caught: the node goes on) left the bank as its last commit.
		let mut helper = helper.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
		Some(f(&mut helper))
	}

	/// Our state of bank `channel`.
	pub(super) fn bank(&self, channel: ChannelId) -> Option<Bank> {
		self.with(channel, |h| h.bank(channel).cloned()).flatten()
	}

	/// Every bank we hold.
	pub(super) fn channels(&self) -> Vec<ChannelId> {
		self.banks.read().expect("not poisoned").keys().copied().collect()
	}

	/// The preimage of `hashlock`, if this account knows it.
	pub(super) fn preimage(&self, hashlock: &sp_core::H256) -> Option<vbank_primitives::Preimage> {
		self.preimages.get(hashlock).map(|known| known.preimage)
	}

	/// Keep a preimage learned from a payment passed on (an invoice's stays as it is): durably
	/// when an HTLC paid to us is locked under it (we have it to claim), in memory when we
	/// only paid (the payer's receipt, handed to `rsmc_send`).
	pub(super) fn learn(&self, lock: sp_core::H256, preimage: vbank_primitives::Preimage) {
		if self.preimage(&lock).is_some() {
			return;
		}
		let known = Some(Known { preimage, invoice: None });
		if !self.is_owed(lock) {
			return self.preimages.set_lazily(lock, known);
		}
		if let Err(e) = self.preimages.set(lock, known) {
			log::warn!(target: super::LOG, "💸 {}: cannot keep a preimage learned: {e}", self.account);
		}
	}

	/// Whether an HTLC of one of our banks (its newest sheet) is locked under `lock`.
	fn locks(&self, lock: sp_core::H256) -> bool {
		self.channels()
			.into_iter()
			.filter_map(|c| self.bank(c))
			.any(|b| b.htlcs().iter().any(|h| h.hashlock == lock))
	}

	/// Whether an HTLC under `lock` is paid to us on one of our banks (its newest sheet).
	pub(super) fn is_owed(&self, lock: sp_core::H256) -> bool {
		self.channels()
			.into_iter()
			.filter_map(|c| self.bank(c))
			.any(|b| b.htlcs().iter().any(|h| h.hashlock == lock && usize::from(h.from) != b.me()))
	}

	/// Keep a preimage shown on chain if an HTLC of one of our banks is locked under it.
	pub(super) fn learn_if_ours(&self, lock: sp_core::H256, preimage: vbank_primitives::Preimage) {
		if self.locks(lock) {
			self.learn(lock, preimage);
		}
	}

	/// Forget the preimage of `lock` once no bank of ours holds an HTLC under it: settled
	/// everywhere, nothing left to claim with it (the book stays as small as what is pending).
	pub(super) fn forget_preimage_if_done(&self, lock: sp_core::H256) {
		// Lost in a crash, the forgetting leaves only an entry nothing needs.
		if !self.locks(lock) {
			self.preimages.set_lazily(lock, None);
		}
	}

	/// Whether a test made this party ignore its peer on `channel`.
	pub(super) fn ignores(&self, channel: ChannelId) -> bool {
		self.ignored.as_ref().is_some_and(|i| i.lock().expect("not poisoned").contains(&channel))
	}

	/// Keep the newest sheet of `channel` for the cheat method (test builds of the flag).
	pub(super) fn remember(&self, channel: ChannelId) {
		let Some(history) = &self.history else { return };
		if let Some(Ok(sheet)) = self.with(channel, |h| h.liquidation(channel)) {
			history.lock().expect("not poisoned").insert((channel, sheet.nonce), sheet);
		}
	}
}
