//! Payments between two helpers: the handshake, both directions, and thousands of random
//! payments and HTLC updates over a network that delays, repeats, reorders and drops
//! messages.

use super::*;
use rand::{Rng, SeedableRng};
use rsmc::{
	bank::{Htlc, HtlcUpdate, MAX_HTLCS_PER_SIDE},
	store::MemoryStore,
	Action, Error, HelperError,
};
use std::collections::BTreeMap;
use vbank_primitives::{hashlock, Preimage};

#[test]
fn the_handshake_gives_each_side_a_signed_sheet_zero() {
	let (alice, bob) = opened(MemoryStore::default(), MemoryStore::default(), [100, 0]);
	let (a, b) = (alice.bank(CHANNEL).unwrap(), bob.bank(CHANNEL).unwrap());
	assert_eq!(a.nonce(), 0);
	assert_eq!(a.balances(), [100, 0]);
	assert_can_liquidate(a, b);
	assert_can_liquidate(b, a);
	assert_agree(a, b);
}

#[test]
fn payments_flow_both_ways_and_revoke_every_older_sheet() {
	let (mut alice, mut bob) = opened(MemoryStore::default(), MemoryStore::default(), [100, 50]);
	pay(&mut alice, &mut bob, 30);
	pay(&mut bob, &mut alice, 5);
	pay(&mut alice, &mut bob, 75);
	let (a, b) = (alice.bank(CHANNEL).unwrap(), bob.bank(CHANNEL).unwrap());
	assert_eq!(a.balances(), [0, 150]);
	assert_eq!(a.nonce(), 3);
	assert_agree(a, b);
	for (bank, peer) in [(a, b), (b, a)] {
		assert_can_liquidate(bank, peer);
		assert_can_punish_every_revoked_sheet(peer, bank);
	}
}

#[test]
fn a_payer_cannot_pay_more_than_its_share_nor_nothing_nor_twice_at_once() {
	let (mut alice, mut bob) = opened(MemoryStore::default(), MemoryStore::default(), [10, 0]);
	let refused = |r: Result<Message, HelperError>| match r {
		Err(HelperError::Protocol(e)) => e,
		other => panic!("expected a refusal, got {other:?}"),
	};
	assert_eq!(
		refused(bob.pay(CHANNEL, 1)),
		Error::InsufficientFunds { available: 0, requested: 1 }
	);
	assert_eq!(refused(alice.pay(CHANNEL, 0)), Error::ZeroAmount);
	assert_eq!(
		refused(alice.pay(CHANNEL, 11)),
		Error::InsufficientFunds { available: 10, requested: 11 }
	);
	alice.pay(CHANNEL, 4).unwrap();
	let busy = refused(alice.pay(CHANNEL, 1));
	assert_eq!((busy.clone(), busy.action()), (Error::Busy, Action::Retry));
	assert!(matches!(alice.pay(99, 1), Err(HelperError::UnknownBank(99))));
}

/// A store a restarted helper finds as the crashed one left it.
type Shared = Arc<MemoryStore>;

/// A network between Alice and Bob that loses, repeats, delays and reorders messages.
struct FaultyWire {
	in_flight: Vec<(bool, Message)>,
	rng: rand::rngs::StdRng,
}

impl FaultyWire {
	fn send(&mut self, to_bob: bool, message: Option<Message>) {
		if let Some(message) = message {
			self.in_flight.push((to_bob, message));
		}
	}

	/// Deliver one message, or lose, duplicate or hold it back.
	fn step(&mut self, alice: &mut Helper<Shared>, bob: &mut Helper<Shared>) {
		if self.in_flight.is_empty() {
			return;
		}
		// Any message may overtake the others.
		let pick = self.rng.gen_range(0..self.in_flight.len());
		let roll = self.rng.gen_range(0..100);
		if roll < 10 {
			self.in_flight.remove(pick); // lost
			return;
		}
		let (to_bob, message) =
			if roll < 20 { self.in_flight[pick].clone() } else { self.in_flight.remove(pick) };
		let (receiver, reply_to_bob) =
			if to_bob { (&mut *bob, false) } else { (&mut *alice, true) };
		match receiver.handle(&message) {
			Ok(step) => self.send(reply_to_bob, step.reply),
			// Duplicates, stale repeats and out-of-turn messages are refused and change nothing.
			Err(HelperError::Protocol(e)) => assert_ne!(e, Error::BadSignature, "{message:?}"),
			Err(e) => panic!("{e}"),
		}
	}

