//! The helpers' messages on one long-lived substream per peer: `/<genesis hex>/vbank/stream/1`,
//! a notification protocol whose notifications are [`Frame`]s (its handshake is the one
//! sc-network gives every such protocol, the node's roles). A `Frame::Ask` carries a SCALE
//! `Message` (SPEC section 4, signed by its sender's account key) and is answered by a
//! `Frame::Answer` of the same id, which carries what the message protocol answers
//! ([`Response`]).
//!
//! Why a second way for the same messages: a request of the request-response protocol opens a
//! substream of its own, and litep2p negotiates its protocol name (multistream-select V1)
//! before the request may go, so each message costs a round trip more than on a WebSocket's
//! one connection, and p2p payments were the slower by 25-42 % (BENCHMARKS.md, issue 27). On a
//! stream that is open, a message and its answer are one round trip, as on WebSocket (within
//! 3-9 % of it: litep2p hands a frame between two of its tasks each way). A message goes on the
//! stream when one to the peer is open and its frame fits, and by the request-response
//! protocol otherwise; the same bounds hold on both: a frame is at most [`MAX_SIZE`], a peer
//! has one rate for both, and a frame that does not decode costs its sender the same
//! reputation.
//!
//! Which peers have a stream: those the node syncs with, and the nodes found to serve an
//! account it sends to, each reserved in the protocol's set (as the transactions protocol
//! reserves its peers); a node accepts streams from others up to [`INBOUND`].

use super::{Response, MAX_SIZE, QUEUE, TOO_FAST, UNDECODABLE};
use crate::helpers::{Accounts, LOG};
use codec::{Decode, DecodeAll, Encode};
use futures::StreamExt;
use rsmc::{transport::Miss, Message};
use sc_network::{
	config::{NonReservedPeerMode, SetConfig},
	multiaddr::{Multiaddr, Protocol},
	peer_store::PeerStoreProvider,
	service::{
		traits::{
			MessageSink, NetworkService, NotificationEvent, NotificationService, ValidationResult,
		},
		NotificationMetrics,
	},
	NetworkBackend, PeerId, ProtocolName,
};
use sc_network_sync::{SyncEvent, SyncEventStream, SyncingService};
use sp_core::H256;
use std::{
	collections::{HashMap, HashSet},
	sync::{
		atomic::{AtomicU64, Ordering},
		Arc, Mutex,
	},
	time::{Duration, Instant},
};
use tokio::sync::{oneshot, Semaphore};
use vbank_runtime::opaque::Block;

/// How many streams a node accepts from peers it did not reserve (nodes that found one of its
/// accounts without syncing with it).
const INBOUND: u32 = 64;
/// How long an ask waits on the stream before its message goes by the request protocol.
pub const PATIENCE: Duration = Duration::from_secs(3);
/// How many of a peer's asks are answered at once; more are dropped, at a cost (a peer that
/// asks and never reads its answers would otherwise hold a task each).
const IN_FLIGHT: usize = 64;
/// How long an answer waits for room on the stream before it is dropped.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// What travels on a stream.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub enum Frame {
	/// A message for the receiver's helpers, to be answered with `Answer` of the same `id`.
	Ask { id: u64, message: Box<Message> },
	/// The answer to the receiver's `Ask` of this `id`.
	Answer { id: u64, response: Response },
}

/// Whether `frame` is within a notification's limit. A frame is its message or answer and
/// eleven bytes at most more, so one that fits the request protocol may not fit here.
fn fits(frame: &Frame) -> bool {
	frame.encoded_size() as u64 <= MAX_SIZE
}

/// The protocol's name on chain `genesis`'s network.
pub fn protocol_name(genesis: &H256) -> ProtocolName {
	format!("/{}/vbank/stream/1", hex::encode(genesis)).into()
}

/// The protocol for the network's configuration, and the service its events come from.
pub fn protocol<N: NetworkBackend<Block, H256>>(
	genesis: &H256,
	metrics: NotificationMetrics,
	peer_store: Arc<dyn PeerStoreProvider>,
) -> (N::NotificationProtocolConfig, Box<dyn NotificationService>) {
	N::notification_config(
		protocol_name(genesis),
		Vec::new(),
		MAX_SIZE,
		None,
		SetConfig {
			in_peers: INBOUND,
			out_peers: 0,
			reserved_nodes: Vec::new(),
			non_reserved_mode: NonReservedPeerMode::Accept,
		},
		metrics,
		peer_store,
	)
}

