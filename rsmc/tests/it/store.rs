//! The redb store's group commit: banks that move at once share a durable transaction, and
//! each save is durable when it returns.

use crate::{opened_at, pay_on, GENESIS};
use rsmc::{
	store::{MemoryStore, RedbStore, Store, StoreError},
	Bank, Helper,
};
use std::sync::{
	atomic::{AtomicU64, Ordering},
	Arc,
};
use vbank_primitives::ChannelId;

/// Alice's store as her helpers see it, counting their saves.
struct Counted(Arc<RedbStore>, Arc<AtomicU64>);

impl Store for Counted {
	fn save(&self, bank: &Bank) -> Result<(), StoreError> {
		self.1.fetch_add(1, Ordering::Relaxed);
		self.0.save(bank)
	}
	fn remove(&self, channel: ChannelId) -> Result<(), StoreError> {
		self.1.fetch_add(1, Ordering::Relaxed);
		self.0.remove(channel)
	}
	fn load_all(&self) -> Result<Vec<Bank>, StoreError> {
		self.0.load_all()
	}
	fn stored_bytes(&self) -> Result<u64, StoreError> {
		self.0.stored_bytes()
	}
	fn save_entry(&self, key: &[u8], value: Option<&[u8]>) -> Result<(), StoreError> {
		self.1.fetch_add(1, Ordering::Relaxed);
		self.0.save_entry(key, value)
	}
	fn load_entries(&self) -> Result<Vec<rsmc::store::Entry>, StoreError> {
		self.0.load_entries()
	}
}

#[test]
fn banks_paying_at_once_share_commits_and_every_state_is_durable() {
	const BANKS: ChannelId = 8;
	const PAYMENTS: u128 = 40;
	let dir = tempfile::tempdir().unwrap();
	let path = dir.path().join("alice.redb");
	let store = Arc::new(RedbStore::open(&path).unwrap());
	let saves = Arc::new(AtomicU64::new(0));
	let finals: Vec<Bank> = std::thread::scope(|s| {
		let threads: Vec<_> = (0..BANKS)
			.map(|channel| {
				let alice_store = Counted(store.clone(), saves.clone());
				s.spawn(move || {
					let (mut alice, mut bob) =
						opened_at(channel, alice_store, MemoryStore::default(), [1_000, 1_000]);
					for i in 0..PAYMENTS {
						// Both ways, so both roles' saves are in the mix.
						if i % 2 == 0 {
							pay_on(channel, &mut alice, &mut bob, 3);
						} else {
							pay_on(channel, &mut bob, &mut alice, 1);
						}
					}
					alice.bank(channel).unwrap().clone()
				})
			})
			.collect();
		threads.into_iter().map(|t| t.join().unwrap()).collect()
	});
	let (saves, transactions) = (saves.load(Ordering::Relaxed), store.transactions());
	assert!(saves >= BANKS * PAYMENTS as u64 * 2, "{saves} saves");
	assert!(transactions < saves, "{transactions} transactions for {saves} saves: none shared");
	drop(store);
	// Reopened, the store holds every bank's last state: each save was durable.
	let reopened =
		Helper::new(crate::signer("Alice"), GENESIS, RedbStore::open(&path).unwrap()).unwrap();
	for bank in &finals {
		assert_eq!(reopened.bank(bank.channel()), Some(bank));
		let balances = bank.ledger().unwrap().sheet.balances;
		assert_eq!(balances, [1_000 - 20 * 3 + 20, 1_000 + 20 * 3 - 20]);
	}
}

#[test]
fn a_removed_bank_is_gone_after_reopening_and_the_others_stay() {
	let dir = tempfile::tempdir().unwrap();
	let path = dir.path().join("alice.redb");
	let store = Arc::new(RedbStore::open(&path).unwrap());
	let (alice, _bob) = opened_at(1, store.clone(), MemoryStore::default(), [5, 5]);
	let (_, _) = opened_at(2, store.clone(), MemoryStore::default(), [5, 5]);
	store.remove(1).unwrap();
	drop((alice, store));
	let channels: Vec<_> =
		RedbStore::open(&path).unwrap().load_all().unwrap().iter().map(Bank::channel).collect();
	assert_eq!(channels, vec![2]);
}

/// The relay's preimages live beside the banks, in the same file: an invoice made before a
/// restart is still known after it, one forgotten stays forgotten, and a bank's record is not
/// disturbed by either.
#[test]
fn the_relays_entries_survive_reopening_beside_the_banks() {
	use rsmc::{relay::Relay, route::Forwarding};
	let dir = tempfile::tempdir().unwrap();
	let path = dir.path().join("alice.redb");
	let forwarding = Forwarding { fee: 0, delta: 40, dust: 0 };
	let store = Arc::new(RedbStore::open(&path).unwrap());
	let (alice, _bob) = opened_at(1, store.clone(), MemoryStore::default(), [5, 5]);
	let mut relay = Relay::new(store.clone(), forwarding).unwrap();
	let kept = relay.invoice([7; 32], 500).unwrap();
	store.save_entry(b"gone", Some(b"soon")).unwrap();
	store.save_entry(b"gone", None).unwrap();
	drop((alice, relay, store));

	let store = RedbStore::open(&path).unwrap();
	assert_eq!(store.load_entries().unwrap().len(), 1, "only the invoice's entry is left");
	assert_eq!(store.load_all().unwrap().iter().map(Bank::channel).collect::<Vec<_>>(), [1]);
	let relay = Relay::new(store, forwarding).unwrap();
	assert_eq!(relay.preimage(&kept), Some([7; 32]));
	assert_eq!(relay.preimages()[&kept].invoice, Some(500));
}
