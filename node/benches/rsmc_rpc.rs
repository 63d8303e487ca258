//! Payments per second between two nodes over loopback RPC (SPEC section 5): Alice's helper
//! on an authoring node, Bob's on a node following it, each payment a `rsmc_pay` to Alice's
//! node, which carries `Propose` and `Revoke` to Bob's node through its `rsmc_message`, every
//! step committed to disk on both sides. On one bank, and on 20 banks at once.
//!
//! `cargo bench --profile test --workspace --features runtime-benchmarks --bench rsmc_rpc`
//! (the nodes are the test build's, as the test command builds them; see BENCHMARKS.md).

#[allow(dead_code)]
#[path = "../../tests/e2e/node.rs"]
mod node;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use futures::future::join_all;
use jsonrpsee::{core::client::ClientT, rpc_params};
use jsonrpsee_ws_client::{WsClient, WsClientBuilder};
use node::Node;
use serde_json::Value;
use sp_keyring::Sr25519Keyring::{Alice, Bob};
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

fn payments(c: &mut Criterion) {
	let alice = Node::start(&["--rsmc-account", "//Alice"]);
	let bootnode = alice.bootnode();
	let bob =
		Node::start(&["--consensus", "none", "--bootnodes", &bootnode, "--rsmc-account", "//Bob"]);
	let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
	let client = runtime.block_on(connect(&alice.url()));
	let banks: Vec<u64> = runtime.block_on(async {
		let bob_client = connect(&bob.url()).await;
		let started = Instant::now();
		loop {
			let health: Value = bob_client.request("system_health", rpc_params![]).await.unwrap();
			if health["peers"].as_u64() >= Some(1) {
				break;
			}
			assert!(started.elapsed() < Duration::from_secs(60), "the nodes do not connect");
			tokio::time::sleep(Duration::from_millis(100)).await;
		}
		let mut banks = Vec::new();
		for _ in 0..=BANKS {
			let bank: Value = client
				.request(
					"rsmc_open",
					rpc_params![
						Alice.to_account_id().to_string(),
						Bob.to_account_id().to_string(),
						AMOUNT.to_string(),
						AMOUNT.to_string(),
						10,
						bob.url()
					],
				)
				.await
				.unwrap_or_else(|e| panic!("rsmc_open: {e}"));
			banks.push(bank["channel"].as_u64().expect("a channel"));
		}
		banks
	});

	let mut group = c.benchmark_group("payments over RPC between two nodes");
	group.sample_size(10).measurement_time(Duration::from_secs(20));
	group.throughput(Throughput::Elements(1));
	group.bench_function("one bank", |b| {
		b.iter_custom(|payments| {
			runtime.block_on(async {
				let started = Instant::now();
				for _ in 0..payments {
					pay(&client, banks[0]).await;
				}
				started.elapsed()
			})
		})
	});
	group.throughput(Throughput::Elements(BANKS as u64));
	group.bench_function("20 banks at once", |b| {
		b.iter_custom(|rounds| {
			runtime.block_on(async {
				let started = Instant::now();
				join_all(banks[1..].iter().map(|&channel| {
					let client = &client;
					async move {
						for _ in 0..rounds {
							pay(client, channel).await;
						}
					}
				}))
				.await;
				started.elapsed()
			})
		})
	});
	group.finish();
}

criterion_group!(benches, payments);
criterion_main!(benches);
