//! Crashes at every write of a payment, before and after the write is durable, in both roles:
//! the helper resumes from its store, is never left holding only a revoked sheet, and the
//! payment completes once messages are sent again.

use super::*;
use rsmc::{
	bank::Bank,
	store::{MemoryStore, StoreError},
	HelperError,
};
use std::{
	collections::VecDeque,
	sync::{Arc, Mutex},
};

#[derive(Default)]
struct Plan {
	writes: usize,
	crash_at: Option<usize>,
	after_commit: bool,
	crashed: bool,
}

/// A store that "crashes" at a chosen write: before it is durable (the write fails), or
/// just after (the write lands but the helper dies before sending anything).
#[derive(Clone, Default)]
struct CrashStore {
	disk: Arc<MemoryStore>,
	plan: Arc<Mutex<Plan>>,
}

impl CrashStore {
	fn arm(&self, crash_at: usize, after_commit: bool) {
		*self.plan.lock().unwrap() =
			Plan { writes: 0, crash_at: Some(crash_at), after_commit, crashed: false };
	}

	fn take_crash(&self) -> bool {
		let mut plan = self.plan.lock().unwrap();
		std::mem::take(&mut plan.crashed)
	}
}

impl CrashStore {
	/// Count a write, and crash at the chosen one: `Err` before it is durable.
	fn write(&self) -> Result<(), StoreError> {
		let mut plan = self.plan.lock().unwrap();
		plan.writes += 1;
		if plan.crash_at == Some(plan.writes) {
			plan.crash_at = None;
			plan.crashed = true;
			if !plan.after_commit {
				return Err(StoreError("crashed before the write was durable".into()));
			}
		}
		Ok(())
	}
}

impl Store for CrashStore {
	fn save(&self, bank: &Bank) -> Result<(), StoreError> {
		self.write()?;
		self.disk.save(bank)
	}
	fn remove(&self, channel: ChannelId) -> Result<(), StoreError> {
		self.disk.remove(channel)
	}
	fn load_all(&self) -> Result<Vec<Bank>, StoreError> {
		self.disk.load_all()
	}
	fn stored_bytes(&self) -> Result<u64, StoreError> {
		self.disk.stored_bytes()
	}
	fn save_entry(&self, key: &[u8], value: Option<&[u8]>) -> Result<(), StoreError> {
		self.write()?;
		self.disk.save_entry(key, value)
	}
	fn load_entries(&self) -> Result<Vec<rsmc::store::Entry>, StoreError> {
		self.disk.load_entries()
	}
}

struct Side {
	name: &'static str,
	store: CrashStore,
	helper: Helper<CrashStore>,
}

impl Side {
	/// If the store crashed during the last call, restart from the store, and check that the
	/// restarted helper holds a sheet it can use. Whether it crashed.
	fn restart_if_crashed(&mut self, other: &Side) -> bool {
		if !self.store.take_crash() {
			return false;
		}
		self.helper = Helper::new(signer(self.name), GENESIS, self.store.clone()).unwrap();
		assert_can_liquidate(self.bank(), other.bank());
		true
	}

	fn bank(&self) -> &Bank {
		self.helper.bank(CHANNEL).unwrap()
	}
}

fn crash_during_a_payment(payer_crashes: bool, crash_at: usize, after_commit: bool) {
	let (alice_store, bob_store) = (CrashStore::default(), CrashStore::default());
	let (alice, bob) = opened(alice_store.clone(), bob_store.clone(), [100, 100]);
	let mut alice = Side { name: "Alice", store: alice_store, helper: alice };
	let mut bob = Side { name: "Bob", store: bob_store, helper: bob };
	pay(&mut alice.helper, &mut bob.helper, 1);

	if payer_crashes { &alice } else { &bob }.store.arm(crash_at, after_commit);
	let mut wire: VecDeque<(bool, Message)> = VecDeque::new();
	let mut proposed = false;
	for _ in 0..100 {
		if !proposed {
			match alice.helper.pay(CHANNEL, 10) {
				Ok(propose) => {
					proposed = true;
					if !alice.restart_if_crashed(&bob) {
						wire.push_back((true, propose));
					}
				},
				Err(HelperError::Store(_)) => {
					assert!(alice.restart_if_crashed(&bob));
				},
				Err(e) => panic!("{e}"),
			}
		}
		let Some((to_bob, message)) = wire.pop_front() else {
			// Timeouts: both sides send their unanswered message again.
			let again = [
				(true, alice.helper.retransmission(CHANNEL)),
				(false, bob.helper.retransmission(CHANNEL)),
			];
			wire.extend(again.into_iter().filter_map(|(to, m)| Some((to, m?))));
			if wire.is_empty() && proposed {
				break;
			}
			continue;
		};
		let (receiver, sender) = if to_bob { (&mut bob, &alice) } else { (&mut alice, &bob) };
		let reply = receiver.helper.handle(&message);
		if receiver.restart_if_crashed(sender) {
			continue;
		}
		if let Some(reply) = reply.ok().and_then(|step| step.reply) {
			wire.push_back((!to_bob, reply));
		}
	}
	assert!(proposed, "the payment was never started");
	assert_agree(alice.bank(), bob.bank());
	assert_eq!(alice.bank().balances(), [89, 111]);
	assert_can_liquidate(alice.bank(), bob.bank());
	assert_can_liquidate(bob.bank(), alice.bank());
	assert_can_punish_every_revoked_sheet(bob.bank(), alice.bank());
	assert_can_punish_every_revoked_sheet(alice.bank(), bob.bank());
	// The bank is still usable.
	pay(&mut bob.helper, &mut alice.helper, 50);
	assert_eq!(alice.bank().balances(), [139, 61]);
}

#[test]
fn a_payer_crashing_at_any_write_resumes() {
	for crash_at in 1..=2 {
		for after_commit in [false, true] {
			crash_during_a_payment(true, crash_at, after_commit);
		}
	}
}

#[test]
fn a_payee_crashing_at_any_write_resumes() {
	for crash_at in 1..=2 {
		for after_commit in [false, true] {
			crash_during_a_payment(false, crash_at, after_commit);
		}
	}
}

#[test]
fn the_redb_store_keeps_banks_across_reopening() {
	let dir = tempfile::tempdir().unwrap();
	let path = dir.path().join("alice.redb");
	let (mut alice, mut bob) = {
		let alice_store = rsmc::store::RedbStore::open(&path).unwrap();
		let bob_store = rsmc::store::RedbStore::open(&dir.path().join("bob.redb")).unwrap();
		opened(alice_store, bob_store, [100, 0])
	};
	pay(&mut alice, &mut bob, 40);
	let before = alice.bank(CHANNEL).unwrap().clone();
	drop(alice);
	let alice = Helper::new(signer("Alice"), GENESIS, rsmc::store::RedbStore::open(&path).unwrap())
		.unwrap();
	assert_eq!(alice.bank(CHANNEL), Some(&before));
	assert!(alice.store().stored_bytes().unwrap() > 0);
}