	/// The timeouts: each side sends its unanswered message again.
	fn retransmit(&mut self, alice: &Helper<Shared>, bob: &Helper<Shared>) {
		self.send(true, alice.retransmission(CHANNEL));
		self.send(false, bob.retransmission(CHANNEL));
	}
}

fn settled(alice: &Helper<Shared>, bob: &Helper<Shared>) -> bool {
	let idle = |h: &Helper<Shared>| h.bank(CHANNEL).unwrap().ledger().unwrap().in_flight.is_none();
	idle(alice) && idle(bob)
}

/// What a side sets out to do: pay, or change the HTLCs (those it settles or fails named by
/// hashlock: their index is looked up when proposed).
#[derive(Clone, Debug)]
enum Kind {
	Pay(u128),
	Add(Htlc),
	Settle(Preimage),
	Fail(H256),
}

/// A side's payment or update as a driver tracks it: what, and once proposed, the counts of
/// payments made, proposals given way and updates made at that moment.
struct Payment {
	kind: Kind,
	proposed: Option<(u64, u64, u64)>,
}

fn counts(helper: &Helper<Shared>) -> (u64, u64, u64) {
	let ledger = helper.bank(CHANNEL).unwrap().ledger().unwrap();
	(ledger.paid, ledger.yielded, ledger.updated)
}

/// Propose `kind` on `helper`'s bank as client `me`: the message, `None` when it must wait.
fn propose(helper: &mut Helper<Shared>, kind: &Kind) -> Option<Message> {
	let htlcs = helper.bank(CHANNEL).unwrap().htlcs().to_vec();
	let index_of = |lock: H256| htlcs.iter().position(|h| h.hashlock == lock).unwrap() as u32;
	let result = match kind {
		Kind::Pay(amount) => helper.pay(CHANNEL, *amount),
		Kind::Add(htlc) => helper.update(CHANNEL, HtlcUpdate::Add(htlc.clone())),
		Kind::Settle(preimage) => {
			let index = index_of(hashlock(preimage));
			helper.update(CHANNEL, HtlcUpdate::Settle { index, preimage: *preimage })
		},
		Kind::Fail(lock) => {
			helper.update(CHANNEL, HtlcUpdate::Fail { index: index_of(*lock), hashlock: *lock })
		},
	};
	match result {
		Ok(message) => Some(message),
		Err(HelperError::Protocol(Error::Busy)) => None,
		// The peer's payment to us is not final yet: our share may still be short.
		Err(HelperError::Protocol(Error::InsufficientFunds { .. })) => None,
		Err(e) => panic!("{kind:?}: {e}"),
	}
}

/// Whether `helper`'s side of the bank has as many HTLCs pending as one side may.
fn bank_is_full(helper: &Helper<Shared>) -> bool {
	sent_by(helper.bank(CHANNEL).unwrap(), helper.bank(CHANNEL).unwrap().me()) >= MAX_HTLCS_PER_SIDE
}

/// How many HTLCs client `me` has pending on `bank`'s newest sheet.
fn sent_by(bank: &Bank, me: usize) -> usize {
	bank.htlcs().iter().filter(|h| usize::from(h.from) == me).count()
}

