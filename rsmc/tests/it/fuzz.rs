//! The byzantine fuzzer: an honest Bob against a peer that holds Alice's key and sends random
//! well-formed messages, properly signed, with hostile contents (replays, other nonces and
//! balances, sheets it signed itself, secrets of its choosing). Whatever it sends, Bob never
//! panics, never signs two different sheets of Alice's at one nonce, never signs a sheet that
//! leaves him less than his newest, and never reveals the secret of a sheet before he holds a
//! newer one. Splices too (`docs/splice.md`): either side proposes them, Alice's may be hostile,
//! and a splice Bob signed lands on the simulated chain whenever Alice likes (or never); Bob's
//! sheet is always one the chain takes: its total, and no older than the last splice. A sheet
//! of Alice's Bob signed for a splice of his own counts only once he signs that splice: before,
//! it adds up to a total the chain never holds at that nonce. The bank has a reserve: Bob never
//! signs a sheet of Alice's that takes her share below it (a share under it may only grow).
//! At the end of a run Bob restarts from an older copy of his store: once he and Alice have
//! compared where they are, he holds no sheet to liquidate with that she could punish. Or he
//! restarts with no store at all, from the chain's terms and his key: he never liquidates, and
//! a close he owes is at Alice's newest sheet, signed by both.
//! `RSMC_FUZZ_SECONDS=<n>` runs it for that long instead of the short replay.

use super::*;
use rand::{rngs::StdRng, seq::SliceRandom, Rng, SeedableRng};
use rsmc::{keys::Signer, secrets::Secret, store::MemoryStore, Body};
use std::{
	collections::BTreeMap,
	time::{Duration, Instant},
};
use vbank_primitives::{splice_payload, Nonce};

/// What Bob has signed and revealed so far, checked against every message he sends.
#[derive(Default)]
struct Witness {
	/// Alice's sheets Bob signed: nonce → balances.
	signed: BTreeMap<Nonce, Balances>,
	/// Alice's sheets Bob signed for splices of his own, not signed yet: nonce → balances.
	proposed_splices: BTreeMap<Nonce, Balances>,
	/// Splices Bob signed: nonce → (amounts in, amounts out). The chain may take one.
	splices: BTreeMap<Nonce, (Balances, Balances)>,
	/// Bob's balance in his newest sheet when each of his messages left.
	messages: usize,
}

impl Witness {
	fn check(&mut self, bob: &Helper<MemoryStore>, sent: &Message) {
		self.messages += 1;
		let bank = bob.bank(CHANNEL).unwrap();
		let ledger = bank.ledger();
		let sheet_nonce = ledger.map_or(0, |l| l.sheet.nonce);
		let proposed = &self.proposed_splices;
		let reserve = bank.reserve;
		let mut sign = |nonce: Nonce, balances: Balances| {
			if let Some((_, before)) = self.signed.range(..nonce).next_back() {
				assert!(
					balances[0] >= reserve || balances[0] >= before[0],
					"Bob signed Alice's sheet {nonce} leaving her {} below the reserve of \
					 {reserve}, from {}",
					balances[0],
					before[0]
				);
			}
			// Only with another total than the sheet Bob signed for a splice of his at that
			// nonce, which he then never signs: that sheet stays void.
			if let Some(splice_sheet) = proposed.get(&nonce).filter(|b| **b != balances) {
				assert_ne!(
					splice_sheet[0] + splice_sheet[1],
					balances[0] + balances[1],
					"Bob signed two sheets of Alice's at nonce {nonce} with one total"
				);
			}
			let earlier = self.signed.insert(nonce, balances);
			assert!(
				earlier.is_none_or(|b| b == balances),
				"Bob signed two sheets of Alice's at nonce {nonce}: {earlier:?} and {balances:?}"
			);
		};
		match &sent.body {
			Body::OpenAccept { .. } => sign(0, bank.terms.balances),
			Body::Propose { nonce, balances, .. } => {
				sign(*nonce, *balances);
				let ours = ledger.unwrap().sheet.balances[1];
				assert!(balances[1] < ours, "a proposal of Bob's that does not pay Alice");
			},
			Body::Accept { nonce, secrets, .. } => {
				let ledger = ledger.unwrap();
				sign(*nonce, ledger.peer_balances);
				assert_eq!(ledger.peer_balances, ledger.sheet.balances, "Bob signed another sheet");
				let most = rsmc::bank::SECRETS_REVEALED as usize;
				assert!(
					secrets.len() <= most && *nonce <= sheet_nonce,
					"revealed ahead of his sheet"
				);
			},
			Body::Revoke { nonce, .. } => {
				assert!(*nonce < sheet_nonce, "Bob revoked sheet {nonce}, his newest");
			},
			Body::Splice { nonce, amounts_out, .. } => {
				let splicing = bank.splicing().expect("Bob's splice in flight");
				assert_eq!(amounts_out[0], 0, "Bob's splice takes Alice's money");
				let earlier = self.signed.get(nonce);
				assert!(
					earlier.is_none(),
					"Bob proposed a splice at {nonce}, where he signed {earlier:?}"
				);
				self.proposed_splices.insert(*nonce, splicing.balances);
			},
			Body::SpliceAccept { nonce, .. } => {
				let (ledger, splicing) = (ledger.unwrap(), bank.splicing().unwrap());
				assert!(
					!proposed.contains_key(nonce),
					"Bob signed Alice's splice at {nonce}, where he proposed his own"
				);
				sign(*nonce, ledger.peer_balances);
				assert_eq!(splicing.balances, ledger.peer_balances);
				assert_eq!(
					splicing.balances[1], ledger.sheet.balances[1],
					"Alice's splice moved Bob's share"
				);
				let sheet = splicing.sheet.as_ref().expect("Bob holds his sheet of the splice");
				assert_eq!(sheet.balances, splicing.balances);
				self.splices.insert(*nonce, (splicing.amounts_in, splicing.amounts_out));
			},
			Body::SpliceSigned { nonce, .. } => {
				let splicing = bank.splicing().unwrap();
				assert!(splicing.sheet.is_some(), "Bob signed a splice without his sheet of it");
				sign(*nonce, proposed[nonce]);
				self.splices.insert(*nonce, (splicing.amounts_in, splicing.amounts_out));
			},
			_ => {},
		}
	}
}

