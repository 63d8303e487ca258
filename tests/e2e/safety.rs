//! The helpers against what users do at the same moment or with bad intent (SPEC section 4):
//! both clients of a bank paying each other at once, on one node and across two; strangers'
//! messages; banks outside a helper's policy.

use crate::{
	chain::Chain,
	helpers::{addr, balances, open, pay, two_nodes, view, AMOUNT},
	node::Node,
};
use codec::Encode;
use jsonrpsee::rpc_params;
use rsmc::{Body, Message};
use sp_core::Pair;
use sp_keyring::Sr25519Keyring::{self, Alice, Bob, Eve};
use vbank_primitives::{Balance, ChannelId};
use vbank_runtime::UNIT;

/// The code and message of a JSON-RPC error that must be there.
fn refusal(answer: Result<serde_json::Value, jsonrpsee::core::ClientError>) -> (i32, String) {
	match answer {
		Err(jsonrpsee::core::ClientError::Call(e)) => (e.code(), e.message().to_string()),
		other => panic!("expected a JSON-RPC error, got {other:?}"),
	}
}

/// Twenty rounds in which Alice and Bob pay each other at the same instant, each through its
/// own connection; every payment completes and both sides agree after each round.
fn simultaneous_rounds(a: &str, b: &str, channel: ChannelId) {
	let mut expected = [AMOUNT, AMOUNT];
	for round in 1..=20 as Balance {
		let (by_alice, by_bob) = (round * UNIT, 2 * round * UNIT);
		let payer = |url: &str, who: Sr25519Keyring, amount: Balance| {
			let url = url.to_string();
			std::thread::spawn(move || pay(&Chain::connect(&url), who, channel, amount))
		};
		let (alice_pays, bob_pays) = (payer(a, Alice, by_alice), payer(b, Bob, by_bob));
		let (alice_paid, bob_paid) = (alice_pays.join().unwrap(), bob_pays.join().unwrap());
		assert!(alice_paid["nonce"].as_u64().is_some(), "round {round}: {alice_paid}");
		assert!(bob_paid["nonce"].as_u64().is_some(), "round {round}: {bob_paid}");
		expected = [expected[0] - by_alice + by_bob, expected[1] + by_alice - by_bob];
	}
	let (a, b) = (Chain::connect(a), Chain::connect(b));
	crate::helpers::wait_until("both sides agree", std::time::Duration::from_secs(30), || {
		let (x, y) = (view(&a, Alice, channel).unwrap(), view(&b, Bob, channel).unwrap());
		x["nonce"] == y["nonce"] && balances(&x["balances"]) == balances(&y["balances"])
	});
	assert_eq!(balances(&view(&a, Alice, channel).unwrap()["balances"]), expected);
	// The node is still up and serving.
	assert!(a.best_number() > 0);
}

#[test]
fn both_clients_paying_at_once_on_one_node_all_forty_payments_complete() {
	let node = Node::start(&[]);
	let chain = Chain::connect(&node.url());
	let channel = open(&chain, 5, None);
	simultaneous_rounds(&node.url(), &node.url(), channel);
}

#[test]
fn both_clients_paying_at_once_across_two_nodes_all_forty_payments_complete() {
	let (alice, bob) = two_nodes(&[], None);
	let channel = open(&Chain::connect(&alice.url()), 5, Some(bob.url()));
	simultaneous_rounds(&alice.url(), &bob.url(), channel);
}

/// Two wallets of Bob's pay on the same bank at once while Alice pays him: each call returns
/// only once its own payment is final, none is lost or made twice. (Bob is `clients[1]`, whose
/// proposals give way in a collision. Before each bank's steps took turns in the node, a call
/// whose payment gave way to Alice's could count the other wallet's payment as its own and
/// return without paying.)
#[test]
fn two_wallets_of_one_client_and_its_peer_paying_at_once_each_payment_counts_once() {
	let node = Node::start(&[]);
	let url = node.url();
	let channel = open(&Chain::connect(&url), 5, None);
	const EACH: Balance = 25;
	let payer = |who: Sr25519Keyring, amount: Balance| {
		let url = url.clone();
		std::thread::spawn(move || {
			let chain = Chain::connect(&url);
			(0..EACH).for_each(|_| drop(pay(&chain, who, channel, amount)));
		})
	};
	let threads = [payer(Bob, 3 * UNIT), payer(Bob, 5 * UNIT), payer(Alice, 7 * UNIT)];
	threads.into_iter().for_each(|t| t.join().expect("every payment completes"));
	let moved = EACH * (3 + 5) * UNIT - EACH * 7 * UNIT;
	let expected = [AMOUNT + moved, AMOUNT - moved];
	let chain = Chain::connect(&url);
	for who in [Alice, Bob] {
		let bank = view(&chain, who, channel).expect("the bank");
		// A collision skips a nonce: at least one sheet a payment.
		assert!(bank["nonce"].as_u64() >= Some(3 * EACH as u64), "{who:?}: {bank}");
		assert_eq!(balances(&bank["balances"]), expected, "{who:?}");
	}
}

