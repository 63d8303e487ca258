//! `TCP_NODELAY` for the RPC server's connections.
//!
//! `sc-rpc-server` accepts its connections without setting `TCP_NODELAY`, so Nagle's
//! algorithm holds back a small write while an earlier one is unacknowledged. A wallet with
//! an `rsmc_subscribeEvents` subscription open gets an event and then the answer to its
//! `rsmc_pay` on the same connection: the answer waited for the client's delayed ACK of the
//! event, some 20 ms a payment (measured: 12.7 ms a payment without a subscriber, 32.6 ms
//! with one, test-profile node). On Linux an accepted socket inherits `TCP_NODELAY` from the
//! listening socket, so setting it on the listeners once they are bound fixes every
//! connection the server accepts.

/// Sets `TCP_NODELAY` on every listening TCP socket of this process (the RPC server's; the
/// network's and Prometheus' set it themselves, or lose nothing by it): how many it set.
#[cfg(target_os = "linux")]
pub fn on_listeners() -> usize {
	use std::os::fd::{BorrowedFd, RawFd};
	let Ok(fds) = std::fs::read_dir("/proc/self/fd") else { return 0 };
	let mut set = 0;
	for entry in fds.flatten() {
		let Some(fd) = entry.file_name().to_str().and_then(|name| name.parse::<RawFd>().ok())
		else {
			continue;
		};
		// SAFETY: the descriptor is only borrowed for the calls below. Should another thread
		// close it meanwhile, the calls fail with `EBADF` (or act on whatever reused the
		// number, and only if that is a listening TCP socket too).
		let fd = unsafe { BorrowedFd::borrow_raw(fd) };
		let socket = socket2::SockRef::from(&fd);
		let is_tcp_listener = socket.r#type().is_ok_and(|t| t == socket2::Type::STREAM)
			&& socket.local_addr().is_ok_and(|addr| addr.as_socket().is_some())
			&& socket.peer_addr().is_err();
		if is_tcp_listener && socket.set_nodelay(true).is_ok() {
			set += 1;
		}
	}
	set
}

#[cfg(not(target_os = "linux"))]
pub fn on_listeners() -> usize {
	0
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
	#[test]
	fn connections_accepted_by_a_listener_with_nodelay_have_it() {
		let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
		assert!(!socket2::SockRef::from(&listener).nodelay().unwrap());
		assert!(super::on_listeners() >= 1);
		assert!(socket2::SockRef::from(&listener).nodelay().unwrap());
		let _client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
		let (accepted, _) = listener.accept().unwrap();
		assert!(accepted.nodelay().unwrap(), "the accepted connection did not inherit it");
	}
}
