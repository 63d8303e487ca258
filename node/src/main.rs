//! `vbank-node`: the vbank development chain.
//!
//! `vbank-node --dev` runs a one-node chain that seals a block as soon as a transaction
//! arrives (`--consensus manual-seal-<ms>` seals one every `<ms>` milliseconds instead), with
//! the well-known dev accounts funded and JSON-RPC on `127.0.0.1:9944`.

// `sc_cli::Error` is the error type of the runner API every subcommand goes through; it is
// large, and boxing it at each call would only move the allocation around.
#![allow(clippy::result_large_err)]

mod chain_spec;
mod cli;
mod command;
mod helpers;
mod nodelay;
mod rpc;
mod rsmc_cli;
mod service;
mod types;
mod wallet;

fn main() -> sc_cli::Result<()> {
	command::run()
}
