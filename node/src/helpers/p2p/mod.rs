//! The helpers' protocols on the chain's own p2p network (SPEC's network section), two
//! request-response protocols named after the genesis hash: `/<genesis hex>/vbank/rsmc/1`,
//! whose request is a SCALE `Message` (SPEC section 4: signed by its sender's account key) and
//! whose answer is what `rsmc_message` answers ([`Response`]); and `/<genesis hex>/vbank/where/1`,
//! whose request is an account and whose answer says where it is served. A node answers for
//! the accounts it serves with a record each signs
//! ([`rsmc::directory::Record`]), and for others with the newest record it learned, so a
//! helper reaches any account's helper knowing the account alone: it asks the nodes it is
//! connected to, then the network's DHT (where each node publishes its accounts' records, and
//! stores another's only if the account signed it: [`rsmc::directory::from_dht`]), believes
//! only records the account signed for this chain, takes the newest, and keeps it until the
//! node it names stops answering.
//!
//! Requests are bounded ([`MAX_SIZE`]), each peer has a rate ([`RATE`] a second, in bursts of
//! [`BURST`], for the three protocols together), and a request that does not decode costs its
//! sender reputation.

pub mod stream;

use super::{Accounts, Failure, LOG};
use codec::{Decode, DecodeAll, Encode};
use futures::StreamExt;
use rsmc::{
	directory::{self, Record},
	transport::Miss,
	Message,
};
use sc_network::{
	request_responses::{IncomingRequest, OutgoingResponse},
	service::traits::NetworkService,
	DhtEvent, Event, IfDisconnected, KademliaKey, NetworkBackend, PeerId, ProtocolName,
	ReputationChange,
};
use sc_network_sync::SyncingService;
use sp_core::H256;
use std::{
	collections::HashMap,
	sync::{Arc, Mutex},
	time::{Duration, Instant},
};
use tokio::sync::broadcast::{self, error::RecvError};
use vbank_runtime::{opaque::Block, AccountId};

/// The largest request or answer, in bytes. A message with the most HTLCs a sheet carries is
/// a few KiB; anything longer is refused by the network before it reaches us.
pub const MAX_SIZE: u64 = 64 * 1024;
/// Requests a peer may make each second, on average. A payment is two (`Propose`, `Revoke`)
/// from the payer's node; at 1,000 a second the rate, not the machine, capped two nodes'
/// payments on 20 banks at about 500 a second (BENCHMARKS.md), so it allows some 2,000
/// payments a second between two nodes, more than this machine makes.
pub const RATE: f64 = 4_000.0;
/// Requests a peer may make at once, over its rate.
pub const BURST: f64 = 8_000.0;
/// How many requests wait for the helpers before the network refuses more.
const QUEUE: usize = 1_024;
/// What a request that does not decode costs its sender (a ban is below -2^31 / 2).
const UNDECODABLE: ReputationChange =
	ReputationChange::new(-(1 << 12), "rsmc: undecodable request");
/// What a request over the peer's rate costs it.
const TOO_FAST: ReputationChange = ReputationChange::new(-(1 << 6), "rsmc: over the rate");
/// How long a lookup in the DHT may take.
const DHT_TIMEOUT: Duration = Duration::from_secs(15);
/// How often a node publishes its accounts' records while it has just started (its peers, and
/// so the nodes that keep the records, are still coming), for [`PUBLISH_EARLY_FOR`].
const PUBLISH_EARLY: Duration = Duration::from_secs(5);
const PUBLISH_EARLY_FOR: Duration = Duration::from_secs(120);
/// How often it publishes them again afterwards, signed anew.
const REPUBLISH: Duration = Duration::from_secs(600);

/// The answer to a `Message`: what `rsmc_message` answers.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub enum Response {
	/// `rsmc_message`'s result: the helper's reply, or `None` (ignored, or nothing to say).
	Reply(Option<Box<Message>>),
	/// Its error 1005: a step is in flight on the bank; ask again soon.
	Busy(String),
	/// Its error 1001 (or -32602): the helper refused the message, and why.
	Refused(String),
}

