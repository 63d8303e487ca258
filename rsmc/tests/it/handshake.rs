//! The handshake against strangers and a lying peer: an `Open` counts only when signed by the
//! opener it names, a bank outside the policy waits for the operator, and a repeated
//! `OpenAccept` never gets a second, different sheet 0 signed.

use super::*;
use rsmc::{bank::Phase, keys::Signer, store::MemoryStore, Body, Error, HelperError, Policy};
use vbank_primitives::{sheet_payload, verify_signature};

fn helper(name: &str, policy: Policy) -> Helper<MemoryStore> {
	Helper::new(signer(name), GENESIS, MemoryStore::default()).unwrap().with_policy(policy)
}

fn protocol_error<T: core::fmt::Debug>(result: Result<T, HelperError>) -> Error {
	match result {
		Err(HelperError::Protocol(e)) => e,
		other => panic!("expected a protocol error, got {other:?}"),
	}
}

#[test]
fn a_stranger_cannot_open_a_bank_in_the_name_of_another() {
	let (a, b) = (account(&signer("Alice")), account(&signer("Bob")));
	let mut bob = helper("Bob", Policy::ACCEPT_ALL);
	let mut alice = helper("Alice", Policy::ACCEPT_ALL);
	let open = alice.open(terms(&a, &b, [10, 10])).unwrap();
	// Eve sends Alice's Open first, signed by herself: ignored, nothing kept.
	let stolen = with_body(&open, open.body.clone(), "Eve");
	assert_eq!(protocol_error(bob.handle(&stolen)), Error::NotFromPeer);
	assert!(bob.bank(CHANNEL).is_none());
	// Alice's own Open still works.
	assert!(deliver(&mut bob, &open).is_some());
}

#[test]
fn a_repeated_open_accept_gets_the_same_sheet_zero_or_nothing() {
	let (mut alice, mut bob) = opened(MemoryStore::default(), MemoryStore::default(), [100, 100]);
	let bank = bob.bank(CHANNEL).unwrap().clone();
	let stored = bob.bank(CHANNEL).unwrap().my_waiver(0).unwrap();
	assert!(matches!(bank.phase, Phase::Active(_)));
	let my_sheet_zero = {
		let a = alice.bank(CHANNEL).unwrap();
		let payload = sheet_payload(&GENESIS, CHANNEL, 0, &[100, 100], &a.my_waiver(0).unwrap());
		signer("Bob").sign(&payload)
	};
	let eve_key = account(&signer("Eve"));
	let lying = Message::signed(
		&GENESIS,
		CHANNEL,
		Body::OpenAccept { waivers: [eve_key.clone(), eve_key], signature: my_sheet_zero.clone() },
		&*signer("Bob"),
	);
	// Bob asks again with waiver keys of his choosing: Alice signs nothing.
	assert_eq!(protocol_error(alice.handle(&lying)), Error::Stale { nonce: 0 });
	// The same keys again: the same sheet 0, naming the key stored in the handshake.
	let honest = Message::signed(
		&GENESIS,
		CHANNEL,
		Body::OpenAccept {
			waivers: [bank.my_waiver(0).unwrap(), bank.my_waiver(1).unwrap()],
			signature: my_sheet_zero,
		},
		&*signer("Bob"),
	);
	let Some(Body::OpenConfirm { signature }) = deliver(&mut alice, &honest).map(|m| m.body) else {
		panic!("an OpenConfirm")
	};
	let payload = sheet_payload(&GENESIS, CHANNEL, 0, &[100, 100], &stored);
	assert!(verify_signature(&signature, &payload, &account(&signer("Alice"))));
	// After a payment, no sheet 0 at all.
	pay(&mut alice, &mut bob, 1);
	assert_eq!(protocol_error(alice.handle(&honest)), Error::Stale { nonce: 0 });
}

#[test]
fn a_bank_outside_the_policy_waits_for_the_operator() {
	let (a, b) = (account(&signer("Alice")), account(&signer("Bob")));
	let policy = Policy { inbound_limit: 50, min_lock: 10, max_lock: 20, ..Policy::ACCEPT_ALL };
	for (balances, lock_period) in [([10, 51], 10), ([10, 50], 9), ([10, 50], 21)] {
		let mut alice = helper("Alice", Policy::ACCEPT_ALL);
		let mut bob = helper("Bob", policy);
		let mut t = terms(&a, &b, balances);
		t.lock_period = lock_period;
		let open = alice.open(t).unwrap();
		let offered = deliver(&mut bob, &open).expect("an answer");
		assert_eq!(offered.body, Body::Offered);
		assert!(bob.bank(CHANNEL).unwrap().is_offered());
		assert!(policy.objection(&bob.bank(CHANNEL).unwrap().terms, 1, 0).is_some());
		let step = alice.handle(&offered).unwrap();
		assert_eq!(step.progress, Some(rsmc::Progress::Offered));
		// Asked again, Bob still says so and signs nothing.
		assert_eq!(deliver(&mut bob, &open).unwrap().body, Body::Offered);
		// The operator accepts: the handshake goes on from Bob's side.
		let accept = bob.accept(CHANNEL).unwrap();
		let confirm = deliver(&mut alice, &accept).unwrap();
		assert_eq!(deliver(&mut bob, &confirm), None);
		assert_agree(alice.bank(CHANNEL).unwrap(), bob.bank(CHANNEL).unwrap());
	}
	// Within the policy the handshake goes on at once.
	let mut alice = helper("Alice", Policy::ACCEPT_ALL);
	let mut bob = helper("Bob", policy);
	let open = alice.open(terms(&a, &b, [10, 50])).unwrap();
	assert!(matches!(deliver(&mut bob, &open).unwrap().body, Body::OpenAccept { .. }));
}

#[test]
fn no_sheet_of_the_peer_is_signed_twice_at_one_nonce() {
	let (mut alice, mut bob) = opened(MemoryStore::default(), MemoryStore::default(), [100, 100]);
	let propose = alice.pay(CHANNEL, 10).unwrap();
	// Bob proposes at the same nonce; Alice (client 0) stands and proposes again at nonce 2,
	// Bob gives way: neither signed two different sheets of the other's at nonce 1.
	let theirs = bob.pay(CHANNEL, 7).unwrap();
	let again = deliver(&mut alice, &theirs).unwrap();
	assert!(matches!(again.body, Body::Propose { nonce: 2, .. }));
	let back = deliver(&mut bob, &propose).unwrap();
	assert_eq!(back.body.name(), "Propose");
	let accept = deliver(&mut bob, &again).unwrap();
	let revoke = deliver(&mut alice, &accept).unwrap();
	assert_eq!(deliver(&mut bob, &revoke), None);
	let (x, y) = (alice.bank(CHANNEL).unwrap(), bob.bank(CHANNEL).unwrap());
	assert_agree(x, y);
	assert_eq!(x.balances(), [90, 110]);
	assert_eq!((x.nonce(), y.ledger().unwrap().yielded), (2, 1));
	for (bank, peer) in [(x, y), (y, x)] {
		assert_can_liquidate(bank, peer);
		assert_can_punish_every_revoked_sheet(peer, bank);
	}
	// Bob's payment, proposed again, goes through at nonce 3.
	pay(&mut bob, &mut alice, 7);
	assert_eq!(alice.bank(CHANNEL).unwrap().balances(), [97, 103]);
}
