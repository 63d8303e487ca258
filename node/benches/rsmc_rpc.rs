//! Payments per second over loopback RPC (SPEC section 5), every step committed to disk:
//!
//! - one node serving both helpers, one bank: each payment a `rsmc_pay` over WebSocket;
//!   without, then with, an `rsmc_subscribeEvents` subscriber open on the same connection,
//!   as a wallet showing the bank's events holds one;
//! - two nodes, Alice's helper on an authoring node and Bob's on a node following it, each
//!   payment a `rsmc_pay` to Alice's node, which carries `Propose` and `Revoke` to Bob's node
//!   through its `rsmc_message`: on one bank, and on 20 banks at once; then the same on the
//!   same two nodes with banks opened without Bob's node's URL, so that Alice's node carries
//!   them over the nodes' own p2p network (`helpers::p2p`: on the stream each node holds to
//!   the other, `p2p::stream`), having found Bob's node by his account; and that once more on
//!   a pair of nodes on sc-network's other backend, libp2p (litep2p is the default);
//! - one node serving Alice, Bob and Charlie, banks Alice–Bob and Bob–Charlie: a direct
//!   payment (`rsmc_pay` on Alice–Bob) against a routed one (Alice's `rsmc_send` through Bob
//!   of an invoice Charlie made beforehand, which returns once the preimage is back: two
//!   banks, an HTLC added and settled on each), and the same with the invoice counted.
//!
//! The figures in BENCHMARKS.md come from release nodes, driven by this harness built with
//! the test profile (which the test command has built already):
//!
//! ```sh
//! cargo build --release -p vbank-node
//! VBANK_NODE=$CARGO_TARGET_DIR/release/vbank-node cargo bench --profile test --workspace \
//!     --features runtime-benchmarks,try-runtime --bench rsmc_rpc
//! ```
//!
//! The test command runs each case once with the test profile's node. The nodes are watched as
//! the end-to-end tests' are (`tests/e2e/watchdog.rs`): a measurement that keeps one pair
//! alive past 20 minutes needs `VBANK_TEST_HANG_MINUTES`.

#[allow(dead_code)]
#[path = "../../tests/e2e/node.rs"]
mod node;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use futures::future::join_all;
use jsonrpsee::{
	core::client::{ClientT, Subscription, SubscriptionClientT},
	rpc_params,
};
use jsonrpsee_ws_client::{WsClient, WsClientBuilder};
use node::Node;
use serde_json::Value;
use sp_keyring::Sr25519Keyring::{Alice, Bob, Charlie};
use std::time::{Duration, Instant};

const BANKS: usize = 20;
/// What each side brings: `--dev`'s inbound limit, so that Bob's helper joins without asking.
const AMOUNT: u128 = 1_000 * vbank_runtime::UNIT;

async fn connect(url: &str) -> WsClient {
	WsClientBuilder::default()
		.max_concurrent_requests(1024)
		.request_timeout(Duration::from_secs(600))
		.build(url)
		.await
		.unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"))
}

async fn pay(client: &WsClient, channel: u64) {
	let _: Value = client
		.request("rsmc_pay", rpc_params![Alice.to_account_id().to_string(), channel, "1"])
		.await
		.unwrap_or_else(|e| panic!("rsmc_pay on bank {channel}: {e}"));
}

/// `rsmc_open` from Alice to Bob on Alice's node: the new bank.
async fn open(client: &WsClient, bob_url: Option<String>) -> u64 {
	open_between(client, Alice, Bob, bob_url).await
}

async fn open_between(
	client: &WsClient,
	opener: sp_keyring::Sr25519Keyring,
	peer: sp_keyring::Sr25519Keyring,
	peer_url: Option<String>,
) -> u64 {
	let bank: Value = client
		.request(
			"rsmc_open",
			rpc_params![
				opener.to_account_id().to_string(),
				peer.to_account_id().to_string(),
				AMOUNT.to_string(),
				AMOUNT.to_string(),
				10,
				peer_url
			],
		)
		.await
		.unwrap_or_else(|e| panic!("rsmc_open: {e}"));
	bank["channel"].as_u64().expect("a channel")
}

