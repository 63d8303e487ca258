//! Helpers on different nodes that find each other by account over the chain's own p2p
//! network (issue 27): no URL is given anywhere. Alice's helper is on one node, Bob's on a
//! second and Charlie's on a third; they open banks, pay both ways at the same moment, and
//! Alice pays Charlie through Bob across the three nodes.

use crate::{
	chain::Chain,
	helpers::{addr, balances, on_chain, view, wait_until, AMOUNT},
	htlc::open,
	node::Node,
};
use jsonrpsee::rpc_params;
use sp_keyring::Sr25519Keyring::{self, Alice, Bob, Charlie};
use std::time::Duration;
use vbank_primitives::{Balance, Balances, ChannelId};
use vbank_runtime::UNIT;

/// An authoring dev node serving Alice and two following it, serving Bob and Charlie; each
/// connected to both others.
fn three_nodes() -> (Vec<Node>, Vec<Chain>) {
	let first = Node::start(&["--rsmc-account", "//Alice"]);
	let bootnode = first.bootnode();
	let follow = |who: &str| {
		Node::start(&["--consensus", "none", "--bootnodes", &bootnode, "--rsmc-account", who])
	};
	let nodes = vec![first, follow("//Bob"), follow("//Charlie")];
	let chains: Vec<Chain> = nodes.iter().map(|node| Chain::connect(&node.url())).collect();
	wait_until("each node connected to both others", Duration::from_secs(60), || {
		chains.iter().all(|c| c.rpc("system_health", rpc_params![])["peers"].as_u64() >= Some(2))
	});
	chains[0].advance(&Alice.pair(), 1);
	wait_until("the followers follow", Duration::from_secs(60), || {
		chains[1..].iter().all(|c| c.best_number() >= chains[0].best_number())
	});
	(nodes, chains)
}

fn sheet(chain: &Chain, who: Sr25519Keyring, channel: ChannelId) -> (u64, Balances) {
	let bank = view(chain, who, channel).expect("the helper holds the bank");
	(bank["nonce"].as_u64().expect("a nonce"), balances(&bank["balances"]))
}

#[test]
fn helpers_on_three_nodes_find_each_other_by_account_pay_both_ways_and_route() {
	let (nodes, chains) = three_nodes();
	let (a, b, c) = (&chains[0], &chains[1], &chains[2]);

	// No URL: each opener's node finds the peer's over the network.
	let ab = open(a, Alice, Bob, [AMOUNT, AMOUNT], None);
	let bc = open(b, Bob, Charlie, [AMOUNT, AMOUNT], None);
	wait_until("the peers' helpers hold both banks running", Duration::from_secs(30), || {
		on_chain(a, bc).is_some_and(|bank| bank.deposited == [true, true])
			&& view(b, Bob, ab).is_some()
			&& view(c, Charlie, bc).is_some()
	});

	// 200 payments on Alice–Bob, Alice's and Bob's at the same moment from their own nodes.
	const EACH: u64 = 100;
	let (alice_pays, bob_pays): (Balance, Balance) = (3 * UNIT, 2 * UNIT);
	std::thread::scope(|s| {
		for (who, node, amount) in [(Alice, &nodes[0], alice_pays), (Bob, &nodes[1], bob_pays)] {
			let url = node.url();
			s.spawn(move || {
				let chain = Chain::connect(&url);
				for i in 0..EACH {
					let params = rpc_params![addr(who), ab, amount.to_string()];
					chain
						.try_rpc("rsmc_pay", params)
						.unwrap_or_else(|e| panic!("{who:?}'s payment {i}: {e}"));
				}
			});
		}
	});
	let moved = EACH as Balance * (alice_pays - bob_pays);
	let mut expected_ab = [AMOUNT - moved, AMOUNT + moved];

	// Charlie's invoice, paid by Alice through Bob: three nodes, two banks.
	let amount = 5 * UNIT;
	let invoice = c.rpc("rsmc_invoice", rpc_params![addr(Charlie), amount.to_string()]);
	let params =
		rpc_params![addr(Alice), addr(Charlie), amount.to_string(), invoice["hashlock"].clone()];
	let sent = a.rpc("rsmc_send", params);
	assert_eq!(sent["amount"], amount.to_string(), "{sent}");
	expected_ab = [expected_ab[0] - amount, expected_ab[1] + amount];
	let expected_bc = [AMOUNT - amount, AMOUNT + amount];

	// Every helper holds the same newest sheet as its peer, with the balances paid.
	wait_until("both sides of both banks agree", Duration::from_secs(30), || {
		sheet(a, Alice, ab) == sheet(b, Bob, ab) && sheet(b, Bob, bc) == sheet(c, Charlie, bc)
	});
	assert_eq!(sheet(a, Alice, ab).1, expected_ab);
	assert_eq!(sheet(c, Charlie, bc).1, expected_bc);
	assert!(sheet(a, Alice, ab).0 >= 2 * EACH, "every payment is a sheet of its own");
}