/// A new thing for client `me` to do: mostly a payment, sometimes an HTLC to the peer, or
/// settling or failing one the peer locked for it (always, once the payments are made, so
/// that none stays pending). The preimages it made are in `preimages`, by hashlock (the
/// test's knowledge: in a route, the payee's).
fn next_kind(
	rng: &mut rand::rngs::StdRng,
	bank: &Bank,
	me: usize,
	busy: &[Kind],
	payments_left: bool,
	preimages: &mut BTreeMap<H256, Preimage>,
	now: u32,
) -> Option<Kind> {
	let taken = |lock: H256| {
		busy.iter().any(|kind| match kind {
			Kind::Settle(preimage) => hashlock(preimage) == lock,
			Kind::Fail(l) => *l == lock,
			_ => false,
		})
	};
	let owed: Vec<&Htlc> =
		bank.htlcs().iter().filter(|h| usize::from(h.from) != me && !taken(h.hashlock)).collect();
	if let Some(h) = owed.first().filter(|_| !payments_left || rng.gen_bool(0.2)) {
		// A payee reveals only before expiry (what the node checks); an expired HTLC is failed.
		let in_time = rsmc::route::payee_accepts(h, h.amount, now, 2).is_ok();
		return Some(if in_time && rng.gen_bool(0.7) {
			Kind::Settle(preimages[&h.hashlock])
		} else {
			Kind::Fail(h.hashlock)
		});
	}
	let available = bank.balances()[me];
	if !payments_left || available == 0 || !rng.gen_bool(0.5) {
		return None;
	}
	let amount = rng.gen_range(1..=available.min(5_000));
	if rng.gen_bool(0.2) && sent_by(bank, me) < MAX_HTLCS_PER_SIDE {
		let preimage: Preimage = rng.r#gen();
		let lock = hashlock(&preimage);
		preimages.insert(lock, preimage);
		let expiry = now + rng.gen_range(2..300);
		return Some(Kind::Add(Htlc { from: me as u8, amount, hashlock: lock, expiry }));
	}
	Some(Kind::Pay(amount))
}