/// The streams open to peers, and the asks waiting for their answers.
pub struct Streams {
	network: Arc<dyn NetworkService>,
	protocol: ProtocolName,
	open: Mutex<HashMap<PeerId, Arc<dyn MessageSink>>>,
	waiting: Mutex<HashMap<(PeerId, u64), oneshot::Sender<Response>>>,
	/// The peers reserved in the protocol's set.
	reserved: Mutex<HashSet<PeerId>>,
	next: AtomicU64,
	/// How many of our asks were answered on a stream.
	answers: AtomicU64,
}

/// An ask's place among the waiting, given up when its asker stops waiting (answered, timed
/// out, or the stream closed).
struct Waiting<'a> {
	streams: &'a Streams,
	key: (PeerId, u64),
}

impl Drop for Waiting<'_> {
	fn drop(&mut self) {
		self.streams.waiting.lock().expect("not poisoned").remove(&self.key);
	}
}

impl Streams {
	pub fn new(network: Arc<dyn NetworkService>, genesis: &H256) -> Self {
		Self {
			network,
			protocol: protocol_name(genesis),
			open: Default::default(),
			waiting: Default::default(),
			reserved: Default::default(),
			next: AtomicU64::new(0),
			answers: AtomicU64::new(0),
		}
	}

	fn sink(&self, peer: &PeerId) -> Option<Arc<dyn MessageSink>> {
		self.open.lock().expect("not poisoned").get(peer).cloned()
	}

	/// `message` to `peer` on its stream, and the answer; `None` when no stream to `peer` is
	/// open (one is asked for, for the next message).
	pub async fn ask(&self, peer: PeerId, message: &Message) -> Option<Result<Response, Miss>> {
		let Some(sink) = self.sink(&peer) else {
			self.reserve(peer);
			return None;
		};
		let frame = Frame::Ask { id: 0, message: Box::new(message.clone()) };
		// A message within a frame's few bytes of the limit goes by request, which it fits.
		if !fits(&frame) {
			return None;
		}
		Some(self.send_and_wait(peer, &*sink, frame).await)
	}

	/// `frame` to `peer` (an `Ask` numbered here), and the answer to it.
	async fn send_and_wait(
		&self,
		peer: PeerId,
		sink: &dyn MessageSink,
		mut frame: Frame,
	) -> Result<Response, Miss> {
		let id = self.next.fetch_add(1, Ordering::Relaxed);
		if let Frame::Ask { id: numbered, .. } = &mut frame {
			*numbered = id;
		}
		let (answered, answer) = oneshot::channel();
		self.waiting.lock().expect("not poisoned").insert((peer, id), answered);
		let _waiting = Waiting { streams: self, key: (peer, id) };
		sink.send_async_notification(frame.encode())
			.await
			.map_err(|e| Miss::Unreachable(format!("node {peer}: {e}")))?;
		answer.await.map_err(|_| Miss::Unreachable(format!("node {peer} closed the stream")))
	}

	/// Reserve `peer` in the protocol's set, once, so that a stream to it is opened and kept.
	pub fn reserve(&self, peer: PeerId) {
		if !self.reserved.lock().expect("not poisoned").insert(peer) {
			return;
		}
		let address: Multiaddr = std::iter::once(Protocol::P2p(peer.into())).collect();
		let reserved = std::iter::once(address).collect();
		if let Err(e) = self.network.add_peers_to_reserved_set(self.protocol.clone(), reserved) {
			log::debug!(target: LOG, "cannot reserve node {peer} a stream: {e}");
		}
	}

	fn unreserve(&self, peer: PeerId) {
		self.reserved.lock().expect("not poisoned").remove(&peer);
		let _ = self.network.remove_peers_from_reserved_set(self.protocol.clone(), vec![peer]);
	}

	fn opened(&self, peer: PeerId, sink: Box<dyn MessageSink>) {
		log::debug!(target: LOG, "a stream to node {peer} is open");
		self.open.lock().expect("not poisoned").insert(peer, Arc::from(sink));
	}