/// The chain as the fuzzer plays it: what the bank holds, and the nonce of its last splice.
struct Chain {
	total: u128,
	spliced_at: Nonce,
	landed: u64,
}

impl Chain {
	/// Take the splice Bob signed at `nonce`, if the chain would: both helpers hear of it.
	fn land(
		&mut self,
		witness: &Witness,
		nonce: Nonce,
		alice: &mut Helper<MemoryStore>,
		bob: &mut Helper<MemoryStore>,
	) {
		let Some((amounts_in, amounts_out)) = witness.splices.get(&nonce) else { return };
		let total = (self.total + amounts_in[0] + amounts_in[1])
			.checked_sub(amounts_out[0] + amounts_out[1]);
		let (Some(total), true) = (total, nonce > self.spliced_at) else { return };
		(self.total, self.spliced_at) = (total, nonce);
		self.landed += 1;
		let landed = rsmc::chain::ChainEvent::Spliced { channel: CHANNEL, nonce };
		for helper in [alice, bob] {
			helper.on_chain_event(&landed).expect("the store works");
		}
	}
}

/// A random message Alice's key signs: an honest one replayed or altered, or one made up.
fn hostile(
	rng: &mut StdRng,
	seen: &[Message],
	bob: &Helper<MemoryStore>,
	alices: &Bank,
) -> Message {
	let alice = signer("Alice");
	let bank = bob.bank(CHANNEL).unwrap();
	let near = bank.nonce() + rng.gen_range(0..3);
	let nonce = near.saturating_sub(rng.gen_range(0..2));
	let total = bank.balances()[0] + bank.balances()[1];
	// Often at the edge of the reserve, where a sheet leaves Alice just below or above it.
	let split = if rng.gen_bool(0.3) {
		rng.gen_range(0..=(bank.reserve * 2).min(total))
	} else {
		rng.gen_range(0..=total)
	};
	let balances = if rng.gen_bool(0.9) { [split, total - split] } else { [split, split] };
	let sheet_signature = {
		let waiver = bank.my_waiver(nonce).unwrap();
		alice.sign(&sheet_payload(&GENESIS, CHANNEL, nonce, &balances, &waiver))
	};
	// Alice's own waiver keys for the nonce and the next, a third of the time: the keys Bob
	// expects, so that her hostile sheets get as far as their contents.
	let real = rng.gen_bool(1.0 / 3.0);
	let waivers = |rng: &mut StdRng, key: &dyn Fn(&mut StdRng) -> AccountId32| match real {
		true => [alices.my_waiver(nonce).unwrap(), alices.my_waiver(nonce + 1).unwrap()],
		false => [key(rng), key(rng)],
	};
	let key = |rng: &mut StdRng| {
		if rng.gen_bool(0.5) {
			account(&alice)
		} else {
			rsmc::keys::waiver_key(&rng.gen::<Secret>())
		}
	};
	let secrets: Vec<Secret> = (0..rng.gen_range(0..3)).map(|_| rng.gen()).collect();
	// A splice of Alice's: her share changed (sometimes Bob's), Bob's sheet signed for it.
	let change = rng.gen_range(1..=total.max(1));
	let (mut amounts_in, mut amounts_out) = ([0; 2], [0; 2]);
	let side = usize::from(rng.gen_bool(0.2));
	if rng.gen_bool(0.5) {
		amounts_in[side] = change;
	} else {
		amounts_out[side] = change;
	}
	let mut spliced = bank.balances();
	spliced[side] = (spliced[side] + amounts_in[side]).saturating_sub(amounts_out[side]);
	let spliced = if rng.gen_bool(0.8) { spliced } else { balances };
	let splice_sheet = {
		let waiver = bank.my_waiver(nonce).unwrap();
		let payload = htlc_sheet_payload(&GENESIS, CHANNEL, nonce, &spliced, &waiver, bank.htlcs());
		alice.sign(&payload)
	};
	let splice_signature = {
		let payload = splice_payload(&GENESIS, CHANNEL, nonce, &amounts_in, &amounts_out);
		if rng.gen_bool(0.8) {
			alice.sign(&payload)
		} else {
			signer("Charlie").sign(&payload)
		}
	};
	let body = match rng.gen_range(0..11) {
		0 | 1 if !seen.is_empty() => {
			let mut replayed = seen.choose(rng).unwrap().body.clone();
			if let Body::Propose { balances: b, .. } | Body::Close { balances: b, .. } =
				&mut replayed
			{
				if rng.gen_bool(0.5) {
					*b = balances;
				}
			}
			replayed
		},
		2 => Body::Propose {
			nonce,
			balances,
			signature: sheet_signature,
			waivers: waivers(rng, &key),
		},
		3 => Body::Accept { nonce, signature: sheet_signature, secrets, next_waiver: key(rng) },
		4 => Body::Revoke { nonce, secrets, next_waiver: key(rng) },
		5 => Body::Close { nonce, balances, signature: sheet_signature },
		6 => Body::OpenAccept { waivers: [key(rng), key(rng)], signature: sheet_signature },
		7 => Body::Splice {
			nonce,
			amounts_in,
			amounts_out,
			signature: splice_sheet,
			waivers: waivers(rng, &key),
		},
		8 => Body::SpliceAccept {
			nonce,
			signature: if rng.gen_bool(0.5) { splice_sheet } else { sheet_signature },
			splice_signature,
			next_waiver: key(rng),
		},
		9 => Body::SpliceSigned { nonce, splice_signature },
		_ => Body::CloseAccept { nonce, signature: sheet_signature },
	};
	Message::signed(&GENESIS, CHANNEL, body, &*alice)
}