/// The consistency fuzzer's core (after LDK's `chanmon_consistency`): both sides start
/// payments and HTLC updates whenever they like, so proposals meet at the same nonce, over a
/// wire that loses, repeats and reorders; a proposal that gives way is made again. At every
/// step each side holds a sheet it can liquidate with that the other can't punish; at the
/// end both agree on exactly the payments and updates that completed, and every one of them
/// did.
fn run_random_payments(seed: u64, payments: usize) {
	let start = [1_000_000, 1_000_000];
	let stores = [Arc::new(MemoryStore::default()), Arc::new(MemoryStore::default())];
	let (mut alice, mut bob) = opened(stores[0].clone(), stores[1].clone(), start);
	let mut wire =
		FaultyWire { in_flight: Vec::new(), rng: rand::rngs::StdRng::seed_from_u64(seed) };
	let mut expected = start;
	let mut made = 0;
	let mut restarts = 0;
	let mut steps = 0;
	let mut pending: [Option<Payment>; 2] = [None, None];
	// The HTLCs whose addition completed, by hashlock: what settling or failing one moves.
	let mut locked: BTreeMap<H256, Htlc> = BTreeMap::new();
	let mut preimages = BTreeMap::new();
	let (mut added, mut resolved) = (0, 0);
	// The chain's height, one block every ten steps or so: HTLCs expire as the run goes.
	let mut now = 0u32;
	let mut expired_failed = 0;
	let htlcs_pending = |h: &Helper<Shared>| !h.bank(CHANNEL).unwrap().htlcs().is_empty();
	while made < payments
		|| pending.iter().any(Option::is_some)
		|| !settled(&alice, &bob)
		|| htlcs_pending(&alice)
	{
		steps += 1;
		assert!(steps < payments * 400 + 10_000, "no progress after {steps} steps");
		now += u32::from(wire.rng.gen_range(0..10) == 0);
		for from in [0, 1] {
			let payer = if from == 0 { &mut alice } else { &mut bob };
			// In flight: final, or given way to the peer's and due again.
			if let Some(Payment { kind, proposed: Some((paid, yielded, updated)) }) = &pending[from]
			{
				let (now_paid, now_yielded, now_updated) = counts(payer);
				let done = match kind {
					Kind::Pay(_) => now_paid > *paid,
					_ => now_updated > *updated,
				};
				if done {
					match kind {
						Kind::Pay(amount) => {
							expected[from] -= amount;
							expected[1 - from] += amount;
						},
						Kind::Add(htlc) => {
							expected[from] -= htlc.amount;
							locked.insert(htlc.hashlock, htlc.clone());
							added += 1;
						},
						Kind::Settle(preimage) => {
							expected[from] += locked.remove(&hashlock(preimage)).unwrap().amount;
							resolved += 1;
						},
						Kind::Fail(lock) => {
							let htlc = locked.remove(lock).unwrap();
							expected[usize::from(htlc.from)] += htlc.amount;
							resolved += 1;
						},
					}
					pending[from] = None;
				} else if now_yielded > *yielded {
					pending[from].as_mut().unwrap().proposed = None;
				}
			}
			if pending[from].is_none() && wire.rng.gen_bool(0.5) {
				let bank = payer.bank(CHANNEL).unwrap();
				let busy: Vec<Kind> = pending.iter().flatten().map(|p| p.kind.clone()).collect();
				let kind = next_kind(
					&mut wire.rng,
					bank,
					from,
					&busy,
					made < payments,
					&mut preimages,
					now,
				);
				if let Some(Kind::Fail(lock)) = &kind {
					let h = bank.htlcs().iter().find(|h| h.hashlock == *lock).unwrap();
					expired_failed += usize::from(h.expiry <= now + 1);
				}
				if let Some(kind) = kind {
					made += usize::from(matches!(kind, Kind::Pay(_) | Kind::Add(_)));
					pending[from] = Some(Payment { kind, proposed: None });
				}
			}
			// The peer filled the list meanwhile: this HTLC is given up (both sides may be
			// waiting to add one, and neither would settle).
			if matches!(&pending[from], Some(Payment { kind: Kind::Add(_), proposed: None }))
				&& bank_is_full(payer)
			{
				pending[from] = None;
			}
			if let Some(Payment { kind, proposed: proposed @ None }) = &mut pending[from] {
				let before = counts(payer);
				if let Some(message) = propose(payer, kind) {
					*proposed = Some(before);
					wire.send(from == 0, Some(message));
				}
			}
		}
		if wire.in_flight.is_empty() || wire.rng.gen_range(0..50) == 0 {
			wire.retransmit(&alice, &bob);
		}
		wire.step(&mut alice, &mut bob);
		// A helper restarts from its store at a random point, its memory lost.
		if wire.rng.gen_range(0..100) == 0 {
			let restart_alice = wire.rng.gen_bool(0.5);
			let (helper, name, store) = if restart_alice {
				(&mut alice, "Alice", &stores[0])
			} else {
				(&mut bob, "Bob", &stores[1])
			};
			*helper = Helper::new(signer(name), GENESIS, store.clone()).unwrap();
			restarts += 1;
		}
		let (a, b) = (alice.bank(CHANNEL).unwrap(), bob.bank(CHANNEL).unwrap());
		assert_can_liquidate(a, b);
		assert_can_liquidate(b, a);
	}
	assert!(restarts > 0 || payments < 100, "seed {seed}: no restart");
	// Every completed payment is in both stores: helpers restarted now hold the same banks.
	for (helper, name, store) in [(&alice, "Alice", &stores[0]), (&bob, "Bob", &stores[1])] {
		let restarted = Helper::new(signer(name), GENESIS, store.clone()).unwrap();
		assert_eq!(restarted.bank(CHANNEL), helper.bank(CHANNEL), "{name}'s store is behind");
	}
	let (a, b) = (alice.bank(CHANNEL).unwrap(), bob.bank(CHANNEL).unwrap());
	assert_agree(a, b);
	assert_eq!(a.balances(), expected);
	for (bank, peer) in [(a, b), (b, a)] {
		assert_can_liquidate(bank, peer);
		assert_can_punish_every_revoked_sheet(peer, bank);
	}
	assert!(b.ledger().unwrap().yielded > 0 || payments < 100, "seed {seed}: no collision");
	assert!(locked.is_empty() && added == resolved, "{added} HTLCs added, {resolved} resolved");
	assert!(added > 0 || payments < 100, "seed {seed}: no HTLC");
	assert!(expired_failed > 0 || payments < 100, "seed {seed}: no HTLC expired");
	match wire.rng.gen_range(0..3) {
		0 => settle_by_close(&mut alice, &mut bob, &mut wire, expected),
		1 => settle_by_liquidation(&mut alice, &mut bob, wire.rng.gen_bool(0.5), expected),
		_ => liquidate_with_htlcs_pending(&mut alice, &mut bob, &mut wire.rng, now),
	}
}

