//! Where a helper keeps its banks, and its relay the preimages and forwards that link them
//! ([`crate::relay::Relay`]): behind the [`Store`] trait, in memory for tests and in a
//! crash-safe redb database on disk. A helper commits a bank's new state durably before it
//! sends anything that depends on it; banks moving at once share a commit (group commit).

use crate::bank::Bank;
use codec::Encode;
use redb::ReadableDatabase;
use std::{
	collections::BTreeMap,
	path::Path,
	sync::{
		atomic::{AtomicU64, Ordering},
		Arc, Condvar, Mutex, OnceLock,
	},
};
use vbank_primitives::ChannelId;

/// A store failure. The bank's previous state is still what the store holds.
#[derive(Debug)]
pub struct StoreError(pub String);

impl core::fmt::Display for StoreError {
	fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
		write!(f, "store: {}", self.0)
	}
}

impl std::error::Error for StoreError {}

fn store_error(e: impl core::fmt::Display) -> StoreError {
	StoreError(e.to_string())
}

/// Durable storage of banks, by channel id, and of the relay's entries, by key.
pub trait Store: Send + Sync {
	/// Replace the state of `bank`; durable once this returns `Ok`.
	fn save(&self, bank: &Bank) -> Result<(), StoreError>;
	/// Forget a closed bank.
	fn remove(&self, channel: ChannelId) -> Result<(), StoreError>;
	/// Every bank stored.
	fn load_all(&self) -> Result<Vec<Bank>, StoreError>;
	/// The encoded size of everything stored, in bytes.
	fn stored_bytes(&self) -> Result<u64, StoreError>;
	/// Replace the relay's entry under `key` (`None`: forget it); durable once this returns
	/// `Ok`.
	fn save_entry(&self, key: &[u8], value: Option<&[u8]>) -> Result<(), StoreError>;
	/// Every entry of the relay stored.
	fn load_entries(&self) -> Result<Vec<Entry>, StoreError>;
}

/// One of the relay's entries: its key and value.
pub type Entry = (Vec<u8>, Vec<u8>);

/// What a store holds a value under: a bank, or an entry of the relay.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
	Bank(ChannelId),
	Entry(Vec<u8>),
}

/// A [`Store`] in memory: banks are kept encoded, as on disk.
#[derive(Default)]
pub struct MemoryStore(Mutex<BTreeMap<Key, Vec<u8>>>);

impl MemoryStore {
	fn set(&self, key: Key, value: Option<Vec<u8>>) -> Result<(), StoreError> {
		let mut stored = self.0.lock().map_err(store_error)?;
		match value {
			Some(value) => stored.insert(key, value),
			None => stored.remove(&key),
		};
		Ok(())
	}
}

impl Store for MemoryStore {
	fn save(&self, bank: &Bank) -> Result<(), StoreError> {
		self.set(Key::Bank(bank.channel()), Some(bank.encode()))
	}

	fn remove(&self, channel: ChannelId) -> Result<(), StoreError> {
		self.set(Key::Bank(channel), None)
	}

	fn load_all(&self) -> Result<Vec<Bank>, StoreError> {
		let stored = self.0.lock().map_err(store_error)?;
		let banks = stored.iter().filter(|(key, _)| matches!(key, Key::Bank(_)));
		banks.map(|(_, bytes)| Bank::from_stored(bytes).map_err(store_error)).collect()
	}

	fn stored_bytes(&self) -> Result<u64, StoreError> {
		Ok(self.0.lock().map_err(store_error)?.values().map(|b| b.len() as u64).sum())
	}

	fn save_entry(&self, key: &[u8], value: Option<&[u8]>) -> Result<(), StoreError> {
		self.set(Key::Entry(key.to_vec()), value.map(<[u8]>::to_vec))
	}

