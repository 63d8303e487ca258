//! Every `rsmc_` method against bad input (SPEC section 5): missing, extra, malformed,
//! oversized and out-of-range parameters, unknown banks and accounts, and requests that are
//! not JSON-RPC at all. Each gets a short JSON-RPC error, nothing changes (no block, no
//! balance, no bank), and the node serves on. And a client flooding `rsmc_message` with
//! garbage holds back neither the honest payments on the same node nor its memory.

use crate::{
	chain::Chain,
	helpers::{addr, open, pay, view},
	node::Node,
	ws::RawWs,
};
use codec::Encode;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use sp_keyring::Sr25519Keyring::{Alice, Bob, Eve};
use std::{
	sync::{
		atomic::{AtomicBool, AtomicUsize, Ordering},
		Arc,
	},
	time::{Duration, Instant},
};
use vbank_primitives::ChannelId;

/// What a parameter is, to know what is wrong for it.
#[derive(Clone, Copy)]
enum Kind {
	Account,
	/// What a side brings to a bank (zero is right for one side).
	Amount,
	/// What a payment pays.
	Payment,
	Channel,
	Blocks,
	Nonce,
	/// An optional URL.
	Url,
	Message,
	/// `0x` and 64 hex digits.
	Hashlock,
}

/// Values that are wrong for a parameter of `kind` on bank `channel`, Alice's and Bob's.
fn wrong(kind: Kind, channel: ChannelId) -> Vec<Value> {
	let megabyte = "7".repeat(1 << 20);
	let mut values = vec![json!(true), json!({}), json!([]), json!(megabyte)];
	match kind {
		Kind::Url => values.extend([json!(5), json!("not a url")]),
		_ => values.push(Value::Null),
	}
	values.extend(match kind {
		Kind::Account => vec![
			json!(""),
			json!("5Grw"),
			json!("0x1234"),
			json!(format!("0x{}", "zz".repeat(32))),
			json!(7),
			// Well formed, but no helper on this node serves it.
			json!(addr(Eve)),
		],
		Kind::Amount | Kind::Payment => vec![
			json!(-1),
			json!(1.5),
			json!("1e3"),
			json!("0x10"),
			json!(""),
			json!(format!("{}0", u128::MAX)),
			json!(u128::MAX.to_string()),
		],
		Kind::Channel | Kind::Nonce => vec![
			json!(-1),
			json!(1.5),
			json!("0"),
			// A bank nobody opened.
			json!(channel + 1_000),
			json!(u64::MAX),
		],
		Kind::Blocks => {
			vec![json!(-1), json!(0), json!(1), json!(4_294_967_296u64), json!(u32::MAX)]
		},
		Kind::Url => vec![],
		Kind::Hashlock => vec![
			json!(""),
			json!("0x"),
			json!(format!("0x{}", "ab".repeat(31))),
			json!(format!("0x{}", "ab".repeat(33))),
			json!(format!("0x{}", "zz".repeat(32))),
			json!("ab".repeat(32)),
			json!(7),
		],
		Kind::Message => vec![
			json!(""),
			json!("0x"),
			json!("zz"),
			json!("0x00ff"),
			json!(format!("0x{}", "ab".repeat(1 << 19))),
			json!(7),
		],
	});
	if let Kind::Payment = kind {
		values.push(json!(0));
	}
	values
}

struct Method {
	name: &'static str,
	/// Arguments that are right (never sent as they are), with what each is.
	right: Vec<(Value, Kind)>,
	/// How many of them may be left out, at the end.
	optional: usize,
	/// Its parameters' names.
	names: &'static [&'static str],
}

