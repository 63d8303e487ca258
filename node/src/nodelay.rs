//! `TCP_NODELAY` for the RPC server's connections.
//!
//! `sc-rpc-server` accepts its connections without `TCP_NODELAY`, so Nagle's algorithm holds a
//! small write back while an earlier one is unacknowledged. A wallet with an
//! `rsmc_subscribeEvents` subscription gets an event notification and then the answer to its
//! `rsmc_pay` on the same connection: every other answer waited for the client's delayed ACK
//! of the notification before it, 40 ms (`tcpdump` on loopback shows the answer leave the
//! instant that ACK arrives). Measured with a release node: 22 ms a payment with the
//! subscriber, 2.3 ms once the connection had `TCP_NODELAY` (BENCHMARKS.md).
//!
//! The server binds its listeners inside `sc_service::spawn_tasks` and gives no hook at
//! accept, but on Linux an accepted socket inherits `TCP_NODELAY` from its listener: setting
//! it on the RPC listeners, found by their addresses, covers every connection they accept.

use std::net::SocketAddr;

use sc_network::multiaddr::{Multiaddr, Protocol};

/// The TCP address a listen address such as `/ip4/127.0.0.1/tcp/9944` names, if it names one.
pub fn socket_addr(address: &Multiaddr) -> Option<SocketAddr> {
	let mut parts = address.iter();
	let ip = match parts.next()? {
		Protocol::Ip4(ip) => ip.into(),
		Protocol::Ip6(ip) => ip.into(),
		_ => return None,
	};
	match parts.next()? {
		Protocol::Tcp(port) => Some(SocketAddr::new(ip, port)),
		_ => None,
	}
}

/// Sets `TCP_NODELAY` on this process's listening TCP sockets bound to one of `addresses`,
/// and checks it took: the addresses it set it for. Sockets at other addresses are left alone.
#[cfg(target_os = "linux")]
pub fn on_listeners(addresses: &[SocketAddr]) -> Vec<SocketAddr> {
	use std::os::fd::{BorrowedFd, RawFd};
	let Ok(fds) = std::fs::read_dir("/proc/self/fd") else { return Vec::new() };
	let mut set = Vec::new();
	for entry in fds.flatten() {
		let Some(fd) = entry.file_name().to_str().and_then(|name| name.parse::<RawFd>().ok())
		else {
			continue;
		};
		// SAFETY: the descriptor is only borrowed for the calls below. Should another thread
		// close it meanwhile, they fail with `EBADF`, or act on whatever reused the number,
		// and only if that is a listening socket at one of `addresses` too.
		let fd = unsafe { BorrowedFd::borrow_raw(fd) };
		let socket = socket2::SockRef::from(&fd);
		let Some(local) = socket.local_addr().ok().and_then(|addr| addr.as_socket()) else {
			continue;
		};
		let listening = socket.r#type().is_ok_and(|kind| kind == socket2::Type::STREAM)
			&& socket.peer_addr().is_err();
		if listening
			&& addresses.contains(&local)
			&& socket.set_nodelay(true).is_ok()
			&& socket.nodelay().unwrap_or(false)
		{
			set.push(local);
		}
	}
	set
}

#[cfg(not(target_os = "linux"))]
pub fn on_listeners(_addresses: &[SocketAddr]) -> Vec<SocketAddr> {
	Vec::new()
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
	use std::net::{TcpListener, TcpStream};

	#[test]
	fn connections_accepted_by_the_named_listeners_have_nodelay_and_others_are_untouched() {
		let named = TcpListener::bind("127.0.0.1:0").unwrap();
		let other = TcpListener::bind("127.0.0.1:0").unwrap();
		assert!(!socket2::SockRef::from(&named).nodelay().unwrap());
		let address = named.local_addr().unwrap();
		assert_eq!(super::on_listeners(&[address]), vec![address]);
		assert!(!socket2::SockRef::from(&other).nodelay().unwrap(), "another listener changed");
		let _client = TcpStream::connect(address).unwrap();
		let (accepted, _) = named.accept().unwrap();
		assert!(accepted.nodelay().unwrap(), "the accepted connection did not inherit it");
	}

	#[test]
	fn listen_addresses_name_their_socket() {
		let v4 = "/ip4/127.0.0.1/tcp/9944".parse().unwrap();
		assert_eq!(super::socket_addr(&v4), Some("127.0.0.1:9944".parse().unwrap()));
		let v6 = "/ip6/::1/tcp/9944".parse().unwrap();
		assert_eq!(super::socket_addr(&v6), Some("[::1]:9944".parse().unwrap()));
		assert_eq!(super::socket_addr(&"/dns4/localhost/tcp/1".parse().unwrap()), None);
		assert_eq!(super::socket_addr(&"/ip4/127.0.0.1/udp/1".parse().unwrap()), None);
	}
}
