//! A watchdog for hung tests. A test that hangs would hold the whole run (and CI) until an
//! outer time limit, saying nothing of why. Each process a test starts and waits on (a node,
//! the polkadot.js suite) is watched; once one outlives the limit (`VBANK_TEST_HANG_MINUTES`,
//! 20 by default, 0 for none), the watchdog names the test that started it, prints the end of
//! its log, kills every process this run started, and ends the run as failed (exit 101).
//! The slowest test takes a few minutes on a busy machine.

use std::{
	collections::HashMap,
	io::Write,
	path::{Path, PathBuf},
	sync::{Mutex, Once},
	time::{Duration, Instant},
};

/// A watched process: who started it, since when, and its log if it has one.
struct Watched {
	pid: u32,
	test: String,
	since: Instant,
	log: Option<PathBuf>,
}

static WATCHED: Mutex<Vec<Watched>> = Mutex::new(Vec::new());

/// How long a watched process may live, if there is a limit.
fn limit() -> Result<Option<Duration>, String> {
	let Ok(minutes) = std::env::var("VBANK_TEST_HANG_MINUTES") else {
		return Ok(Some(Duration::from_secs(20 * 60)));
	};
	let parsed = minutes.parse::<f64>().ok().filter(|m| m.is_finite() && *m >= 0.0);
	let minutes = parsed.ok_or_else(|| {
		format!("VBANK_TEST_HANG_MINUTES={minutes}: a number of minutes, or 0 for no limit")
	})?;
	Ok((minutes > 0.0).then(|| Duration::from_secs_f64(60.0 * minutes)))
}

/// The test running on this thread: libtest names each test's thread after it.
pub fn this_test() -> String {
	std::thread::current().name().unwrap_or("a test's helper thread").to_string()
}

/// Watch process `pid`, started by `test`, until [`unwatch`].
pub fn watch(pid: u32, test: &str, log: Option<&Path>) {
	static WATCHDOG: Once = Once::new();
	let limit = limit().unwrap_or_else(|why| {
		// The process is started already, and nobody would stop it.
		kill(pid);
		panic!("{why}")
	});
	let Some(limit) = limit else { return };
	let watched = Watched {
		pid,
		test: test.to_string(),
		since: Instant::now(),
		log: log.map(Path::to_path_buf),
	};
	WATCHED.lock().unwrap_or_else(|e| e.into_inner()).push(watched);
	WATCHDOG.call_once(|| {
		std::thread::spawn(move || loop {
			std::thread::sleep(Duration::from_secs(5));
			let watched = WATCHED.lock().unwrap_or_else(|e| e.into_inner());
			if let Some(hung) = watched.iter().find(|w| w.since.elapsed() > limit) {
				stop_the_run(hung, limit, &watched);
			}
		});
	});
}

pub fn unwatch(pid: u32) {
	WATCHED.lock().unwrap_or_else(|e| e.into_inner()).retain(|w| w.pid != pid);
}

fn stop_the_run(hung: &Watched, limit: Duration, watched: &[Watched]) -> ! {
	// Straight to stderr: `eprintln!` would go to the test's captured output, which nobody
	// reads once the run ends here.
	let mut out = std::io::stderr().lock();
	let _ = writeln!(
		out,
		"--- {} has run process {} for more than {limit:?}: it hangs. The run stops here. ---",
		hung.test, hung.pid
	);
	if let Some(log) = &hung.log {
		let _ = writeln!(out, "The end of its log ({}):\n{}", log.display(), super::tail_of(log));
	}
	// The logs stay: exiting runs no destructor.
	for other in watched.iter().filter(|w| w.pid != hung.pid) {
		if let Some(log) = &other.log {
			let _ =
				writeln!(out, "{}'s process {} logs to {}", other.test, other.pid, log.display());
		}
	}
	let _ = out.flush();
	kill_descendants();
	std::process::exit(101);
}

/// SIGKILL to every process this one started, and theirs (the polkadot.js suite's nodes), so
/// that none outlives the run or holds its output open.
fn kill_descendants() {
	let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
	for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
		let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
			continue;
		};
		// `pid (command) state ppid …`; the command may hold spaces and parentheses.
		let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
		let after_command = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
		if let Some(parent) = after_command.split_whitespace().nth(1).and_then(|p| p.parse().ok()) {
			children.entry(parent).or_default().push(pid);
		}
	}
	let mut stack = vec![std::process::id()];
	while let Some(parent) = stack.pop() {
		for &child in children.get(&parent).into_iter().flatten() {
			kill(child);
			stack.push(child);
		}
	}
}

fn kill(pid: u32) {
	// SAFETY: a plain system call.
	unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
}
