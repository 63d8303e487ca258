//! One account this node serves: a helper per bank (`rsmc::Helper`) behind its own lock, the
//! account's store, key and relay, and the book of its peers' node URLs.

use rsmc::{
	keys::Sr25519Signer,
	relay::Relay,
	route::Forwarding,
	store::{RedbStore, Store, StoreError},
	Bank, Helper, LiquidationSheet, Policy,
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

/// The book of preimages the node kept in `preimages.json` before its relay kept them in the
/// account's store: read once, handed to the relay, then renamed aside.
mod legacy {
	use serde::{Deserialize, Deserializer};
	use std::{collections::BTreeMap, path::Path};

	#[derive(Deserialize)]
	struct Known {
		#[serde(deserialize_with = "hex_bytes")]
		preimage: vbank_primitives::Preimage,
		/// The amount an invoice asks, as a decimal string; `None` for a preimage learned.
		invoice: Option<String>,
	}

	fn hex_bytes<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
		let text = String::deserialize(d)?;
		let raw = hex::decode(text.trim_start_matches("0x")).map_err(serde::de::Error::custom)?;
		raw.try_into().map_err(|_| serde::de::Error::custom("not 32 bytes"))
	}

	/// Every preimage of the book at `path` (none if there is no book).
	pub(super) fn preimages(path: &Path) -> Result<Vec<rsmc::relay::Known>, String> {
		let book: BTreeMap<String, Known> = match std::fs::read(path) {
			Ok(raw) => serde_json::from_slice(&raw)
				.map_err(|e| format!("{} does not decode: {e}", path.display()))?,
			Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
			Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
		};
		book.into_values()
			.map(|known| {
				let invoice = match known.invoice {
					Some(amount) => Some(amount.parse().map_err(|e| {
						format!("{}: an invoice of {amount:?}: {e}", path.display())
					})?),
					None => None,
				};
				Ok(rsmc::relay::Known { preimage: known.preimage, invoice })
			})
			.collect()
	}
}

/// An account's relay (`rsmc::relay`): its forwarding table and preimages, in its store.
pub(super) type AccountRelay = Relay<NodeStore>;

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
	/// The store in the redb database at `path`, made if missing.
	pub(super) fn open(path: &Path) -> Result<Self, String> {
		let store = RedbStore::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
		Ok(Self(Arc::new(store)))
	}

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

/// One account this node serves: its banks' helpers, store, key and relay.
pub struct Account {
	pub account: AccountId,
	pub(super) pair: sr25519::Pair,
	signer: Arc<Sr25519Signer>,
	genesis: sp_core::H256,
	policy: Policy,
	store: NodeStore,
	pub(super) banks: std::sync::RwLock<BTreeMap<ChannelId, Arc<Mutex<BankHelper>>>>,
	pub(super) peers: PeerBook,
	/// What links this account's banks: forwards, preimages. Locked before any helper, never
	/// across an `await`.
	relay: Mutex<AccountRelay>,
	/// With `--rsmc-test-cheats` only: every sheet this party could once liquidate with, so
	/// that a test can make it cheat. Never stored.
	pub(super) history: Option<Mutex<BTreeMap<(ChannelId, Nonce), LiquidationSheet>>>,
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
	/// The events reported once per bank (`Opened`, `Running`) since the node started.
	reported_once: Mutex<std::collections::BTreeSet<(ChannelId, super::EventKind)>>,
	/// Whether the store was made at this start: none was there (a first start, or a store
	/// lost), so the banks the chain holds for the account are taken back from it.
	pub(super) new_store: bool,
}