/// Which of the two protocols a request came by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
	/// `/…/vbank/rsmc/1`: a `Message`, answered with a [`Response`].
	Message,
	/// `/…/vbank/where/1`: an `AccountId32`, answered with an `Option<Record>`.
	Where,
}

impl Kind {
	/// The protocol's name on chain `genesis`'s network.
	pub fn protocol(self, genesis: &H256) -> ProtocolName {
		let name = match self {
			Kind::Message => "rsmc",
			Kind::Where => "where",
		};
		format!("/{}/vbank/{name}/1", hex::encode(genesis)).into()
	}
}

/// Where each protocol's requests arrive.
pub struct Queues {
	messages: async_channel::Receiver<IncomingRequest>,
	wheres: async_channel::Receiver<IncomingRequest>,
}

/// Both protocols for the network's configuration, and the queues their requests arrive on.
pub fn protocols<N: NetworkBackend<Block, H256>>(
	genesis: &H256,
	timeout: Duration,
) -> ([N::RequestResponseProtocolConfig; 2], Queues) {
	let config = |kind: Kind| {
		let (requests, queue) = async_channel::bounded(QUEUE);
		let name = kind.protocol(genesis);
		(
			N::request_response_config(
				name,
				Vec::new(),
				MAX_SIZE,
				MAX_SIZE,
				timeout,
				Some(requests),
			),
			queue,
		)
	};
	let (messages_config, messages) = config(Kind::Message);
	let (wheres_config, wheres) = config(Kind::Where);
	([messages_config, wheres_config], Queues { messages, wheres })
}

/// This node's end of the protocol.
pub struct P2p {
	network: Arc<dyn NetworkService>,
	sync: Arc<SyncingService<Block>>,
	genesis: H256,
	/// Where each account is served, as its newest good record says.
	found: Mutex<HashMap<AccountId, Record>>,
	/// The keys the DHT answered for: a good record was found (and kept in `found`), or none.
	dht_answers: broadcast::Sender<KademliaKey>,
	/// The streams open to peers (`stream`), the way a message goes when one is.
	streams: stream::Streams,
	/// Our accounts' records, signed once a block: a peer's `Where` questions (up to [`RATE`]
	/// a second) cost a look-up, not a signature each.
	ours: Ours,
	/// Each peer's allowance, one for all three protocols.
	rates: Rates,
}

/// The records of the accounts this node serves, each signed at the newest block it was
/// asked at.
#[derive(Default)]
struct Ours(Mutex<HashMap<AccountId, Record>>);

impl Ours {
	/// `account`'s record at block `at`: the one signed at `at` already, or `sign`'s.
	fn at(&self, account: &AccountId, at: u32, sign: impl FnOnce() -> Record) -> Record {
		let mut ours = self.0.lock().expect("not poisoned");
		match ours.get(account) {
			Some(record) if record.at == at => record.clone(),
			_ => {
				let record = sign();
				ours.insert(account.clone(), record.clone());
				record
			},
		}
	}
}

impl P2p {
	pub fn new(
		network: Arc<dyn NetworkService>,
		sync: Arc<SyncingService<Block>>,
		genesis: &H256,
	) -> Self {
		let (dht_answers, _) = broadcast::channel(256);
		let streams = stream::Streams::new(network.clone(), genesis);
		Self {
			network,
			sync,
			genesis: *genesis,
			found: Default::default(),
			dht_answers,
			streams,
			ours: Ours::default(),
			rates: Rates::default(),
		}
	}

	/// This node's network identity, as records name it.
	pub fn local(&self) -> Vec<u8> {
		self.network.local_peer_id().to_bytes()
	}