	/// The stream to `peer` closed: its asks are answered no more.
	fn closed(&self, peer: PeerId) {
		log::debug!(target: LOG, "the stream to node {peer} closed");
		self.open.lock().expect("not poisoned").remove(&peer);
		// Dropping their senders wakes the asks with "closed".
		self.waiting.lock().expect("not poisoned").retain(|(to, _), _| *to != peer);
	}

	/// An answer from `peer`, handed to its asker; whether one waited for it (an answer
	/// nobody waits for, late or never asked for, is dropped).
	fn answered(&self, peer: PeerId, id: u64, response: Response) -> bool {
		let waiting = self.waiting.lock().expect("not poisoned").remove(&(peer, id));
		let answered = waiting.is_some_and(|waiting| waiting.send(response).is_ok());
		if answered {
			self.answers.fetch_add(1, Ordering::Relaxed);
		}
		answered
	}

	/// Tests only (`rsmc_testStreams`): the peers a stream is open to, and how many of our
	/// asks were answered on one.
	pub fn test_stats(&self) -> (Vec<PeerId>, u64) {
		let open = self.open.lock().expect("not poisoned").keys().copied().collect();
		(open, self.answers.load(Ordering::Relaxed))
	}

	/// Tests only (`rsmc_testRequest` with `by: "stream"`): `payload` to `peer` on its stream
	/// as a stranger's node sends it. An `Ask` is numbered here and its answer returned; other
	/// bytes are sent as they are, and nothing is returned.
	pub async fn test_send(
		&self,
		peer: PeerId,
		payload: Vec<u8>,
	) -> Result<Option<Vec<u8>>, String> {
		let sink = self.sink(&peer).ok_or_else(|| format!("no stream to node {peer} is open"))?;
		match Frame::decode_all(&mut &payload[..]) {
			Ok(frame @ Frame::Ask { .. }) => {
				let answer = tokio::time::timeout(
					Duration::from_secs(10),
					self.send_and_wait(peer, &*sink, frame),
				)
				.await
				.map_err(|_| format!("node {peer} did not answer"))?;
				answer.map(|response| Some(response.encode())).map_err(|e| e.to_string())
			},
			_ => {
				sink.send_async_notification(payload).await.map_err(|e| e.to_string())?;
				Ok(None)
			},
		}
	}
}

/// The stream protocol for the life of the node: reserve a stream to each peer the node syncs
/// with, accept streams of this chain, and answer each `Ask` as it comes, in a task of its own.
pub async fn run(
	helpers: Arc<Accounts>,
	sync: Arc<SyncingService<Block>>,
	service: Box<dyn NotificationService>,
) {
	let Some(p2p) = helpers.p2p.clone() else { return };
	let reserve_peers = async {
		let mut events = sync.event_stream("vbank-rsmc-stream");
		while let Some(event) = events.next().await {
			match event {
				SyncEvent::PeerConnected { peer_id, .. } => p2p.streams.reserve(peer_id),
				SyncEvent::PeerDisconnected(peer) => p2p.streams.unreserve(peer),
			}
		}
	};
	futures::join!(reserve_peers, serve(helpers.clone(), service));
}