/// Both sides lock HTLCs to each other, some already expired, some whose preimage the
/// receiver knows; one liquidates, and the watchtowers' rules (`owed_htlcs`) play the
/// liquidation out on a model of the chain: every call they make is one the chain takes (a
/// claim with the right preimage before expiry, a refund after), every HTLC is paid out, and
/// to its receiver exactly when the receiver knew the preimage and it had not expired.
fn liquidate_with_htlcs_pending(
	alice: &mut Helper<Shared>,
	bob: &mut Helper<Shared>,
	rng: &mut rand::rngs::StdRng,
	now: u32,
) {
	let mut known: [BTreeMap<H256, Preimage>; 2] = Default::default();
	for _ in 0..rng.gen_range(1..8) {
		let from = rng.gen_range(0..2usize);
		let (payer, payee) =
			if from == 0 { (&mut *alice, &mut *bob) } else { (&mut *bob, &mut *alice) };
		let available = payer.bank(CHANNEL).unwrap().balances()[from];
		if available == 0 || bank_is_full(payer) {
			continue;
		}
		let preimage: Preimage = rng.r#gen();
		let expiry = now + rng.gen_range(2..50);
		let htlc = Htlc {
			from: from as u8,
			amount: rng.gen_range(1..=available.min(5_000)),
			hashlock: hashlock(&preimage),
			expiry,
		};
		super::htlc::update_on(payer, payee, HtlcUpdate::Add(htlc));
		if rng.gen_bool(0.6) {
			known[1 - from].insert(hashlock(&preimage), preimage);
		}
	}
	// Liquidated some blocks later: HTLCs that expired meanwhile can only be refunded.
	let liquidated_at = now + rng.gen_range(0..40);
	let master = if rng.gen_bool(0.5) { &*alice } else { &*bob };
	let sheet = master.liquidation(CHANNEL).unwrap();
	let total: u128 =
		sheet.balances.iter().sum::<u128>() + sheet.htlcs.iter().map(|h| h.amount).sum::<u128>();
	let mut paid = sheet.balances;
	let mut htlcs: Vec<Option<Htlc>> = sheet.htlcs.iter().cloned().map(Some).collect();
	for block in liquidated_at..liquidated_at + 60 {
		for side in [0, 1] {
			let lookup = |lock: &H256| known[side].get(lock).copied();
			for call in rsmc::chain::owed_htlcs(CHANNEL, side, &htlcs, lookup, block.into()) {
				match call {
					rsmc::chain::ChainCall::ClaimHtlc { index, preimage, .. } => {
						let htlc = htlcs[index as usize].take().expect("claims a pending HTLC");
						assert_eq!(hashlock(&preimage), htlc.hashlock);
						assert!(block + 1 < htlc.expiry, "a claim the chain refuses: expired");
						assert_eq!(usize::from(htlc.from), 1 - side, "a claim by the payer");
						paid[side] += htlc.amount;
					},
					rsmc::chain::ChainCall::RefundHtlc { index, .. } => {
						let htlc = htlcs[index as usize].take().expect("refunds a pending HTLC");
						assert!(
							block + 1 >= htlc.expiry,
							"a refund the chain refuses: not expired"
						);
						assert_eq!(usize::from(htlc.from), side, "a refund by the receiver");
						paid[side] += htlc.amount;
					},
					other => panic!("not an HTLC call: {other:?}"),
				}
			}
		}
	}
	assert!(htlcs.iter().all(Option::is_none), "an HTLC left unpaid: {htlcs:?}");
	assert_eq!(paid.iter().sum::<u128>(), total);
	let mut to_receivers = [0u128; 2];
	for htlc in &sheet.htlcs {
		let receiver = 1 - usize::from(htlc.from);
		if known[receiver].contains_key(&htlc.hashlock) && liquidated_at + 1 < htlc.expiry {
			to_receivers[receiver] += htlc.amount;
		} else {
			to_receivers[1 - receiver] += htlc.amount;
		}
	}
	assert_eq!([paid[0] - sheet.balances[0], paid[1] - sheet.balances[1]], to_receivers);
}