	/// Send `payload` to `peer` as a request of protocol `kind`; its answer's bytes.
	pub async fn raw(&self, peer: PeerId, kind: Kind, payload: Vec<u8>) -> Result<Vec<u8>, String> {
		let protocol = kind.protocol(&self.genesis);
		let answer = self
			.network
			.request(peer, protocol, payload, None, IfDisconnected::TryConnect)
			.await
			.map_err(|e| format!("node {peer}: {e}"))?;
		Ok(answer.0)
	}

	/// `request` to `peer` by protocol `kind`, its answer decoded.
	async fn ask<A: Decode>(
		&self,
		peer: PeerId,
		kind: Kind,
		request: impl Encode,
	) -> Result<A, Miss> {
		let answer = self.raw(peer, kind, request.encode()).await.map_err(Miss::Unreachable)?;
		A::decode_all(&mut &answer[..])
			.map_err(|e| Miss::Refused(format!("node {peer} answered nonsense: {e}")))
	}

	/// Where `account` is served: known, or asked of every node we are connected to.
	pub async fn find(&self, genesis: &H256, account: &AccountId) -> Result<PeerId, Miss> {
		let known = self.found.lock().expect("not poisoned").get(account).cloned();
		if let Some(peer) = known.and_then(|record| PeerId::from_bytes(&record.node).ok()) {
			return Ok(peer);
		}
		let peers = self.sync.peers_info().await.unwrap_or_default();
		let asked = peers.iter().map(|(peer, _)| async move {
			match self.ask::<Option<Record>>(*peer, Kind::Where, account).await {
				// Its own, or one it learned: either way signed by the account.
				Ok(Some(record)) if record.proves(genesis, account, &record.node) => Some(record),
				_ => None,
			}
		});
		let newest = futures::future::join_all(asked).await.into_iter().flatten().reduce(|a, b| {
			if b.newer_than(&a) {
				b
			} else {
				a
			}
		});
		let newest = match newest {
			Some(record) => Some(record),
			None => self.look_up(account).await,
		};
		let Some(record) = newest else {
			return Err(Miss::Refused(format!(
				"{account} is served by none of the {} nodes this node is connected to, and the \
				 network's DHT holds no record of it",
				peers.len()
			)));
		};
		let peer = PeerId::from_bytes(&record.node)
			.map_err(|e| Miss::Refused(format!("{account}'s record names no node: {e}")))?;
		log::info!(target: LOG, "💸 {account} is served by node {peer}");
		self.found.lock().expect("not poisoned").insert(account.clone(), record);
		Ok(peer)
	}

	/// The newest record we hold of where `account` is served.
	pub fn known(&self, account: &AccountId) -> Option<Record> {
		self.found.lock().expect("not poisoned").get(account).cloned()
	}

	/// `account`'s record as the DHT holds it, if a good one comes within [`DHT_TIMEOUT`].
	async fn look_up(&self, account: &AccountId) -> Option<Record> {
		let key = KademliaKey::new(&directory::dht_key(&self.genesis, account));
		let mut answers = self.dht_answers.subscribe();
		self.network.get_value(&key);
		let answered = async {
			loop {
				match answers.recv().await {
					Ok(answered) if answered == key => return,
					Ok(_) | Err(RecvError::Lagged(_)) => {},
					Err(RecvError::Closed) => return,
				}
			}
		};
		let _ = tokio::time::timeout(DHT_TIMEOUT, answered).await;
		self.known(account)
	}

	/// Keep `record` if it is newer than the one we hold of its account.
	fn learn(&self, record: Record) {
		let mut found = self.found.lock().expect("not poisoned");
		if found.get(&record.account).is_none_or(|known| record.newer_than(known)) {
			found.insert(record.account.clone(), record);
		}
	}

