//! The byzantine fuzzer: an honest Bob against a peer that holds Alice's key and sends random
//! well-formed messages, properly signed, with hostile contents (replays, other nonces and
//! balances, sheets it signed itself, secrets of its choosing). Whatever it sends, Bob never
//! panics, never signs two different sheets of Alice's at one nonce, never signs a sheet that
//! leaves him less than his newest, and never reveals the secret of a sheet before he holds a
//! newer one. `RSMC_FUZZ_SECONDS=<n>` runs it for that long instead of the short replay.

use super::*;
use rand::{rngs::StdRng, seq::SliceRandom, Rng, SeedableRng};
use rsmc::{keys::Signer, secrets::Secret, store::MemoryStore, Body};
use std::{
	collections::BTreeMap,
	time::{Duration, Instant},
};
use vbank_primitives::Nonce;

/// What Bob has signed and revealed so far, checked against every message he sends.
#[derive(Default)]
struct Witness {
	/// Alice's sheets Bob signed: nonce → balances.
	signed: BTreeMap<Nonce, Balances>,
	/// Bob's balance in his newest sheet when each of his messages left.
	messages: usize,
}

impl Witness {
	fn check(&mut self, bob: &Helper<MemoryStore>, sent: &Message) {
		self.messages += 1;
		let bank = bob.bank(CHANNEL).unwrap();
		let ledger = bank.ledger();
		let sheet_nonce = ledger.map_or(0, |l| l.sheet.nonce);
		let mut sign = |nonce: Nonce, balances: Balances| {
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
				assert!(secrets.len() <= 2 && *nonce <= sheet_nonce, "revealed ahead of his sheet");
			},
			Body::Revoke { nonce, .. } => {
				assert!(*nonce < sheet_nonce, "Bob revoked sheet {nonce}, his newest");
			},
			_ => {},
		}
	}
}

/// A random message Alice's key signs: an honest one replayed or altered, or one made up.
fn hostile(rng: &mut StdRng, seen: &[Message], bob: &Helper<MemoryStore>) -> Message {
	let alice = signer("Alice");
	let bank = bob.bank(CHANNEL).unwrap();
	let near = bank.nonce() + rng.gen_range(0..3);
	let nonce = near.saturating_sub(rng.gen_range(0..2));
	let total = bank.terms.balances[0] + bank.terms.balances[1];
	let split = rng.gen_range(0..=total);
	let balances = if rng.gen_bool(0.9) { [split, total - split] } else { [split, split] };
	let sheet_signature = {
		let waiver = bank.my_waiver(nonce).unwrap();
		alice.sign(&sheet_payload(&GENESIS, CHANNEL, nonce, &balances, &waiver))
	};
	let key = |rng: &mut StdRng| {
		if rng.gen_bool(0.5) {
			account(&alice)
		} else {
			rsmc::keys::waiver_key(&rng.gen::<Secret>())
		}
	};
	let secrets: Vec<Secret> = (0..rng.gen_range(0..3)).map(|_| rng.gen()).collect();
	let body = match rng.gen_range(0..8) {
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
			waivers: [key(rng), key(rng)],
		},
		3 => Body::Accept { nonce, signature: sheet_signature, secrets, next_waiver: key(rng) },
		4 => Body::Revoke { nonce, secrets, next_waiver: key(rng) },
		5 => Body::Close { nonce, balances, signature: sheet_signature },
		6 => Body::OpenAccept { waivers: [key(rng), key(rng)], signature: sheet_signature },
		_ => Body::CloseAccept { nonce, signature: sheet_signature },
	};
	Message::signed(&GENESIS, CHANNEL, body, &*alice)
}

fn run(seed: u64, steps: usize) -> usize {
	let mut rng = StdRng::seed_from_u64(seed);
	let (mut alice, mut bob) = opened(MemoryStore::default(), MemoryStore::default(), [500, 500]);
	let mut witness = Witness::default();
	let mut seen = Vec::new();
	for _ in 0..steps {
		let message = match rng.gen_range(0..4) {
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
			_ => hostile(&mut rng, &seen, &bob),
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
		// Bob always holds a sheet he can liquidate with, signed by Alice, not revoked.
		let bank = bob.bank(CHANNEL).unwrap();
		let liquidation = bank.liquidation().unwrap();
		let payload = sheet_payload(
			&GENESIS,
			CHANNEL,
			liquidation.nonce,
			&liquidation.balances,
			&liquidation.waiver,
		);
		assert!(verify_signature(&liquidation.peer_signature, &payload, bank.peer()));
	}
	witness.messages
}

#[test]
fn a_hostile_peer_with_valid_signatures_never_breaks_the_honest_side() {
	let seconds: u64 =
		std::env::var("RSMC_FUZZ_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(0);
	let deadline = Instant::now() + Duration::from_secs(seconds);
	let (mut runs, mut messages) = (0, 0);
	for seed in 0.. {
		if seed >= 6 && Instant::now() >= deadline {
			break;
		}
		messages += run(seed, 300);
		runs += 1;
	}
	println!("byzantine fuzzer: {runs} runs, {messages} messages from Bob checked");
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
