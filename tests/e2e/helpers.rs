//! The RSMC helpers inside the node (SPEC section 5), driven through their `rsmc_` methods
//! and the `vbank-node rsmc` command line: in one node, and between two nodes where Alice's
//! helper runs on the authoring node and Bob's on a node following it.

use crate::{
	chain::Chain,
	node::{binary, Node},
};
use jsonrpsee::rpc_params;
use serde_json::Value;
use sp_keyring::Sr25519Keyring::{self, Alice, Bob};
use std::{
	process::Command,
	time::{Duration, Instant},
};
use vbank_primitives::{Balance, Balances, ChannelId};
use vbank_runtime::{Runtime, RuntimeEvent, UNIT};

pub(crate) type BankEvent = pallet_virtual_bank::Event<Runtime>;

/// What each side brings to a bank.
pub(crate) const AMOUNT: Balance = 1_000 * UNIT;

pub(crate) fn addr(who: Sr25519Keyring) -> String {
	who.to_account_id().to_string()
}

pub(crate) fn open_deposit() -> Balance {
	<Runtime as pallet_virtual_bank::Config>::OpenDeposit::get()
}

fn amount(value: &Value) -> Balance {
	value.as_str().and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("not an amount: {value}"))
}

pub(crate) fn balances(value: &Value) -> Balances {
	[amount(&value[0]), amount(&value[1])]
}

pub(crate) fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
	let started = Instant::now();
	while !done() {
		assert!(started.elapsed() < timeout, "{what}: not within {timeout:?}");
		std::thread::sleep(Duration::from_millis(100));
	}
}

/// `who`'s view of bank `channel` on `chain`'s node, if its helper holds it.
pub(crate) fn view(chain: &Chain, who: Sr25519Keyring, channel: ChannelId) -> Option<Value> {
	let banks = chain.rpc("rsmc_banks", rpc_params![addr(who)]);
	banks.as_array()?.iter().find(|bank| bank["channel"] == channel).cloned()
}

pub(crate) fn on_chain(
	chain: &Chain,
	channel: ChannelId,
) -> Option<vbank_primitives::Channel<vbank_runtime::AccountId, u32>> {
	chain.runtime_api("VirtualBankApi_channel", channel)
}

/// Open a bank of `AMOUNT` each from Alice to Bob through Alice's node; `bob_url` when Bob's
/// helper is on another node.
pub(crate) fn open(alice: &Chain, lock_period: u32, bob_url: Option<String>) -> ChannelId {
	let amount = AMOUNT.to_string();
	let bank = alice.rpc(
		"rsmc_open",
		rpc_params![addr(Alice), addr(Bob), amount.clone(), amount, lock_period, bob_url],
	);
	assert_eq!(bank["state"], "Running", "{bank}");
	assert_eq!(balances(&bank["balances"]), [AMOUNT, AMOUNT]);
	bank["channel"].as_u64().expect("a channel id")
}

pub(crate) fn pay(
	chain: &Chain,
	payer: Sr25519Keyring,
	channel: ChannelId,
	amount: Balance,
) -> Value {
	chain.rpc("rsmc_pay", rpc_params![addr(payer), channel, amount.to_string()])
}

/// Alice's helper on an authoring node, Bob's on a node following it; both synced.
pub(crate) fn two_nodes(alice_extra: &[&str], bob_base: Option<&std::path::Path>) -> (Node, Node) {
	let alice_args = [&["--rsmc-account", "//Alice"], alice_extra].concat();
	two_nodes_with(&alice_args, &["--rsmc-account", "//Bob"], bob_base)
}

/// An authoring node started with `first`, and a node following it started with `second`
/// (keeping its chain under `second_base` if given); both synced.
pub(crate) fn two_nodes_with(
	first: &[&str],
	second: &[&str],
	second_base: Option<&std::path::Path>,
) -> (Node, Node) {
	let alice = Node::start(first);
	let bootnode = alice.bootnode();
	let bob_args = [&["--consensus", "none", "--bootnodes", &bootnode], second].concat();
	let bob = match second_base {
		Some(base) => Node::start_at(base, &bob_args),
		None => Node::start(&bob_args),
	};
	let (a, b) = (Chain::connect(&alice.url()), Chain::connect(&bob.url()));
	wait_until("Bob's node finds Alice's", Duration::from_secs(60), || {
		b.rpc("system_health", rpc_params![])["peers"].as_u64() >= Some(1)
	});
	// A block of Alice's, so that Bob's node is seen following it.
	a.advance(&Alice.pair(), 1);
	wait_until("Bob's node follows", Duration::from_secs(60), || {
		b.best_number() >= a.best_number()
	});
	(alice, bob)
}

