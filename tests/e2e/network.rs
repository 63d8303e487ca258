//! A chain of several validators (`--chain local`): Aura authors in turns, GRANDPA finalizes,
//! and a validator that stops and comes back neither halts the others nor is left behind.
//! A cheat's node stopped at once is punished through the others. And the development chain's
//! promise to every client: `InBlock`, then `Finalized`, for
//! each transaction, even on a machine whose cores are all busy.

use crate::{
	chain::{hex_bytes, Chain},
	helpers::{
		addr, assert_gained, bank_events, on_chain, open_deposit, snapshot, wait_until, AMOUNT,
	},
	htlc::open,
	node::Node,
};
use sp_keyring::Sr25519Keyring::{Alice, Bob};
use vbank_runtime::UNIT;

type BankEvent = pallet_virtual_bank::Event<vbank_runtime::Runtime>;
use codec::Decode;
use jsonrpsee::rpc_params;
use sp_consensus_aura::{Slot, AURA_ENGINE_ID};
use sp_core::H256;
use sp_runtime::DigestItem;
use std::{
	collections::BTreeSet,
	sync::{
		atomic::{AtomicBool, Ordering},
		Arc,
	},
	time::Duration,
};

const VALIDATORS: [&str; 4] = ["alice", "bob", "charlie", "dave"];

/// The index, in the genesis list, of the validator whose slot block `n` was authored in.
fn author(chain: &Chain, n: u32) -> usize {
	let hash = chain.rpc("chain_getBlockHash", rpc_params![n]);
	let header = chain.rpc("chain_getHeader", rpc_params![hash]);
	let logs = header["digest"]["logs"].as_array().expect("a header has a digest");
	let slot = logs
		.iter()
		.find_map(|log| {
			let item = DigestItem::decode(&mut &hex_bytes(log)[..]).ok()?;
			item.pre_runtime_try_to::<Slot>(&AURA_ENGINE_ID)
		})
		.unwrap_or_else(|| panic!("block {n} has no Aura slot: {header}"));
	(u64::from(slot) % VALIDATORS.len() as u64) as usize
}

/// The four validators of `--chain local`, each on its own base path, joined through Alice.
fn local_network(dir: &std::path::Path) -> Vec<Node> {
	let alice = Node::start_validator("alice", &dir.join("alice"), &[]);
	let bootnode = alice.bootnode();
	let mut nodes = vec![alice];
	for who in &VALIDATORS[1..] {
		nodes.push(Node::start_validator(who, &dir.join(who), &["--bootnodes", &bootnode]));
	}
	nodes
}

#[test]
fn four_validators_author_in_turn_finalize_and_go_on_without_one() {
	let dir = tempfile::tempdir().expect("a temporary directory");
	let mut nodes = local_network(dir.path());
	let chains: Vec<Chain> = nodes.iter().map(|node| Chain::connect(&node.url())).collect();

	// Each validator authors in its slots; every node sees blocks finalized.
	let mut authors = BTreeSet::new();
	let mut seen = 0;
	wait_until(
		"a block by each validator, finalized on every node",
		Duration::from_secs(120),
		|| {
			let best = chains[0].best_number();
			for n in seen + 1..=best {
				authors.insert(author(&chains[0], n));
			}
			seen = best;
			authors.len() == VALIDATORS.len()
				&& chains.iter().all(|chain| chain.finalized_number() >= 4)
		},
	);

	// Dave stops: the three others author and finalize on (GRANDPA needs three votes of four).
	nodes[3].kill();
	let (best, last_final) = (chains[0].best_number(), chains[0].finalized_number());
	wait_until("blocks and finality without Dave", Duration::from_secs(90), || {
		chains[..3]
			.iter()
			.all(|chain| chain.best_number() >= best + 4 && chain.finalized_number() > best)
	});
	assert!(chains[0].finalized_number() > last_final);
	for n in best + 1..=chains[0].best_number() {
		assert_ne!(
			author(&chains[0], n),
			3,
			"block {n} was authored in a slot of the stopped Dave"
		);
	}

	// Dave comes back: it catches up with what the others finalized meanwhile, and authors again.
	nodes[3].restart();
	let dave = Chain::connect(&nodes[3].url());
	let target = chains[0].finalized_number();
	wait_until("Dave catches up", Duration::from_secs(90), || dave.finalized_number() >= target);
	let back = dave.best_number();
	wait_until("Dave authors again", Duration::from_secs(90), || {
		let best = chains[0].best_number();
		(back + 1..=best).any(|n| author(&chains[0], n) == 3)
	});
	let hash = |chain: &Chain| chain.rpc("chain_getBlockHash", rpc_params![target]);
	assert_eq!(hash(&dave), hash(&chains[0]), "Dave finalized the others' block {target}");
}