fn methods(channel: ChannelId) -> Vec<Method> {
	let (alice, bob) = (json!(addr(Alice)), json!(addr(Bob)));
	let account = |who: &Value| (who.clone(), Kind::Account);
	let bank = (json!(channel), Kind::Channel);
	vec![
		Method { name: "rsmc_accounts", right: vec![], optional: 0, names: &[] },
		Method {
			name: "rsmc_banks",
			right: vec![account(&alice)],
			optional: 0,
			names: &["account"],
		},
		Method {
			name: "rsmc_open",
			right: vec![
				account(&alice),
				account(&bob),
				(json!("1000"), Kind::Amount),
				(json!("1000"), Kind::Amount),
				(json!(5), Kind::Blocks),
				(Value::Null, Kind::Url),
			],
			optional: 1,
			names: &["account", "peer", "my_amount", "peer_amount", "lock_period", "peer_url"],
		},
		Method {
			name: "rsmc_accept",
			right: vec![account(&bob), bank.clone()],
			optional: 0,
			names: &["account", "channel"],
		},
		Method {
			name: "rsmc_pay",
			right: vec![account(&alice), bank.clone(), (json!("1"), Kind::Payment)],
			optional: 0,
			names: &["account", "channel", "amount"],
		},
		Method {
			name: "rsmc_close",
			right: vec![account(&alice), bank.clone()],
			optional: 0,
			names: &["account", "channel"],
		},
		Method {
			name: "rsmc_topUp",
			right: vec![account(&alice), bank.clone(), (json!("1"), Kind::Payment)],
			optional: 0,
			names: &["account", "channel", "amount"],
		},
		Method {
			name: "rsmc_withdraw",
			right: vec![account(&alice), bank.clone(), (json!("1"), Kind::Payment)],
			optional: 0,
			names: &["account", "channel", "amount"],
		},
		Method {
			name: "rsmc_liquidate",
			right: vec![account(&alice), bank.clone()],
			optional: 0,
			names: &["account", "channel"],
		},
		Method {
			name: "rsmc_liquidateRevoked",
			right: vec![account(&alice), bank.clone(), (json!(0), Kind::Nonce)],
			optional: 0,
			names: &["account", "channel", "nonce"],
		},
		Method {
			name: "rsmc_invoice",
			right: vec![account(&bob), (json!("1"), Kind::Payment)],
			optional: 0,
			names: &["account", "amount"],
		},
		Method {
			name: "rsmc_send",
			right: vec![
				account(&alice),
				account(&bob),
				(json!("1"), Kind::Payment),
				(json!(format!("0x{}", "ab".repeat(32))), Kind::Hashlock),
			],
			optional: 0,
			names: &["account", "payee", "amount", "hashlock"],
		},
		Method {
			name: "rsmc_testIgnore",
			right: vec![account(&alice), bank],
			optional: 0,
			names: &["account", "channel"],
		},
		Method {
			name: "rsmc_testHold",
			right: vec![account(&alice)],
			optional: 0,
			names: &["account"],
		},
		Method {
			name: "rsmc_subscribeEvents",
			right: vec![account(&alice)],
			optional: 0,
			names: &["account"],
		},
		Method {
			name: "rsmc_towerUpdate",
			right: vec![(json!("0x00"), Kind::Message)],
			optional: 0,
			names: &["update"],
		},
		Method {
			name: "rsmc_towerWatching",
			right: vec![(json!(channel), Kind::Channel)],
			optional: 0,
			names: &["channel"],
		},
		Method {
			name: "rsmc_message",
			right: vec![(json!("0x00"), Kind::Message), (Value::Null, Kind::Url)],
			optional: 1,
			names: &["message", "sender_url"],
		},
	]
}

