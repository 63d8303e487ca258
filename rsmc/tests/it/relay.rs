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
	let ours = |c: ChannelId| helper.bank(c).filter(|b| b.is_live());
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

/// The banks a relay is shown, at block 100, with nothing on chain.
struct Fixed(Vec<Bank>);

impl rsmc::relay::Links for Fixed {
	fn now(&self) -> u32 {
		100
	}
	fn banks(&self) -> Vec<Bank> {
		self.0.clone()
	}
	fn on_chain(&self, _: ChannelId) -> Option<Vec<Option<Htlc>>> {
		None
	}
	fn shown_on_chain(&self, _: &sp_core::H256) -> Option<Preimage> {
		None
	}
}

/// The banks a relay is shown at block `now`; the one liquidated bank `paid_out` whose only
/// HTLC the chain paid out, and the one preimage a claim showed, if any.
struct Seen {
	banks: Vec<Bank>,
	now: u32,
	paid_out: Option<ChannelId>,
	shown: Option<Preimage>,
}

impl rsmc::relay::Links for Seen {
	fn now(&self) -> u32 {
		self.now
	}
	fn banks(&self) -> Vec<Bank> {
		self.banks.clone()
	}
	fn on_chain(&self, channel: ChannelId) -> Option<Vec<Option<Htlc>>> {
		(self.paid_out == Some(channel)).then(|| vec![None])
	}
	fn shown_on_chain(&self, lock: &sp_core::H256) -> Option<Preimage> {
		self.shown.filter(|preimage| hashlock(preimage) == *lock)
	}
}

/// L3 of the HTLC review: a preimage an intermediary learned for an HTLC then claimed on
/// chain stayed in its book for ever: it was forgotten only after a settlement of ours off
/// chain. Now it goes once no bank of ours holds an HTLC under it: when the chain removes the
/// bank, or at the next restart if the removal was missed. An invoice's stays.
#[test]
fn a_learned_preimage_goes_with_the_last_bank_holding_an_htlc_under_it() {
	use rsmc::relay::{Happened, Relay};
	use std::sync::Arc;
	let forwarding = Forwarding { fee: 0, delta: 40, dust: 0 };
	let (learned, invoiced) = ([9; 32], [8; 32]);
	for removal_seen in [true, false] {
		let (mut alice, mut bob) =
			opened(MemoryStore::default(), MemoryStore::default(), [1_000, 1_000]);
		update_on(&mut alice, &mut bob, HtlcUpdate::Add(htlc(10, &learned)));
		let store = Arc::new(MemoryStore::default());
		let mut relay = Relay::new(store.clone(), forwarding).unwrap();
		relay.invoice(invoiced, 5).unwrap();
		let holding = Fixed(vec![bob.bank(CHANNEL).unwrap().clone()]);
		relay.on(Happened::Shown(learned), &holding);
		assert_eq!(relay.preimage(&hashlock(&learned)), Some(learned), "kept to claim with");
		// Bob's peer never takes his settlement: on chain, claimed there, the bank removed.
		bob.liquidate(CHANNEL).unwrap();
		let liquidated = Fixed(vec![bob.bank(CHANNEL).unwrap().clone()]);
		relay.on(Happened::Restarted, &liquidated);
		assert_eq!(relay.preimage(&hashlock(&learned)), Some(learned), "still to claim with");
		bob.forget(CHANNEL).unwrap();
		let none = Fixed(vec![]);
		if removal_seen {
			relay.on(Happened::Removed(CHANNEL), &none);
		} else {
			relay = Relay::new(store.clone(), forwarding).unwrap();
			relay.on(Happened::Restarted, &none);
		}
		assert_eq!(relay.preimage(&hashlock(&learned)), None, "removal seen: {removal_seen}");
		let reopened = Relay::new(store, forwarding).unwrap();
		let kept: Vec<_> = reopened.preimages().values().map(|k| k.preimage).collect();
		assert_eq!(kept, [invoiced], "removal seen: {removal_seen}");
	}
}

/// Alice pays Bob an HTLC under lock `[n; 32]` asking him to pass `amount` on to Charlie:
/// what Bob decides.
fn through_bob(
	alice: &mut Helper<MemoryStore>,
	bob: &mut Helper<MemoryStore>,
	n: u8,
	amount: u128,
) -> Incoming {
	let lock = hashlock(&[n; 32]);
	let hops = [
		Hop { channel: AB, amount: amount + 5, expiry: 200 },
		Hop { channel: BC, amount, expiry: 160 },
	];
	let Some(rsmc::Progress::Htlc { update: added, .. }) =
		carry(AB, alice, bob, hops[0].update(0, lock, &hops[1..]))
	else {
		panic!("Bob took the HTLC")
	};
	let decided = decide(bob, AB, &added, None);
	if let Incoming::Fail(_) = decided {
		let (_, fail) = Resolve::FailAny.next(bob.bank(AB).unwrap(), lock).unwrap();
		carry(AB, bob, alice, fail);
	}
	decided
}

