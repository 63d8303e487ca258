//! Starting and stopping a `vbank-node --dev --tmp` (or a validator of `--chain local`) on
//! free loopback ports.

use std::{
	fs::File,
	io::{BufRead, BufReader},
	net::TcpListener,
	path::{Path, PathBuf},
	process::{Child, Command, Stdio},
	time::{Duration, Instant},
};

#[path = "watchdog.rs"]
pub mod watchdog;

/// How long a node may take to start answering RPC.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running dev node; stopped (and its temporary chain removed) when dropped.
pub struct Node {
	child: Child,
	pub rpc_port: u16,
	pub p2p_port: u16,
	/// The arguments it was started with, ports included, to start it again the same way.
	args: Vec<String>,
	log: tempfile::NamedTempFile,
	/// The test that started it, for the watchdog.
	test: String,
}

/// The node binary cargo built for these tests, or the one `VBANK_NODE` names (a release
/// build, for the RPC benchmark's figures).
pub fn binary() -> PathBuf {
	std::env::var_os("VBANK_NODE")
		.map(PathBuf::from)
		.unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_vbank-node")))
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
		Node::spawn(&[&["--dev", "--tmp"], extra].concat())
	}

	/// Starts `vbank-node --dev` keeping its chain under `base_path`, with `extra` arguments.
	pub fn start_at(base_path: &Path, extra: &[&str]) -> Node {
		let path = base_path.to_str().expect("a UTF-8 temporary path");
		Node::spawn(&[&["--dev", "--base-path", path], extra].concat())
	}

	/// Starts a validator of `--chain local` (`who` is `alice`, `bob`, `charlie` or `dave`),
	/// keeping its chain under `base_path`, with `extra` arguments (`--bootnodes` …). Nodes of
	/// the loopback network find each other by their private addresses. A validator's
	/// network key is made at its first start and kept under `base_path`.
	pub fn start_validator(who: &str, base_path: &Path, extra: &[&str]) -> Node {
		let path = base_path.to_str().expect("a UTF-8 temporary path");
		let who = format!("--{who}");
		let local = [
			"--chain",
			"local",
			&who,
			"--base-path",
			path,
			"--allow-private-ip",
			"--unsafe-force-node-key-generation",
		];
		Node::spawn(&[&local[..], extra].concat())
	}

	fn spawn(extra: &[&str]) -> Node {
		// A free port may be taken by another test's node before ours binds it: then start
		// again on other ports.
		for attempt in 1.. {
			let (rpc_port, p2p_port) = (free_port(), free_port());
			let mut args: Vec<String> = ["--no-telemetry", "--no-prometheus", "--no-mdns"]
				.iter()
				.map(ToString::to_string)
				.collect();
			args.extend(["--rpc-port".into(), rpc_port.to_string()]);
			args.extend(["--listen-addr".into(), format!("/ip4/127.0.0.1/tcp/{p2p_port}")]);
			args.extend(extra.iter().map(ToString::to_string));
			let log = tempfile::NamedTempFile::new().expect("a temporary file for the node's log");
			let test = watchdog::this_test();
			let child = Node::command(&args, &log, &test);
			let mut node = Node { child, rpc_port, p2p_port, args, log, test };
			match node.wait_until_ready() {
				Ok(()) => return node,
				Err(why) if attempt < 3 => {
					eprintln!("starting a node again on other ports: {why}");
					node.kill();
				},
				Err(why) => panic!("{why}"),
			}
		}
		unreachable!("the loop returns or panics")
	}

	fn command(args: &[String], log: &tempfile::NamedTempFile, test: &str) -> Child {
		let child = Command::new(binary())
			.args(args)
			.stdin(Stdio::null())
			.stdout(Stdio::null())
			.stderr(log.reopen().expect("the log file reopens"))
			.spawn()
			.unwrap_or_else(|e| panic!("cannot start {}: {e}", binary().display()));
		watchdog::watch(child.id(), test, Some(log.path()));
		child
	}

	/// The node's process id.
	pub fn pid(&self) -> u32 {
		self.child.id()
	}

	/// Kill the node at once (SIGKILL), as a crash would.
	pub fn kill(&mut self) {
		watchdog::unwatch(self.child.id());
		let _ = self.child.kill();
		let _ = self.child.wait();
	}

	/// Start the node again, with the same arguments and ports, after [`Self::kill`].
	pub fn restart(&mut self) {
		self.log = tempfile::NamedTempFile::new().expect("a temporary file for the node's log");
		self.child = Node::command(&self.args, &self.log, &self.test);
		if let Err(why) = self.wait_until_ready() {
			panic!("the node did not start again: {why}");
		}
	}

	/// Freeze the node (SIGSTOP): it holds its ports but answers nothing.
	pub fn pause(&self) {
		self.signal("-STOP");
	}

	/// Thaw a node frozen by [`Self::pause`].
	pub fn resume(&self) {
		self.signal("-CONT");
	}

	fn signal(&self, signal: &str) {
		let status = Command::new("kill").args([signal, &self.child.id().to_string()]).status();
		assert!(status.is_ok_and(|s| s.success()), "kill {signal} failed");
	}

	/// Whether the node's end of `client`, a TCP connection to it, has `TCP_NODELAY`: read
	/// from the node's own socket, which `pidfd_getfd(2)` lends us (we are its parent).
	#[cfg(target_os = "linux")]
	pub fn nodelay_of_its_end(&self, client: &std::net::TcpStream) -> bool {
		use std::os::fd::{FromRawFd, OwnedFd};
		let ours = client.local_addr().expect("a connected socket");
		let pid = self.child.id() as libc::pid_t;
		// SAFETY: plain system calls; a descriptor they return is owned by us from then on.
		let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
		assert!(pidfd >= 0, "pidfd_open: {}", std::io::Error::last_os_error());
		let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd as i32) };
		let deadline = Instant::now() + Duration::from_secs(10);
		while Instant::now() < deadline {
			let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).expect("the node's descriptors");
			for number in fds.flatten().filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
			{
				use std::os::fd::AsRawFd;
				let fd =
					unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), number, 0) };
				if fd < 0 {
					let error = std::io::Error::last_os_error();
					assert_ne!(error.raw_os_error(), Some(libc::EPERM), "pidfd_getfd: {error}");
					continue;
				}
				let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
				let socket = socket2::SockRef::from(&fd);
				if socket.peer_addr().ok().and_then(|peer| peer.as_socket()) == Some(ours) {
					return socket.nodelay().expect("a TCP socket's TCP_NODELAY");
				}
			}
			// The server may not have accepted the connection yet.
			std::thread::sleep(Duration::from_millis(50));
		}
		panic!("the node holds no connection from {ours}");
	}

	/// The node's libp2p address, for another node's `--bootnodes`.
	pub fn bootnode(&self) -> String {
		let marker = "Local node identity is: ";
		let peer_id = self
			.log_lines()
			.iter()
			.find_map(|line| Some(line.split(marker).nth(1)?.trim().to_string()))
			.unwrap_or_else(|| panic!("the node did not log its identity:\n{}", self.log_tail()));
		format!("/ip4/127.0.0.1/tcp/{}/p2p/{peer_id}", self.p2p_port)
	}

	/// The node's WebSocket RPC address.
	pub fn url(&self) -> String {
		format!("ws://127.0.0.1:{}", self.rpc_port)
	}

	/// Wait until the node serves RPC on our port; why not, if it does not.
	fn wait_until_ready(&mut self) -> Result<(), String> {
		let started = Instant::now();
		let ours = format!("127.0.0.1:{}", self.rpc_port);
		while started.elapsed() < START_TIMEOUT {
			if let Ok(Some(status)) = self.child.try_wait() {
				return Err(format!(
					"the node exited with {status} before it answered:\n{}",
					self.log_tail()
				));
			}
			let lines = self.log_lines();
			if let Some(line) = lines.iter().find(|line| line.contains("Running JSON-RPC server")) {
				if !line.split([',', ' ', '=']).any(|address| address == ours) {
					return Err(format!("port {} was taken: {line}", self.rpc_port));
				}
				if std::net::TcpStream::connect(("127.0.0.1", self.rpc_port)).is_ok() {
					return Ok(());
				}
			}
			std::thread::sleep(Duration::from_millis(100));
		}
		Err(format!("the node did not answer within {START_TIMEOUT:?}:\n{}", self.log_tail()))
	}

	/// Every line the node has logged so far.
	pub fn log_lines(&self) -> Vec<String> {
		lines_of(self.log.path())
	}

	/// The last lines the node logged, for a failure message.
	pub fn log_tail(&self) -> String {
		tail_of(self.log.path())
	}
}