/// The balance changes the chain made from block `from` on, for `who`: free and held now,
/// and the fees it paid since.
pub(crate) struct Snapshot {
	pub(crate) block: u32,
	pub(crate) free: Balance,
}

pub(crate) fn snapshot(chain: &Chain, who: Sr25519Keyring) -> Snapshot {
	Snapshot { block: chain.best_number(), free: chain.account(&who.to_account_id()).free }
}

/// `who`'s free balance grew by exactly `gained` since `before`, fees aside, and nothing is
/// held any more.
pub(crate) fn assert_gained(
	chain: &Chain,
	who: Sr25519Keyring,
	before: &Snapshot,
	gained: Balance,
) {
	let account = chain.account(&who.to_account_id());
	let fees = chain.fees_paid(&who.to_account_id(), before.block + 1, chain.best_number());
	assert_eq!(account.reserved, 0, "{who:?} still has funds held");
	assert_eq!(account.free + fees, before.free + gained, "{who:?}: gained {gained} expected");
}

pub(crate) fn bank_events(chain: &Chain, from: u32) -> Vec<BankEvent> {
	chain
		.events_between(from, chain.best_number())
		.into_iter()
		.filter_map(|event| match event {
			RuntimeEvent::VirtualBank(event) => Some(event),
			_ => None,
		})
		.collect()
}

pub(crate) fn cli(url: &str, args: &[&str]) -> (String, String) {
	let output = Command::new(binary())
		.args(["rsmc", "--url", url])
		.args(args)
		.output()
		.expect("the command line runs");
	let (stdout, stderr) = (
		String::from_utf8_lossy(&output.stdout).into(),
		String::from_utf8_lossy(&output.stderr).into(),
	);
	assert!(output.status.success(), "rsmc {args:?} failed:\n{stdout}\n{stderr}");
	(stdout, stderr)
}