/// H1 of the HTLC review, value jamming: a payer routing through Bob could make him lock his
/// whole balance on the next bank in HTLCs that it then leaves to expire, so Bob could pay and
/// forward nothing more there for as long. A forward is now refused when Bob's HTLCs pending
/// on the next bank would lock more than half his money in it; one within it still goes.
#[test]
fn a_forward_that_would_lock_more_than_half_our_money_on_the_next_bank_is_refused() {
	let [mut alice, mut bob, mut charlie] = three();
	let refused = Incoming::Fail("our HTLCs pending on the next bank lock as much as we allow");
	// Bob holds 1,000 on Bob–Charlie: 501 would lock more than half of it.
	assert_eq!(through_bob(&mut alice, &mut bob, 1, 501), refused);
	let Incoming::Forward { channel: BC, update } = through_bob(&mut alice, &mut bob, 2, 300)
	else {
		panic!("300 of 1,000 is within half")
	};
	carry(BC, &mut bob, &mut charlie, update);
	// 300 pending and 700 his: 201 more would pass half, 200 reaches it.
	assert_eq!(through_bob(&mut alice, &mut bob, 3, 201), refused);
	let to_charlie = through_bob(&mut alice, &mut bob, 4, 200);
	assert!(matches!(to_charlie, Incoming::Forward { channel: BC, .. }), "{to_charlie:?}");
}

/// C6 of the HTLC review, through the relay the node runs: a payee revealed its preimage for
/// an HTLC with 2 blocks left, and a last hop that took it and never settled let the HTLC
/// expire before the payee's claim could land. The payee's relay now fails an HTLC that leaves
/// no more than `margin + 2` blocks (22 here, at block 100) and settles one that leaves more:
/// its preimage goes nowhere else.
#[test]
fn a_payee_reveals_nothing_for_an_htlc_too_close_to_its_expiry() {
	use rsmc::relay::{Command, Happened, Proposal, Relay};
	let forwarding = Forwarding { fee: 0, delta: 40, dust: 0 };
	for (expiry, settles) in [(102, false), (122, false), (123, true)] {
		let (mut alice, mut bob) =
			opened(MemoryStore::default(), MemoryStore::default(), [1_000, 1_000]);
		let preimage = [expiry as u8; 32];
		let mut relay = Relay::new(MemoryStore::default(), forwarding).unwrap();
		let lock = relay.invoice(preimage, 10).unwrap();
		let added = Htlc { expiry, ..htlc(10, &preimage) };
		update_on(&mut alice, &mut bob, HtlcUpdate::Add(added.clone()));
		let links = Fixed(vec![bob.bank(CHANNEL).unwrap().clone()]);
		let update = HtlcUpdate::Add(added.clone());
		let commands = relay.on(Happened::Final { channel: CHANNEL, update, by_us: false }, &links);
		let resolve = if settles { Resolve::Settle(preimage) } else { Resolve::Fail(added) };
		let proposal = Proposal::Resolve { lock, resolve };
		assert_eq!(commands, [Command::Propose { channel: CHANNEL, proposal }], "expiry {expiry}");
	}
}

/// The CI run of an e2e test (`an_htlc_out_on_a_liquidated_bank_keeps_the_one_it_was_paid_for`)
/// once left an intermediary holding a preimage it had learned from a claim on chain and the
/// HTLC paid to it for it unsettled for a minute: a settlement that does not become final for a
/// reason of our own side (`DriveError::Helper`) was dropped, and nothing made it again before
/// the HTLC's deadline. At each block or tick ([`Happened::Tick`]) the relay now settles every
/// HTLC paid to it whose preimage it learned, or that a claim on chain shows, and that nothing
/// resolves; not one it is resolving, not an expired one, and not an invoice's HTLC it refused.
#[test]
fn a_learned_preimage_settles_again_at_the_next_tick_what_did_not_become_final() {
	use rsmc::{
		driver::DriveError,
		relay::{Command, Happened, Proposal, Relay},
		Error, HelperError,
	};
	let forwarding = Forwarding { fee: 0, delta: 40, dust: 0 };
	let (learned, on_chain_only, invoiced) = ([1; 32], [2; 32], [3; 32]);
	let (mut alice, mut bob) =
		opened(MemoryStore::default(), MemoryStore::default(), [1_000, 1_000]);
	for preimage in [&learned, &on_chain_only, &invoiced] {
		update_on(&mut alice, &mut bob, HtlcUpdate::Add(htlc(10, preimage)));
	}
	let mut relay = Relay::new(MemoryStore::default(), forwarding).unwrap();
	// An invoice whose HTLC Bob refused (here: it asks for more than was paid).
	relay.invoice(invoiced, 50).unwrap();
	// What the chain showed: the preimage of `on_chain_only` alone.
	let banks = vec![bob.bank(CHANNEL).unwrap().clone()];
	let links = Seen { banks: banks.clone(), now: 100, paid_out: None, shown: Some(on_chain_only) };
	let settles = |commands: &[Command]| -> Vec<sp_core::H256> {
		let mut locks: Vec<_> = commands
			.iter()
			.filter_map(|c| match c {
				Command::Propose {
					proposal: Proposal::Resolve { lock, resolve: Resolve::Settle(_) },
					..
				} => Some(*lock),
				_ => None,
			})
			.collect();
		locks.sort();
		locks
	};
	let shown = relay.on(Happened::Shown(learned), &links);
	assert_eq!(settles(&shown), [hashlock(&learned)]);
	// While it is under way, a tick makes it no second time; the one shown on chain it does.
	let tick = relay.on(Happened::Tick, &links);
	assert_eq!(settles(&tick), [hashlock(&on_chain_only)]);
	assert_eq!(relay.preimage(&hashlock(&on_chain_only)), Some(on_chain_only), "kept");
	// Ours failed for a reason of our own: nothing goes on chain, and the next tick settles.
	for lock in [learned, on_chain_only] {
		let proposal = Proposal::Resolve { lock: hashlock(&lock), resolve: Resolve::Settle(lock) };
		let error = DriveError::Helper(HelperError::Protocol(Error::Busy));
		let not_final = relay.on(Happened::NotFinal { channel: CHANNEL, proposal, error }, &links);
		assert_eq!(not_final, vec![]);
	}
	// At their expiry they are the peer's to take back: nothing is asked again.
	let late = Seen { banks, now: 1_000, paid_out: None, shown: None };
	assert_eq!(relay.on(Happened::Tick, &late), vec![]);
	let mut expected = vec![hashlock(&learned), hashlock(&on_chain_only)];
	expected.sort();
	assert_eq!(settles(&relay.on(Happened::Tick, &links)), expected);
	// The refused invoice's HTLC stays as decided; with nothing learned, a tick does nothing.
	let mut fresh = Relay::new(MemoryStore::default(), forwarding).unwrap();
	fresh.invoice(invoiced, 50).unwrap();
	let nothing_shown = Fixed(vec![bob.bank(CHANNEL).unwrap().clone()]);
	assert_eq!(fresh.on(Happened::Tick, &nothing_shown), vec![]);
}

