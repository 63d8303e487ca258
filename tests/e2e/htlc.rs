//! Payments through an intermediary (SPEC section 6, issue 16): Alice pays Charlie through
//! Bob over two banks, Alice–Bob and Bob–Charlie, with all three helpers on one node, or with
//! Bob's on a second node; and what happens when Bob goes silent, Charlie never reveals, a
//! cheat liquidates with a revoked sheet that carried an HTLC, or no route has the capacity.

use crate::{
	chain::Chain,
	helpers::{
		addr, balances, cli, on_chain, open_deposit, two_nodes_with, view, wait_until, AMOUNT,
	},
	node::Node,
};
use jsonrpsee::rpc_params;
use serde_json::Value;
use sp_keyring::Sr25519Keyring::{self, Alice, Bob, Charlie};
use std::time::Duration;
use vbank_primitives::{hashlock, Balance, Balances, ChannelId};
use vbank_runtime::{Runtime, RuntimeEvent, UNIT};

type BankEvent = pallet_virtual_bank::Event<Runtime>;

/// Alice–Bob and Bob–Charlie, `AMOUNT` each side; `a` is the node of Alice and Charlie, `b`
/// Bob's (the same node, or a second one).
struct Network {
	nodes: Vec<Node>,
	/// Where Bob's node keeps its chain and helper, when it is a node of its own.
	bob_dir: Option<tempfile::TempDir>,
	a: Chain,
	b: Chain,
	ab: ChannelId,
	bc: ChannelId,
}

impl Network {
	/// All three helpers on one node started with `extra`.
	fn one_node(extra: &[&str], bc_amounts: [Balance; 2]) -> Network {
		let accounts = ["--rsmc-account", "//Alice", "--rsmc-account", "//Bob"];
		let node = Node::start(&[&accounts[..], &["--rsmc-account", "//Charlie"], extra].concat());
		let (a, b) = (Chain::connect(&node.url()), Chain::connect(&node.url()));
		Network::open(vec![node], a, b, None, None, bc_amounts)
	}

	/// Alice's and Charlie's helpers on an authoring node (started with `authoring` too), Bob's
	/// on a second node following it; both started with `extra`.
	fn two_nodes(extra: &[&str], authoring: &[&str]) -> Network {
		let first =
			[&["--rsmc-account", "//Alice", "--rsmc-account", "//Charlie"], extra, authoring]
				.concat();
		let second = [&["--rsmc-account", "//Bob"], extra].concat();
		let bob_dir = tempfile::tempdir().expect("a temporary directory");
		let (first, second) = two_nodes_with(&first, &second, Some(bob_dir.path()));
		let (a, b) = (Chain::connect(&first.url()), Chain::connect(&second.url()));
		let (a_url, b_url) = (Some(first.url()), Some(second.url()));
		let mut net = Network::open(vec![first, second], a, b, a_url, b_url, [AMOUNT, AMOUNT]);
		net.bob_dir = Some(bob_dir);
		net
	}

	/// What Bob's relay keeps in his store (preimages, forwards), when his node is one of its
	/// own: read once the node is stopped (a store is the file of one process at a time).
	fn bobs_relay_entries(&mut self) -> Option<Vec<rsmc::store::Entry>> {
		let dir = self.bob_dir.as_ref()?.path().join("rsmc").join(addr(Bob));
		self.nodes[1].kill();
		let store = rsmc::store::RedbStore::open(&dir.join("banks.redb")).expect("Bob's store");
		Some(rsmc::store::Store::load_entries(&store).expect("the relay's entries"))
	}

	fn open(
		nodes: Vec<Node>,
		a: Chain,
		b: Chain,
		a_url: Option<String>,
		b_url: Option<String>,
		bc_amounts: [Balance; 2],
	) -> Network {
		let ab = open(&a, Alice, Bob, [AMOUNT, AMOUNT], b_url);
		let bc = open(&b, Bob, Charlie, bc_amounts, a_url);
		wait_until("both nodes see both banks running", Duration::from_secs(30), || {
			[(&a, Alice, bc), (&b, Bob, ab)].iter().all(|(chain, _, channel)| {
				on_chain(chain, *channel).is_some_and(|c| c.deposited == [true, true])
			})
		});
		Network { nodes, bob_dir: None, a, b, ab, bc }
	}

