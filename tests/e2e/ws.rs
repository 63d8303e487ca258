//! A raw WebSocket JSON-RPC connection (RFC 6455), for what a well-behaved client library
//! never sends: malformed and oversized requests, deep JSON, and subscribers that stop
//! reading.

use serde_json::Value;
use std::{
	io::{BufRead, BufReader, Read, Write},
	net::TcpStream,
	time::Duration,
};

pub struct RawWs {
	stream: TcpStream,
	reader: BufReader<TcpStream>,
}

impl RawWs {
	/// Connects to a node's RPC port and upgrades the connection to WebSocket.
	pub fn connect(port: u16) -> RawWs {
		let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("the node's RPC port");
		stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
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
		RawWs { stream, reader }
	}

	/// A second handle on the same connection, to read on one thread while another writes.
	pub fn try_clone(&self) -> RawWs {
		let stream = self.stream.try_clone().expect("a socket handle");
		RawWs { reader: BufReader::new(stream.try_clone().unwrap()), stream }
	}

	/// Sends `text` as one text frame.
	pub fn send(&mut self, text: &str) {
		self.stream.write_all(&masked_text_frame(text.as_bytes())).expect("the node reads");
	}

	/// The next text frame the node sends, parsed; pings and pongs are skipped.
	pub fn receive(&mut self) -> Value {
		self.try_receive().expect("the node answers")
	}

	fn try_receive(&mut self) -> std::io::Result<Value> {
		loop {
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
			let mut payload = vec![0u8; len as usize];
			self.reader.read_exact(&mut payload)?;
			match head[0] & 0x0f {
				0x1 => return Ok(serde_json::from_slice(&payload).expect("the node answers JSON")),
				0x8 => panic!("the node closed the connection: {payload:?}"),
				_ => continue,
			}
		}
	}

	/// One request, and the answer to it.
	pub fn call(&mut self, text: &str) -> Value {
		self.send(text);
		self.try_receive().unwrap_or_else(|e| {
			panic!("no answer to {}…: {e}", text.chars().take(200).collect::<String>())
		})
	}
}

/// A client's WebSocket text frame (RFC 6455 §5.2): FIN, opcode 1, masked with a zero key
/// (masking is required of clients; its key may be any).
pub fn masked_text_frame(payload: &[u8]) -> Vec<u8> {
	let mut frame = vec![0x81];
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