/// Found in a full run of the e2e suite (`htlc::bob_goes_silent_after_forwarding_…`): Bob's
/// node looked at Charlie's liquidation of Bob–Charlie when the block after it, with Charlie's
/// claim, was already the best: the chain's list then showed Bob's HTLC paid out, so nothing
/// of Bob's under the lock could still be paid out, and Bob failed Alice's HTLC upstream
/// before he looked at the claim that showed its preimage. Bob paid Charlie and gave Alice her
/// money back: 7 VBK lost. An HTLC gone from the chain's list by a claim has its preimage on
/// chain: the relay now settles upstream with it instead of failing.
#[test]
fn an_htlc_paid_out_by_a_claim_before_we_looked_settles_upstream_and_fails_nothing() {
	use rsmc::{
		chain::ChainEvent,
		relay::{Command, Happened, Proposal, Relay},
		Progress,
	};
	let [mut alice, mut bob, mut charlie] = three();
	let preimage = [7; 32];
	let lock = hashlock(&preimage);
	let hops = [
		Hop { channel: AB, amount: 105, expiry: 200 },
		Hop { channel: BC, amount: 100, expiry: 160 },
	];
	let Some(Progress::Htlc { update: added, .. }) =
		carry(AB, &mut alice, &mut bob, hops[0].update(0, lock, &hops[1..]))
	else {
		panic!("Bob took the HTLC")
	};
	let mut relay =
		Relay::new(MemoryStore::default(), Forwarding { fee: 5, delta: 40, dust: 0 }).unwrap();
	let banks = |bob: &Helper<MemoryStore>| Fixed(bob.banks().cloned().collect());
	let commands =
		relay.on(Happened::Final { channel: AB, update: added, by_us: false }, &banks(&bob));
	let offer = commands
		.iter()
		.find_map(|c| match c {
			Command::Propose { channel: BC, proposal: Proposal::Offer(update) } => {
				Some(update.clone())
			},
			_ => None,
		})
		.expect("Bob passes it on to Charlie");
	carry(BC, &mut bob, &mut charlie, offer);

	// Charlie liquidates with the HTLC on the sheet; Bob's helper hears of it.
	let sheet = charlie.liquidate(BC).unwrap();
	let liquidated = ChainEvent::Liquidated {
		channel: BC,
		master: charlie.signer().account(),
		nonce: sheet.nonce,
		balances: sheet.balances,
		unlock_at: 110,
		release_at: 110,
	};
	bob.on_chain_event(&liquidated).unwrap();
	// The chain as Bob reads it then: Charlie's claim already in the best block.
	let claimed = Seen {
		banks: bob.banks().cloned().collect(),
		now: 100,
		paid_out: Some(BC),
		shown: Some(preimage),
	};
	let commands = relay.on(Happened::Gone(lock), &claimed);
	let upstream: Vec<&Resolve> = commands
		.iter()
		.filter_map(|c| match c {
			Command::Propose { channel: AB, proposal: Proposal::Resolve { resolve, .. } } => {
				Some(resolve)
			},
			_ => None,
		})
		.collect();
	assert_eq!(upstream, [&Resolve::Settle(preimage)], "{commands:?}");
	assert_eq!(relay.preimage(&lock), Some(preimage), "kept before anything depends on it");
}