	/// The node of `who`.
	fn of(&self, who: Sr25519Keyring) -> &Chain {
		if who == Bob {
			&self.b
		} else {
			&self.a
		}
	}

	/// Charlie's invoice of `amount`: its hashlock.
	fn invoice(&self, amount: Balance) -> String {
		let invoice = self.a.rpc("rsmc_invoice", rpc_params![addr(Charlie), amount.to_string()]);
		assert_eq!(invoice["amount"], amount.to_string());
		invoice["hashlock"].as_str().expect("a hashlock").to_string()
	}

	/// Alice sends `amount` to Charlie against `lock`: the answer, or the error's message.
	fn send(&self, amount: Balance, lock: &str) -> Result<Value, String> {
		let params = rpc_params![addr(Alice), addr(Charlie), amount.to_string(), lock];
		self.a.try_rpc("rsmc_send", params).map_err(|e| match e {
			jsonrpsee::core::ClientError::Call(e) => format!("{}: {}", e.code(), e.message()),
			e => e.to_string(),
		})
	}

	/// `who`'s newest sheet of `channel`: nonce, balances, HTLCs pending.
	fn sheet(&self, who: Sr25519Keyring, channel: ChannelId) -> (u64, Balances, usize) {
		let bank = view(self.of(who), who, channel).expect("the helper holds the bank");
		let htlcs = bank["htlcs"].as_array().map_or(0, Vec::len);
		(bank["nonce"].as_u64().unwrap(), balances(&bank["balances"]), htlcs)
	}

	/// Every helper comes to hold `expected` (Alice–Bob's balances, then Bob–Charlie's) with
	/// no HTLC pending: `rsmc_send` answers once the preimage is back, while the last
	/// settlement's messages may still be on their way.
	fn assert_all_hold(&self, expected: [Balances; 2]) {
		let views =
			[(Alice, self.ab, 0), (Bob, self.ab, 0), (Bob, self.bc, 1), (Charlie, self.bc, 1)];
		let deadline = std::time::Instant::now() + Duration::from_secs(10);
		let holds = |&(who, channel, sheet): &(Sr25519Keyring, ChannelId, usize)| {
			let (_, balances, htlcs) = self.sheet(who, channel);
			(balances, htlcs) == (expected[sheet], 0)
		};
		while !views.iter().all(holds) && std::time::Instant::now() < deadline {
			std::thread::sleep(Duration::from_millis(100));
		}
		for (who, channel, sheet) in views {
			let (_, balances, htlcs) = self.sheet(who, channel);
			assert_eq!((balances, htlcs), (expected[sheet], 0), "{who:?}'s view of bank {channel}");
		}
	}

	fn events_since(&self, block: u32) -> Vec<BankEvent> {
		self.a
			.events_between(block, self.a.best_number())
			.into_iter()
			.filter_map(|event| match event {
				RuntimeEvent::VirtualBank(event) => Some(event),
				_ => None,
			})
			.collect()
	}
}

pub(crate) fn open(
	chain: &Chain,
	opener: Sr25519Keyring,
	peer: Sr25519Keyring,
	amounts: [Balance; 2],
	peer_url: Option<String>,
) -> ChannelId {
	let [mine, theirs] = amounts.map(|a| a.to_string());
	let params = rpc_params![addr(opener), addr(peer), mine, theirs, 10, peer_url];
	let bank = chain.rpc("rsmc_open", params);
	assert_eq!(bank["state"], "Running", "{bank}");
	bank["channel"].as_u64().expect("a channel id")
}

fn preimage_of(sent: &Value) -> [u8; 32] {
	let text = sent["preimage"].as_str().expect("a preimage");
	hex::decode(text.trim_start_matches("0x")).unwrap().try_into().expect("32 bytes")
}

fn hashlock_text(preimage: &[u8; 32]) -> String {
	format!("{:?}", hashlock(preimage))
}

