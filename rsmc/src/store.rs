//! Where a helper keeps its banks: behind the [`Store`] trait, in memory for tests and in a
//! crash-safe redb database on disk. A helper commits a bank's new state durably before it
//! sends anything that depends on it.

use crate::bank::Bank;
use codec::{Decode, Encode};
use redb::ReadableDatabase;
use std::{collections::BTreeMap, path::Path, sync::Mutex};
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

/// Durable storage of banks, by channel id.
pub trait Store: Send + Sync {
	/// Replace the state of `bank`; durable once this returns `Ok`.
	fn save(&self, bank: &Bank) -> Result<(), StoreError>;
	/// Forget a closed bank.
	fn remove(&self, channel: ChannelId) -> Result<(), StoreError>;
	/// Every bank stored.
	fn load_all(&self) -> Result<Vec<Bank>, StoreError>;
	/// The encoded size of everything stored, in bytes.
	fn stored_bytes(&self) -> Result<u64, StoreError>;
}

/// A [`Store`] in memory: banks are kept encoded, as on disk.
#[derive(Default)]
pub struct MemoryStore(Mutex<BTreeMap<ChannelId, Vec<u8>>>);

impl Store for MemoryStore {
	fn save(&self, bank: &Bank) -> Result<(), StoreError> {
		self.0.lock().map_err(store_error)?.insert(bank.channel(), bank.encode());
		Ok(())
	}

	fn remove(&self, channel: ChannelId) -> Result<(), StoreError> {
		self.0.lock().map_err(store_error)?.remove(&channel);
		Ok(())
	}

	fn load_all(&self) -> Result<Vec<Bank>, StoreError> {
		let banks = self.0.lock().map_err(store_error)?;
		banks.values().map(|bytes| Bank::decode(&mut &bytes[..]).map_err(store_error)).collect()
	}

	fn stored_bytes(&self) -> Result<u64, StoreError> {
		Ok(self.0.lock().map_err(store_error)?.values().map(|b| b.len() as u64).sum())
	}
}

const BANKS: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("banks");

/// A [`Store`] in a redb database file: every save is a durable (fsynced) transaction.
pub struct RedbStore(redb::Database);

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
		tx.commit().map_err(store_error)?;
		Ok(Self(db))
	}

	fn write(
		&self,
		f: impl FnOnce(&mut redb::Table<u64, &[u8]>) -> Result<(), StoreError>,
	) -> Result<(), StoreError> {
		let tx = self.0.begin_write().map_err(store_error)?;
		{
			let mut table = tx.open_table(BANKS).map_err(store_error)?;
			f(&mut table)?;
		}
		tx.commit().map_err(store_error)
	}
}

impl Store for RedbStore {
	fn save(&self, bank: &Bank) -> Result<(), StoreError> {
		let bytes = bank.encode();
		self.write(|table| table.insert(bank.channel(), &bytes[..]).map(drop).map_err(store_error))
	}

	fn remove(&self, channel: ChannelId) -> Result<(), StoreError> {
		self.write(|table| table.remove(channel).map(drop).map_err(store_error))
	}

	fn load_all(&self) -> Result<Vec<Bank>, StoreError> {
		use redb::ReadableTable;
		let tx = self.0.begin_read().map_err(store_error)?;
		let table = tx.open_table(BANKS).map_err(store_error)?;
		let mut banks = Vec::new();
		for entry in table.iter().map_err(store_error)? {
			let (_, bytes) = entry.map_err(store_error)?;
			banks.push(Bank::decode(&mut bytes.value()).map_err(store_error)?);
		}
		Ok(banks)
	}

	fn stored_bytes(&self) -> Result<u64, StoreError> {
		use redb::ReadableTable;
		let tx = self.0.begin_read().map_err(store_error)?;
		let table = tx.open_table(BANKS).map_err(store_error)?;
		let mut total = 0;
		for entry in table.iter().map_err(store_error)? {
			total += entry.map_err(store_error)?.1.value().len() as u64;
		}
		Ok(total)
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
}