/// Helpers served by validators: Alice's on hers (with the test's cheats), Bob's on his, found
/// by account. Alice liquidates with a revoked sheet and her node stops at once: Bob's
/// watchtower punishes her, and the other validators include the penalty and finalize it.
#[test]
fn a_cheat_whose_node_stops_at_once_is_punished_through_the_other_validators() {
	let dir = tempfile::tempdir().expect("a temporary directory");
	let helper = |who: &'static str| {
		let limit = "1000000000000000";
		["--rsmc-account", who, "--rsmc-min-lock", "2", "--rsmc-inbound-limit", limit]
	};
	let alice_args = [&helper("//Alice")[..], &["--rsmc-test-cheats"]].concat();
	let mut alice = Node::start_validator("alice", &dir.path().join("alice"), &alice_args);
	let bootnode = alice.bootnode();
	let joining = |who: &str, extra: &[&str]| {
		let args = [&["--bootnodes", bootnode.as_str()][..], extra].concat();
		Node::start_validator(who, &dir.path().join(who), &args)
	};
	let bob = joining("bob", &helper("//Bob"));
	let _others = [joining("charlie", &[]), joining("dave", &[])];
	let (a, b) = (Chain::connect(&alice.url()), Chain::connect(&bob.url()));
	wait_until("the network finalizes", Duration::from_secs(120), || b.finalized_number() >= 2);

	let channel = open(&a, Alice, Bob, [AMOUNT, AMOUNT], None);
	for _ in 0..3 {
		a.rpc("rsmc_pay", rpc_params![addr(Alice), channel, (100 * UNIT).to_string()]);
	}
	let (alice_before, bob_before) = (snapshot(&b, Alice), snapshot(&b, Bob));
	let cheat = a.rpc("rsmc_liquidateRevoked", rpc_params![addr(Alice), channel, 0]);
	assert_eq!(cheat["nonce"], 0);
	alice.kill();

	wait_until("Bob's watchtower punishes the cheat", Duration::from_secs(120), || {
		on_chain(&b, channel).is_none()
	});
	let events = bank_events(&b, alice_before.block + 1);
	let penalty =
		BankEvent::WithdrawnByPeer { channel, who: Bob.to_account_id(), amount: AMOUNT, nonce: 0 };
	assert!(events.contains(&penalty), "{events:?}");
	assert_gained(&b, Alice, &alice_before, open_deposit());
	assert_gained(&b, Bob, &bob_before, 2 * AMOUNT);
	let punished_at = b.best_number();
	wait_until("the penalty is final", Duration::from_secs(60), || {
		b.finalized_number() >= punished_at
	});
}