#[test]
fn alice_pays_charlie_through_bob_200_times_among_direct_payments_and_all_close_agreeing() {
	let fee = FEE.to_string();
	let mut net = Network::one_node(&["--rsmc-forward-fee", &fee], [AMOUNT, AMOUNT]);
	routed_among_direct_payments_then_close(&mut net, 200);
}

#[test]
fn with_bobs_helper_on_a_second_node_routed_and_direct_payments_agree_and_close() {
	let fee = FEE.to_string();
	let mut net = Network::two_nodes(&["--rsmc-forward-fee", &fee], &[]);
	routed_among_direct_payments_then_close(&mut net, 50);
}

/// What Bob takes for passing a payment on, in the tests that charge it.
const FEE: Balance = 1_000;

/// `count` payments from Alice to Charlie through Bob, with direct payments both ways on both
/// banks in between; every helper ends agreeing with the others, and both banks close on
/// chain with exactly those balances.
fn routed_among_direct_payments_then_close(net: &mut Network, count: u64) {
	let fee = FEE.to_string();
	let (ab, bc) = (net.ab, net.bc);
	let mut expected = [[AMOUNT, AMOUNT], [AMOUNT, AMOUNT]];
	let mut seed = 0x0b0b_u64;
	for i in 0..count {
		seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
		let amount = (seed >> 33) as Balance % UNIT + 1;
		let lock = net.invoice(amount);
		let sent = net.send(amount, &lock).unwrap_or_else(|e| panic!("payment {i}: {e}"));
		assert_eq!(sent["route"], serde_json::json!([ab, bc]), "payment {i}");
		assert_eq!(
			(sent["amount"].as_str(), sent["fees"].as_str()),
			(Some(&*amount.to_string()), Some(&*fee))
		);
		assert_eq!(hashlock_text(&preimage_of(&sent)), lock, "the preimage of the invoice");
		expected[0][0] -= amount + FEE;
		expected[0][1] += amount + FEE;
		expected[1][0] -= amount;
		expected[1][1] += amount;
		// Direct payments both ways on both banks, in between.
		if i % 4 == 0 {
			net.a.rpc("rsmc_pay", rpc_params![addr(Alice), ab, "1000000"]);
			net.b.rpc("rsmc_pay", rpc_params![addr(Bob), bc, "3000000"]);
			net.a.rpc("rsmc_pay", rpc_params![addr(Charlie), bc, "2000000"]);
			net.b.rpc("rsmc_pay", rpc_params![addr(Bob), ab, "500000"]);
			expected[0][0] -= 500_000;
			expected[0][1] += 500_000;
			expected[1][0] -= 1_000_000;
			expected[1][1] += 1_000_000;
		}
	}
	net.assert_all_hold(expected);
	let from = net.a.best_number() + 1;
	for (who, channel) in [(Alice, ab), (Charlie, bc)] {
		let closed = net.of(who).rpc("rsmc_close", rpc_params![addr(who), channel]);
		assert_eq!(closed["how"], "close", "{closed}");
	}
	let events = net.events_since(from);
	for (channel, balances) in [(ab, expected[0]), (bc, expected[1])] {
		assert!(events.contains(&BankEvent::Closed { channel, balances }), "{events:?}");
	}
	// Bob kept each preimage he learned, and each forward, only until he had settled with it:
	// his relay's book does not grow with the payments (L4 of the HTLC review).
	if let Some(kept) = net.bobs_relay_entries() {
		assert!(kept.is_empty(), "Bob's relay still keeps {} entries", kept.len());
	}
}