	/// What the DHT said: a record put to us is stored only if it is good; a good record found
	/// is learned; either answer, or none found, wakes the lookups of its key.
	fn on_dht(&self, event: DhtEvent) {
		match event {
			DhtEvent::PutRecordRequest(key, value, publisher, expires)
				if directory::from_dht(&self.genesis, key.as_ref(), &value).is_some() =>
			{
				self.network.store_record(key, value, publisher, expires);
			},
			DhtEvent::ValueFound(found) => {
				let (key, value) = (found.record.key, found.record.value);
				if let Some(record) = directory::from_dht(&self.genesis, key.as_ref(), &value) {
					self.learn(record);
					let _ = self.dht_answers.send(key);
				}
			},
			DhtEvent::ValueNotFound(key) => {
				let _ = self.dht_answers.send(key);
			},
			_ => {},
		}
	}

	/// `message` for `to`'s helper, wherever on the network it is served; its reply.
	pub async fn send(
		&self,
		genesis: &H256,
		to: &AccountId,
		message: &Message,
	) -> Result<Option<Message>, Miss> {
		let peer = self.find(genesis, to).await?;
		let on_stream = tokio::time::timeout(stream::PATIENCE, self.streams.ask(peer, message));
		let answer = match on_stream.await {
			Ok(Some(Ok(response))) => Ok(response),
			// No stream open, or it closed, or its answer is late (a frame lost with a
			// connection sc-network replaced): the request protocol, once. The helpers take a
			// message that comes twice as any repeated one (the fuzzers' wires repeat them).
			_ => self.ask(peer, Kind::Message, message).await,
		};
		match answer {
			Ok(Response::Reply(reply)) => Ok(reply.map(|reply| *reply)),
			Ok(Response::Busy(why)) => Err(Miss::Busy(why)),
			Ok(Response::Refused(why)) => Err(Miss::Refused(why)),
			Err(miss) => {
				// Ask again where the account is next time: it may have moved.
				self.found.lock().expect("not poisoned").remove(to);
				Err(miss)
			},
		}
	}
}

/// The helpers' part of the network's DHT, for the life of the node: publish the records of
/// the accounts this node serves (often while it has just started, then every [`REPUBLISH`]),
/// store the good records others put to us, and hand the answers to lookups.
pub async fn dht(helpers: Arc<Accounts>) {
	let Some(p2p) = helpers.p2p.clone() else { return };
	let mut events = p2p.network.event_stream("vbank-rsmc-dht");
	let started = Instant::now();
	let mut publish = tokio::time::interval(PUBLISH_EARLY);
	let mut published: Option<Instant> = None;
	loop {
		tokio::select! {
			_ = publish.tick() => {
				let early = started.elapsed() < PUBLISH_EARLY_FOR;
				if early || published.is_none_or(|at| at.elapsed() >= REPUBLISH) {
					for record in helpers.records() {
						let key = directory::dht_key(&p2p.genesis, &record.account);
						p2p.network.put_value(KademliaKey::new(&key), record.encode());
					}
					published = Some(Instant::now());
				}
			},
			event = events.next() => match event {
				Some(Event::Dht(event)) => p2p.on_dht(event),
				Some(_) => {},
				None => return,
			},
		}
	}
}

/// A peer's allowance of requests: a token bucket.
struct Allowance {
	tokens: f64,
	at: Instant,
}

impl Allowance {
	/// A full bucket.
	fn new(now: Instant) -> Self {
		Self { tokens: BURST, at: now }
	}

	fn take(&mut self, now: Instant) -> bool {
		let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
		self.tokens = (self.tokens + elapsed * RATE).min(BURST);
		self.at = now;
		if self.tokens < 1.0 {
			return false;
		}
		self.tokens -= 1.0;
		true
	}
}

/// Every peer's allowance, shared by the message and `where` protocols and the stream: a peer
/// has [`RATE`] a second in all, however it spreads its requests.
#[derive(Default)]
struct Rates(Mutex<HashMap<PeerId, Allowance>>);

impl Rates {
	/// Whether `peer` may make one more request now. The buckets idle for 10 s are forgotten
	/// once there are many.
	fn allow(&self, peer: PeerId, now: Instant) -> bool {
		let mut allowances = self.0.lock().expect("not poisoned");
		if allowances.len() > 4 * QUEUE {
			allowances.retain(|_, a| now.saturating_duration_since(a.at) < Duration::from_secs(10));
		}
		allowances.entry(peer).or_insert_with(|| Allowance::new(now)).take(now)
	}
}

