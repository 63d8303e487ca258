//! End-to-end tests of `vbank-node`: each test starts the built node itself (`--dev --tmp`
//! on free loopback ports), waits until it answers, and stops it when done.

mod chain;
mod helpers;
mod htlc;
mod load;
mod network;
mod node;
mod p2p;
mod polkadot_js;
mod recovery;
mod reorg;
mod routing_safety;
mod rpc_inputs;
mod rpc_server;
mod safety;
mod seed_story;
mod splice;
mod subcommands;
mod tower;
mod ws;