/// An authoring node serving Alice (with `alice_extra`), one following it serving Bob and one
/// serving Mallory, a stranger with the test cheats; all connected, and a bank of Alice and Bob
/// open: the nodes, their chains, and the bank.
fn alice_bob_and_a_stranger(alice_extra: &[&str]) -> ([Node; 3], [Chain; 3], ChannelId) {
	let first = Node::start(&[&["--rsmc-account", "//Alice"][..], alice_extra].concat());
	let bootnode = first.bootnode();
	let follow = |extra: &[&str]| {
		Node::start(&[&["--consensus", "none", "--bootnodes", &bootnode][..], extra].concat())
	};
	let second = follow(&["--rsmc-account", "//Bob"]);
	let third = follow(&["--rsmc-account", "//Mallory", "--rsmc-test-cheats"]);
	let chains = [&first, &second, &third].map(|node| Chain::connect(&node.url()));
	wait_until("the nodes connect", Duration::from_secs(60), || {
		chains.iter().all(|c| c.rpc("system_health", rpc_params![])["peers"].as_u64() >= Some(2))
	});
	let ab = open(&chains[0], Alice, Bob, [AMOUNT, AMOUNT], None);
	([first, second, third], chains, ab)
}

/// A stranger's node, on the same network, sends Alice's node what anyone could over the
/// helpers' protocols, by request and on the stream its node holds to Alice's: bytes that
/// decode to nothing, a message about Alice's bank signed by the stranger, a request past the
/// size limit. Each is refused or ignored, and Alice and Bob, on two other nodes, go on paying
/// each other.
#[test]
fn a_strangers_garbage_forgeries_and_oversized_requests_change_nothing() {
	use codec::Encode;
	let (_nodes, [a, b, m], ab) = alice_bob_and_a_stranger(&["--rsmc-test-cheats"]);
	let before = sheet(&a, Alice, ab);
	let alices_node = a.rpc("system_localPeerId", rpc_params![]);
	let send = |payload: Vec<u8>| {
		let payload = format!("0x{}", hex::encode(payload));
		m.rpc("rsmc_testRequest", rpc_params![alices_node.clone(), payload])
	};

	// Bytes that are no request: refused (and they cost the stranger reputation).
	let garbage = send(vec![0xff, 0x13, 0x37]);
	assert!(garbage.get("failed").is_some(), "{garbage}");

	// A message about Alice's bank signed by the stranger (the request is the SCALE message
	// itself): ignored, as `rsmc_message` does (SPEC section 5): `Reply(None)`, `0x0000`.
	let mallory = rsmc::keys::Sr25519Signer::from_suri("//Mallory").expect("a dev key");
	let body = rsmc::Body::Close {
		nonce: before.0,
		balances: [0, 2 * AMOUNT],
		signature: sp_runtime::MultiSignature::Sr25519(Default::default()),
	};
	let forged = rsmc::Message::signed(&a.genesis, ab, body, &mallory);
	assert_eq!(send(forged.encode())["answer"], "0x0000");

	// Past the size limit (64 KiB): refused before it is read.
	let oversized = send(vec![7; 70 * 1024]);
	assert!(oversized.get("failed").is_some(), "{oversized}");

	// The same on the stream (`/<genesis>/vbank/stream/1`), which the stranger's node holds to
	// Alice's as to every node it syncs with. Garbage is sent, and dropped by Alice's node at
	// a cost to the stranger; the stream stays.
	let on_stream = |payload: Vec<u8>| {
		let payload = format!("0x{}", hex::encode(payload));
		m.try_rpc("rsmc_testRequest", rpc_params![alices_node.clone(), payload, "stream"])
	};
	wait_until("the stranger's node holds a stream to Alice's", Duration::from_secs(30), || {
		on_stream(vec![0xff, 0x13, 0x37]).is_ok_and(|sent| sent["sent"] == true)
	});
	// The forged message asked on it (`Frame::Ask { id, message }`): ignored, `Reply(None)`.
	let ask = (0u8, 0u64, &forged).encode();
	assert_eq!(on_stream(ask).expect("an answer")["answer"], "0x0000");
	// Past the size limit: not delivered, whatever the stream does then.
	let _ = on_stream(vec![7; 70 * 1024]);

	// Alice and Bob go on: ten payments each way, both sides agreeing.
	for i in 0..10 {
		a.rpc("rsmc_pay", rpc_params![addr(Alice), ab, UNIT.to_string()]);
		b.rpc("rsmc_pay", rpc_params![addr(Bob), ab, (2 * UNIT).to_string()]);
		assert_eq!(sheet(&a, Alice, ab).0, before.0 + 2 * (i + 1));
	}
	wait_until("both sides agree", Duration::from_secs(10), || {
		sheet(&a, Alice, ab) == sheet(&b, Bob, ab)
	});
	assert_eq!(sheet(&b, Bob, ab).1, [AMOUNT + 10 * UNIT, AMOUNT - 10 * UNIT]);

	// And they went on the stream between Alice's node and Bob's: each of Alice's ten
	// payments is two asks of Bob's node (`Propose`, `Revoke`), answered on it.
	let streams = a.rpc("rsmc_testStreams", rpc_params![]);
	let bobs_node = b.rpc("system_localPeerId", rpc_params![]);
	assert!(streams["open"].as_array().is_some_and(|open| open.contains(&bobs_node)), "{streams}");
	assert!(streams["answered"].as_u64() >= Some(20), "{streams}");
}