/// Answer both protocols' requests as they arrive, each in a task of its own: a message is
/// handed to the helpers as `rsmc_message` hands it, a question about an account answered
/// with its record when we serve it or know one. Each peer has one rate for every protocol.
pub async fn serve(helpers: Arc<Accounts>, queues: Queues) {
	futures::join!(
		serve_one(helpers.clone(), Kind::Message, queues.messages),
		serve_one(helpers, Kind::Where, queues.wheres),
	);
}

async fn serve_one(
	helpers: Arc<Accounts>,
	kind: Kind,
	queue: async_channel::Receiver<IncomingRequest>,
) {
	let Some(p2p) = helpers.p2p.clone() else { return };
	while let Ok(incoming) = queue.recv().await {
		let IncomingRequest { peer, payload, pending_response } = incoming;
		if !p2p.rates.allow(peer, Instant::now()) {
			let _ = pending_response.send(refusal(TOO_FAST));
			continue;
		}
		let answer = match kind {
			Kind::Message => Message::decode_all(&mut &payload[..]).map(|message| {
				let helpers = helpers.clone();
				futures::future::Either::Left(async move {
					helpers.answer_message(&message).await.encode()
				})
			}),
			Kind::Where => AccountId::decode_all(&mut &payload[..]).map(|account| {
				futures::future::Either::Right(futures::future::ready(
					helpers.where_served(&account).encode(),
				))
			}),
		};
		let Ok(answer) = answer else {
			log::debug!(target: LOG, "node {peer} sent an undecodable {kind:?} request");
			let _ = pending_response.send(refusal(UNDECODABLE));
			continue;
		};
		tokio::spawn(async move {
			let _ = pending_response.send(OutgoingResponse {
				result: Ok(answer.await),
				reputation_changes: Vec::new(),
				sent_feedback: None,
			});
		});
	}
}

fn refusal(cost: ReputationChange) -> OutgoingResponse {
	OutgoingResponse { result: Err(()), reputation_changes: vec![cost], sent_feedback: None }
}

impl Accounts {
	async fn answer_message(&self, message: &Message) -> Response {
		match self.receive(message, None).await {
			Ok(reply) => Response::Reply(reply.map(Box::new)),
			Err(Failure::Busy(why)) => Response::Busy(why),
			Err(failure) => Response::Refused(failure.to_string()),
		}
	}

	/// Where `account` is served: its record signed now if we serve it, else the newest we
	/// learned, if any.
	fn where_served(&self, account: &AccountId) -> Option<Record> {
		self.record(account).or_else(|| self.p2p.as_ref()?.known(account))
	}

	/// Tests only (`rsmc_testRequest`): `payload` to `node` by the message protocol, or on
	/// the stream to it when `by_stream` (`stream::Streams::test_send`), as a stranger's node
	/// sends it; the answer, if one comes.
	pub async fn test_request(
		&self,
		node: &str,
		payload: Vec<u8>,
		by_stream: bool,
	) -> Result<Result<Option<Vec<u8>>, String>, Failure> {
		let p2p = self.p2p.as_ref().ok_or_else(|| Failure::BadRequest("no p2p network".into()))?;
		let peer: PeerId = node
			.parse()
			.map_err(|e| Failure::BadRequest(format!("{node:?} is not a peer id: {e}")))?;
		Ok(match by_stream {
			true => p2p.streams.test_send(peer, payload).await,
			false => p2p.raw(peer, Kind::Message, payload).await.map(Some),
		})
	}