async fn serve(helpers: Arc<Accounts>, mut service: Box<dyn NotificationService>) {
	let Some(p2p) = helpers.p2p.clone() else { return };
	let streams = &p2p.streams;
	let mut in_flight: HashMap<PeerId, Arc<Semaphore>> = HashMap::new();
	while let Some(event) = service.next_event().await {
		match event {
			// The name is the chain's; the handshake is sc-network's (the node's roles).
			NotificationEvent::ValidateInboundSubstream { result_tx, .. } => {
				let _ = result_tx.send(ValidationResult::Accept);
			},
			NotificationEvent::NotificationStreamOpened { peer, .. } => {
				if let Some(sink) = service.message_sink(&peer) {
					streams.opened(peer, sink);
				}
			},
			// A peer's bucket and answers in flight outlive its stream: reopening one refills
			// neither.
			NotificationEvent::NotificationStreamClosed { peer } => streams.closed(peer),
			NotificationEvent::NotificationReceived { peer, notification } => {
				let frame = Frame::decode_all(&mut &notification[..]);
				// Answers to our own asks are bounded by them; everything else counts against
				// the peer's rate.
				let frame = match frame {
					Ok(Frame::Answer { id, response }) => {
						if streams.answered(peer, id, response) {
							continue;
						}
						Ok(None)
					},
					frame => frame.map(Some),
				};
				if in_flight.len() > 4 * QUEUE {
					in_flight.retain(|_, slots| slots.available_permits() < IN_FLIGHT);
				}
				let within = p2p.rates.allow(peer, Instant::now());
				match frame {
					Ok(Some(Frame::Ask { id, message })) => {
						let Some(sink) = streams.sink(&peer) else { continue };
						let slots = in_flight
							.entry(peer)
							.or_insert_with(|| Arc::new(Semaphore::new(IN_FLIGHT)));
						let Ok(slot) = slots.clone().try_acquire_owned() else {
							p2p.network.report_peer(peer, TOO_FAST);
							continue;
						};
						if !within {
							p2p.network.report_peer(peer, TOO_FAST);
						}
						let helpers = helpers.clone();
						tokio::spawn(async move {
							let response = if within {
								helpers.answer_message(&message).await
							} else {
								Response::Busy("over this node's rate: ask again soon".into())
							};
							let answer = Frame::Answer { id, response };
							// One too long for a frame is not sent (the receiver would close
							// the stream): the asker's patience sends its message by request,
							// whose answer has room for it.
							if fits(&answer) {
								let sent = sink.send_async_notification(answer.encode());
								let _ = tokio::time::timeout(SEND_TIMEOUT, sent).await;
							}
							drop(slot);
						});
					},
					// An answer nobody asked for (or one too late): dropped, at a cost over the rate.
					Ok(_) if within => {},
					Ok(_) => p2p.network.report_peer(peer, TOO_FAST),
					Err(_) => {
						log::debug!(target: LOG, "node {peer} sent an undecodable frame");
						p2p.network.report_peer(peer, UNDECODABLE);
					},
				}
			},
		}
	}
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn frames_round_trip_and_an_answer_of_nothing_is_small() {
		let answer = Frame::Answer { id: 7, response: Response::Reply(None) };
		assert_eq!(Frame::decode_all(&mut &answer.encode()[..]), Ok(answer.clone()));
		// Variant, id (u64 LE), `Reply(None)`: eleven bytes.
		assert_eq!(answer.encode(), [&[1][..], &7u64.to_le_bytes(), &[0, 0]].concat());
		assert!(Frame::decode_all(&mut &[0xff, 1, 2][..]).is_err());
		let genesis = H256::repeat_byte(0xab);
		let name = format!("/{}/vbank/stream/1", "ab".repeat(32));
		assert_eq!(&*protocol_name(&genesis), name.as_str());
	}

	#[test]
	fn what_fits_a_request_but_not_a_frame_goes_by_request() {
		let answer = |response: Response| Frame::Answer { id: u64::MAX, response };
		// A refusal of this length is a response of exactly the limit: one byte for the
		// variant, four for the text's length, then the text.
		let refusal = |len: u64| Response::Refused("x".repeat(len as usize));
		assert_eq!(refusal(MAX_SIZE - 5).encoded_size() as u64, MAX_SIZE);
		// Its frame has nine bytes more (the variant and the id): too long.
		assert!(!fits(&answer(refusal(MAX_SIZE - 5))));
		assert!(fits(&answer(refusal(MAX_SIZE - 5 - 9))));
		assert!(!fits(&answer(refusal(MAX_SIZE - 5 - 8))));
		// An ask is its message and nine bytes.
		let alice = rsmc::keys::Sr25519Signer::from_suri("//Alice").expect("a dev key");
		let body = rsmc::Body::Revoke {
			nonce: 1,
			secrets: vec![Default::default(); 2_000],
			next_waiver: sp_keyring::Sr25519Keyring::Bob.to_account_id(),
		};
		let message = Box::new(Message::signed(&H256::repeat_byte(1), 0, body, &alice));
		let ask = Frame::Ask { id: u64::MAX, message: message.clone() };
		assert_eq!(ask.encoded_size(), message.encoded_size() + 9);
		assert_eq!(fits(&ask), message.encoded_size() as u64 + 9 <= MAX_SIZE);
	}
}