/// A bank takes payments once its deposits are final (issue 27): with two of the four
/// validators down, blocks go on but nothing is finalized; a bank opened then is funded in
/// best blocks only, and its helpers neither report it running nor pay on it, until a third
/// validator comes back and the deposits are finalized.
#[test]
fn a_bank_takes_payments_once_its_deposits_are_final() {
	let dir = tempfile::tempdir().expect("a temporary directory");
	let helper = |who: &'static str| {
		let limit = "1000000000000000";
		let mut args = vec!["--rsmc-account", who, "--rsmc-min-lock", "2"];
		args.extend(["--rsmc-inbound-limit", limit, "--rsmc-peer-timeout", "5"]);
		args
	};
	let alice = Node::start_validator("alice", &dir.path().join("alice"), &helper("//Alice"));
	let bootnode = alice.bootnode();
	let joining = |who: &str, extra: &[&str]| {
		let args = [&["--bootnodes", bootnode.as_str()][..], extra].concat();
		Node::start_validator(who, &dir.path().join(who), &args)
	};
	let bob = joining("bob", &helper("//Bob"));
	let mut others = [joining("charlie", &[]), joining("dave", &[])];
	let (a, b) = (Chain::connect(&alice.url()), Chain::connect(&bob.url()));
	wait_until("the network finalizes", Duration::from_secs(120), || b.finalized_number() >= 2);

	// Finality stops: two votes of four are not enough.
	others.iter_mut().for_each(Node::kill);
	let stalled = a.finalized_number();
	let url = alice.url();
	let opening = std::thread::spawn(move || {
		let a = Chain::connect(&url);
		let bank = open(&a, Alice, Bob, [AMOUNT, AMOUNT], None);
		(bank, a.finalized_number())
	});
	// Both deposits go into best blocks; neither helper takes a payment on them.
	wait_until("both deposits in a best block", Duration::from_secs(90), || {
		on_chain(&b, 0).is_some_and(|bank| bank.deposited == [true, true])
	});
	let refused = b.rpc_error("rsmc_pay", rpc_params![addr(Bob), 0, UNIT.to_string()]);
	assert!(refused.contains("not in a finalized block yet"), "{refused}");
	assert!(!opening.is_finished(), "rsmc_open returned before the deposits were final");
	assert_eq!(a.finalized_number(), stalled, "nothing was finalized meanwhile");

	// Charlie comes back: three votes, the deposits are finalized, the bank runs.
	others[0].restart();
	let (channel, final_at_open) = opening.join().expect("rsmc_open returns once final");
	assert!(final_at_open > stalled);
	b.rpc("rsmc_pay", rpc_params![addr(Bob), channel, UNIT.to_string()]);
	a.rpc("rsmc_pay", rpc_params![addr(Alice), channel, (2 * UNIT).to_string()]);
}

/// On the development chain, with both cores kept busy: forty transfers submitted at once, each
/// watched until final, report `InBlock` before `Finalized` (issue 27: 2 in 40 did not).
#[test]
fn every_transaction_is_in_a_block_before_it_is_final_under_load() {
	let node = Node::start(&[]);
	let chain = Chain::connect(&node.url());
	let busy = Arc::new(AtomicBool::new(true));
	let burners: Vec<_> = (0..2)
		.map(|_| {
			let busy = busy.clone();
			std::thread::spawn(move || {
				let mut x = 0u64;
				while busy.load(Ordering::Relaxed) {
					x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
				}
			})
		})
		.collect();

	let alice = sp_keyring::Sr25519Keyring::Alice.pair();
	let bob = sp_keyring::Sr25519Keyring::Bob.to_account_id();
	let mut watches: Vec<_> = (0..40)
		.map(|nonce| {
			let call = pallet_balances::Call::<vbank_runtime::Runtime>::transfer_keep_alive {
				dest: bob.clone().into(),
				value: UNIT,
			};
			let extrinsic =
				vbank_runtime::signed_extrinsic(&alice, call.into(), nonce, chain.genesis);
			let encoded = format!("0x{}", hex::encode(codec::Encode::encode(&extrinsic)));
			chain.subscribe(
				"author_submitAndWatchExtrinsic",
				rpc_params![encoded],
				"author_unwatchExtrinsic",
			)
		})
		.collect();
	for (nonce, watch) in watches.iter_mut().enumerate() {
		let mut in_block: Option<H256> = None;
		loop {
			let status = chain.next(watch);
			if let Some(block) = status.get("inBlock") {
				in_block = Some(H256::from_slice(&hex_bytes(block)));
			} else if let Some(block) = status.get("finalized") {
				let block = H256::from_slice(&hex_bytes(block));
				assert_eq!(
					in_block,
					Some(block),
					"transfer {nonce}: `finalized` without `inBlock`"
				);
				break;
			} else {
				let word = status.as_str().unwrap_or_default();
				assert!(matches!(word, "ready" | "future"), "transfer {nonce}: {status}");
			}
		}
	}
	busy.store(false, Ordering::Relaxed);
	burners.into_iter().for_each(|burner| burner.join().expect("a burner thread"));
}