	/// Tests only (`rsmc_testStreams`): the nodes this node holds a stream to, and how many of
	/// its asks were answered on one.
	pub fn test_streams(&self) -> Result<(Vec<String>, u64), Failure> {
		let p2p = self.p2p.as_ref().ok_or_else(|| Failure::BadRequest("no p2p network".into()))?;
		let (open, answers) = p2p.streams.test_stats();
		Ok((open.iter().map(ToString::to_string).collect(), answers))
	}

	/// The records of every account this node serves, signed now.
	fn records(&self) -> Vec<Record> {
		self.parties.keys().filter_map(|account| self.record(account)).collect()
	}

	/// The record of `account` at the best block, if this node serves it and is on the network.
	fn record(&self, account: &AccountId) -> Option<Record> {
		let (p2p, party) = (self.p2p.as_ref()?, self.parties.get(account)?);
		let at = self.chain.best().1;
		Some(p2p.ours.at(account, at, || {
			Record::signed(&self.chain.genesis, party.signer(), p2p.local(), at)
		}))
	}
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn a_peer_gets_its_burst_then_its_rate_and_others_theirs() {
		let (rates, start) = (Rates::default(), Instant::now());
		let (peer, other) = (PeerId::random(), PeerId::random());
		let taken = (0..(BURST as usize + 10)).filter(|_| rates.allow(peer, start)).count();
		assert_eq!(taken, BURST as usize, "a burst, then nothing at the same instant");
		assert!(rates.allow(other, start), "another peer has its own");
		let later = start + Duration::from_millis(10);
		let refilled = (0..100).filter(|_| rates.allow(peer, later)).count();
		assert_eq!(refilled, (RATE / 100.0) as usize, "10 ms later: 10 ms of the rate");
	}

	#[test]
	fn idle_buckets_are_forgotten_once_there_are_many_and_a_busy_one_is_kept() {
		let (rates, start) = (Rates::default(), Instant::now());
		for _ in 0..4 * QUEUE {
			rates.allow(PeerId::random(), start);
		}
		let busy = PeerId::random();
		let at = |s| start + Duration::from_secs(s);
		assert!(rates.allow(busy, at(5)));
		// 10 s after the strangers came, one more: theirs go, the busy peer's stays.
		rates.allow(PeerId::random(), at(10));
		let kept = rates.0.lock().unwrap();
		assert_eq!(kept.len(), 2, "the busy peer's and the newest stranger's");
		assert!(kept.contains_key(&busy));
	}

	#[test]
	fn our_record_is_signed_once_a_block() {
		let ours = Ours::default();
		let alice = sp_keyring::Sr25519Keyring::Alice.to_account_id();
		let signed = std::cell::Cell::new(0);
		let sign = |at| {
			signed.set(signed.get() + 1);
			let signature = sp_core::sr25519::Signature::from_raw([0; 64]).into();
			Record { account: alice.clone(), node: vec![1], at, signature }
		};
		for _ in 0..100 {
			assert_eq!(ours.at(&alice, 7, || sign(7)).at, 7);
		}
		assert_eq!(signed.get(), 1, "a hundred questions at block 7, one signature");
		assert_eq!(ours.at(&alice, 8, || sign(8)).at, 8, "a new block, a new record");
		assert_eq!(signed.get(), 2);
	}

	#[test]
	fn answers_round_trip_garbage_does_not_decode_and_the_names_are_specs() {
		assert!(Message::decode_all(&mut &[0xff, 1, 2, 3][..]).is_err());
		let busy = Response::Busy("later".into());
		assert_eq!(Response::decode_all(&mut &busy.encode()[..]), Ok(busy));
		// `Reply(None)`, an ignored message, is two zero bytes on the wire.
		assert_eq!(Response::Reply(None).encode(), [0, 0]);
		let genesis = H256::repeat_byte(0xab);
		let hex = "ab".repeat(32);
		assert_eq!(&*Kind::Message.protocol(&genesis), format!("/{hex}/vbank/rsmc/1").as_str());
		assert_eq!(&*Kind::Where.protocol(&genesis), format!("/{hex}/vbank/where/1").as_str());
	}
}
