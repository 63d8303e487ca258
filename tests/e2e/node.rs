//! Starting and stopping a `vbank-node --dev --tmp` on free loopback ports.

use std::{
	fs::File,
	io::{BufRead, BufReader},
	net::TcpListener,
	path::{Path, PathBuf},
	process::{Child, Command, Stdio},
	time::{Duration, Instant},
};

/// How long a node may take to start answering RPC.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running dev node; stopped (and its temporary chain removed) when dropped.
pub struct Node {
	child: Child,
	pub rpc_port: u16,
	log: tempfile::NamedTempFile,
}

/// The node binary cargo built for these tests.
pub fn binary() -> PathBuf {
	PathBuf::from(env!("CARGO_BIN_EXE_vbank-node"))
}

/// A loopback port that nothing listens on right now.
pub fn free_port() -> u16 {
	TcpListener::bind("127.0.0.1:0")
		.and_then(|listener| listener.local_addr())
		.expect("the loopback interface takes a listener")
		.port()
}

impl Node {
	/// Starts `vbank-node --dev --tmp` with `extra` arguments and waits for its RPC.
	pub fn start(extra: &[&str]) -> Node {
		Node::spawn(&[&["--tmp"], extra].concat())
	}

	/// Starts `vbank-node --dev` keeping its chain under `base_path`.
	pub fn start_at(base_path: &Path) -> Node {
		Node::spawn(&["--base-path", base_path.to_str().expect("a UTF-8 temporary path")])
	}

	fn spawn(extra: &[&str]) -> Node {
		let rpc_port = free_port();
		let p2p_port = free_port();
		let log = tempfile::NamedTempFile::new().expect("a temporary file for the node's log");
		let child = Command::new(binary())
			.args(["--dev", "--no-telemetry", "--no-prometheus", "--no-mdns"])
			.args(["--rpc-port", &rpc_port.to_string()])
			.args(["--listen-addr", &format!("/ip4/127.0.0.1/tcp/{p2p_port}")])
			.args(extra)
			.stdin(Stdio::null())
			.stdout(Stdio::null())
			.stderr(log.reopen().expect("the log file reopens"))
			.spawn()
			.unwrap_or_else(|e| panic!("cannot start {}: {e}", binary().display()));
		let mut node = Node { child, rpc_port, log };
		node.wait_until_ready();
		node
	}

	/// The node's WebSocket RPC address.
	pub fn url(&self) -> String {
		format!("ws://127.0.0.1:{}", self.rpc_port)
	}

	fn wait_until_ready(&mut self) {
		let started = Instant::now();
		while started.elapsed() < START_TIMEOUT {
			if let Ok(Some(status)) = self.child.try_wait() {
				panic!("the node exited with {status} before it answered:\n{}", self.log_tail());
			}
			if self.log_lines().iter().any(|line| line.contains("Running JSON-RPC server"))
				&& std::net::TcpStream::connect(("127.0.0.1", self.rpc_port)).is_ok()
			{
				return;
			}
			std::thread::sleep(Duration::from_millis(100));
		}
		panic!("the node did not answer within {START_TIMEOUT:?}:\n{}", self.log_tail());
	}

	fn log_lines(&self) -> Vec<String> {
		File::open(self.log.path())
			.map(|file| BufReader::new(file).lines().map_while(Result::ok).collect())
			.unwrap_or_default()
	}

	/// The last lines the node logged, for a failure message.
	pub fn log_tail(&self) -> String {
		let lines = self.log_lines();
		lines[lines.len().saturating_sub(40)..].join("\n")
	}
}

impl Drop for Node {
	fn drop(&mut self) {
		// SIGTERM lets the node remove its `--tmp` chain; SIGKILL only if it hangs.
		let _ = Command::new("kill").arg(self.child.id().to_string()).status();
		let deadline = Instant::now() + Duration::from_secs(20);
		while Instant::now() < deadline {
			if let Ok(Some(_)) = self.child.try_wait() {
				return;
			}
			std::thread::sleep(Duration::from_millis(50));
		}
		let _ = self.child.kill();
		let _ = self.child.wait();
	}
}