impl Account {
	pub(super) fn open(
		suri: &str,
		dir: &Path,
		genesis: sp_core::H256,
		cheats: bool,
		policy: Policy,
		forwarding: Forwarding,
	) -> Result<Self, String> {
		let pair = sr25519::Pair::from_string(suri, None)
			.map_err(|e| format!("--rsmc-account {suri}: not a secret URI ({e:?})"))?;
		let account = AccountId::from(pair.public());
		let dir = dir.join(account.to_string());
		std::fs::create_dir_all(&dir)
			.map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
		let new_store = !dir.join("banks.redb").exists();
		let store = NodeStore::open(&dir.join("banks.redb"))?;
		let signer = Arc::new(Sr25519Signer::new(pair.clone()));
		let peers = PeerBook::open(dir.join("peers.json"))?;
		let mut relay = Relay::new(store.clone(), forwarding).map_err(|e| e.to_string())?;
		let book = dir.join("preimages.json");
		let known = legacy::preimages(&book)?;
		if !known.is_empty() {
			for known in known {
				relay.remember(known).map_err(|e| e.to_string())?;
			}
			let aside = book.with_extension("json.imported");
			std::fs::rename(&book, &aside)
				.map_err(|e| format!("cannot rename {}: {e}", book.display()))?;
		}
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
			relay: Mutex::new(relay),
			history,
			ignored,
			holds: Default::default(),
			turns: Default::default(),
			reported_once: Default::default(),
			new_store,
		};
		for bank in store.load_all().map_err(|e| e.to_string())? {
			let channel = bank.channel();
			let helper = party.helper_with([bank]);
			party.banks.write().expect("not poisoned").insert(channel, helper);
		}
		Ok(party)
	}

	/// The account's key, as the signer of its records and messages.
	pub(super) fn signer(&self) -> &Sr25519Signer {
		&self.signer
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

	/// The turn to drive bank `channel` (see [`Account::turns`]).
	pub(super) fn turn(&self, channel: ChannelId) -> Arc<tokio::sync::Mutex<()>> {
		self.turns.lock().expect("not poisoned").entry(channel).or_default().clone()
	}

	/// Forget bank `channel` in memory: its helper and its turn (L3 of the HTLC review: the
	/// turns of banks long gone piled up).
	pub(super) fn drop_bank(&self, channel: ChannelId) {
		self.banks.write().expect("not poisoned").remove(&channel);
		self.turns.lock().expect("not poisoned").remove(&channel);
		self.reported_once.lock().expect("not poisoned").retain(|(c, _)| *c != channel);
	}

	/// Whether `kind`, an event reported once per bank, is yet to be reported for `channel`:
	/// `true` the first time only.
	pub(super) fn first_report(&self, channel: ChannelId, kind: super::EventKind) -> bool {
		self.reported_once.lock().expect("not poisoned").insert((channel, kind))
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

	/// What our tower should hold of bank `channel`: the secrets the peer revealed, signed.
	pub(super) fn tower_update(&self, channel: ChannelId) -> Option<rsmc::tower::TowerUpdate> {
		let bank = self.bank(channel)?;
		let revealed = &bank.ledger()?.peer_secrets;
		Some(rsmc::tower::TowerUpdate::signed(&self.genesis, channel, revealed, &*self.signer))
	}

	/// Our state of bank `channel`.
	pub(super) fn bank(&self, channel: ChannelId) -> Option<Bank> {
		self.with(channel, |h| h.bank(channel).cloned()).flatten()
	}

	/// Every bank we hold.
	pub(super) fn channels(&self) -> Vec<ChannelId> {
		self.banks.read().expect("not poisoned").keys().copied().collect()
	}

	/// The account's relay; see [`Account::relay`]'s field.
	pub(super) fn relay(&self) -> std::sync::MutexGuard<'_, AccountRelay> {
		// A relay call that panicked (caught: the node goes on) left what it had stored.
		self.relay.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
	}

	/// The preimage of `hashlock`, if this account knows it.
	pub(super) fn preimage(&self, hashlock: &sp_core::H256) -> Option<vbank_primitives::Preimage> {
		self.relay().preimage(hashlock)
	}

	/// Whether a bank of ours holds an HTLC under `lock` on its newest sheet: read in place,
	/// nothing cloned (a block of claims asks it of every account, per claim: L4 of the HTLC
	/// review).
	pub(super) fn holds_htlc_under(&self, lock: sp_core::H256) -> bool {
		let helpers: Vec<_> =
			self.banks.read().expect("not poisoned").iter().map(|(c, h)| (*c, h.clone())).collect();
		helpers.into_iter().any(|(channel, helper)| {
			let helper = helper.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
			helper.bank(channel).is_some_and(|b| b.htlcs().iter().any(|h| h.hashlock == lock))
		})
	}

	/// Every bank we hold, as it is now.
	pub(super) fn all_banks(&self) -> Vec<Bank> {
		self.channels().into_iter().filter_map(|c| self.bank(c)).collect()
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

#[cfg(test)]
mod tests {
	use super::*;
	use rsmc::route::Forwarding;

	const FORWARDING: Forwarding = Forwarding { fee: 0, delta: 40, dust: 0 };

	fn open(dir: &Path) -> Account {
		Account::open("//Alice", dir, Default::default(), false, Policy::ACCEPT_ALL, FORWARDING)
			.expect("the party opens")
	}

	/// An older node kept its preimages in `preimages.json`: the first start reads them into
	/// the relay's store (an invoice with its amount, a learned one without) and renames the
	/// book aside, so the second start neither needs nor reads it.
	#[test]
	fn an_older_nodes_preimage_book_is_read_into_the_store_once() {
		let dir = tempfile::tempdir().unwrap();
		let account =
			AccountId::from(sr25519::Pair::from_string("//Alice", None).unwrap().public());
		let own = dir.path().join(account.to_string());
		std::fs::create_dir_all(&own).unwrap();
		let (invoiced, learned) = ([1u8; 32], [2u8; 32]);
		let book = serde_json::json!({
			"0xaa": { "preimage": format!("0x{}", hex::encode(invoiced)), "invoice": "500" },
			"0xbb": { "preimage": format!("0x{}", hex::encode(learned)), "invoice": null },
		});
		std::fs::write(own.join("preimages.json"), book.to_string()).unwrap();

		let party = open(dir.path());
		let lock = |p: &[u8; 32]| vbank_primitives::hashlock(p);
		assert_eq!(party.preimage(&lock(&invoiced)), Some(invoiced));
		assert_eq!(party.relay().preimages()[&lock(&invoiced)].invoice, Some(500));
		assert_eq!(party.relay().preimages()[&lock(&learned)].invoice, None);
		assert!(!own.join("preimages.json").exists());
		assert!(own.join("preimages.json.imported").exists());
		drop(party);

		let party = open(dir.path());
		assert_eq!(party.relay().preimages().len(), 2, "kept in the store");
	}

	/// A bank the chain removed leaves nothing in memory: its helper and its turn go (the
	/// turns of banks long gone used to pile up).
	#[test]
	fn a_dropped_bank_leaves_no_helper_and_no_turn() {
		let dir = tempfile::tempdir().unwrap();
		let party = open(dir.path());
		party.helper_or_new(7);
		let _turn = party.turn(7);
		party.drop_bank(7);
		assert!(party.helper(7).is_none());
		assert!(party.turns.lock().unwrap().is_empty());
	}
}
