//! The relay's rules (`rsmc::relay`) on banks made by the real protocol.

use super::*;
use crate::htlc::update_on;
use rsmc::{
	bank::{Htlc, HtlcUpdate},
	relay::{
		fails_upstream, offering, on_incoming, on_resume, upstream, Incoming, Invoice, Resolve,
		Resumed, View,
	},
	route::{Forwarding, Hop},
	store::MemoryStore,
};
use vbank_primitives::{hashlock, ChannelId, Preimage};

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

const AB: ChannelId = 1;
const BC: ChannelId = 2;

/// Alice–Bob and Bob–Charlie, 1,000 each side: Alice's, Bob's (holding both banks) and
/// Charlie's helpers.
fn three() -> [Helper<MemoryStore>; 3] {
	let (alice, mut bob) =
		opened_at(AB, MemoryStore::default(), MemoryStore::default(), [1_000; 2]);
	let charlie = signer("Charlie");
	let terms = terms_of(BC, &account(&signer("Bob")), &account(&charlie), [1_000; 2]);
	let mut charlie = Helper::new(charlie, GENESIS, MemoryStore::default())
		.unwrap()
		.with_policy(Policy::ACCEPT_ALL);
	let open = bob.open(terms).unwrap();
	let accept = deliver(&mut charlie, &open).unwrap();
	let confirm = deliver(&mut bob, &accept).unwrap();
	assert_eq!(deliver(&mut charlie, &confirm), None);
	[alice, bob, charlie]
}

/// `update` proposed by `proposer` on `channel` and carried to `peer`: what the peer's step
/// made final for it.
fn carry(
	channel: ChannelId,
	proposer: &mut Helper<MemoryStore>,
	peer: &mut Helper<MemoryStore>,
	update: HtlcUpdate,
) -> Option<rsmc::Progress> {
	let propose = proposer.update(channel, update).unwrap();
	let accept = deliver(peer, &propose).unwrap();
	let revoke = deliver(proposer, &accept).unwrap();
	peer.handle(&revoke).unwrap().progress
}

/// What `helper` decides about the HTLC the peer just added to it on `from`, at block 100.
fn decide(
	helper: &Helper<MemoryStore>,
	from: ChannelId,
	added: &HtlcUpdate,
	invoice: Option<Invoice>,
) -> Incoming {
	let (htlc, onward) = added.added().expect("an addition");
	let ours = |c: ChannelId| helper.bank(c).filter(|b| b.is_live()).map(|b| b.me);
	let invoice = |_: &sp_core::H256| invoice;
	let offering = |lock: &sp_core::H256| offering(helper.banks(), *lock, |_| None);
	let forwarding = Forwarding { fee: 5, delta: 40, dust: 0 };
	let view = View { now: 100, forwarding, ours: &ours, invoice: &invoice, offering: &offering };
	on_incoming(htlc, onward, from, &view)
}

/// The node's routing, in memory, through the real protocol: Alice pays Charlie's invoice
/// through Bob, and Bob, the intermediary, ends with his fee and nothing less, whether
/// Charlie settles or fails; while his outgoing HTLC is out, a second forward under the
/// same lock is refused.
#[test]
fn an_intermediary_settles_or_fails_upstream_what_happened_downstream_and_keeps_its_fee() {
	for charlie_settles in [true, false] {
		let [mut alice, mut bob, mut charlie] = three();
		let preimage = [9; 32];
		let lock = hashlock(&preimage);
		let hops = [
			Hop { channel: AB, amount: 105, expiry: 200 },
			Hop { channel: BC, amount: 100, expiry: 160 },
		];
		let add = hops[0].update(0, lock, &hops[1..]);
		let Some(rsmc::Progress::Htlc { update: added, by_us: false, .. }) =
			carry(AB, &mut alice, &mut bob, add.clone())
		else {
			panic!("Bob took the HTLC")
		};
		let Incoming::Forward { channel: BC, update: onward } = decide(&bob, AB, &added, None)
		else {
			panic!("Bob forwards on Bob–Charlie")
		};
		assert_eq!(onward, hops[1].update(0, lock, &[]));
		let Some(rsmc::Progress::Htlc { update: to_charlie, .. }) =
			carry(BC, &mut bob, &mut charlie, onward)
		else {
			panic!("Charlie took it")
		};
		// The same lock again (a payer's retry, a loop): refused while Bob's HTLC is out.
		assert!(matches!(decide(&bob, AB, &added, None), Incoming::Fail(_)));
		let invoice = charlie_settles.then_some(Invoice { preimage, amount: 100 });
		let resolve = match decide(&charlie, BC, &to_charlie, invoice) {
			Incoming::Settle(p) => Resolve::Settle(p),
			Incoming::Fail(_) => Resolve::FailAny,
			other => panic!("{other:?}"),
		};
		let (_, update) = resolve.next(charlie.bank(BC).unwrap(), lock).unwrap();
		carry(BC, &mut charlie, &mut bob, update);
		// Upstream, what happened downstream.
		assert_eq!(upstream(bob.banks(), lock), [AB]);
		let known = charlie_settles;
		let still_out = offering(bob.banks(), lock, |_| None);
		let upstream_resolve = if known {
			Resolve::Settle(preimage)
		} else {
			assert!(fails_upstream(still_out, known), "nothing of Bob's is out any more");
			Resolve::FailAny
		};
		while let Some((_, update)) = upstream_resolve.next(bob.bank(AB).unwrap(), lock) {
			carry(AB, &mut bob, &mut alice, update);
		}
		let paid = if charlie_settles { [105, 100] } else { [0, 0] };
		assert_eq!(alice.bank(AB).unwrap().balances(), [1_000 - paid[0], 1_000 + paid[0]]);
		assert_eq!(charlie.bank(BC).unwrap().balances(), [1_000 - paid[1], 1_000 + paid[1]]);
		let bob_total = bob.bank(AB).unwrap().balances()[1] + bob.bank(BC).unwrap().balances()[0];
		assert_eq!(bob_total, 2_000 + paid[0] - paid[1], "Bob keeps his fee and nothing less");
		for (helper, channel) in [(&alice, AB), (&bob, AB), (&bob, BC), (&charlie, BC)] {
			assert!(helper.bank(channel).unwrap().htlcs().is_empty());
		}
	}
}