#[test]
fn a_strangers_messages_are_ignored_and_a_bank_outside_the_policy_waits_for_accept() {
	let node = Node::start(&[]);
	let chain = Chain::connect(&node.url());
	let channel = open(&chain, 5, None);
	pay(&chain, Alice, channel, UNIT);
	let before = view(&chain, Bob, channel).unwrap();

	// Eve signs a payment to herself on Alice and Bob's bank, and forges Alice's signature.
	let eve_key = Eve.to_account_id();
	let body = Body::Propose {
		nonce: 2,
		balances: [0, 2 * AMOUNT],
		signature: Eve.pair().sign(b"anything").into(),
		waivers: [eve_key.clone(), eve_key],
	};
	let eve = rsmc::keys::Sr25519Signer::new(Eve.pair());
	let by_eve = Message::signed(&chain.genesis, channel, body.clone(), &eve);
	let forged =
		Message { signature: Alice.pair().sign(b"not this message").into(), ..by_eve.clone() };
	for message in [by_eve, forged] {
		let hex_message = format!("0x{}", hex::encode(message.encode()));
		let answer = chain.try_rpc("rsmc_message", rpc_params![hex_message, "ws://127.0.0.1:9"]);
		assert!(matches!(answer, Ok(serde_json::Value::Null) | Err(_)), "{answer:?}");
	}
	assert_eq!(view(&chain, Bob, channel).unwrap(), before);
	assert_eq!(view(&chain, Alice, channel).unwrap()["nonce"], before["nonce"]);
	// An `Open` of a bank that does not exist, signed by the stranger it names as opener, is
	// refused at once rather than held for the peer timeout.
	let ghost = Body::Open {
		clients: [Eve.to_account_id(), Bob.to_account_id()],
		balances: [1, 1],
		lock_period: 5,
		waivers: [Eve.to_account_id(), Eve.to_account_id()],
		reserve: 0,
	};
	let ghost_open = |ghost_channel: ChannelId| {
		let message = Message::signed(&chain.genesis, ghost_channel, ghost.clone(), &eve);
		chain.try_rpc("rsmc_message", rpc_params![format!("0x{}", hex::encode(message.encode()))])
	};
	let (_, why) = refusal(ghost_open(channel + 100));
	assert!(why.contains("no bank"), "{why}");
	// And one naming a bank Bob holds with Alice is no `Open` of Alice's: ignored.
	assert_eq!(ghost_open(channel).unwrap(), serde_json::Value::Null);
	assert!(view(&chain, Bob, channel + 100).is_none());
	// Garbage is a bad request.
	assert!(chain.rpc_error("rsmc_message", rpc_params!["0x00ff"]).contains("does not decode"));

	// Above `--dev`'s inbound limit of 1,000 VBK, Bob's helper asks its operator.
	let big = (2 * AMOUNT).to_string();
	let offered = chain.rpc(
		"rsmc_open",
		rpc_params![addr(Alice), addr(Bob), AMOUNT.to_string(), big, 5, Option::<String>::None],
	);
	assert_eq!(offered["state"], "Offered", "{offered}");
	let channel = offered["channel"].as_u64().unwrap();
	assert_eq!(view(&chain, Bob, channel).unwrap()["state"], "Offered");
	// Bob's operator accepts it from the command line.
	let (shown, _) = crate::helpers::cli(&node.url(), &["accept", "//Bob", &channel.to_string()]);
	assert!(shown.contains("Running"), "{shown}");
	assert_eq!(view(&chain, Bob, channel).unwrap()["state"], "Running");
	crate::helpers::wait_until("Alice sees it running", std::time::Duration::from_secs(30), || {
		view(&chain, Alice, channel).unwrap()["state"] == "Running"
	});
	pay(&chain, Bob, channel, AMOUNT);

	// A lock below the helper's minimum is refused before anything reaches the chain.
	let open = |mine: &str, lock_period: u32| {
		refusal(chain.try_rpc(
			"rsmc_open",
			rpc_params![addr(Alice), addr(Bob), mine, "1", lock_period, Option::<String>::None],
		))
	};
	let (code, why) = open("1", 1);
	assert_eq!(code, 1006, "{why}");
	// So is a bank that would leave nothing for the fees the helper may owe the chain.
	let (code, why) = open(&(u128::MAX / 4).to_string(), 5);
	assert_eq!(code, 1006, "{why}");
	assert!(why.contains("free") && why.contains("fees"), "{why}");
}

