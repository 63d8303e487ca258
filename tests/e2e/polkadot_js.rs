//! Runs the polkadot.js suite in `tests/polkadot-js` (Node's `node --test`), which starts its
//! own nodes from the binary built for these tests.

use crate::node::watchdog;
use std::{path::Path, process::Command};

fn run(what: &str, command: &mut Command) {
	let mut child = command
		.spawn()
		.unwrap_or_else(|e| panic!("cannot run {what}: {e} (is Node.js 20+ installed?)"));
	// Its nodes are its own; a suite that hangs is stopped with the run.
	watchdog::watch(child.id(), &watchdog::this_test(), None);
	let status = child.wait();
	watchdog::unwatch(child.id());
	let status = status.unwrap_or_else(|e| panic!("{what}: {e}"));
	assert!(status.success(), "{what} failed with {status}");
}

#[test]
fn polkadot_js_suite() {
	// Read when the test runs, not when it is built: the target directory is shared between
	// clones, so the binary may have been built in another one.
	let manifest_dir =
		std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR");
	let suite = Path::new(&manifest_dir).join("../tests/polkadot-js");
	// `npm ci` installs exactly the locked packages; skip it when they are already there.
	let installed = suite.join("node_modules/.package-lock.json");
	let locked = suite.join("package-lock.json");
	let fresh = match (
		installed.metadata().and_then(|m| m.modified()),
		locked.metadata().and_then(|m| m.modified()),
	) {
		(Ok(installed), Ok(locked)) => installed >= locked,
		_ => false,
	};
	if !fresh {
		run(
			"npm ci",
			Command::new("npm").args(["ci", "--no-audit", "--no-fund"]).current_dir(&suite),
		);
	}
	let mut files: Vec<_> = std::fs::read_dir(suite.join("test"))
		.expect("tests/polkadot-js/test exists")
		.map(|entry| entry.expect("a readable directory entry").path())
		.filter(|path| path.to_string_lossy().ends_with(".test.mjs"))
		.collect();
	files.sort();
	assert!(!files.is_empty(), "no *.test.mjs in tests/polkadot-js/test");
	run(
		"the polkadot.js suite",
		Command::new("node")
			.args(["--test", "--test-concurrency=1"])
			.args(&files)
			.env("VBANK_NODE", crate::node::binary())
			.current_dir(&suite),
	);
}