/// An account that no node we are connected to serves, nor has heard of, is found in the
/// network's DHT: Alice's node and Charlie's each sync only with a hub (`--reserved-only`) that
/// serves nobody and has asked nobody where anyone is, so the hub's answer to "where is
/// Charlie?" is nothing (it serves Dave alone). Charlie's node published his record in the
/// DHT; Alice's finds it there, opens a bank with Charlie with no URL, and both pay.
#[test]
fn an_account_no_neighbour_knows_is_found_in_the_dht() {
	let hub = Node::start(&["--rsmc-account", "//Dave"]);
	let bootnode = hub.bootnode();
	let spoke = |who: &str| {
		let only_the_hub = ["--consensus", "none", "--reserved-only", "--reserved-nodes"];
		Node::start(&[&only_the_hub[..], &[bootnode.as_str(), "--rsmc-account", who]].concat())
	};
	let (alice_node, charlie_node) = (spoke("//Alice"), spoke("//Charlie"));
	let (h, a, c) = (
		Chain::connect(&hub.url()),
		Chain::connect(&alice_node.url()),
		Chain::connect(&charlie_node.url()),
	);
	h.advance(&Alice.pair(), 1);
	wait_until("both follow the hub", Duration::from_secs(60), || {
		[&a, &c].iter().all(|chain| chain.best_number() >= h.best_number())
	});
	let peers = |chain: &Chain| chain.rpc("system_health", rpc_params![])["peers"].as_u64();
	assert_eq!(peers(&a), Some(1), "Alice's node syncs with the hub alone");

	// Charlie's record reaches the DHT a few seconds after his node starts.
	let mut last = String::new();
	let mut bank = None;
	wait_until("Alice's node finds Charlie's in the DHT", Duration::from_secs(120), || {
		let [mine, theirs] = [AMOUNT, AMOUNT].map(|a| a.to_string());
		let params = rpc_params![addr(Alice), addr(Charlie), mine, theirs, 10, None::<String>];
		match a.try_rpc("rsmc_open", params) {
			Ok(opened) => bank = opened["channel"].as_u64(),
			Err(e) => last = e.to_string(),
		}
		bank.is_some()
	});
	let channel = bank.unwrap_or_else(|| panic!("no bank: {last}"));
	for (who, chain) in [(Alice, &a), (Charlie, &c)] {
		for _ in 0..5 {
			chain.rpc("rsmc_pay", rpc_params![addr(who), channel, UNIT.to_string()]);
		}
	}
	wait_until("both sides agree", Duration::from_secs(30), || {
		view(&c, Charlie, channel).is_some()
			&& sheet(&a, Alice, channel) == sheet(&c, Charlie, channel)
	});
	assert_eq!(sheet(&a, Alice, channel), (10, [AMOUNT, AMOUNT]));
	assert_eq!(peers(&a), Some(1), "still the hub alone: Charlie's node is no neighbour");
}

