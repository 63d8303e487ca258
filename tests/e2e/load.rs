//! A day of traffic in minutes (RELIABILITY.md): banks between many accounts on one dev chain,
//! payments over all of them from concurrent clients in both directions, some banks
//! liquidated with revoked sheets in the middle of it; then every cheat must have been
//! punished, every other bank closed (or, when a helper died with a payment in flight,
//! liquidated) with the balances its clients agreed, nothing lost on any account, and the
//! node's memory and time per block flat. Once on one node, once with the payees' helpers on
//! a second node that is killed and restarted twice during the run.
//!
//! `VBANK_LOAD_SCALE=10` runs the full size (200 banks, 20,000 payments, 20 cheats); the test
//! command runs scale 1 (20 banks, 2,000 payments, 2 cheats).

use crate::{
	chain::Chain,
	helpers::{balances, wait_until},
	node::Node,
};
use jsonrpsee::rpc_params;
use rand::{rngs::StdRng, Rng, SeedableRng};
use serde_json::Value;
use sp_core::{sr25519, Pair};
use std::{
	collections::{BTreeMap, BTreeSet},
	sync::{
		atomic::{AtomicBool, AtomicUsize, Ordering},
		Mutex,
	},
	time::{Duration, Instant},
};
use vbank_primitives::{Balance, Balances, ChannelId};
use vbank_runtime::{AccountId, Runtime, RuntimeEvent, UNIT};

/// What each side brings to each bank.
const AMOUNT: Balance = 100 * UNIT;
/// What each account is given to start with.
const FUNDS: Balance = 5_000 * UNIT;
/// Long enough for a watchtower on a restarted node to punish a cheat it missed.
const LOCK: u32 = 40;
const WORKERS: usize = 6;

struct Size {
	payers: usize,
	payees: usize,
	payments: usize,
	cheats: usize,
}

fn size() -> Size {
	let scale: usize =
		std::env::var("VBANK_LOAD_SCALE").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
	// Banks: every payer with every payee.
	let (payers, payees) = if scale >= 10 { (20, 10) } else { (4, 5) };
	Size { payers, payees, payments: 2_000 * scale, cheats: 2 * scale }
}

fn suri(side: &str, i: usize) -> String {
	format!("//Load//{side}{i}")
}

fn pair(suri: &str) -> sr25519::Pair {
	sr25519::Pair::from_string(suri, None).expect("a valid dev URI")
}

fn address(suri: &str) -> String {
	AccountId::from(pair(suri).public()).to_string()
}

/// One bank as its clients see it.
struct Bank {
	channel: ChannelId,
	/// The payer's and the payee's secret URIs (client 0 and 1).
	clients: [String; 2],
	/// The balances of the last payment its clients saw complete.
	agreed: Balances,
	nonce: u64,
	/// Liquidated by its payer with a revoked sheet: no more payments.
	cheated: bool,
	/// Liquidated by the payer's helper because the payee's died with a payment in flight.
	liquidated: bool,
}

/// Connections to the node serving client 0 and to the one serving client 1, made again
/// after the second node restarts.
struct Clients {
	urls: [String; 2],
	chains: [Option<Chain>; 2],
}

impl Clients {
	fn chain(&mut self, side: usize) -> Option<&Chain> {
		if self.chains[side].is_none() {
			self.chains[side] = Chain::try_connect(&self.urls[side]).ok();
		}
		self.chains[side].as_ref()
	}

	/// A call through side `side`'s node; a lost connection is dropped, to be made again.
	fn call(
		&mut self,
		side: usize,
		method: &str,
		params: jsonrpsee::core::params::ArrayParams,
	) -> Result<Value, String> {
		let chain = self.chain(side).ok_or("the node is down")?;
		match chain.try_rpc(method, params) {
			Ok(value) => Ok(value),
			Err(jsonrpsee::core::ClientError::Call(e)) => Err(e.message().to_string()),
			Err(e) => {
				self.chains[side] = None;
				Err(e.to_string())
			},
		}
	}
}

