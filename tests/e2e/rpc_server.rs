//! The node's RPC server, beyond what `sc-rpc-server` gives by default.

use crate::node::Node;
use serde_json::Value;

/// A wallet holds an `rsmc_subscribeEvents` subscription on the connection it pays through:
/// without `TCP_NODELAY` on the node's end, Nagle's algorithm held every other answer back
/// until the wallet's delayed ACK of the event notification before it, 40 ms (BENCHMARKS.md).
#[cfg(target_os = "linux")]
#[test]
fn the_nodes_end_of_every_rpc_connection_has_nodelay() {
	let node = Node::start(&[]);
	for _ in 0..2 {
		let client = std::net::TcpStream::connect(("127.0.0.1", node.rpc_port)).unwrap();
		assert!(node.nodelay_of_its_end(&client), "Nagle's algorithm is on at the node's end");
	}
}

/// A wallet that subscribes to its events and then stops reading (a frozen page, a process
/// stopped in a debugger) must not hold back anybody's payments: the node drops the events
/// it can't deliver (the helper's broadcast lets a slow subscriber lag) and pays on. 1,500
/// payments make 3,000 events, more than the stalled connection's socket buffers and the
/// server's queue for it take.
#[test]
fn a_subscriber_that_stops_reading_blocks_no_payment() {
	use crate::{
		chain::Chain,
		helpers::{addr, open, pay},
	};
	use jsonrpsee::rpc_params;
	use sp_keyring::Sr25519Keyring::{Alice, Bob};

	let node = Node::start(&[]);
	let chain = Chain::connect(&node.url());
	let channel = open(&chain, 5, None);

	// A raw WebSocket connection: one `rsmc_subscribeEvents`, then never read again.
	let mut stalled = crate::ws::RawWs::connect(node.rpc_port);
	stalled.send(&format!(
		r#"{{"jsonrpc":"2.0","id":1,"method":"rsmc_subscribeEvents","params":["{}"]}}"#,
		addr(Alice)
	));

	for _ in 0..1_500 {
		pay(&chain, Alice, channel, 1);
	}
	// A subscriber that reads still gets its events.
	let mut events =
		chain.subscribe("rsmc_subscribeEvents", rpc_params![addr(Bob)], "rsmc_unsubscribeEvents");
	let paid = pay(&chain, Bob, channel, 1);
	let event = chain.next(&mut events);
	assert_eq!((&event["kind"], &event["nonce"]), (&Value::from("Paid"), &paid["nonce"]));
	drop(stalled);
}