	fn load_entries(&self) -> Result<Vec<Entry>, StoreError> {
		let stored = self.0.lock().map_err(store_error)?;
		let entries = stored.iter().filter_map(|(key, value)| match key {
			Key::Entry(key) => Some((key.clone(), value.clone())),
			Key::Bank(_) => None,
		});
		Ok(entries.collect())
	}
}

const BANKS: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("banks");
const ENTRIES: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("relay");

/// A [`Store`] in a redb database file, with group commit: every save is durable (fsynced)
/// when it returns, and the saves of different banks that arrive while a commit is being
/// written go together into the next one, so banks moving at once share its fsync.
///
/// The first caller to find no commit under way leads: it takes every write queued so far,
/// its own included, commits them in one transaction, and hands each waiter the outcome.
/// The others wait for the outcome of their own write; if no commit is under way when they
/// wake, one of them leads the next. A bank's saves come one after another (its helper's
/// lock), so a batch holds at most one write per bank; an account's relay entries likewise
/// (its lock).
pub struct RedbStore {
	db: redb::Database,
	queue: Mutex<Queue>,
	/// Signalled when a commit ends.
	committed: Condvar,
	transactions: AtomicU64,
}

#[derive(Default)]
struct Queue {
	writes: Vec<Write>,
	committing: bool,
}

/// A new value (`None`: remove it) and where its caller learns the outcome.
struct Write {
	key: Key,
	bytes: Option<Vec<u8>>,
	outcome: Arc<OnceLock<Result<(), String>>>,
}

impl RedbStore {
	/// Open or create the database at `path`.
	pub fn open(path: &Path) -> Result<Self, StoreError> {
		if let Some(dir) = path.parent() {
			std::fs::create_dir_all(dir).map_err(store_error)?;
		}
		let db = redb::Database::create(path).map_err(store_error)?;
		// Create the table so that reading an empty store works.
		let tx = db.begin_write().map_err(store_error)?;
		tx.open_table(BANKS).map_err(store_error)?;
		tx.open_table(ENTRIES).map_err(store_error)?;
		tx.commit().map_err(store_error)?;
		Ok(Self {
			db,
			queue: Mutex::default(),
			committed: Condvar::new(),
			transactions: AtomicU64::new(0),
		})
	}

	/// How many durable transactions saves and removals have taken so far: fewer than the
	/// saves and removals when banks moved at once.
	pub fn transactions(&self) -> u64 {
		self.transactions.load(Ordering::Relaxed)
	}

	/// Queue the new value under `key` and return once it is durable (or failed to be).
	fn write(&self, key: Key, bytes: Option<Vec<u8>>) -> Result<(), StoreError> {
		let outcome = Arc::new(OnceLock::new());
		let mut queue = self.queue.lock().map_err(store_error)?;
		queue.writes.push(Write { key, bytes, outcome: outcome.clone() });
		loop {
			if let Some(outcome) = outcome.get() {
				return outcome.clone().map_err(StoreError);
			}
			if queue.committing {
				queue = self.committed.wait(queue).map_err(store_error)?;
				continue;
			}
			queue.committing = true;
			let batch = std::mem::take(&mut queue.writes);
			drop(queue);
			let lead = Lead { store: self, batch };
			let result = self.commit(&lead.batch).map_err(|e| e.0);
			for write in &lead.batch {
				let _ = write.outcome.set(result.clone());
			}
			drop(lead);
			queue = self.queue.lock().map_err(store_error)?;
		}
	}

	/// One durable transaction with every write of `batch`, in order.
	fn commit(&self, batch: &[Write]) -> Result<(), StoreError> {
		let tx = self.db.begin_write().map_err(store_error)?;
		{
			let mut banks = tx.open_table(BANKS).map_err(store_error)?;
			let mut entries = tx.open_table(ENTRIES).map_err(store_error)?;
			for write in batch {
				match (&write.key, &write.bytes) {
					(Key::Bank(channel), Some(bytes)) => {
						banks.insert(channel, &bytes[..]).map(drop)
					},
					(Key::Bank(channel), None) => banks.remove(channel).map(drop),
					(Key::Entry(key), Some(bytes)) => {
						entries.insert(&key[..], &bytes[..]).map(drop)
					},
					(Key::Entry(key), None) => entries.remove(&key[..]).map(drop),
				}
				.map_err(store_error)?;
			}
		}
		tx.commit().map_err(store_error)?;
		self.transactions.fetch_add(1, Ordering::Relaxed);
		Ok(())
	}
}