/// Every wrong way to call `method`: too few and too many parameters, unknown names, params
/// that are neither an array nor an object, and each parameter wrong in every way.
fn wrong_calls(method: &Method, channel: ChannelId) -> Vec<Value> {
	let right: Vec<Value> = method.right.iter().map(|(value, _)| value.clone()).collect();
	let required = right.len() - method.optional;
	let mut calls: Vec<Value> = (0..required).map(|n| json!(right[..n])).collect();
	calls.push(json!([right.clone(), vec![json!(1)]].concat()));
	let mut named: serde_json::Map<String, Value> =
		method.names.iter().map(|n| n.to_string()).zip(right.clone()).collect();
	named.insert("extra".into(), json!(1));
	calls.push(Value::Object(named));
	calls.extend([json!("params"), json!(5)]);
	for (position, (_, kind)) in method.right.iter().enumerate() {
		for value in wrong(*kind, channel) {
			let mut params = right.clone();
			params[position] = value;
			calls.push(json!(params));
		}
	}
	calls
}

/// What must stay as it was: the chain's height, the clients' balances, and both views of
/// the bank.
fn state(chain: &Chain, channel: ChannelId) -> (u32, Vec<Value>, [u128; 4]) {
	let [a, b] = [Alice, Bob].map(|who| chain.account(&who.to_account_id()));
	let views = [Alice, Bob].map(|who| view(chain, who, channel).expect("the bank"));
	(chain.best_number(), views.to_vec(), [a.free, a.reserved, b.free, b.reserved])
}

/// `answer` is a JSON-RPC error with a code and a short message.
fn assert_refused(request: &str, answer: &Value) {
	let shown = &request[..request.len().min(200)];
	let error = &answer["error"];
	assert!(error["code"].is_i64(), "{shown}: not refused: {answer}");
	let message = error["message"].as_str().unwrap_or_default();
	assert!(!message.is_empty(), "{shown}: an error without a message: {answer}");
	let size = answer.to_string().len();
	assert!(size < 1_024, "{shown}: a {size}-byte answer to a bad request");
}