fn lines_of(log: &Path) -> Vec<String> {
	File::open(log)
		.map(|file| BufReader::new(file).lines().map_while(Result::ok).collect())
		.unwrap_or_default()
}

/// The last lines of the log `log`, for a failure message.
fn tail_of(log: &Path) -> String {
	let lines = lines_of(log);
	lines[lines.len().saturating_sub(40)..].join("\n")
}

impl Drop for Node {
	fn drop(&mut self) {
		if std::thread::panicking() {
			// The whole log is kept for a failed test, beside the other temporary files.
			let kept = std::env::temp_dir().join(format!("vbank-node-{}.log", self.rpc_port));
			let kept = match std::fs::copy(self.log.path(), &kept) {
				Ok(_) => format!("(whole log: {})", kept.display()),
				Err(e) => format!("(the whole log could not be kept: {e})"),
			};
			eprintln!(
				"--- the end of the log of the node on port {} {kept} ---\n{}",
				self.rpc_port,
				self.log_tail()
			);
		}
		// A frozen node must be thawed to hear SIGTERM.
		let _ = Command::new("kill").args(["-CONT", &self.child.id().to_string()]).status();
		// SIGTERM lets the node remove its `--tmp` chain; SIGKILL only if it hangs.
		let _ = Command::new("kill").arg(self.child.id().to_string()).status();
		let deadline = Instant::now() + Duration::from_secs(20);
		while Instant::now() < deadline {
			if let Ok(Some(_)) = self.child.try_wait() {
				watchdog::unwatch(self.child.id());
				return;
			}
			std::thread::sleep(Duration::from_millis(50));
		}
		self.kill();
	}
}
