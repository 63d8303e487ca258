//! The reserve (issue 28, part 2): agreed at the handshake, it keeps each client's share from
//! being taken below it by that client's own payment, HTLC or withdrawal, so that liquidating
//! with a revoked sheet always costs the cheat something. A share already below it may only
//! grow.

use crate::*;
use rsmc::{store::MemoryStore, Error, HelperError, Htlc, HtlcUpdate};

fn refused(result: Result<impl core::fmt::Debug, HelperError>) -> Error {
	match result {
		Err(HelperError::Protocol(e)) => e,
		other => panic!("expected a protocol error, got {other:?}"),
	}
}

fn reserving(percent: u8, min_reserve: u128) -> Policy {
	Policy { reserve_percent: percent, min_reserve, ..Policy::ACCEPT_ALL }
}

fn helper(name: &str, policy: Policy) -> Helper<MemoryStore> {
	Helper::new(signer(name), GENESIS, MemoryStore::default()).unwrap().with_policy(policy)
}

/// Alice, who opens with `alice_policy`, and Bob, who joins with `bob_policy`, after Bob has
/// answered the `Open`: through the handshake if Bob's policy allows it.
fn handshake(
	balances: Balances,
	alice_policy: Policy,
	bob_policy: Policy,
) -> (Helper<MemoryStore>, Helper<MemoryStore>) {
	let (mut alice, mut bob) = (helper("Alice", alice_policy), helper("Bob", bob_policy));
	let t = terms(&account(&signer("Alice")), &account(&signer("Bob")), balances);
	let open = alice.open(t).unwrap();
	let answer = deliver(&mut bob, &open).unwrap();
	if let Some(confirm) = deliver(&mut alice, &answer) {
		assert_eq!(deliver(&mut bob, &confirm), None);
	}
	(alice, bob)
}

#[test]
fn the_opener_proposes_the_reserve_and_a_peer_that_wants_more_asks_its_operator() {
	// 1% of 2,050 is 20 (rounded down); both sides keep it.
	let (alice, bob) = handshake([2_000, 50], reserving(1, 0), reserving(1, 0));
	for helper in [&alice, &bob] {
		let bank = helper.bank(CHANNEL).unwrap();
		assert!(bank.is_live());
		assert_eq!(bank.reserve, 20);
		assert_eq!([bank.spendable(0), bank.spendable(1)], [1_980, 30]);
	}
	// The least reserve wins over the percentage on a small bank.
	let (alice, _) = handshake([100, 0], reserving(1, 7), reserving(1, 7));
	assert_eq!(alice.bank(CHANNEL).unwrap().reserve, 7);

	// A reserve below the joiner's rule, or above half the bank, waits for its operator.
	for (opener, joiner) in
		[(reserving(0, 0), reserving(1, 0)), (reserving(60, 0), reserving(1, 0))]
	{
		let (alice, bob) = handshake([2_000, 50], opener, joiner);
		assert!(bob.bank(CHANNEL).unwrap().is_offered());
		assert!(!alice.bank(CHANNEL).unwrap().is_live());
	}
	let small = terms(&account(&signer("Alice")), &account(&signer("Bob")), [100, 0]);
	assert!(reserving(1, 0).objection(&small, 1, 50).is_none());
	assert!(reserving(1, 0).objection(&small, 1, 51).is_some());
}

#[test]
fn nobody_pays_locks_or_withdraws_below_the_reserve_and_a_share_under_it_may_grow() {
	// A reserve of 10 in a bank of 1,000 where Bob starts with nothing.
	let (mut alice, mut bob) = handshake([1_000, 0], reserving(1, 0), reserving(1, 0));
	assert_eq!(bob.bank(CHANNEL).unwrap().reserve, 10);
	let below = |left| Error::BelowReserve { left, reserve: 10 };

	assert_eq!(refused(alice.pay(CHANNEL, 991)), below(9));
	let htlc = Htlc { from: 0, amount: 991, hashlock: H256([1; 32]), expiry: 1_000 };
	assert_eq!(refused(alice.update(CHANNEL, HtlcUpdate::Add(htlc))), below(9));
	assert_eq!(refused(alice.splice(CHANNEL, 0, 991)), below(9));

	// Bob's share is below the reserve: it may grow, and he may not pay out of it until it
	// is above.
	pay(&mut alice, &mut bob, 4);
	assert_eq!(refused(bob.pay(CHANNEL, 1)), below(3));
	pay(&mut alice, &mut bob, 986);
	assert_eq!(alice.bank(CHANNEL).unwrap().balances(), [10, 990]);
	assert_eq!(alice.bank(CHANNEL).unwrap().spendable(0), 0);
	assert_eq!(refused(alice.pay(CHANNEL, 1)), below(9));
	pay(&mut bob, &mut alice, 980);
	assert_eq!(bob.bank(CHANNEL).unwrap().balances(), [990, 10]);
	// Refusals changed nothing: both still agree.
	assert_agree(alice.bank(CHANNEL).unwrap(), bob.bank(CHANNEL).unwrap());
}

/// A peer whose own view of the bank has no reserve (a lying or broken helper) proposes to
/// pay out of its share below the agreed reserve: refused, and nothing changes.
#[test]
fn a_peer_proposal_that_takes_the_peer_below_the_reserve_is_refused() {
	let (a, b) = (signer("Alice"), signer("Bob"));
	let t = terms(&account(&a), &account(&b), [1_000, 1_000]);
	// Alice's bank has no reserve; the `Open` Bob gets names one of 20, signed by Alice.
	let (mut alice, open) = Bank::open(t, 0, [1; 32], &*a).unwrap();
	let Body::Open { clients, balances, lock_period, waivers, .. } = open.body.clone() else {
		panic!("an Open")
	};
	let reserved = Body::Open { clients, balances, lock_period, waivers, reserve: 20 };
	let open = with_body(&open, reserved, "Alice");
	let (mut bob, accept) = Bank::offered(&open, GENESIS, [2; 32], &*b, true).unwrap();
	let confirm = alice.handle(&accept, &*a).unwrap().reply.unwrap();
	bob.handle(&confirm, &*b).unwrap();
	assert_eq!((alice.reserve, bob.reserve), (0, 20));

	let propose = alice.propose(990, &*a).unwrap();
	let before = bob.clone();
	assert_eq!(bob.handle(&propose, &*b), Err(Error::BelowReserve { left: 10, reserve: 20 }));
	assert_eq!(bob, before);
}