#[test]
fn every_method_refuses_every_bad_input_clearly_and_nothing_changes() {
	let node = Node::start(&["--rsmc-test-cheats", "--rsmc-tower"]);
	let chain = Chain::connect(&node.url());
	let channel = open(&chain, 5, None);
	pay(&chain, Alice, channel, 7);
	let before = state(&chain, channel);
	let mut ws = RawWs::connect(node.rpc_port);

	let mut requests: Vec<String> = Vec::new();
	for method in methods(channel) {
		for params in wrong_calls(&method, channel) {
			let id = requests.len();
			requests.push(
				json!({"jsonrpc": "2.0", "id": id, "method": method.name, "params": params})
					.to_string(),
			);
		}
	}
	// Not JSON-RPC requests at all: not JSON, JSON nested past any parser's depth, no method,
	// a method nobody serves.
	let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
	requests.extend([
		"{".to_string(),
		format!(r#"{{"jsonrpc":"2.0","id":1,"method":"rsmc_banks","params":{deep}}}"#),
		format!(r#"{{"jsonrpc":"2.0","id":1,"method":"rsmc_banks","params":[{deep}]}}"#),
		r#"{"jsonrpc":"2.0","id":1,"params":[]}"#.to_string(),
		r#"{"jsonrpc":"2.0","id":1,"method":"rsmc_mint","params":[]}"#.to_string(),
		// Numbers past 2^64 - 1, which no client library would send for a u64.
		format!(
			r#"{{"jsonrpc":"2.0","id":1,"method":"rsmc_pay","params":["{}",18446744073709551616,"1"]}}"#,
			addr(Alice)
		),
		format!(
			r#"{{"jsonrpc":"2.0","id":1,"method":"rsmc_pay","params":["{}",{channel},1e400]}}"#,
			addr(Alice)
		),
	]);
	let started = Instant::now();
	for request in &requests {
		let answer = ws.call(request);
		assert_refused(request, &answer);
	}
	println!(
		"{} bad requests to {} methods, each refused, in {:?}",
		requests.len(),
		methods(channel).len(),
		started.elapsed()
	);
	assert_eq!(state(&chain, channel), before, "a bad request changed something");
	// An unknown subscription is no error: there is nothing to end.
	let answer =
		ws.call(r#"{"jsonrpc":"2.0","id":1,"method":"rsmc_unsubscribeEvents","params":["nope"]}"#);
	assert_eq!(answer["result"], json!(false), "{answer}");

	// The node serves on, on the same connection and on others.
	let answer = ws.call(
		&json!({"jsonrpc": "2.0", "id": 1, "method": "rsmc_accounts", "params": []}).to_string(),
	);
	assert_eq!(answer["result"].as_array().map(Vec::len), Some(2), "{answer}");
	let paid = pay(&chain, Bob, channel, 3);
	assert_eq!(paid["nonce"], before.1[0]["nonce"].as_u64().unwrap() + 1);
}

/// Seconds the flood lasts: 10 in the test command, 60 for RELIABILITY.md's figures.
fn flood_seconds() -> u64 {
	std::env::var("RSMC_FLOOD_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(10)
}

/// The node's resident memory, in KiB.
fn rss_kib(node: &Node) -> u64 {
	let status = std::fs::read_to_string(format!("/proc/{}/status", node.pid())).unwrap();
	let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS");
	line.split_whitespace().nth(1).and_then(|kib| kib.parse().ok()).expect("a number of KiB")
}

/// Honest payments back and forth on `channel` for `how_long`; the time each took.
fn payments_for(chain: &Chain, channel: ChannelId, how_long: Duration) -> Vec<Duration> {
	let started = Instant::now();
	let mut times = Vec::new();
	while started.elapsed() < how_long {
		let payer = if times.len() % 2 == 0 { Alice } else { Bob };
		let at = Instant::now();
		pay(chain, payer, channel, 1);
		times.push(at.elapsed());
	}
	times
}

fn median(times: &mut [Duration]) -> Duration {
	times.sort();
	times[times.len() / 2]
}

/// One client sends 1,000 garbage `rsmc_message` calls a second (random bytes, text that is
/// not hex, and well-formed messages signed by a stranger) while Alice and Bob pay each
/// other on the same node: every garbage call is refused, the payments go on, the node's
/// memory does not grow with the flood, and (measured alone, `RSMC_FLOOD_SECONDS` set) the
/// payments' median time at most doubles.
#[test]
fn a_flood_of_garbage_messages_slows_honest_payments_at_most_twofold() {
	const PER_SECOND: usize = 1_000;
	let node = Node::start(&[]);
	let chain = Chain::connect(&node.url());
	let channel = open(&chain, 5, None);
	payments_for(&chain, channel, Duration::from_secs(2));
	let mut before = payments_for(&chain, channel, Duration::from_secs(5));
	let memory_before = rss_kib(&node);

	let stranger = rsmc::keys::Sr25519Signer::new(Eve.pair());
	let garbage: Vec<String> = {
		let mut rng = rand::rngs::StdRng::seed_from_u64(7);
		(0..64)
			.map(|i| match i % 3 {
				0 => format!(
					"0x{}",
					hex::encode(
						(0..rng.gen_range(0..300)).map(|_| rng.gen::<u8>()).collect::<Vec<_>>()
					)
				),
				1 => "not hex at all".repeat(rng.gen_range(1..20)),
				_ => {
					let body = rsmc::Body::Revoke {
						nonce: rng.gen(),
						secrets: vec![rng.gen()],
						next_waiver: Eve.to_account_id(),
					};
					let message = rsmc::Message::signed(&chain.genesis, channel, body, &stranger);
					format!("0x{}", hex::encode(message.encode()))
				},
			})
			.collect()
	};
	// The call's id is its number, so that an answer that never comes is known.
	let call = move |n: usize| {
		let message = &garbage[n % garbage.len()];
		json!({"jsonrpc": "2.0", "id": n, "method": "rsmc_message", "params": [message]})
			.to_string()
	};
	let stop = Arc::new(AtomicBool::new(false));
	let (sent, refused) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
	let mut writer = RawWs::connect(node.rpc_port);
	let mut reader = writer.try_clone();
	let flood = {
		let (stop, sent) = (stop.clone(), sent.clone());
		std::thread::spawn(move || {
			let started = Instant::now();
			while !stop.load(Ordering::Relaxed) {
				// Ten every 10 ms: 1,000 a second, paced against the clock.
				let due = started.elapsed().as_millis() as usize * PER_SECOND / 1_000;
				while sent.load(Ordering::Relaxed) < due {
					writer.send(&call(sent.load(Ordering::Relaxed)));
					sent.fetch_add(1, Ordering::Relaxed);
				}
				std::thread::sleep(Duration::from_millis(10));
			}
		})
	};
	let answers = {
		let (stop, sent, refused) = (stop.clone(), sent.clone(), refused.clone());
		std::thread::spawn(move || {
			let mut answered = std::collections::BTreeSet::new();
			while !stop.load(Ordering::Relaxed) || answered.len() < sent.load(Ordering::Relaxed) {
				// Once the flood is over, an answer that takes 30 s is one that never comes (the
				// node drains its backlog of garbage first; with the other tests' nodes busy on
				// two cores, the last 10 of 10,056 once took more than 10 s).
				let Some(answer) = reader.receive_within(Duration::from_secs(30)) else {
					if stop.load(Ordering::Relaxed) {
						break;
					}
					continue;
				};
				let id = answer["id"].as_u64().unwrap_or_else(|| panic!("no id of ours: {answer}"));
				assert!(answered.insert(id as usize), "answered twice: {answer}");
				// Garbage is refused; a stranger's well-formed message is ignored (null).
				if answer["error"]["code"].is_i64() || answer["result"].is_null() {
					refused.fetch_add(1, Ordering::Relaxed);
				} else {
					panic!("garbage accepted: {answer}");
				}
			}
			answered
		})
	};
	let seconds = flood_seconds();
	let mut memory = vec![memory_before];
	let mut during = Vec::new();
	for _ in 0..seconds {
		during.extend(payments_for(&chain, channel, Duration::from_secs(1)));
		memory.push(rss_kib(&node));
	}
	stop.store(true, Ordering::Relaxed);
	flood.join().unwrap();
	let answered = answers.join().unwrap();
	let sent = sent.load(Ordering::Relaxed);
	let unanswered: Vec<usize> = (0..sent).filter(|n| !answered.contains(n)).collect();
	let answered = answered.len();

	let (quiet, flooded) = (median(&mut before), median(&mut during));
	let grown = memory.iter().max().unwrap() - memory_before;
	println!(
		"flood: {sent} garbage calls in {seconds} s ({} a second), {answered} answered, all \
		 refused; honest payments: median {quiet:?} before, {flooded:?} during ({} payments, \
		 {:.2}x); node memory (KiB, a sample a second): {memory:?}, {grown} KiB above the start",
		sent as u64 / seconds,
		during.len(),
		flooded.as_secs_f64() / quiet.as_secs_f64(),
	);
	assert!(
		unanswered.is_empty(),
		"{} of {sent} garbage calls unanswered, by number (call n sends garbage n % 64, a \
		 stranger's message when that is 2 modulo 3): {unanswered:?}",
		unanswered.len()
	);
	assert_eq!(refused.load(Ordering::Relaxed), sent);
	assert!(sent as u64 >= seconds * PER_SECOND as u64 * 9 / 10, "the flood fell behind: {sent}");
	// The 2x target is a figure of a run alone on the machine (RELIABILITY.md): in the test
	// command, other tests' nodes share the cores and load the two phases unevenly.
	if std::env::var_os("RSMC_FLOOD_SECONDS").is_some() {
		assert!(flooded <= 2 * quiet, "honest payments slowed from {quiet:?} to {flooded:?}");
	}
	// Memory: what the payments themselves use is in the same range; a leak of the flood's
	// 10,000 or more requests would show as tens of MiB.
	assert!(grown < 32 * 1024, "the node grew by {grown} KiB: {memory:?}");
}