/// The leader's batch: when it is done with it, even by a panic, the writes it did not
/// commit fail, the queue is free for the next leader, and the waiters wake.
struct Lead<'a> {
	store: &'a RedbStore,
	batch: Vec<Write>,
}

impl Drop for Lead<'_> {
	fn drop(&mut self) {
		for write in &self.batch {
			let _ = write.outcome.set(Err("the commit was interrupted".into()));
		}
		let mut queue = self.store.queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
		queue.committing = false;
		self.store.committed.notify_all();
	}
}

impl Store for RedbStore {
	fn save(&self, bank: &Bank) -> Result<(), StoreError> {
		self.write(Key::Bank(bank.channel()), Some(bank.encode()))
	}

	fn remove(&self, channel: ChannelId) -> Result<(), StoreError> {
		self.write(Key::Bank(channel), None)
	}

	fn load_all(&self) -> Result<Vec<Bank>, StoreError> {
		use redb::ReadableTable;
		let tx = self.db.begin_read().map_err(store_error)?;
		let table = tx.open_table(BANKS).map_err(store_error)?;
		let mut banks = Vec::new();
		for entry in table.iter().map_err(store_error)? {
			let (_, bytes) = entry.map_err(store_error)?;
			banks.push(Bank::from_stored(bytes.value()).map_err(store_error)?);
		}
		Ok(banks)
	}

	fn stored_bytes(&self) -> Result<u64, StoreError> {
		use redb::ReadableTable;
		let tx = self.db.begin_read().map_err(store_error)?;
		let table = tx.open_table(BANKS).map_err(store_error)?;
		let mut total = 0;
		for entry in table.iter().map_err(store_error)? {
			total += entry.map_err(store_error)?.1.value().len() as u64;
		}
		Ok(total)
	}

	fn save_entry(&self, key: &[u8], value: Option<&[u8]>) -> Result<(), StoreError> {
		self.write(Key::Entry(key.to_vec()), value.map(<[u8]>::to_vec))
	}

	fn load_entries(&self) -> Result<Vec<Entry>, StoreError> {
		use redb::ReadableTable;
		let tx = self.db.begin_read().map_err(store_error)?;
		let table = tx.open_table(ENTRIES).map_err(store_error)?;
		let mut entries = Vec::new();
		for entry in table.iter().map_err(store_error)? {
			let (key, value) = entry.map_err(store_error)?;
			entries.push((key.value().to_vec(), value.value().to_vec()));
		}
		Ok(entries)
	}
}

/// A store shared with whoever else holds it: a helper restarted from the same store sees
/// exactly what the crashed one committed.
impl<S: Store> Store for std::sync::Arc<S> {
	fn save(&self, bank: &Bank) -> Result<(), StoreError> {
		(**self).save(bank)
	}

	fn remove(&self, channel: ChannelId) -> Result<(), StoreError> {
		(**self).remove(channel)
	}

	fn load_all(&self) -> Result<Vec<Bank>, StoreError> {
		(**self).load_all()
	}

	fn stored_bytes(&self) -> Result<u64, StoreError> {
		(**self).stored_bytes()
	}

	fn save_entry(&self, key: &[u8], value: Option<&[u8]>) -> Result<(), StoreError> {
		(**self).save_entry(key, value)
	}

	fn load_entries(&self) -> Result<Vec<Entry>, StoreError> {
		(**self).load_entries()
	}
}
