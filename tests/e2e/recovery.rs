//! A stale or lost store never costs its owner (issue 28, part 3; `docs/recovery.md`): Bob's
//! helper is restarted from a copy of its store taken ten payments ago, or with no store at
//! all. It learns from Alice's helper that it is behind (or knows it, having rebuilt the bank
//! from the chain and its key), never liquidates with its (revoked) sheets, and the bank closes
//! on chain at the newest balances.

use crate::{
	chain::Chain,
	helpers::{
		assert_gained, balances, bank_events, on_chain, open, open_deposit, pay, snapshot,
		two_nodes, view, wait_until, BankEvent,
	},
};
use sp_keyring::Sr25519Keyring::{Alice, Bob};
use std::{path::Path, time::Duration};
use vbank_runtime::UNIT;

fn copy_dir(from: &Path, to: &Path) {
	std::fs::create_dir_all(to).unwrap();
	for entry in std::fs::read_dir(from).unwrap() {
		let entry = entry.unwrap();
		let target = to.join(entry.file_name());
		if entry.file_type().unwrap().is_dir() {
			copy_dir(&entry.path(), &target);
		} else {
			std::fs::copy(entry.path(), target).unwrap();
		}
	}
}

/// Bob's node stopped after a payment on a bank with Alice's, a copy of his store taken
/// then (as a backup or a VM snapshot), ten payments more, and Bob's node stopped again: it
/// comes back with what `lose` leaves of its store (given the store and the copy). The bank
/// closes on chain at the newest balances, with no liquidation, each side gaining exactly its
/// newest share, and both helpers forget it. Bob's node's log.
fn bob_comes_back_and_closes_at_the_newest(lose: impl FnOnce(&Path, &Path)) -> Vec<String> {
	let bob_base = tempfile::tempdir().unwrap();
	let (alice, mut bob) = two_nodes(&["--rsmc-peer-timeout", "20"], Some(bob_base.path()));
	let a = Chain::connect(&alice.url());
	let channel = open(&a, 5, Some(bob.url()));
	pay(&a, Alice, channel, 3 * UNIT);

	bob.kill();
	let store = bob_base.path().join("rsmc");
	let copy = tempfile::tempdir().unwrap();
	copy_dir(&store, copy.path());
	bob.restart();
	let b = Chain::connect(&bob.url());
	for i in 0..10 {
		if i % 3 == 0 {
			pay(&b, Bob, channel, UNIT);
		} else {
			pay(&a, Alice, channel, 2 * UNIT);
		}
	}
	let newest = view(&a, Alice, channel).unwrap();
	assert_eq!(newest["nonce"], 11);
	let newest = balances(&newest["balances"]);
	drop(b);

	bob.kill();
	lose(&store, copy.path());
	let (alice_before, bob_before) = (snapshot(&a, Alice), snapshot(&a, Bob));
	bob.restart();
	let b = Chain::connect(&bob.url());

	wait_until("the bank closes", Duration::from_secs(90), || on_chain(&a, channel).is_none());
	let events = bank_events(&a, alice_before.block);
	assert!(events.contains(&BankEvent::Closed { channel, balances: newest }), "{events:?}");
	assert!(!events.iter().any(|e| matches!(e, BankEvent::Liquidated { .. })), "{events:?}");
	assert_gained(&a, Alice, &alice_before, newest[0] + open_deposit());
	assert_gained(&a, Bob, &bob_before, newest[1]);
	wait_until("both helpers forget the bank", Duration::from_secs(30), || {
		view(&a, Alice, channel).is_none() && view(&b, Bob, channel).is_none()
	});
	bob.log_lines()
}

/// Bob's node comes back from the copy: its newest sheet is 1, long revoked. It learns from
/// Alice's helper that it is behind.
#[test]
fn a_store_restored_from_an_older_copy_closes_at_the_newest_balances_without_liquidating() {
	let log = bob_comes_back_and_closes_at_the_newest(|store, copy| {
		std::fs::remove_dir_all(store).unwrap();
		copy_dir(copy, store);
	});
	assert!(log.iter().any(|l| l.contains("our store is older than what we signed")));
}

/// A store deleted: Bob's node comes back with nothing but his account key. It finds the bank
/// on chain, takes it back behind, reaches Alice's helper over the p2p network (it knows no URL
/// of hers any more) and closes at her newest sheet.
#[test]
fn a_store_deleted_is_rebuilt_from_the_chain_and_closes_at_the_newest_balances() {
	let log = bob_comes_back_and_closes_at_the_newest(|store, _| {
		std::fs::remove_dir_all(store).unwrap();
	});
	assert!(log.iter().any(|l| l.contains("taken back from the chain")));
}