/// Bob's helper started again from `copy`, an older copy of his store, compares where it is
/// with Alice's (`docs/recovery.md`): once they have, Bob holds no sheet to liquidate with
/// that Alice could punish him for. Whether Bob learned he is behind.
fn restart_from(copy: &Bank, alice: &mut Helper<MemoryStore>) -> bool {
	let mut old =
		Helper::with_banks(signer("Bob"), GENESIS, MemoryStore::default(), [copy.clone()]);
	let (mut next, mut to_alice) = (old.reestablish(CHANNEL), true);
	while let Some(message) = next.take() {
		let to = if to_alice { &mut *alice } else { &mut old };
		next = to.handle(&message).ok().and_then(|step| step.reply);
		to_alice = !to_alice;
	}
	let (bank, alices) = (old.bank(CHANNEL).unwrap(), alice.bank(CHANNEL).unwrap());
	if let Some(sheet) = bank.liquidation() {
		assert!(
			!alices.is_revoked_by_peer(sheet.nonce),
			"Bob, restarted from a copy at sheet {}, can liquidate with revoked sheet {}",
			copy.nonce(),
			sheet.nonce
		);
	}
	bank.is_behind()
}

/// Bob's helper started again with no store, only his key and the bank's terms from the
/// chain (`docs/recovery.md`), compares where it is with Alice's: it never has a sheet to
/// liquidate with, and a close it owes is at Alice's newest sheet, signed by both. Whether it
/// owes one.
fn restart_lost(terms: &rsmc::Terms, alice: &mut Helper<MemoryStore>) -> bool {
	let mut lost = Helper::new(signer("Bob"), GENESIS, MemoryStore::default()).unwrap();
	lost.recover_lost(terms.clone(), 1).unwrap();
	let (mut next, mut to_alice) = (lost.reestablish(CHANNEL), true);
	while let Some(message) = next.take() {
		let to = if to_alice { &mut *alice } else { &mut lost };
		next = to.handle(&message).ok().and_then(|step| step.reply);
		to_alice = !to_alice;
	}
	let bank = lost.bank(CHANNEL).unwrap();
	assert!(bank.is_behind() && bank.liquidation().is_none(), "a lost store never liquidates");
	let owed = lost.owed_calls(0);
	let Some(rsmc::chain::ChainCall::Close { nonce, balances, signatures, .. }) = owed.first()
	else {
		assert_eq!(owed, vec![], "nothing but a close is owed");
		return false;
	};
	let alices = alice.bank(CHANNEL).unwrap();
	assert_eq!((*nonce, *balances), (alices.nonce(), alices.balances()), "not Alice's newest");
	let payload = vbank_primitives::close_payload(&GENESIS, CHANNEL, *nonce, balances);
	for (signature, client) in signatures.iter().zip(&bank.terms.clients) {
		assert!(verify_signature(signature, &payload, client));
	}
	true
}