/// A cooperative close over the same faulty wire: both end with both signatures on the
/// newest sheet.
fn settle_by_close(
	alice: &mut Helper<Shared>,
	bob: &mut Helper<Shared>,
	wire: &mut FaultyWire,
	expected: Balances,
) {
	let close = alice.close(CHANNEL).unwrap();
	wire.send(true, Some(close));
	let closed =
		|h: &Helper<Shared>| h.bank(CHANNEL).unwrap().closing().and_then(|c| c.signatures());
	for _ in 0..10_000 {
		if closed(alice).is_some() && closed(bob).is_some() {
			break;
		}
		if wire.in_flight.is_empty() {
			wire.send(true, alice.close(CHANNEL).ok());
		}
		wire.step(alice, bob);
	}
	for helper in [&*alice, &*bob] {
		let closing = helper.bank(CHANNEL).unwrap().closing().unwrap().clone();
		assert!(closing.signatures().is_some(), "the close did not complete");
		assert_eq!(closing.balances, expected);
	}
}

/// One side liquidates with its newest sheet, and the chain's events reach both watchtowers
/// twice: nobody punishes an honest liquidation, the master withdraws once the lock ends.
fn settle_by_liquidation(
	alice: &mut Helper<Shared>,
	bob: &mut Helper<Shared>,
	by_alice: bool,
	expected: Balances,
) {
	let master = if by_alice { &*alice } else { &*bob };
	let sheet = master.liquidation(CHANNEL).unwrap();
	assert_eq!(sheet.balances, expected);
	let event = rsmc::chain::ChainEvent::Liquidated {
		channel: CHANNEL,
		master: master.signer().account(),
		nonce: sheet.nonce,
		balances: sheet.balances,
		unlock_at: 50,
		// The schedule was full at 50: the master may withdraw at 50 itself.
		release_at: 51,
	};
	for _ in 0..2 {
		for (helper, is_master) in [(&mut *alice, by_alice), (&mut *bob, !by_alice)] {
			let owed = helper.on_chain_event(&event).unwrap();
			assert_eq!(owed, vec![], "an honest liquidation punished");
			let at_unlock = helper.on_chain_event(&rsmc::chain::ChainEvent::Block { number: 50 });
			let expected_calls = if is_master {
				vec![rsmc::chain::ChainCall::WithdrawByMaster { channel: CHANNEL }]
			} else {
				vec![]
			};
			assert_eq!(at_unlock.unwrap(), expected_calls);
		}
	}
}

#[test]
fn thousands_of_random_payments_over_a_faulty_network_leave_both_sides_agreeing() {
	for seed in 0..4 {
		run_random_payments(seed, 600);
	}
}

#[test]
fn many_short_runs_over_differently_faulty_networks_settle() {
	// `RSMC_FUZZ_SECONDS=<n>` goes on with new seeds for that long (RELIABILITY.md).
	let seconds: u64 =
		std::env::var("RSMC_FUZZ_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(0);
	let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
	let mut runs = 0;
	for seed in 100.. {
		if seed >= 132 && std::time::Instant::now() >= deadline {
			break;
		}
		run_random_payments(seed, 40);
		runs += 1;
	}
	println!("consistency fuzzer: {runs} runs of 40 payments");
}
