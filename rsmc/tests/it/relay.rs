//! The relay's rules (`rsmc::relay`) on banks made by the real protocol.

use super::*;
use crate::htlc::update_on;
use rsmc::{
	bank::{Htlc, HtlcUpdate},
	relay::{on_resume, Resolve, Resumed},
	store::MemoryStore,
};
use vbank_primitives::{hashlock, Preimage};

fn htlc(amount: u128, preimage: &Preimage) -> Htlc {
	Htlc { from: 0, amount, hashlock: hashlock(preimage), expiry: 1_000 }
}

/// M6 of the HTLC review: a node stopped between taking an HTLC and passing it on knew
/// nothing of it after the restart, and the payer's watchtower had to liquidate at its
/// expiry. Now, after a restart, each HTLC paid to us is settled if we know its preimage,
/// failed if nothing of ours under its lock may still be paid out, and otherwise waits.
#[test]
fn after_a_restart_each_htlc_paid_to_us_is_settled_failed_or_left_to_its_fate() {
	let (mut alice, mut bob) =
		opened(MemoryStore::default(), MemoryStore::default(), [1_000, 1_000]);
	let (known, forwarded, stranded) = ([1; 32], [2; 32], [3; 32]);
	for (amount, preimage) in [(10, &known), (20, &forwarded), (30, &stranded)] {
		update_on(&mut alice, &mut bob, HtlcUpdate::Add(htlc(amount, preimage)));
	}
	// And one of Bob's to Alice: not paid to Bob, nothing for him to do.
	let bobs = Htlc { from: 1, ..htlc(40, &[4; 32]) };
	update_on(&mut bob, &mut alice, HtlcUpdate::Add(bobs));
	let bank = bob.bank(CHANNEL).unwrap();
	let preimage = |lock: &sp_core::H256| (*lock == hashlock(&known)).then_some(known);
	let offering = |lock: &sp_core::H256| *lock == hashlock(&forwarded);
	assert_eq!(
		on_resume(bank, preimage, offering),
		vec![Resumed::Settle(htlc(10, &known), known), Resumed::Fail(htlc(30, &stranded))]
	);
	// A bank on its way on chain: only the chain decides now.
	bob.liquidate(CHANNEL).unwrap();
	assert_eq!(on_resume(bob.bank(CHANNEL).unwrap(), preimage, offering), vec![]);
}

/// M7 of the HTLC review: with two HTLCs under one lock paid to us on a bank (a payer's
/// retry, or a loop in the route), only the first was settled or failed, the second left to
/// a liquidation near its expiry. A settlement or a failure of all is now made again until
/// none is left; a failure of one names it.
#[test]
fn every_htlc_under_a_lock_is_resolved_and_a_named_one_alone() {
	let lock = [5; 32];
	for resolve in [Resolve::Settle(lock), Resolve::FailAny] {
		let (mut alice, mut bob) =
			opened(MemoryStore::default(), MemoryStore::default(), [1_000, 1_000]);
		for amount in [10, 20] {
			update_on(&mut alice, &mut bob, HtlcUpdate::Add(htlc(amount, &lock)));
		}
		let other = [6; 32];
		update_on(&mut alice, &mut bob, HtlcUpdate::Add(htlc(30, &other)));
		let mut resolved = Vec::new();
		while let Some((htlc, update)) = resolve.next(bob.bank(CHANNEL).unwrap(), hashlock(&lock)) {
			resolved.push(htlc.amount);
			update_on(&mut bob, &mut alice, update);
			assert!(resolved.len() <= 2, "{resolve:?} goes on for ever");
		}
		assert!(resolve.every());
		assert_eq!(resolved, [10, 20], "{resolve:?}");
		let paid = if resolve == Resolve::FailAny { 0 } else { 30 };
		assert_eq!(bob.bank(CHANNEL).unwrap().balances(), [970 - paid, 1_000 + paid]);
		assert_eq!(bob.bank(CHANNEL).unwrap().htlcs(), [htlc(30, &other)]);
	}
	// Failing one names it: the other under the lock stays.
	let (mut alice, mut bob) =
		opened(MemoryStore::default(), MemoryStore::default(), [1_000, 1_000]);
	for amount in [10, 20] {
		update_on(&mut alice, &mut bob, HtlcUpdate::Add(htlc(amount, &lock)));
	}
	let one = Resolve::Fail(htlc(20, &lock));
	let (named, update) = one.next(bob.bank(CHANNEL).unwrap(), hashlock(&lock)).unwrap();
	assert_eq!(
		(named.amount, &update),
		(20, &HtlcUpdate::Fail { index: 1, hashlock: hashlock(&lock) })
	);
	update_on(&mut bob, &mut alice, update);
	assert!(!one.every());
	assert_eq!(one.next(bob.bank(CHANNEL).unwrap(), hashlock(&lock)), None);
	assert_eq!(bob.bank(CHANNEL).unwrap().htlcs(), [htlc(10, &lock)]);
}