/// Anyone can send an `Open` for a bank a coming block may bring (signed by itself as the
/// opener), and the node waits up to the peer timeout for the chain to show it. A stranger's
/// burst of 80 such `Open`s at once held 80 tasks reading the chain for the whole timeout;
/// now at most 32 wait (`OPENS_WAITING`), the rest are answered `Busy` at once, and the
/// honest banks go on paying meanwhile.
#[test]
fn a_strangers_burst_of_opens_for_banks_to_come_waits_bounded() {
	use codec::Encode;
	use std::time::Instant;
	let ([_first, _second, third], [a, b, _m], ab) =
		alice_bob_and_a_stranger(&["--rsmc-peer-timeout", "5"]);

	// Mallory opens nothing on chain: her `Open`s name bank `ab + 1`, the next one to come.
	let mallory = rsmc::keys::Sr25519Signer::from_suri("//Mallory").expect("a dev key");
	let body = rsmc::Body::Open {
		clients: [rsmc::keys::Signer::account(&mallory), Alice.to_account_id()],
		balances: [AMOUNT, AMOUNT],
		lock_period: 10,
		waivers: [Alice.to_account_id(), Bob.to_account_id()],
		reserve: 0,
	};
	let forged = rsmc::Message::signed(&a.genesis, ab + 1, body, &mallory).encode();
	let payload = format!("0x{}", hex::encode(forged));
	let alices_node = a.rpc("system_localPeerId", rpc_params![]);
	const BURST: usize = 80;
	let started = Instant::now();
	let answers: Vec<(Duration, String)> = std::thread::scope(|s| {
		let sent: Vec<_> = (0..BURST)
			.map(|_| {
				let (url, payload, node) = (third.url(), payload.clone(), alices_node.clone());
				s.spawn(move || {
					let chain = Chain::connect(&url);
					let answer = chain.rpc("rsmc_testRequest", rpc_params![node, payload]);
					(started.elapsed(), answer["answer"].as_str().unwrap_or_default().to_string())
				})
			})
			.collect();
		// Meanwhile, Alice and Bob pay each other.
		for _ in 0..5 {
			b.rpc("rsmc_pay", rpc_params![addr(Bob), ab, UNIT.to_string()]);
		}
		sent.into_iter().map(|t| t.join().expect("a request")).collect()
	});
	// `Busy` is the answer's variant 1.
	let busy_at_once = answers
		.iter()
		.filter(|(at, answer)| *at < Duration::from_secs(3) && answer.starts_with("0x01"))
		.count();
	assert!(
		busy_at_once >= BURST - 32,
		"{busy_at_once} of {BURST} answered Busy at once: {answers:?}"
	);
	assert_eq!(sheet(&a, Alice, ab), sheet(&b, Bob, ab));
	assert_eq!(sheet(&a, Alice, ab).1, [AMOUNT + 5 * UNIT, AMOUNT - 5 * UNIT]);
}