#[test]
fn one_node_serves_alice_and_bob_and_the_command_line_drives_them() {
	let node = Node::start(&[]);
	let chain = Chain::connect(&node.url());
	let url = node.url();

	let mut accounts: Vec<String> =
		serde_json::from_value(chain.rpc("rsmc_accounts", rpc_params![])).unwrap();
	accounts.sort();
	let mut expected = vec![addr(Alice), addr(Bob)];
	expected.sort();
	assert_eq!(accounts, expected, "--dev runs //Alice and //Bob");

	// Open from the command line, watching its progress line.
	let mut events =
		chain.subscribe("rsmc_subscribeEvents", rpc_params![addr(Alice)], "rsmc_unsubscribeEvents");
	let mut bobs =
		chain.subscribe("rsmc_subscribeEvents", rpc_params![addr(Bob)], "rsmc_unsubscribeEvents");
	// Amounts in VBK, as a person writes them (issue 29); planck with a suffix.
	let (stdout, stderr) = cli(
		&url,
		&["open", "//Alice", "//Bob", "100", "50000000000000planck", "--lock-period", "5"],
	);
	assert!(stderr.contains("opening:") && stderr.contains("running"), "{stderr}");
	assert!(
		stdout.contains("Running") && stdout.contains("100 VBK") && stdout.contains("50 VBK"),
		"{stdout}"
	);
	let kinds: Vec<String> =
		(0..4).map(|_| chain.next(&mut events)["kind"].as_str().unwrap().to_string()).collect();
	assert_eq!(kinds, ["Opened", "Handshake", "Deposited", "Running"]);
	// The peer's helper reports every state the bank reaches too (issue 29: a page following
	// Bob's events showed his bank stuck in funding).
	let kinds: Vec<String> =
		(0..4).map(|_| chain.next(&mut bobs)["kind"].as_str().unwrap().to_string()).collect();
	assert_eq!(kinds, ["Opened", "Handshake", "Deposited", "Running"], "Bob's");
	let channel = chain.rpc("rsmc_banks", rpc_params![addr(Alice)])[0]["channel"]
		.as_u64()
		.expect("Alice's bank");
	let bank = on_chain(&chain, channel).expect("the bank is on chain");
	assert_eq!(bank.state, vbank_primitives::ChannelState::Running);

	// Pay both ways, through RPC and the command line; each side sees the same sheet.
	let paid = pay(&chain, Alice, channel, 30 * UNIT);
	assert_eq!(paid["nonce"], 1);
	assert_eq!(balances(&paid["balances"]), [70 * UNIT, 80 * UNIT]);
	assert_eq!(chain.next(&mut events)["kind"], "Paid");
	let (stdout, _) = cli(&url, &["pay", "//Bob", &channel.to_string(), "5"]);
	assert!(stdout.contains("nonce 2") && stdout.contains("75 VBK / 75 VBK"), "{stdout}");
	let received = chain.next(&mut events);
	assert_eq!(
		(received["kind"].as_str(), received["nonce"].as_u64()),
		(Some("Received"), Some(2))
	);
	for who in [Alice, Bob] {
		let bank = view(&chain, who, channel).unwrap();
		assert_eq!(
			(bank["nonce"].as_u64(), balances(&bank["balances"])),
			(Some(2), [75 * UNIT, 75 * UNIT])
		);
	}
	let (stdout, _) = cli(&url, &["banks", "//Alice"]);
	assert!(stdout.contains("Running") && stdout.contains("75 VBK"), "{stdout}");
	// A refusal is the node's message, plainly, and the exit status says it failed.
	let refused = Command::new(binary())
		.args(["rsmc", "--url", &url, "pay", "//Alice", &channel.to_string(), "75.5"])
		.output()
		.expect("the command line runs");
	let stderr = String::from_utf8_lossy(&refused.stderr);
	assert!(!refused.status.success(), "{stderr}");
	assert!(stderr.starts_with("error: cannot pay 75500000000000"), "{stderr}");
	assert!(!stderr.contains("Input("), "no Rust debug text: {stderr}");
	let bad = Command::new(binary())
		.args(["rsmc", "--url", &url, "pay", "//Alice", &channel.to_string(), "1.2.3"])
		.output()
		.expect("the command line runs");
	assert!(String::from_utf8_lossy(&bad.stderr).contains("`1.2.3` is not an amount"));
	assert_eq!(view(&chain, Alice, channel).unwrap()["nonce"], 2, "nothing changed");

	// Bad requests are refused with a message that names the problem, and change nothing.
	let error = |method: &str, params| chain.rpc_error(method, params);
	assert!(error("rsmc_pay", rpc_params!["5Bogus", channel, "1"]).contains("5Bogus"));
	assert!(error("rsmc_pay", rpc_params![addr(Alice), channel, "1.5"]).contains("not an amount"));
	assert!(error("rsmc_pay", rpc_params![addr(Alice), 999, "1"]).contains("no bank 999"));
	assert!(error("rsmc_pay", rpc_params![addr(Alice), channel, (76 * UNIT).to_string()])
		.contains("cannot pay"));
	assert!(error("rsmc_pay", rpc_params![addr(Sr25519Keyring::Charlie), channel, "1"])
		.contains("no helper"));
	assert!(error("rsmc_open", rpc_params![addr(Alice), addr(Alice), "1", "1", 5])
		.contains("two different clients"));
	assert!(error(
		"rsmc_open",
		rpc_params![addr(Alice), addr(Sr25519Keyring::Charlie), "1", "1", 5]
	)
	.contains("not served by this node"));
	assert!(error("rsmc_message", rpc_params!["0x00"]).contains("does not decode"));
	assert_eq!(view(&chain, Alice, channel).unwrap()["nonce"], 2);

	// Close cooperatively from the command line: everybody is paid at once.
	let alice_before = snapshot(&chain, Alice);
	let bob_before = snapshot(&chain, Bob);
	let (stdout, _) = cli(&url, &["close", "//Alice", &channel.to_string()]);
	assert!(
		stdout.contains("closed cooperatively") && stdout.contains("75 VBK / 75 VBK"),
		"{stdout}"
	);
	assert!(on_chain(&chain, channel).is_none(), "the bank is removed");
	assert_gained(&chain, Alice, &alice_before, 75 * UNIT + open_deposit());
	assert_gained(&chain, Bob, &bob_before, 75 * UNIT);
	wait_until("the helpers forget the closed bank", Duration::from_secs(10), || {
		view(&chain, Alice, channel).is_none() && view(&chain, Bob, channel).is_none()
	});
}

#[test]
fn spending_methods_are_refused_unless_unsafe_rpc_is_allowed() {
	let node = Node::start(&["--rpc-methods", "safe"]);
	let chain = Chain::connect(&node.url());
	let refused = chain.rpc_error("rsmc_pay", rpc_params![addr(Alice), 0, "1"]);
	assert!(refused.contains("unsafe") && refused.contains("--rpc-methods unsafe"), "{refused}");
	assert!(chain.rpc_error("rsmc_accounts", rpc_params![]).contains("unsafe"));
	// The peer-facing method is served: it answers about the message, not about safety.
	assert!(chain.rpc_error("rsmc_message", rpc_params!["0x00"]).contains("does not decode"));
	// The cheat exists only with its flag.
	let missing = chain.rpc_error("rsmc_liquidateRevoked", rpc_params![addr(Alice), 0, 0]);
	assert!(missing.to_lowercase().contains("method not found"), "{missing}");
}

