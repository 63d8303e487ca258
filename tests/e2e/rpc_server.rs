//! The node's RPC server, beyond what `sc-rpc-server` gives by default.

use crate::node::Node;

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