/// Bob's node freezes (SIGSTOP) while Alice's pays him over the stream, for longer than the
/// 3 s an ask waits there before it goes by request as well, and comes back. The payment waits
/// for Bob and completes once (the `Propose` may reach Bob's node on both ways: it counts
/// once), both sides agree, and the stream carries the payments after, both ways.
#[test]
fn a_peer_frozen_mid_payment_and_back_takes_it_once_and_the_stream_goes_on() {
	let cheats = ["--rsmc-test-cheats", "--rsmc-peer-timeout", "60"];
	let (alice, bob) = crate::helpers::two_nodes_with(
		&[&["--rsmc-account", "//Alice"][..], &cheats].concat(),
		&[&["--rsmc-account", "//Bob"][..], &cheats].concat(),
		None,
	);
	let (a, b) = (Chain::connect(&alice.url()), Chain::connect(&bob.url()));
	let ab = crate::helpers::open(&a, 5, None);
	let node_of = |chain: &Chain| chain.rpc("system_localPeerId", rpc_params![]);
	let streams = |chain: &Chain| chain.rpc("rsmc_testStreams", rpc_params![]);
	let holds_stream = |chain: &Chain, to: &Chain| {
		streams(chain)["open"].as_array().is_some_and(|open| open.contains(&node_of(to)))
	};
	wait_until("each node holds a stream to the other", Duration::from_secs(30), || {
		holds_stream(&a, &b) && holds_stream(&b, &a)
	});
	let pay = |chain: &Chain, who: Sr25519Keyring, amount: Balance| {
		chain.rpc("rsmc_pay", rpc_params![addr(who), ab, amount.to_string()])
	};
	pay(&a, Alice, UNIT);
	pay(&b, Bob, UNIT);
	let before = sheet(&a, Alice, ab);
	assert_eq!(before, (2, [AMOUNT, AMOUNT]));

	// Alice's client connects first, so that her payment goes the moment Bob's node freezes.
	let payer = Chain::connect(&alice.url());
	let (frozen, payment) = (Duration::from_secs(8), (5 * UNIT).to_string());
	bob.pause();
	let paused = std::time::Instant::now();
	let paying = std::thread::spawn(move || {
		let paid = payer.rpc("rsmc_pay", rpc_params![addr(Alice), ab, payment]);
		(paid, paused.elapsed())
	});
	std::thread::sleep(frozen);
	bob.resume();
	let (paid, took) = paying.join().expect("Alice's payment completes");
	assert_eq!(paid["nonce"], 3, "{paid}");
	assert!(took >= frozen, "paid {took:?} after Bob's node froze, while it was frozen");
	wait_until("both sides agree", Duration::from_secs(10), || {
		sheet(&a, Alice, ab) == sheet(&b, Bob, ab)
	});
	assert_eq!(sheet(&b, Bob, ab), (3, [AMOUNT - 5 * UNIT, AMOUNT + 5 * UNIT]), "paid once");

	// The streams are there again, and carry what follows: ten payments each way, each two
	// asks of the payer's node answered on its stream.
	let answered = |chain: &Chain| streams(chain)["answered"].as_u64().expect("a count");
	let (alices_before, bobs_before) = (answered(&a), answered(&b));
	for _ in 0..10 {
		pay(&a, Alice, UNIT);
		pay(&b, Bob, 2 * UNIT);
	}
	wait_until("both sides agree", Duration::from_secs(10), || {
		sheet(&a, Alice, ab) == sheet(&b, Bob, ab)
	});
	assert_eq!(sheet(&a, Alice, ab), (23, [AMOUNT + 5 * UNIT, AMOUNT - 5 * UNIT]));
	assert!(holds_stream(&a, &b) && holds_stream(&b, &a));
	assert!(answered(&a) >= alices_before + 20, "Alice's node: {}", streams(&a));
	assert!(answered(&b) >= bobs_before + 20, "Bob's node: {}", streams(&b));
}