#[test]
fn two_nodes_make_a_thousand_payments_both_ways_and_close_on_chain_as_off_chain() {
	let (alice, bob) = two_nodes(&[], None);
	let (a, b) = (Chain::connect(&alice.url()), Chain::connect(&bob.url()));
	let channel = open(&a, 5, Some(bob.url()));
	let alice_before = snapshot(&a, Alice);
	let bob_before = snapshot(&a, Bob);

	let mut expected = [AMOUNT, AMOUNT];
	let mut seed = 0x5eed_u64;
	for i in 0..1_000u64 {
		seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
		let amount = (seed >> 33) as Balance % (10 * UNIT) + 1;
		let (payer, chain, from) = if i % 2 == 0 { (Alice, &a, 0) } else { (Bob, &b, 1) };
		let paid = pay(chain, payer, channel, amount);
		expected[from] -= amount;
		expected[1 - from] += amount;
		assert_eq!(paid["nonce"], i + 1);
		assert_eq!(balances(&paid["balances"]), expected, "payment {i}");
	}
	for (chain, who) in [(&a, Alice), (&b, Bob)] {
		let bank = view(chain, who, channel).unwrap();
		assert_eq!((bank["nonce"].as_u64(), balances(&bank["balances"])), (Some(1_000), expected));
	}

	// Bob closes from the following node; the chain pays out exactly the off-chain balances.
	let closed = b.rpc("rsmc_close", rpc_params![addr(Bob), channel]);
	assert_eq!((closed["how"].as_str(), balances(&closed["balances"])), (Some("close"), expected));
	wait_until("the close reaches Alice's node", Duration::from_secs(30), || {
		on_chain(&a, channel).is_none()
	});
	assert!(bank_events(&a, alice_before.block + 1)
		.contains(&BankEvent::Closed { channel, balances: expected }));
	assert_gained(&a, Alice, &alice_before, expected[0] + open_deposit());
	assert_gained(&a, Bob, &bob_before, expected[1]);
}

#[test]
fn a_cheat_is_punished_by_the_other_nodes_watchtower_and_loses_its_whole_share() {
	let (alice, bob) = two_nodes(&["--rsmc-test-cheats"], None);
	let (a, b) = (Chain::connect(&alice.url()), Chain::connect(&bob.url()));
	let channel = open(&a, 10, Some(bob.url()));
	for _ in 0..3 {
		pay(&a, Alice, channel, 100 * UNIT);
	}
	let alice_before = snapshot(&a, Alice);
	let bob_before = snapshot(&a, Bob);

	// Alice liquidates with sheet 0, where she still had everything she brought.
	let cheat = a.rpc("rsmc_liquidateRevoked", rpc_params![addr(Alice), channel, 0]);
	assert_eq!(cheat["nonce"], 0);
	// Nobody calls anything now: Bob's node sees the liquidation and punishes it.
	wait_until("Bob's watchtower punishes the cheat", Duration::from_secs(60), || {
		on_chain(&a, channel).is_none()
	});
	let events = bank_events(&a, alice_before.block + 1);
	assert!(
		events.iter().any(|e| matches!(e, BankEvent::Liquidated { nonce: 0, .. })),
		"{events:?}"
	);
	assert!(
		events.contains(&BankEvent::WithdrawnByPeer {
			channel,
			who: Bob.to_account_id(),
			amount: AMOUNT,
			nonce: 0
		}),
		"{events:?}"
	);
	// Alice gets back only her storage deposit; Bob has both shares.
	assert_gained(&a, Alice, &alice_before, open_deposit());
	assert_gained(&a, Bob, &bob_before, 2 * AMOUNT);
	// Only Bob's node knew the waiver secret; its penalty went out as a general transaction,
	// authorized by the proof: it cost Bob nothing.
	assert_eq!(a.fees_paid(&Bob.to_account_id(), bob_before.block + 1, a.best_number()), 0);
	wait_until("both helpers forget the bank", Duration::from_secs(10), || {
		view(&a, Alice, channel).is_none() && view(&b, Bob, channel).is_none()
	});
}