#[test]
fn bob_goes_silent_after_forwarding_charlie_claims_on_chain_and_bob_claims_from_alice() {
	let net = Network::two_nodes(&["--rsmc-test-cheats", "--rsmc-peer-timeout", "3"], &[]);
	let (ab, bc) = (net.ab, net.bc);
	// Bob forwards, then answers nothing Charlie says on their bank.
	net.b.rpc("rsmc_testIgnore", rpc_params![addr(Bob), bc]);
	let from = net.a.best_number() + 1;
	let amount = 7 * UNIT;
	let lock = net.invoice(amount);
	let sent = net.send(amount, &lock).expect("settled through the chain");
	let preimage = preimage_of(&sent);
	assert_eq!(hashlock_text(&preimage), lock);

	// Charlie liquidated Bob–Charlie with the HTLC pending and claimed it before its expiry.
	let events = net.events_since(from);
	let claimed = events.iter().find_map(|e| match e {
		BankEvent::HtlcClaimed { channel, preimage: shown, who, amount: paid, .. }
			if *channel == bc =>
		{
			Some((*shown, who.clone(), *paid))
		},
		_ => None,
	});
	assert_eq!(claimed, Some((preimage, Charlie.to_account_id(), amount)), "{events:?}");
	assert!(events
		.iter()
		.any(|e| matches!(e, BankEvent::Liquidated { channel, .. } if *channel == bc)));
	// Bob's node learned the preimage on chain and took its HTLC from Alice off chain: the
	// Alice–Bob bank is still running, agreed on both sides, the amount Bob's.
	let settled = [AMOUNT - amount, AMOUNT + amount];
	wait_until("both sides of Alice–Bob agree", Duration::from_secs(30), || {
		let (a, b) = (net.sheet(Alice, ab), net.sheet(Bob, ab));
		a == b && a.1 == settled && a.2 == 0
	});
	assert!(on_chain(&net.a, ab).is_some_and(|c| c.liquidation.is_none()));
}

#[test]
fn charlie_never_reveals_and_after_expiry_the_amounts_go_back_hop_by_hop() {
	let flags = ["--rsmc-test-cheats", "--rsmc-peer-timeout", "3", "--rsmc-htlc-delta", "12"];
	let net = Network::two_nodes(&flags, &["--consensus", "manual-seal-400"]);
	let (ab, bc) = (net.ab, net.bc);
	net.a.rpc("rsmc_testHold", rpc_params![addr(Charlie)]);
	let from = net.a.best_number() + 1;
	let bob_before = net.a.account(&Bob.to_account_id());
	let charlie_before = net.a.account(&Charlie.to_account_id());
	let amount = 5 * UNIT;
	let lock = net.invoice(amount);
	let error = net.send(amount, &lock).expect_err("Charlie never reveals");
	assert!(error.starts_with("1001") && error.contains("failed"), "{error}");

	// Bob took his HTLC back on chain after its expiry, and gave Alice hers back off chain.
	wait_until("Alice–Bob back where it was", Duration::from_secs(30), || {
		let (a, b) = (net.sheet(Alice, ab), net.sheet(Bob, ab));
		a == b && a.1 == [AMOUNT, AMOUNT] && a.2 == 0
	});
	let events = net.events_since(from);
	let refunded = events.iter().find_map(|e| match e {
		BankEvent::HtlcRefunded { channel, who, amount, .. } if *channel == bc => {
			Some((who.clone(), *amount))
		},
		_ => None,
	});
	assert_eq!(refunded, Some((Bob.to_account_id(), amount)), "{events:?}");
	// Once Bob's lock ends, Bob–Charlie is paid out as it stood before the payment: Bob has
	// his deposit back (and the bank's storage deposit), Charlie hers.
	wait_until("Bob–Charlie paid out", Duration::from_secs(60), || {
		on_chain(&net.a, bc).is_none()
	});
	let events = net.events_since(from);
	let liquidated = events.iter().find_map(|e| match e {
		BankEvent::Liquidated { channel, balances, .. } if *channel == bc => Some(*balances),
		_ => None,
	});
	assert_eq!(liquidated, Some([AMOUNT - amount, AMOUNT]), "{events:?}");
	for (who, before, gained) in
		[(Bob, &bob_before, AMOUNT + open_deposit()), (Charlie, &charlie_before, AMOUNT)]
	{
		let now = net.a.account(&who.to_account_id());
		let fees = net.a.fees_paid(&who.to_account_id(), from, net.a.best_number());
		assert_eq!(now.free + fees, before.free + gained, "{who:?} lost something");
	}
	assert!(on_chain(&net.a, ab).is_some_and(|c| c.liquidation.is_none()));
}

