//! The usual node subcommands on the dev chain (`build-spec`, `key`, `export-blocks`,
//! `import-blocks`, `purge-chain`), and timed sealing.

use crate::{
	chain::Chain,
	node::{binary, Node},
};
use jsonrpsee::rpc_params;
use sp_keyring::Sr25519Keyring;
use std::process::{Command, Output};

fn vbank_node(args: &[&str]) -> Output {
	let output = Command::new(binary()).args(args).output().expect("vbank-node runs");
	assert!(
		output.status.success(),
		"vbank-node {args:?} failed:\n{}",
		String::from_utf8_lossy(&output.stderr)
	);
	output
}

#[test]
fn build_spec_describes_the_dev_chain() {
	let spec = vbank_node(&["build-spec", "--chain", "dev"]);
	let spec: serde_json::Value = serde_json::from_slice(&spec.stdout).expect("a JSON chain spec");
	assert_eq!(spec["id"], "dev");
	assert_eq!(spec["properties"]["tokenSymbol"], "VBK");
	let raw = vbank_node(&["build-spec", "--chain", "dev", "--raw"]);
	let raw: serde_json::Value = serde_json::from_slice(&raw.stdout).expect("a raw chain spec");
	assert!(raw["genesis"]["raw"]["top"].as_object().is_some_and(|top| !top.is_empty()));
}

/// `--chain local` gives another machine a spec to join with: four validators' Aura and
/// GRANDPA keys in its genesis; and a sealing mode is refused there, with why.
#[test]
fn the_local_network_has_a_spec_to_share_and_refuses_a_sealing_mode() {
	let raw = vbank_node(&["build-spec", "--chain", "local", "--raw"]);
	let raw: serde_json::Value = serde_json::from_slice(&raw.stdout).expect("a raw chain spec");
	assert_eq!(
		(raw["id"].as_str(), raw["chainType"].as_str()),
		(Some("local_testnet"), Some("Local"))
	);
	let aura_authorities = format!(
		"0x{}",
		hex::encode(
			[sp_io::hashing::twox_128(b"Aura"), sp_io::hashing::twox_128(b"Authorities")].concat(),
		)
	);
	let authorities =
		raw["genesis"]["raw"]["top"][&aura_authorities].as_str().expect("Aura's authorities");
	assert!(authorities.starts_with("0x10"), "four authorities (compact 4 = 0x10): {authorities}");

	let refused = Command::new(binary())
		.args(["--chain", "local", "--tmp", "--consensus", "instant-seal", "--no-telemetry"])
		.output()
		.expect("vbank-node runs");
	assert!(!refused.status.success());
	let why = String::from_utf8_lossy(&refused.stderr);
	assert!(why.contains("--consensus applies to a development chain only"), "{why}");
}

#[test]
fn key_inspect_knows_the_dev_accounts() {
	let out = vbank_node(&["key", "inspect", "//Alice"]);
	let text = String::from_utf8_lossy(&out.stdout);
	assert!(text.contains(&Sr25519Keyring::Alice.to_account_id().to_string()), "{text}");
}

#[test]
fn blocks_export_import_and_purge() {
	let dir = tempfile::tempdir().expect("a temporary directory");
	let (first, second) = (dir.path().join("first"), dir.path().join("second"));
	let (best, best_hash) = {
		let node = Node::start_at(&first, &[]);
		let chain = Chain::connect(&node.url());
		chain.advance(&Sr25519Keyring::Alice.pair(), 3);
		let best = chain.best_number();
		(best, chain.rpc("chain_getBlockHash", rpc_params![best]))
	};
	assert!(best >= 4, "a first empty block and three remarks");

	let exported = dir.path().join("blocks.bin");
	let base = |path: &std::path::Path| path.to_str().expect("UTF-8").to_owned();
	let (first, second, exported) = (base(&first), base(&second), base(&exported));
	vbank_node(&["export-blocks", "--dev", "--base-path", &first, "--binary", &exported]);
	vbank_node(&["import-blocks", "--dev", "--base-path", &second, "--binary", &exported]);

	// (A node that starts seals one empty block on top of what it imported.)
	let node = Node::start_at(std::path::Path::new(&second), &[]);
	let chain = Chain::connect(&node.url());
	assert_eq!(
		chain.rpc("chain_getBlockHash", rpc_params![best]),
		best_hash,
		"every block imported"
	);
	drop(node);

	vbank_node(&["purge-chain", "--dev", "--base-path", &second, "-y"]);
	assert!(!std::path::Path::new(&second).join("chains/dev/paritydb").exists());
}

#[test]
fn timed_seal_makes_blocks_without_transactions() {
	let node = Node::start(&["--consensus", "manual-seal-300"]);
	let chain = Chain::connect(&node.url());
	let first = chain.best_number();
	std::thread::sleep(std::time::Duration::from_secs(2));
	let later = chain.best_number();
	assert!(later >= first + 3, "300 ms blocks: #{first} then #{later} two seconds later");
}
