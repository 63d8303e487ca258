//! The pallet fuzzer's body (`crate::fuzzing`) on random inputs, and on the seeds and the
//! corpus of its coverage-guided runs (`fuzz/`, RELIABILITY.md).

use crate::fuzzing::{self, Outcome};
use proptest::{
	collection::vec,
	prelude::*,
	test_runner::{RngAlgorithm, TestRng, TestRunner},
};
use std::cell::RefCell;

/// Every call's success path, which the inputs must reach or they would prove little.
const ENDINGS: [&str; 11] = [
	"open",
	"deposit",
	"liquidate",
	"released by the chain",
	"withdraw_by_peer, general",
	"cancel",
	"close",
	"liquidate_with_htlcs",
	"claim_htlc",
	"refund_htlc",
	"splice",
];

/// Random byte strings, each a sequence of actions, keep every invariant `fuzzing::calls`
/// checks after each action, and between them reach every call's success path.
#[test]
fn random_inputs_keep_every_invariant_and_reach_every_call() {
	const CASES: u32 = 256;
	let total = RefCell::new(Outcome::default());
	let config =
		ProptestConfig { cases: CASES, failure_persistence: None, ..ProptestConfig::default() };
	// A fixed seed: CI explores the same inputs every run, so a failure reproduces.
	let rng = TestRng::deterministic_rng(RngAlgorithm::ChaCha);
	let mut runner = TestRunner::new_with_rng(config, rng);
	let result = runner.run(&vec(any::<u8>(), 0..800), |input| {
		total.borrow_mut().add(fuzzing::calls(&input));
		Ok(())
	});
	if let Err(failure) = result {
		panic!("{failure}");
	}
	let total = total.into_inner();
	eprintln!("{CASES} inputs, {} actions, successful calls: {:?}", total.actions, total.succeeded);
	for call in ENDINGS {
		assert!(total.succeeded.contains_key(call), "no input succeeded at {call}: {total:?}");
	}
}

/// The seeds each take a bank through one of its endings, as their comments say.
#[test]
fn each_seed_reaches_the_ending_it_is_for() {
	let seeds = fuzzing::seed_inputs();
	let ends: Vec<Outcome> = seeds.iter().map(|seed| fuzzing::calls(seed)).collect();
	let reached = |i: usize, call: &str| ends[i].succeeded.get(call).copied().unwrap_or(0);
	assert_eq!(reached(0, "deposit"), 2);
	assert_eq!(reached(1, "close"), 1);
	assert_eq!((reached(2, "liquidate"), reached(2, "released by the chain")), (1, 1));
	assert_eq!((reached(3, "liquidate"), reached(3, "withdraw_by_peer, general")), (1, 1));
	assert_eq!((reached(4, "deposit"), reached(4, "cancel")), (1, 1));
	let htlc_calls = ["liquidate_with_htlcs", "claim_htlc", "refund_htlc"].map(|c| reached(5, c));
	assert_eq!(htlc_calls, [1, 1, 1]);
	assert_eq!((reached(6, "splice"), reached(6, "liquidate")), (2, 1));
	assert_eq!((reached(7, "splice"), reached(7, "close")), (1, 1));
	assert_eq!((reached(8, "splice"), reached(8, "liquidate")), (2, 1));
}

/// What the AFL++ runs kept replays without breaking an invariant.
#[test]
fn the_coverage_guided_fuzzers_corpus_replays_clean() {
	let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
	let mut inputs = 0;
	for entry in std::fs::read_dir(&corpus).expect("the corpus is kept in the repository") {
		let path = entry.unwrap().path();
		fuzzing::calls(&std::fs::read(&path).unwrap());
		inputs += 1;
	}
	assert!(inputs >= fuzzing::seed_inputs().len(), "the corpus lost its seeds");
	for (i, seed) in fuzzing::seed_inputs().iter().enumerate() {
		let kept = std::fs::read(corpus.join(format!("seed-{i}"))).expect("every seed is kept");
		assert_eq!(&kept, seed, "seed-{i} differs from `seed_inputs`: run the `seeds` binary");
	}
}