/// What the run did and saw.
#[derive(Default)]
struct Counts {
	payments: AtomicUsize,
	retried: AtomicUsize,
	/// Payments whose answer was lost with the connection, resolved by asking the helper.
	resolved: AtomicUsize,
}

/// One payment on `bank` from a random side that can afford it; `Ok` when it is final.
fn pay_once(bank: &mut Bank, clients: &mut Clients, rng: &mut StdRng, counts: &Counts) -> bool {
	let amount = rng.gen_range(1..=5) * UNIT / 10;
	let side = if bank.agreed[0] < amount || (bank.agreed[1] >= amount && rng.gen_bool(0.5)) {
		1
	} else {
		0
	};
	let who = address(&bank.clients[side]);
	match clients.call(side, "rsmc_pay", rpc_params![&who, bank.channel, amount.to_string()]) {
		Ok(paid) => {
			bank.agreed = balances(&paid["balances"]);
			bank.nonce = paid["nonce"].as_u64().expect("a nonce");
			counts.payments.fetch_add(1, Ordering::Relaxed);
			true
		},
		Err(why) => {
			counts.retried.fetch_add(1, Ordering::Relaxed);
			if why.contains("is liquidated") {
				bank.liquidated = true;
				return false;
			}
			// Whether it went through, the payer's helper knows: ask it once it answers.
			if let Ok(banks) = clients.call(side, "rsmc_banks", rpc_params![who]) {
				let view = banks
					.as_array()
					.and_then(|banks| banks.iter().find(|b| b["channel"] == bank.channel).cloned());
				if let Some(view) = view {
					let nonce = view["nonce"].as_u64().expect("a nonce");
					if nonce != bank.nonce {
						counts.resolved.fetch_add(1, Ordering::Relaxed);
						bank.nonce = nonce;
						bank.agreed = balances(&view["balances"]);
					}
					bank.liquidated |= view["state"] == "Liquidating";
				}
			}
			std::thread::sleep(Duration::from_millis(200));
			false
		},
	}
}

/// The node's resident memory, in KiB.
fn rss_kib(pid: u32) -> u64 {
	std::fs::read_to_string(format!("/proc/{pid}/status"))
		.ok()
		.and_then(|status| {
			let line = status.lines().find(|l| l.starts_with("VmRSS:"))?.to_string();
			line.split_whitespace().nth(1)?.parse().ok()
		})
		.unwrap_or(0)
}

/// The medians of the first and the last quarter of `samples`.
fn quarters(samples: &[u64]) -> (u64, u64) {
	let median = |part: &[u64]| {
		let mut part = part.to_vec();
		part.sort();
		part.get(part.len() / 2).copied().unwrap_or(0)
	};
	let quarter = (samples.len() / 4).max(1);
	(median(&samples[..quarter]), median(&samples[samples.len() - quarter..]))
}

/// Every "Prepared block … (X ms)" the authoring node logged: its time to build each block.
fn block_times(node: &Node) -> Vec<u64> {
	node.log_lines()
		.iter()
		.filter_map(|line| {
			let rest = line.split("Prepared block for proposing at ").nth(1)?;
			rest.split('(').nth(1)?.split(" ms").next()?.parse().ok()
		})
		.collect()
}