#[test]
fn a_silent_peer_makes_the_payer_liquidate_with_its_newest_sheet_and_nothing_is_lost() {
	// Timed blocks, so that the lock ends without anybody sending transactions.
	let (alice, bob) =
		two_nodes(&["--consensus", "manual-seal-400", "--rsmc-peer-timeout", "3"], None);
	let a = Chain::connect(&alice.url());
	let channel = open(&a, 4, Some(bob.url()));
	pay(&a, Alice, channel, 100 * UNIT);
	let b = Chain::connect(&bob.url());
	pay(&b, Bob, channel, 30 * UNIT);
	drop(b);
	let newest = [930 * UNIT, 1_070 * UNIT];
	let alice_before = snapshot(&a, Alice);
	let bob_before = snapshot(&a, Bob);

	bob.pause();
	let started = Instant::now();
	let error = a.rpc_error("rsmc_pay", rpc_params![addr(Alice), channel, (50 * UNIT).to_string()]);
	assert!(error.contains("did not answer") && error.contains("liquidated"), "{error}");
	assert!(started.elapsed() >= Duration::from_secs(3), "gave up before the timeout");
	// Alice's watchtower withdraws her share when the lock ends.
	wait_until("Alice withdraws after the lock", Duration::from_secs(60), || {
		on_chain(&a, channel).is_none()
	});
	bob.resume();

	let events = bank_events(&a, alice_before.block + 1);
	assert!(
		events.iter().any(
			|e| matches!(e, BankEvent::Liquidated { nonce: 2, balances, .. } if *balances == newest)
		),
		"{events:?}"
	);
	assert_gained(&a, Alice, &alice_before, newest[0] + open_deposit());
	assert_gained(&a, Bob, &bob_before, newest[1]);
}

#[test]
fn a_killed_helper_resumes_from_its_store_and_the_bank_stays_usable() {
	let bob_base = tempfile::tempdir().unwrap();
	let (alice, mut bob) = two_nodes(&["--rsmc-peer-timeout", "60"], Some(bob_base.path()));
	let a = Chain::connect(&alice.url());
	let channel = open(&a, 5, Some(bob.url()));
	let mut expected = [AMOUNT, AMOUNT];
	for _ in 0..5 {
		pay(&a, Alice, channel, UNIT);
	}
	expected = [expected[0] - 5 * UNIT, expected[1] + 5 * UNIT];

	// Between payments.
	bob.kill();
	bob.restart();
	let b = Chain::connect(&bob.url());
	pay(&b, Bob, channel, 2 * UNIT);
	pay(&a, Alice, channel, UNIT);
	expected = [expected[0] + UNIT, expected[1] - UNIT];
	drop(b);

	// In the middle of payments: Alice keeps paying while Bob's node dies and comes back;
	// each payment waits for Bob and none is lost.
	let url = alice.url();
	let payer = std::thread::spawn(move || {
		let a = Chain::connect(&url);
		for _ in 0..100 {
			pay(&a, Alice, channel, UNIT);
		}
	});
	std::thread::sleep(Duration::from_millis(700));
	bob.kill();
	std::thread::sleep(Duration::from_millis(500));
	bob.restart();
	payer.join().expect("every payment went through");
	expected = [expected[0] - 100 * UNIT, expected[1] + 100 * UNIT];
	let b = Chain::connect(&bob.url());
	for (chain, who) in [(&a, Alice), (&b, Bob)] {
		let bank = view(chain, who, channel).unwrap();
		assert_eq!((bank["nonce"].as_u64(), balances(&bank["balances"])), (Some(107), expected));
	}

	// Bob's node dies while Bob is paying: after the restart it finishes or drops that
	// payment, both sides agree, and the bank still works.
	let url = bob.url();
	let payer = std::thread::spawn(move || {
		let b = Chain::connect(&url);
		for _ in 0..100 {
			if b.try_rpc("rsmc_pay", rpc_params![addr(Bob), channel, UNIT.to_string()]).is_err() {
				return;
			}
		}
	});
	std::thread::sleep(Duration::from_millis(700));
	bob.kill();
	let _ = payer.join();
	bob.restart();
	let b = Chain::connect(&bob.url());
	wait_until("Bob's helper finishes the payment it was making", Duration::from_secs(60), || {
		let (ours, theirs) = (view(&b, Bob, channel).unwrap(), view(&a, Alice, channel).unwrap());
		ours["nonce"] == theirs["nonce"] && ours["balances"] == theirs["balances"]
	});
	let paid = pay(&b, Bob, channel, UNIT);
	let after = balances(&paid["balances"]);
	assert_eq!(after[0] + after[1], 2 * AMOUNT);
	let alice_view = view(&a, Alice, channel).unwrap();
	assert_eq!(
		(alice_view["nonce"].clone(), balances(&alice_view["balances"])),
		(paid["nonce"].clone(), after)
	);
}