#[test]
fn a_liquidated_bank_takes_no_more_payments_from_either_side() {
	let node = Node::start(&[]);
	let chain = Chain::connect(&node.url());
	let channel = open(&chain, 5, None);
	pay(&chain, Alice, channel, UNIT);
	chain.rpc("rsmc_liquidate", rpc_params![addr(Alice), channel]);
	crate::helpers::wait_until("both helpers see it", std::time::Duration::from_secs(30), || {
		[Alice, Bob]
			.iter()
			.all(|who| view(&chain, *who, channel).unwrap()["state"] == "Liquidating")
	});
	for who in [Alice, Bob] {
		let (code, why) = refusal(chain.try_rpc("rsmc_pay", rpc_params![addr(who), channel, "1"]));
		assert_eq!(code, 1001, "{why}");
		assert!(why.contains("liquidated"), "{why}");
	}
}

#[test]
fn a_black_holed_peer_does_not_stall_the_other_banks() {
	let (alice, bob) = two_nodes(&["--rsmc-peer-timeout", "60"], None);
	let a = Chain::connect(&alice.url());
	let channel = open(&a, 5, Some(bob.url()));
	// A peer whose node accepts connections and never says a word.
	let hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
	let hole_url = format!("ws://{}", hole.local_addr().unwrap());
	let alice_url = alice.url();
	let opening = std::thread::spawn(move || {
		let charlie = sp_keyring::Sr25519Keyring::Charlie.to_account_id().to_string();
		Chain::connect(&alice_url)
			.try_rpc("rsmc_open", rpc_params![addr(Alice), charlie, "1000", "0", 5, hole_url])
	});
	crate::helpers::wait_until(
		"the bank with the silent peer is open on chain",
		std::time::Duration::from_secs(30),
		|| a.rpc("rsmc_banks", rpc_params![addr(Alice)]).as_array().is_some_and(|b| b.len() == 2),
	);
	// Payments to Bob's node go on while the Open waits on the black hole.
	for _ in 0..10 {
		pay(&a, Alice, channel, 1);
	}
	assert!(!opening.is_finished(), "the open gave up before the payments were done");
	drop(hole);
}

#[test]
fn a_victim_with_no_account_and_no_money_punishes_a_cheat_at_once() {
	let node = Node::start(&[
		"--rsmc-account",
		"//Alice",
		"--rsmc-account",
		"//Victim",
		"--rsmc-test-cheats",
	]);
	let chain = Chain::connect(&node.url());
	let victim = sp_core::sr25519::Pair::from_string("//Victim", None).unwrap();
	let victim_id = vbank_runtime::AccountId::from(victim.public());
	// Victim brings nothing and has nothing: no account, and no fee it could pay.
	let bank = chain.rpc(
		"rsmc_open",
		rpc_params![
			addr(Alice),
			victim_id.to_string(),
			AMOUNT.to_string(),
			"0",
			20,
			Option::<String>::None
		],
	);
	assert_eq!(bank["state"], "Running", "{bank}");
	let channel = bank["channel"].as_u64().unwrap();
	for _ in 0..3 {
		chain.rpc("rsmc_pay", rpc_params![addr(Alice), channel, (100 * UNIT).to_string()]);
	}
	// Alice cheats with sheet 0. Victim can pay no fee, and needs none: its watchtower's
	// penalty is authorized by its proof alone.
	let before = chain.best_number();
	chain.rpc("rsmc_liquidateRevoked", rpc_params![addr(Alice), channel, 0]);
	crate::helpers::wait_until(
		"the penalty is included",
		std::time::Duration::from_secs(60),
		|| crate::helpers::on_chain(&chain, channel).is_none(),
	);
	let punished = chain.events_between(before, chain.best_number()).into_iter().any(|e| {
		matches!(
			e,
			vbank_runtime::RuntimeEvent::VirtualBank(pallet_virtual_bank::Event::WithdrawnByPeer {
				ref who,
				amount,
				nonce: 0,
				..
			}) if *who == victim_id && amount == AMOUNT
		)
	});
	assert!(punished, "no WithdrawnByPeer for Victim");
	assert_eq!(chain.account(&victim_id).free, AMOUNT);
}
