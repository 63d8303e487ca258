//! The driver over an in-memory network: both clients of a bank paying each other at the same
//! instant, round after round, with answers lost on the way; both calls complete and both
//! sides agree. Nothing recurses: a handler answers and never calls the peer back.

use super::*;
use futures::{executor::block_on, future::join};
use rsmc::{
	driver::{DriveError, Driver},
	store::MemoryStore,
	transport::MemoryNetwork,
	Progress,
};
use std::{sync::Mutex, time::Duration};

type Shared = Arc<Mutex<Helper<MemoryStore>>>;

fn pair(balances: Balances) -> (Shared, Shared, AccountId32, AccountId32) {
	let (alice, bob) = opened(MemoryStore::default(), MemoryStore::default(), balances);
	let (a, b) = (account(&signer("Alice")), account(&signer("Bob")));
	(Arc::new(Mutex::new(alice)), Arc::new(Mutex::new(bob)), a, b)
}

const NOBODY: &(dyn Fn(ChannelId, &Progress) + Sync) = &|_, _| {};

fn driver<'a>(
	helper: &'a Shared,
	network: &'a MemoryNetwork<MemoryStore>,
) -> Driver<'a, MemoryStore, MemoryNetwork<MemoryStore>> {
	Driver { helper, transport: network, timeout: Duration::from_secs(10), observer: NOBODY }
}

fn simultaneous_rounds(network_lossy: bool) {
	let (alice, bob, a, b) = pair([1_000, 1_000]);
	let network = MemoryNetwork::new([(a, alice.clone()), (b, bob.clone())]);
	let network = if network_lossy { network.losing_every(3) } else { network };
	let mut expected = [1_000u128, 1_000];
	for round in 1..=20u128 {
		let (by_alice, by_bob) = (round, 2 * round);
		let (paid_a, paid_b) = block_on(join(
			driver(&alice, &network).pay(CHANNEL, by_alice),
			driver(&bob, &network).pay(CHANNEL, by_bob),
		));
		paid_a.unwrap_or_else(|e| panic!("round {round}: Alice's payment: {e}"));
		paid_b.unwrap_or_else(|e| panic!("round {round}: Bob's payment: {e}"));
		expected = [expected[0] - by_alice + by_bob, expected[1] + by_alice - by_bob];
		// Bob's last revocation may still be on its way: let either side finish it.
		block_on(driver(&bob, &network).resume(CHANNEL)).unwrap();
		block_on(driver(&alice, &network).resume(CHANNEL)).unwrap();
		let (alice, bob) = (alice.lock().unwrap(), bob.lock().unwrap());
		let (x, y) = (alice.bank(CHANNEL).unwrap(), bob.bank(CHANNEL).unwrap());
		assert_agree(x, y);
		assert_eq!(x.balances(), expected, "round {round}");
		for (bank, peer) in [(x, y), (y, x)] {
			assert_can_liquidate(bank, peer);
			assert_can_punish_every_revoked_sheet(peer, bank);
		}
	}
	let yielded = bob.lock().unwrap().bank(CHANNEL).unwrap().ledger().unwrap().yielded;
	assert!(yielded >= 10, "the payments hardly ever met ({yielded} collisions in 20 rounds)");
	assert_eq!(alice.lock().unwrap().bank(CHANNEL).unwrap().ledger().unwrap().yielded, 0);
}

#[test]
fn both_clients_paying_at_the_same_instant_both_complete() {
	simultaneous_rounds(false);
}

#[test]
fn both_clients_paying_at_once_over_a_lossy_network_both_complete() {
	simultaneous_rounds(true);
}

#[test]
fn a_silent_peer_times_out_and_says_whether_a_payment_was_left_in_flight() {
	let (alice, _bob, a, _b) = pair([100, 100]);
	// Bob's helper is not on the network.
	let network = MemoryNetwork::new([(a, alice.clone())]);
	let short = Driver {
		helper: &alice,
		transport: &network,
		timeout: Duration::from_millis(50),
		observer: NOBODY,
	};
	match block_on(short.pay(CHANNEL, 10)) {
		Err(DriveError::Silent { in_flight: true, .. }) => {},
		other => panic!("expected a silent peer with the payment in flight, got {other:?}"),
	}
}

/// Alice pays 10 to Bob, whose node falls silent once her `Propose` is answered: her payment
/// is final for her, and Bob still waits for her `Revoke`.
fn pay_losing_the_revoke() -> (Shared, Shared, AccountId32) {
	let (alice, bob, a, b) = pair([100, 100]);
	let network = MemoryNetwork::new([(a, alice.clone()), (b.clone(), bob.clone())]).cut_after(1);
	let short = Driver {
		helper: &alice,
		transport: &network,
		timeout: Duration::from_millis(50),
		observer: NOBODY,
	};
	let (nonce, balances) = block_on(short.pay(CHANNEL, 10)).expect("final for Alice");
	assert_eq!((nonce, balances), (1, [90, 110]));
	assert!(bob.lock().unwrap().bank(CHANNEL).unwrap().ledger().unwrap().in_flight.is_some());
	(alice, bob, b)
}

#[test]
fn a_payer_whose_revoke_is_lost_is_paid_and_does_not_count_it_as_silence() {
	let (alice, bob, _) = pay_losing_the_revoke();
	// Bob gets the Revoke when he asks again.
	let network = MemoryNetwork::new([(account(&signer("Alice")), alice.clone())]);
	block_on(driver(&bob, &network).resume(CHANNEL)).unwrap();
	let (alice, bob) = (alice.lock().unwrap(), bob.lock().unwrap());
	assert_agree(alice.bank(CHANNEL).unwrap(), bob.bank(CHANNEL).unwrap());
}

#[test]
fn a_payee_waiting_for_a_lost_revoke_gets_it_when_the_payer_pays_again() {
	let (alice, bob, b) = pay_losing_the_revoke();
	// Her next payment: Bob answers with his Accept again, Alice sends the Revoke she owes,
	// then her new proposal goes through. Nobody drives Bob.
	let network = MemoryNetwork::new([(b, bob.clone())]);
	let (nonce, balances) = block_on(driver(&alice, &network).pay(CHANNEL, 5)).unwrap();
	assert_eq!((nonce, balances), (2, [85, 115]));
	let (alice, bob) = (alice.lock().unwrap(), bob.lock().unwrap());
	assert_agree(alice.bank(CHANNEL).unwrap(), bob.bank(CHANNEL).unwrap());
}

#[test]
fn a_close_while_the_payee_waits_for_a_lost_revoke_completes() {
	let (alice, bob, b) = pay_losing_the_revoke();
	let network = MemoryNetwork::new([(b, bob.clone())]);
	let closing = block_on(driver(&alice, &network).close(CHANNEL)).unwrap();
	assert_eq!((closing.nonce, closing.balances), (1, [90, 110]));
	let bob = bob.lock().unwrap();
	let theirs = bob.bank(CHANNEL).unwrap().closing().unwrap();
	assert!(theirs.signatures().is_some());
	assert_eq!(theirs.balances, [90, 110]);
}