fn run(restarts: bool) {
	let size = size();
	let started = Instant::now();
	let payers: Vec<String> = (0..size.payers).map(|i| suri("payer", i)).collect();
	let payees: Vec<String> = (0..size.payees).map(|i| suri("payee", i)).collect();
	let flags = |suris: &[String], extra: &[&str]| -> Vec<String> {
		let mut flags: Vec<String> =
			suris.iter().flat_map(|s| ["--rsmc-account".to_string(), s.clone()]).collect();
		flags.extend(extra.iter().map(ToString::to_string));
		flags
	};
	let here = if restarts { payers.clone() } else { [payers.clone(), payees.clone()].concat() };
	// The default peer timeout, 30 s, outlasts a restart of the second node: payments to it
	// wait for it rather than give up on it.
	// Archive state: the run reads the events of every block it made, more than the 256 a
	// node keeps by default.
	let first_args = flags(&here, &["--rsmc-test-cheats", "--state-pruning", "archive"]);
	let first = Node::start(&first_args.iter().map(String::as_str).collect::<Vec<_>>());
	let base = tempfile::tempdir().unwrap();
	let second = restarts.then(|| {
		let bootnode = first.bootnode();
		let args = flags(&payees, &["--consensus", "none", "--bootnodes", &bootnode]);
		Node::start_at(base.path(), &args.iter().map(String::as_str).collect::<Vec<_>>())
	});
	let urls = [first.url(), second.as_ref().map_or(first.url(), Node::url)];
	let chain = Chain::connect(&first.url());
	let alice = sp_keyring::Sr25519Keyring::Alice.pair();
	let start_block = chain.best_number();
	for who in payers.iter().chain(&payees) {
		let dest = AccountId::from(pair(who).public());
		let transfer = pallet_balances::Call::<Runtime>::transfer_keep_alive {
			dest: dest.into(),
			value: FUNDS,
		};
		chain.submit(&alice, transfer).result.expect("Alice funds the accounts");
	}
	let synced = |node: &Node| {
		let follower = Chain::connect(&node.url());
		wait_until("the second node follows", Duration::from_secs(60), || {
			follower.best_number() >= chain.best_number()
		});
	};
	if let Some(second) = &second {
		synced(second);
	}

	// Every payer opens a bank with every payee, the payers at once.
	let peer_url = second.as_ref().map(Node::url);
	let opened = std::thread::scope(|scope| {
		let openers: Vec<_> = payers
			.iter()
			.map(|payer| {
				let (payees, peer_url, url) = (&payees, peer_url.clone(), &urls[0]);
				scope.spawn(move || {
					let chain = Chain::connect(url);
					payees
						.iter()
						.map(|payee| {
							let amount = AMOUNT.to_string();
							let params = rpc_params![
								address(payer),
								address(payee),
								amount.clone(),
								amount,
								LOCK,
								peer_url.clone()
							];
							let view = chain.rpc("rsmc_open", params);
							assert_eq!(view["state"], "Running", "{view}");
							Bank {
								channel: view["channel"].as_u64().expect("a bank id"),
								clients: [payer.clone(), payee.clone()],
								agreed: [AMOUNT, AMOUNT],
								nonce: 0,
								cheated: false,
								liquidated: false,
							}
						})
						.collect::<Vec<_>>()
				})
			})
			.collect();
		openers.into_iter().flat_map(|o| o.join().unwrap()).collect::<Vec<_>>()
	});
	let banks: Vec<Mutex<Bank>> = opened.into_iter().map(Mutex::new).collect();
	let opening = started.elapsed();
	println!("load: {} banks open after {opening:?}", banks.len());

	// Payments from concurrent clients; meanwhile memory is sampled, some payers cheat, and
	// the second node is killed and restarted twice.
	let counts = Counts::default();
	let done = AtomicBool::new(false);
	let paying = Instant::now();
	let memory = Mutex::new(Vec::<u64>::new());
	let (cheats, second) = std::thread::scope(|scope| {
		let workers: Vec<_> = (0..WORKERS)
			.map(|w| {
				let (banks, counts, urls, size) = (&banks, &counts, &urls, &size);
				scope.spawn(move || {
					let mut rng = StdRng::seed_from_u64(w as u64);
					let mut clients = Clients { urls: urls.clone(), chains: [None, None] };
					let mine: Vec<usize> = (w..banks.len()).step_by(WORKERS).collect();
					while counts.payments.load(Ordering::Relaxed) < size.payments {
						assert!(paying.elapsed() < Duration::from_secs(3_600), "payments stalled");
						let mut bank = banks[mine[rng.gen_range(0..mine.len())]].lock().unwrap();
						if bank.cheated || bank.liquidated {
							drop(bank);
							std::thread::sleep(Duration::from_millis(10));
						} else {
							pay_once(&mut bank, &mut clients, &mut rng, counts);
						}
					}
				})
			})
			.collect();
		let sampler = scope.spawn(|| {
			while !done.load(Ordering::Relaxed) {
				memory.lock().unwrap().push(rss_kib(first.pid()));
				std::thread::sleep(Duration::from_millis(500));
			}
		});
		let cheater = scope.spawn(|| {
			while counts.payments.load(Ordering::Relaxed) < size.payments / 2 {
				std::thread::sleep(Duration::from_millis(50));
			}
			let mut cheated = Vec::new();
			let step = banks.len() / size.cheats;
			for start in (0..banks.len()).step_by(step).take(size.cheats) {
				let index = (start..banks.len())
					.find(|&i| {
						let bank = banks[i].lock().unwrap();
						bank.nonce >= 3 && !bank.liquidated && !bank.cheated
					})
					.expect("a bank with a revoked sheet");
				let mut bank = banks[index].lock().unwrap();
				let params = rpc_params![address(&bank.clients[0]), bank.channel, bank.nonce - 2];
				chain.rpc("rsmc_liquidateRevoked", params);
				bank.cheated = true;
				cheated.push(index);
			}
			cheated
		});
		let restarter = scope.spawn(|| {
			let mut second = second;
			if let Some(node) = second.as_mut() {
				for third in [1, 2] {
					while counts.payments.load(Ordering::Relaxed) < size.payments * third / 3 {
						std::thread::sleep(Duration::from_millis(50));
					}
					node.kill();
					std::thread::sleep(Duration::from_secs(2));
					node.restart();
					synced(node);
				}
			}
			second
		});
		for worker in workers {
			worker.join().unwrap();
		}
		let cheats = cheater.join().unwrap();
		let second = restarter.join().unwrap();
		done.store(true, Ordering::Relaxed);
		sampler.join().unwrap();
		(cheats, second)
	});
	let paid_in = paying.elapsed();

	// Every cheat is punished by the victim's watchtower.
	let on_chain = |channel: ChannelId| {
		chain.runtime_api::<Option<vbank_primitives::Channel<AccountId, u32>>>(
			"VirtualBankApi_channel",
			channel,
		)
	};
	for &index in &cheats {
		let channel = banks[index].lock().unwrap().channel;
		wait_until("the cheat is punished", Duration::from_secs(120), || {
			on_chain(channel).is_none()
		});
	}
	// Every other bank is closed with the balances its clients agreed.
	let mut clients = Clients { urls: urls.clone(), chains: [None, None] };
	for bank in &banks {
		let bank = bank.lock().unwrap();
		if bank.cheated || bank.liquidated {
			continue;
		}
		let closed = clients
			.call(0, "rsmc_close", rpc_params![address(&bank.clients[0]), bank.channel])
			.unwrap_or_else(|e| panic!("bank {} does not close: {e}", bank.channel));
		assert_eq!(closed["how"], "close", "{closed}");
		assert_eq!(balances(&closed["balances"]), bank.agreed, "bank {}", bank.channel);
	}
	// Liquidations of banks whose payee died with a payment in flight end with their lock.
	chain.advance(&alice, LOCK + 1);
	for bank in &banks {
		let channel = bank.lock().unwrap().channel;
		assert!(on_chain(channel).is_none(), "bank {channel} is still on chain");
	}

	// What the chain did, against what the clients agreed.
	let mut closed = BTreeMap::new();
	let mut liquidated = BTreeMap::new();
	let mut punished = BTreeSet::new();
	let mut fees: BTreeMap<AccountId, Balance> = BTreeMap::new();
	let mut block_events = 0;
	for event in chain.events_between(start_block + 1, chain.best_number()) {
		block_events += 1;
		match event {
			RuntimeEvent::VirtualBank(pallet_virtual_bank::Event::Closed { channel, balances }) => {
				closed.insert(channel, balances);
			},
			RuntimeEvent::VirtualBank(pallet_virtual_bank::Event::Liquidated {
				channel,
				balances,
				..
			}) => {
				liquidated.insert(channel, balances);
			},
			RuntimeEvent::VirtualBank(pallet_virtual_bank::Event::WithdrawnByPeer {
				channel,
				..
			}) => {
				punished.insert(channel);
			},
			RuntimeEvent::TransactionPayment(
				pallet_transaction_payment::Event::TransactionFeePaid { who, actual_fee, .. },
			) => *fees.entry(who).or_default() += actual_fee,
			_ => {},
		}
	}
	let mut gains: BTreeMap<AccountId, i128> = BTreeMap::new();
	let mut by_timeout = 0;
	for bank in &banks {
		let bank = bank.lock().unwrap();
		let final_balances = if bank.cheated {
			assert!(punished.contains(&bank.channel), "cheat on bank {} unpunished", bank.channel);
			[0, 2 * AMOUNT]
		} else if bank.liquidated {
			by_timeout += 1;
			assert_eq!(liquidated.get(&bank.channel), Some(&bank.agreed), "bank {}", bank.channel);
			bank.agreed
		} else {
			assert_eq!(closed.get(&bank.channel), Some(&bank.agreed), "bank {}", bank.channel);
			bank.agreed
		};
		for (side, suri) in bank.clients.iter().enumerate() {
			let who = AccountId::from(pair(suri).public());
			*gains.entry(who).or_default() += final_balances[side] as i128 - AMOUNT as i128;
		}
	}
	assert_eq!(punished.len(), cheats.len(), "only the cheats are punished");
	for (who, gain) in &gains {
		let account = chain.account(who);
		let fee = fees.get(who).copied().unwrap_or(0);
		assert_eq!(account.reserved, 0, "{who} still has funds held");
		assert_eq!(
			(account.free + fee) as i128,
			FUNDS as i128 + gain,
			"{who}: what it has and paid in fees is not what it was given and gained"
		);
	}

	let memory = memory.into_inner().unwrap();
	let (memory_first, memory_last) = quarters(&memory);
	let blocks = block_times(&first);
	let (block_first, block_last) = quarters(&blocks);
	println!(
		"load ({}): {} banks, {} payments in {paid_in:?} ({:.0} a second, {} workers), {} \
		 retried, {} resolved by asking the helper, {} cheats punished, {by_timeout} banks \
		 liquidated by a payer whose payee died mid-payment, {} closed; {} blocks ({} events); \
		 node memory (KiB, median of the first and last quarter of {} samples): \
		 {memory_first} → {memory_last}, max {}; time to build a block (ms, same): \
		 {block_first} → {block_last}, max {}; whole run {:?}",
		if restarts { "payees on a second node, killed and restarted twice" } else { "one node" },
		banks.len(),
		counts.payments.load(Ordering::Relaxed),
		counts.payments.load(Ordering::Relaxed) as f64 / paid_in.as_secs_f64(),
		WORKERS,
		counts.retried.load(Ordering::Relaxed),
		counts.resolved.load(Ordering::Relaxed),
		cheats.len(),
		closed.len(),
		blocks.len(),
		block_events,
		memory.len(),
		memory.iter().max().unwrap_or(&0),
		blocks.iter().max().unwrap_or(&0),
		started.elapsed(),
	);
	assert!(memory_last <= memory_first + memory_first / 2, "the node's memory grew: {memory:?}");
	// Block times are a figure of a run alone on the machine (`VBANK_LOAD_SCALE` set): in the
	// test command, other tests' nodes share the cores.
	if std::env::var_os("VBANK_LOAD_SCALE").is_some() {
		assert!(block_last <= 2 * block_first + 10, "blocks got slower: {blocks:?}");
	}
	drop(second);
}

#[test]
fn load_on_one_node_nothing_is_lost_and_every_cheat_is_punished() {
	run(false);
}

#[test]
fn load_with_the_payees_node_killed_and_restarted_twice_nothing_is_lost() {
	run(true);
}