#[test]
fn a_cheat_liquidating_with_a_revoked_sheet_that_carried_an_htlc_loses_it_too() {
	let net = Network::one_node(&["--rsmc-test-cheats"], [AMOUNT, AMOUNT]);
	let ab = net.ab;
	let amount = 9 * UNIT;
	let lock = net.invoice(amount);
	net.send(amount, &lock).expect("paid");
	// Alice's sheet 1 carried the HTLC; sheet 2 settled it. She liquidates with sheet 1.
	let alice_before = net.a.account(&Alice.to_account_id()).free;
	let from = net.a.best_number() + 1;
	let cheat = net.a.rpc("rsmc_liquidateRevoked", rpc_params![addr(Alice), ab, 1]);
	assert_eq!(cheat["nonce"], 1);
	wait_until("Bob's watchtower punishes the cheat", Duration::from_secs(60), || {
		on_chain(&net.a, ab).is_none()
	});
	let events = net.events_since(from);
	let pending = events.iter().find_map(|e| match e {
		BankEvent::HtlcsPending { channel, htlcs } if *channel == ab => Some(htlcs.len()),
		_ => None,
	});
	assert_eq!(pending, Some(1), "the revoked sheet carried the HTLC: {events:?}");
	// Bob took Alice's share and the HTLC: the bank's whole total went to him.
	let to_bob: Balance = events
		.iter()
		.filter_map(|e| match e {
			BankEvent::WithdrawnByPeer { channel, who, amount, .. } if *channel == ab => {
				assert_eq!(who, &Bob.to_account_id());
				Some(*amount)
			},
			BankEvent::HtlcClaimed { channel, who, amount, .. } if *channel == ab => {
				assert_eq!(who, &Bob.to_account_id());
				Some(*amount)
			},
			BankEvent::Liquidated { channel, balances, .. } if *channel == ab => Some(balances[1]),
			_ => None,
		})
		.sum();
	assert_eq!(to_bob, 2 * AMOUNT, "{events:?}");
	// Alice got back only the bank's storage deposit.
	let fees = net.a.fees_paid(&Alice.to_account_id(), from, net.a.best_number());
	let alice_now = net.a.account(&Alice.to_account_id());
	assert_eq!(alice_now.free + fees, alice_before + open_deposit());
}

#[test]
fn a_route_without_the_capacity_is_refused_before_anything_is_locked() {
	// Bob–Charlie holds 10 VBK in all.
	let net = Network::one_node(&[], [10 * UNIT, 0]);
	let before = [net.sheet(Alice, net.ab), net.sheet(Bob, net.bc)];
	// Charlie can't even ask for it: no bank of hers can bring 20 VBK.
	let error =
		net.a.rpc_error("rsmc_invoice", rpc_params![addr(Charlie), (20 * UNIT).to_string()]);
	assert!(error.contains("can't be paid"), "{error}");
	let lock = hashlock_text(&[9; 32]);
	let error = net.send(20 * UNIT, &lock).expect_err("no route");
	assert!(error.starts_with("1001") && error.contains("no route"), "{error}");
	// More than Alice has on her own bank: no route either.
	let error = net.send(AMOUNT + 1, &lock).expect_err("no route");
	assert!(error.contains("no route"), "{error}");
	assert_eq!([net.sheet(Alice, net.ab), net.sheet(Bob, net.bc)], before, "nothing locked");
	// Within the capacity it goes through, on the command line.
	let (out, _) = cli(&net.a_url(), &["invoice", "//Charlie", "4"]);
	let lock = out.split("hashlock ").nth(1).expect("a hashlock").trim().to_string();
	let (out, _) = cli(&net.a_url(), &["send", "//Alice", "//Charlie", "4", &lock]);
	assert!(out.contains(&format!("through banks [{},{}]", net.ab, net.bc)), "{out}");
	assert_eq!(net.sheet(Charlie, net.bc).1, [6 * UNIT, 4 * UNIT]);
}

impl Network {
	fn a_url(&self) -> String {
		self.nodes[0].url()
	}
}