/// Charlie's invoice of one planck: its hashlock.
async fn invoice(client: &WsClient) -> Value {
	let charlie = Charlie.to_account_id().to_string();
	let invoice: Value = client
		.request("rsmc_invoice", rpc_params![charlie, "1"])
		.await
		.unwrap_or_else(|e| panic!("rsmc_invoice: {e}"));
	invoice["hashlock"].clone()
}

/// Alice pays Charlie's invoice `hashlock` through Bob.
async fn send_routed(client: &WsClient, hashlock: Value) {
	let (alice, charlie) = (Alice.to_account_id().to_string(), Charlie.to_account_id().to_string());
	let _: Value = client
		.request("rsmc_send", rpc_params![alice, charlie, "1", hashlock])
		.await
		.unwrap_or_else(|e| panic!("rsmc_send: {e}"));
}

/// `payments` payments, one after another, on `channel`: how long they took.
fn pay_in_turn(
	runtime: &tokio::runtime::Runtime,
	client: &WsClient,
	channel: u64,
	payments: u64,
) -> Duration {
	runtime.block_on(async {
		let started = Instant::now();
		for _ in 0..payments {
			pay(client, channel).await;
		}
		started.elapsed()
	})
}

fn one_node(c: &mut Criterion) {
	let node = Node::start(&[]);
	let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
	let client = runtime.block_on(connect(&node.url()));
	let channel = runtime.block_on(open(&client, None));

	let mut group = c.benchmark_group("payments over RPC, both helpers on one node");
	group.sample_size(10).measurement_time(Duration::from_secs(10));
	group.throughput(Throughput::Elements(1));
	group.bench_function("one bank", |b| {
		b.iter_custom(|payments| pay_in_turn(&runtime, &client, channel, payments))
	});
	// A wallet's view of the bank: a subscription on the same connection, read as it comes.
	let events: Subscription<Value> = runtime.block_on(async {
		client
			.subscribe(
				"rsmc_subscribeEvents",
				rpc_params![Alice.to_account_id().to_string()],
				"rsmc_unsubscribeEvents",
			)
			.await
			.expect("a subscription")
	});
	let seen = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
	runtime.spawn({
		let seen = seen.clone();
		async move {
			let mut events = events;
			while let Some(Ok(_)) = events.next().await {
				seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
			}
		}
	});
	// The subscriber is served: a payment's events reach it (whatever the benchmark filter).
	runtime.block_on(pay(&client, channel));
	let started = Instant::now();
	while seen.load(std::sync::atomic::Ordering::Relaxed) == 0 {
		assert!(started.elapsed() < Duration::from_secs(10), "the subscriber saw no event");
		std::thread::sleep(Duration::from_millis(10));
	}
	group.bench_function("one bank, one event subscriber", |b| {
		b.iter_custom(|payments| pay_in_turn(&runtime, &client, channel, payments))
	});
	group.finish();
}

fn two_nodes(c: &mut Criterion) {
	// WebSocket and p2p on the same two nodes, so that what differs between the two groups is
	// the transport alone, not the nodes' start (their stores, their connection).
	let pair = TwoNodes::start(&[]);
	let (by_url, by_account) = (pair.open_banks(true), pair.open_banks(false));
	pair.bench(c, "payments over RPC between two nodes", &by_url);
	pair.bench(c, "payments between two nodes, helpers over p2p", &by_account);
	drop(pair);
	let pair = TwoNodes::start(&["--network-backend", "libp2p"]);
	let by_account = pair.open_banks(false);
	pair.bench(c, "payments between two nodes, helpers over p2p (libp2p)", &by_account);
}

/// Alice's helper on an authoring node, Bob's on a node following it, both started with
/// `network` (the network backend: litep2p unless it says otherwise), and a client of
/// Alice's node.
struct TwoNodes {
	runtime: tokio::runtime::Runtime,
	client: WsClient,
	_nodes: (Node, Node),
	bob_url: String,
}

