//! A raw WebSocket JSON-RPC connection (RFC 6455), for what a well-behaved client library
//! never sends: malformed and oversized requests, deep JSON, and subscribers that stop
//! reading.

use serde_json::Value;
use std::{
	io::{BufRead, BufReader, ErrorKind, Read, Write},
	net::TcpStream,
	sync::{Arc, Mutex},
	time::{Duration, Instant},
};

/// The longest the node may leave a frame it began unfinished, or not read what we write (each
/// read or write waits at most this), and the longest an answer to [`RawWs::call`] may take: a
/// test fails then, rather than hang.
const FRAME_TIMEOUT: Duration = Duration::from_secs(60);
/// The longest frame we take: the node's answers are a few KiB.
const MAX_FRAME: u64 = 16 << 20;

pub struct RawWs {
	/// Frames are written whole under this lock: the reader answers pings while another
	/// thread may be sending requests.
	writer: Arc<Mutex<TcpStream>>,
	/// Pongs the reader could not send because a writer held the lock (blocked, maybe, until
	/// the node reads, which it may do only once we read its answers): the next send sends
	/// them.
	pongs: Arc<Mutex<Vec<Vec<u8>>>>,
	reader: BufReader<TcpStream>,
}

impl RawWs {
	/// Connects to a node's RPC port and upgrades the connection to WebSocket.
	pub fn connect(port: u16) -> RawWs {
		let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("the node's RPC port");
		stream.set_read_timeout(Some(FRAME_TIMEOUT)).unwrap();
		stream.set_write_timeout(Some(FRAME_TIMEOUT)).unwrap();
		write!(
			stream,
			"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
			 Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
		)
		.unwrap();
		let mut reader = BufReader::new(stream.try_clone().unwrap());
		let mut status = String::new();
		reader.read_line(&mut status).unwrap();
		assert!(status.contains("101"), "no WebSocket upgrade: {status}");
		// The rest of the response's head, up to its empty line.
		let mut line = String::new();
		while line != "\r\n" {
			line.clear();
			reader.read_line(&mut line).unwrap();
		}
		RawWs { writer: Arc::new(Mutex::new(stream)), pongs: Default::default(), reader }
	}

	/// A second handle on the same connection, to read on one thread while another writes.
	pub fn try_clone(&self) -> RawWs {
		let stream = self.writer.lock().unwrap().try_clone().expect("a socket handle");
		let (writer, pongs) = (self.writer.clone(), self.pongs.clone());
		RawWs { writer, pongs, reader: BufReader::new(stream) }
	}

	/// Sends `text` as one text frame.
	pub fn send(&mut self, text: &str) {
		self.write_frame(0x1, text.as_bytes());
	}

	fn write_frame(&self, opcode: u8, payload: &[u8]) {
		let mut writer = self.writer.lock().unwrap();
		for pong in std::mem::take(&mut *self.pongs.lock().unwrap()) {
			writer.write_all(&pong).expect("the node reads");
		}
		writer.write_all(&masked_frame(opcode, payload)).expect("the node reads");
	}

	/// Answers a ping now if no writer holds the connection, else with the next send.
	fn pong(&self, payload: &[u8]) {
		let pong = masked_frame(0xA, payload);
		match self.writer.try_lock() {
			Ok(mut writer) => writer.write_all(&pong).expect("the node reads"),
			Err(_) => self.pongs.lock().unwrap().push(pong),
		}
	}

	/// The next answer, or `None` when none comes within `wait` (pings do not count).
	pub fn receive_within(&mut self, wait: Duration) -> Option<Value> {
		match self.receive_until(Instant::now() + wait) {
			Ok(answer) => Some(answer),
			Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => None,
			Err(e) => panic!("the connection failed: {e}"),
		}
	}

	/// The next text frame the node sends before `deadline`, parsed; pings are answered,
	/// pongs skipped. The deadline holds however often the node pings: a read timeout alone
	/// would start again at each ping, and the server pings every 30 s.
	fn receive_until(&mut self, deadline: Instant) -> std::io::Result<Value> {
		loop {
			let left = deadline.saturating_duration_since(Instant::now());
			if left.is_zero() {
				return Err(ErrorKind::TimedOut.into());
			}
			// Wait for the next frame's first bytes without taking any, so that a deadline
			// passed leaves the connection at a frame's start.
			self.reader.get_ref().set_read_timeout(Some(left))?;
			if self.reader.fill_buf()?.is_empty() {
				return Err(ErrorKind::UnexpectedEof.into());
			}
			// The rest follows: a frame the node leaves unfinished is an error of its own, not a
			// timeout the caller would wait past.
			self.reader.get_ref().set_read_timeout(Some(FRAME_TIMEOUT))?;
			let frame = self.read_frame().map_err(|e| match e.kind() {
				ErrorKind::WouldBlock | ErrorKind::TimedOut => {
					std::io::Error::other(format!("the node left a frame unfinished: {e}"))
				},
				_ => e,
			})?;
			if let Some(answer) = frame {
				return Ok(answer);
			}
		}
	}

	/// One frame: a text frame's JSON, or `None` for a control frame (a ping is answered).
	fn read_frame(&mut self) -> std::io::Result<Option<Value>> {
		let mut head = [0u8; 2];
		self.reader.read_exact(&mut head)?;
		let len = match head[1] & 0x7f {
			126 => {
				let mut len = [0u8; 2];
				self.reader.read_exact(&mut len)?;
				u64::from(u16::from_be_bytes(len))
			},
			127 => {
				let mut len = [0u8; 8];
				self.reader.read_exact(&mut len)?;
				u64::from_be_bytes(len)
			},
			len => u64::from(len),
		};
		if len > MAX_FRAME {
			return Err(std::io::Error::other(format!("a frame of {len} bytes: out of step")));
		}
		let mut payload = vec![0u8; len as usize];
		self.reader.read_exact(&mut payload)?;
		match head[0] & 0x0f {
			0x1 => Ok(Some(serde_json::from_slice(&payload).expect("the node answers JSON"))),
			0x8 => panic!("the node closed the connection: {payload:?}"),
			// The server closes a connection that stops answering its pings.
			0x9 => {
				self.pong(&payload);
				Ok(None)
			},
			_ => Ok(None),
		}
	}

	/// One request, and the answer to it.
	pub fn call(&mut self, text: &str) -> Value {
		self.send(text);
		self.receive_until(Instant::now() + FRAME_TIMEOUT).unwrap_or_else(|e| {
			panic!("no answer to {}…: {e}", text.chars().take(200).collect::<String>())
		})
	}
}

/// A client's WebSocket frame (RFC 6455 §5.2): FIN, `opcode`, masked with a zero key
/// (masking is required of clients; its key may be any).
fn masked_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
	let mut frame = vec![0x80 | opcode];
	match payload.len() {
		len if len < 126 => frame.push(0x80 | len as u8),
		len if len <= usize::from(u16::MAX) => {
			frame.push(0x80 | 126);
			frame.extend_from_slice(&(len as u16).to_be_bytes());
		},
		len => {
			frame.push(0x80 | 127);
			frame.extend_from_slice(&(len as u64).to_be_bytes());
		},
	}
	frame.extend_from_slice(&[0; 4]);
	frame.extend_from_slice(payload);
	frame
}