/// One run: the messages of Bob's checked, the splices the chain took, whether Bob, restarted
/// at the end from an older copy of his store, learned he was behind, or, restarted with no
/// store, closed.
fn run(seed: u64, steps: usize) -> (usize, u64, bool, bool) {
	let mut rng = StdRng::seed_from_u64(seed);
	// Copies of Bob's store, taken now and then (from a generator of their own, so that the
	// rest of the run is as it was).
	let mut copies_rng = StdRng::seed_from_u64(!seed);
	let mut copies = Vec::new();
	let (mut alice, mut bob) = opened_reserving([500, 500]);
	assert_eq!(bob.bank(CHANNEL).unwrap().reserve, 10);
	let mut witness = Witness::default();
	let mut chain = Chain { total: 1_000, spliced_at: 0, landed: 0 };
	let mut seen = Vec::new();
	for _ in 0..steps {
		// Alice lands a splice Bob signed whenever she likes (or never).
		if rng.gen_bool(0.1) {
			if let Some(&nonce) = witness.splices.keys().collect::<Vec<_>>().choose(&mut rng) {
				chain.land(&witness, *nonce, &mut alice, &mut bob);
			}
		}
		let message = match rng.gen_range(0..5) {
			// Honest splices: either side adds or takes a little.
			4 => {
				let (amount_in, amount_out) = if rng.gen_bool(0.5) {
					(rng.gen_range(1..50), 0)
				} else {
					(0, rng.gen_range(1..50))
				};
				if rng.gen_bool(0.5) {
					match alice.splice(CHANNEL, amount_in, amount_out) {
						Ok(splice) => splice,
						Err(_) => continue,
					}
				} else {
					match bob.splice(CHANNEL, amount_in, amount_out) {
						// Lost on its way, half the time: Bob's splice stays unanswered, for
						// the peer's own messages to meet.
						Ok(splice) if rng.gen_bool(0.5) => {
							witness.check(&bob, &splice);
							continue;
						},
						Ok(splice) => {
							witness.check(&bob, &splice);
							match alice.handle(&splice).ok().and_then(|s| s.reply) {
								Some(reply) => reply,
								None => continue,
							}
						},
						Err(_) => continue,
					}
				}
			},
			// Honest traffic, so that the bank moves on.
			0 => {
				let payer_is_alice = rng.gen_bool(0.5);
				let amount = rng.gen_range(1..20);
				let propose = if payer_is_alice {
					alice.pay(CHANNEL, amount).ok()
				} else {
					bob.pay(CHANNEL, amount).ok().inspect(|m| witness.check(&bob, m)).and(None)
				};
				let Some(propose) = propose.or_else(|| alice.retransmission(CHANNEL)) else {
					continue;
				};
				propose
			},
			1 => match bob.retransmission(CHANNEL) {
				// Bob's own unanswered message, answered by honest Alice.
				Some(ours) => {
					witness.check(&bob, &ours);
					match alice.handle(&ours).ok().and_then(|s| s.reply) {
						Some(reply) => reply,
						None => continue,
					}
				},
				None => continue,
			},
			_ => hostile(&mut rng, &seen, &bob, alice.bank(CHANNEL).unwrap()),
		};
		seen.push(message.clone());
		if let Ok(step) = bob.handle(&message) {
			if let Some(reply) = step.reply {
				witness.check(&bob, &reply);
				if let Some(back) = alice.handle(&reply).ok().and_then(|s| s.reply) {
					if let Ok(step) = bob.handle(&back) {
						if let Some(reply) = step.reply {
							witness.check(&bob, &reply);
							let _ = alice.handle(&reply);
						}
					}
				}
			}
		}
		// A splice both signed goes to the chain, mostly at once.
		let signed =
			bob.bank(CHANNEL).and_then(|b| b.splicing()).filter(|s| s.signatures().is_some());
		if let Some(nonce) = signed.map(|s| s.nonce).filter(|_| rng.gen_bool(0.5)) {
			chain.land(&witness, nonce, &mut alice, &mut bob);
		}
		// Bob always holds a sheet he can liquidate with, signed by Alice, not revoked, that
		// the chain takes: its total, and no older than the last splice.
		let bank = bob.bank(CHANNEL).unwrap();
		let liquidation = bank.liquidation().unwrap();
		let payload = htlc_sheet_payload(
			&GENESIS,
			CHANNEL,
			liquidation.nonce,
			&liquidation.balances,
			&liquidation.waiver,
			&liquidation.htlcs,
		);
		assert!(verify_signature(&liquidation.peer_signature, &payload, bank.peer()));
		let held = liquidation.balances[0] + liquidation.balances[1];
		let held = liquidation.htlcs.iter().fold(held, |sum, h| sum + h.amount);
		assert_eq!(held, chain.total, "Bob's sheet {} shares out another total", liquidation.nonce);
		assert!(liquidation.nonce >= chain.spliced_at, "Bob's sheet is older than the splice");
		if copies_rng.gen_bool(0.05) {
			copies.push(bank.clone());
		}
	}
	let alive = alice.bank(CHANNEL).is_some_and(|a| a.is_live());
	if alive && copies_rng.gen_bool(0.3) {
		let terms = bob.bank(CHANNEL).unwrap().terms.clone();
		return (witness.messages, chain.landed, false, restart_lost(&terms, &mut alice));
	}
	let behind = match copies.choose(&mut copies_rng) {
		Some(copy) if alive => restart_from(copy, &mut alice),
		_ => false,
	};
	(witness.messages, chain.landed, behind, false)
}