impl TwoNodes {
	fn start(network: &[&str]) -> Self {
		let alice = Node::start(&[&["--rsmc-account", "//Alice"], network].concat());
		let bootnode = alice.bootnode();
		let bob_args = ["--consensus", "none", "--bootnodes", &bootnode, "--rsmc-account", "//Bob"];
		let bob = Node::start(&[&bob_args[..], network].concat());
		let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
		let client = runtime.block_on(connect(&alice.url()));
		runtime.block_on(async {
			let bob_client = connect(&bob.url()).await;
			let started = Instant::now();
			loop {
				let health: Value =
					bob_client.request("system_health", rpc_params![]).await.unwrap();
				if health["peers"].as_u64() >= Some(1) {
					break;
				}
				assert!(started.elapsed() < Duration::from_secs(60), "the nodes do not connect");
				tokio::time::sleep(Duration::from_millis(100)).await;
			}
		});
		let bob_url = bob.url();
		TwoNodes { runtime, client, _nodes: (alice, bob), bob_url }
	}

	/// `BANKS` + 1 banks of Alice and Bob: Alice's node reaches Bob's through his node's
	/// `rsmc_message` over WebSocket (`by_url`: opened with his node's URL), or over the
	/// nodes' own p2p network, found by account.
	fn open_banks(&self, by_url: bool) -> Vec<u64> {
		let url = by_url.then(|| self.bob_url.clone());
		self.runtime.block_on(async {
			let mut banks = Vec::new();
			for _ in 0..=BANKS {
				banks.push(open(&self.client, url.clone()).await);
			}
			banks
		})
	}

	/// Payments on one of `banks`, then on the other 20 at once.
	fn bench(&self, c: &mut Criterion, name: &str, banks: &[u64]) {
		let (runtime, client) = (&self.runtime, &self.client);
		let mut group = c.benchmark_group(name);
		group.sample_size(10).measurement_time(Duration::from_secs(20));
		group.throughput(Throughput::Elements(1));
		group.bench_function("one bank", |b| {
			b.iter_custom(|payments| pay_in_turn(runtime, client, banks[0], payments))
		});
		group.throughput(Throughput::Elements(BANKS as u64));
		group.bench_function("20 banks at once", |b| {
			b.iter_custom(|rounds| {
				runtime.block_on(async {
					let started = Instant::now();
					join_all(banks[1..].iter().map(|&channel| async move {
						for _ in 0..rounds {
							pay(client, channel).await;
						}
					}))
					.await;
					started.elapsed()
				})
			})
		});
		group.finish();
	}
}

fn routed(c: &mut Criterion) {
	let accounts = ["//Alice", "//Bob", "//Charlie"].map(|a| ["--rsmc-account", a]).concat();
	let node = Node::start(&accounts);
	let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
	let client = runtime.block_on(connect(&node.url()));
	let ab = runtime.block_on(async {
		let ab = open_between(&client, Alice, Bob, None).await;
		open_between(&client, Bob, Charlie, None).await;
		ab
	});

	let mut group = c.benchmark_group("direct and routed payments, one node");
	group.sample_size(10).measurement_time(Duration::from_secs(10));
	group.throughput(Throughput::Elements(1));
	group.bench_function("direct", |b| {
		b.iter_custom(|payments| pay_in_turn(&runtime, &client, ab, payments))
	});
	// A payment: the payee's invoice made beforehand, as a shop does, then `rsmc_send`.
	group.bench_function("through one intermediary", |b| {
		b.iter_custom(|payments| {
			runtime.block_on(async {
				let mut invoices = Vec::new();
				for _ in 0..payments {
					invoices.push(invoice(&client).await);
				}
				let started = Instant::now();
				for hashlock in invoices {
					send_routed(&client, hashlock).await;
				}
				started.elapsed()
			})
		})
	});
	// The invoice's request and durable write counted too.
	group.bench_function("through one intermediary, invoice included", |b| {
		b.iter_custom(|payments| {
			runtime.block_on(async {
				let started = Instant::now();
				for _ in 0..payments {
					let hashlock = invoice(&client).await;
					send_routed(&client, hashlock).await;
				}
				started.elapsed()
			})
		})
	});
	group.finish();
}

criterion_group!(benches, one_node, two_nodes, routed);
criterion_main!(benches);