#[test]
fn routed_payments_both_ways_at_the_same_instant_all_complete_and_agree() {
	let net = Network::one_node(&[], [AMOUNT, AMOUNT]);
	let (ab, bc) = (net.ab, net.bc);
	let url = net.a_url();
	const EACH: u64 = 30;
	// Alice pays Charlie, Charlie pays Alice, and Bob pays both directly, all at once: the
	// HTLCs of opposite routes meet at the same nonces of both banks.
	let routed = |payer: Sr25519Keyring, payee: Sr25519Keyring, amount: Balance| {
		let url = url.clone();
		std::thread::spawn(move || {
			let chain = Chain::connect(&url);
			for i in 0..EACH {
				let invoice =
					chain.rpc("rsmc_invoice", rpc_params![addr(payee), amount.to_string()]);
				let params = rpc_params![
					addr(payer),
					addr(payee),
					amount.to_string(),
					invoice["hashlock"].clone()
				];
				let sent = chain.rpc("rsmc_send", params);
				assert_eq!(sent["amount"], amount.to_string(), "{payer:?}'s payment {i}");
			}
		})
	};
	let direct = {
		let url = url.clone();
		std::thread::spawn(move || {
			let chain = Chain::connect(&url);
			for _ in 0..EACH {
				chain.rpc("rsmc_pay", rpc_params![addr(Bob), ab, "1000"]);
				chain.rpc("rsmc_pay", rpc_params![addr(Bob), bc, "1000"]);
			}
		})
	};
	let threads = [routed(Alice, Charlie, 7 * UNIT), routed(Charlie, Alice, 3 * UNIT), direct];
	for thread in threads {
		thread.join().expect("every payment completes");
	}
	let moved = EACH as Balance * 4 * UNIT;
	let bob_paid = EACH as Balance * 1000;
	let expected = [
		[AMOUNT - moved + bob_paid, AMOUNT + moved - bob_paid],
		[AMOUNT - moved - bob_paid, AMOUNT + moved + bob_paid],
	];
	net.assert_all_hold(expected);
}

/// M6 of the HTLC review: Bob's node stops between taking Alice's HTLC and passing it on
/// (`rsmc_testHold` stands for that instant: Bob takes the HTLC and does nothing more, and a
/// restart forgets the cheat). Before the fix nothing failed it after the restart: Alice
/// waited for its expiry, and her watchtower then had to take Alice–Bob on chain. Now Bob
/// fails it back off chain as he resumes; every bank runs on and nobody loses a planck.
#[test]
fn an_htlc_taken_but_never_passed_on_before_a_crash_is_failed_back_after_the_restart() {
	let mut net = Network::two_nodes(&["--rsmc-test-cheats", "--rsmc-peer-timeout", "3"], &[]);
	let (ab, bc) = (net.ab, net.bc);
	let amount = 5 * UNIT;
	let lock = net.invoice(amount);
	net.b.rpc("rsmc_testHold", rpc_params![addr(Bob)]);
	let error = net.send(amount, &lock).expect_err("Bob never passes it on");
	assert!(error.starts_with("1002"), "pending, not failed: {error}");
	let locked = [AMOUNT - amount, AMOUNT];
	assert_eq!(net.sheet(Bob, ab).1, locked, "Bob took Alice's HTLC");
	assert_eq!(net.sheet(Bob, ab).2, 1);

	let bob = &mut net.nodes[1];
	bob.kill();
	bob.restart();
	net.b = Chain::connect(&net.nodes[1].url());
	wait_until("Bob fails Alice's HTLC back as he resumes", Duration::from_secs(60), || {
		let (a, b) = (net.sheet(Alice, ab), net.sheet(Bob, ab));
		a == b && a.1 == [AMOUNT, AMOUNT] && a.2 == 0
	});
	assert_eq!(net.sheet(Charlie, bc), net.sheet(Bob, bc));
	assert_eq!(net.sheet(Charlie, bc).1, [AMOUNT, AMOUNT], "nothing reached Bob–Charlie");
	for channel in [ab, bc] {
		assert!(on_chain(&net.a, channel).is_some_and(|c| c.liquidation.is_none()));
	}
}