#[test]
fn a_hostile_peer_with_valid_signatures_never_breaks_the_honest_side() {
	let seconds: u64 =
		std::env::var("RSMC_FUZZ_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(0);
	let deadline = Instant::now() + Duration::from_secs(seconds);
	let (mut runs, mut messages, mut splices, mut behind, mut lost) = (0, 0, 0, 0, 0);
	for seed in 0.. {
		if seed >= 6 && Instant::now() >= deadline {
			break;
		}
		let (checked, landed, restored_behind, lost_closed) = run(seed, 300);
		(messages, splices) = (messages + checked, splices + landed);
		behind += u32::from(restored_behind);
		lost += u32::from(lost_closed);
		runs += 1;
	}
	println!(
		"byzantine fuzzer: {runs} runs, {messages} messages from Bob checked, {splices} splices \
		 taken by the chain, {behind} restarts from a stale store found behind, {lost} from \
		 no store closed"
	);
	assert!(splices > 0, "no splice reached the chain");
	assert!(behind > 0, "no restart from a stale store");
	assert!(lost > 0, "no restart from no store closed");
	assert!(messages > 500, "the honest side hardly spoke ({messages} messages)");
}

#[test]
fn the_coverage_guided_fuzzers_seeds_and_corpus_replay_clean() {
	let seeds = rsmc::fuzzing::seed_inputs();
	assert!(seeds.len() >= 5);
	for seed in &seeds {
		rsmc::fuzzing::peer_messages(seed);
	}
	// The corpus an AFL++ run kept (RELIABILITY.md), read where this package's sources are.
	let dir = std::path::PathBuf::from(
		std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR"),
	)
	.join("fuzz/corpus");
	let mut replayed = 0;
	for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
		let path = entry.unwrap().path();
		rsmc::fuzzing::peer_messages(&std::fs::read(&path).unwrap());
		replayed += 1;
	}
	assert!(replayed >= seeds.len(), "only {replayed} inputs in {}", dir.display());
}
