//! A small Rust client of the dev chain: signs and submits calls with the runtime's own
//! types, waits until they are in a block, and reads events, storage and runtime APIs.

use codec::{Decode, Encode};
use jsonrpsee::{
	core::client::{ClientT, Subscription, SubscriptionClientT},
	rpc_params,
};
use jsonrpsee_ws_client::{WsClient, WsClientBuilder};
use serde_json::Value;
use sp_core::{crypto::Pair as _, sr25519, H256};
use sp_io::hashing::{blake2_128, twox_128};
use sp_runtime::DispatchError;
use std::time::Duration;
use vbank_runtime::{AccountId, Balance, BlockNumber, Runtime, RuntimeCall, RuntimeEvent};

/// How long a transaction may take to be put in a block.
const INCLUSION_TIMEOUT: Duration = Duration::from_secs(60);

/// What became of a submitted call.
pub struct Outcome {
	/// The events it emitted, in order.
	pub events: Vec<RuntimeEvent>,
	/// `Err` with the dispatch error when the call failed (its fee is still paid).
	pub result: Result<(), DispatchError>,
}

impl Outcome {
	/// The fee the signer paid for it.
	pub fn fee(&self) -> Balance {
		self.paid_fee().expect("every signed transaction pays a fee")
	}

	/// The fee somebody paid for it, if anybody did.
	pub fn paid_fee(&self) -> Option<Balance> {
		self.events.iter().find_map(|event| match event {
			RuntimeEvent::TransactionPayment(
				pallet_transaction_payment::Event::TransactionFeePaid { actual_fee, .. },
			) => Some(*actual_fee),
			_ => None,
		})
	}

	/// The virtual bank's events among [`Self::events`].
	pub fn bank_events(&self) -> Vec<pallet_virtual_bank::Event<Runtime>> {
		self.events
			.iter()
			.filter_map(|event| match event {
				RuntimeEvent::VirtualBank(event) => Some(event.clone()),
				_ => None,
			})
			.collect()
	}
}

/// A connection to a node.
pub struct Chain {
	runtime: tokio::runtime::Runtime,
	client: WsClient,
	/// The chain's genesis hash, as every signing payload carries it.
	pub genesis: H256,
}

fn storage_key(pallet: &str, item: &str) -> Vec<u8> {
	[twox_128(pallet.as_bytes()), twox_128(item.as_bytes())].concat()
}

pub(crate) fn hex_bytes(value: &Value) -> Vec<u8> {
	let text = value.as_str().unwrap_or_else(|| panic!("expected a hex string, got {value}"));
	hex::decode(text.trim_start_matches("0x")).expect("the node answers valid hex")
}

/// The number of a header as the node's RPC gives it.
pub(crate) fn header_number(header: &Value) -> BlockNumber {
	let number = header["number"].as_str().expect("a header has a number");
	BlockNumber::from_str_radix(number.trim_start_matches("0x"), 16).expect("a hex number")
}

impl Chain {
	pub fn connect(url: &str) -> Chain {
		Chain::try_connect(url).unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"))
	}

	/// A connection, or why there is none (a node that is down, or restarting).
	pub fn try_connect(url: &str) -> Result<Chain, String> {
		let runtime = tokio::runtime::Builder::new_multi_thread()
			.worker_threads(1)
			.enable_all()
			.build()
			.expect("a tokio runtime");
		let client =
			runtime.block_on(WsClientBuilder::default().build(url)).map_err(|e| e.to_string())?;
		let mut chain = Chain { runtime, client, genesis: H256::zero() };
		let genesis =
			chain.try_rpc("chain_getBlockHash", rpc_params![0]).map_err(|e| e.to_string())?;
		chain.genesis = H256::from_slice(&hex_bytes(&genesis));
		Ok(chain)
	}

	/// One JSON-RPC call; panics with the node's error message.
	pub fn rpc(&self, method: &str, params: jsonrpsee::core::params::ArrayParams) -> Value {
		self.try_rpc(method, params).unwrap_or_else(|e| panic!("{method}: {e}"))
	}

	/// One JSON-RPC call.
	pub fn try_rpc(
		&self,
		method: &str,
		params: jsonrpsee::core::params::ArrayParams,
	) -> Result<Value, jsonrpsee::core::ClientError> {
		self.runtime.block_on(self.client.request(method, params))
	}

	/// A JSON-RPC call that must fail: the error's message.
	pub fn rpc_error(&self, method: &str, params: jsonrpsee::core::params::ArrayParams) -> String {
		match self.try_rpc(method, params) {
			Ok(answer) => panic!("{method} succeeded with {answer}; an error was expected"),
			Err(jsonrpsee::core::ClientError::Call(e)) => e.message().to_string(),
			Err(e) => panic!("{method}: not a JSON-RPC error: {e}"),
		}
	}

	/// A subscription's notifications.
	pub fn subscribe(
		&self,
		method: &str,
		params: jsonrpsee::core::params::ArrayParams,
		unsubscribe: &str,
	) -> Subscription<Value> {
		self.runtime
			.block_on(self.client.subscribe(method, params, unsubscribe))
			.unwrap_or_else(|e| panic!("{method}: {e}"))
	}

	/// The next notification of `subscription`, waiting at most 30 s.
	pub fn next(&self, subscription: &mut Subscription<Value>) -> Value {
		self.runtime
			.block_on(async {
				tokio::time::timeout(Duration::from_secs(30), subscription.next()).await
			})
			.expect("a notification within 30 s")
			.expect("the subscription is open")
			.expect("a notification decodes")
	}

	/// A runtime API call at the best block: `method` as `Api_function`, `args` SCALE-encoded.
	pub fn runtime_api<R: Decode>(&self, method: &str, args: impl Encode) -> R {
		let answer = self
			.rpc("state_call", rpc_params![method, format!("0x{}", hex::encode(args.encode()))]);
		R::decode(&mut &hex_bytes(&answer)[..]).unwrap_or_else(|e| panic!("{method}: {e}"))
	}

	/// Raw storage at `at` (the best block when `None`).
	fn storage(&self, key: &[u8], at: Option<H256>) -> Option<Vec<u8>> {
		let key = format!("0x{}", hex::encode(key));
		let answer = self.rpc("state_getStorage", rpc_params![key, at]);
		(!answer.is_null()).then(|| hex_bytes(&answer))
	}

	/// The number of the best block.
	pub fn best_number(&self) -> BlockNumber {
		header_number(&self.rpc("chain_getHeader", rpc_params![]))
	}

	/// The number of the newest finalized block.
	pub fn finalized_number(&self) -> BlockNumber {
		let hash = self.rpc("chain_getFinalizedHead", rpc_params![]);
		header_number(&self.rpc("chain_getHeader", rpc_params![hash]))
	}

	/// `who`'s account: free, reserved (held) and frozen funds.
	pub fn account(&self, who: &AccountId) -> pallet_balances::AccountData<Balance> {
		let key =
			[storage_key("System", "Account"), blake2_128(who.as_ref()).to_vec(), who.encode()]
				.concat();
		self.storage(&key, None)
			.map(|raw| {
				frame_system::AccountInfo::<
					vbank_runtime::Nonce,
					pallet_balances::AccountData<Balance>,
				>::decode(&mut &raw[..])
				.expect("System.Account decodes")
				.data
			})
			.unwrap_or_default()
	}

	/// Signs `call` as `signer`, submits it and waits until it is in a block.
	pub fn submit(&self, signer: &sr25519::Pair, call: impl Into<RuntimeCall>) -> Outcome {
		let account = AccountId::from(signer.public());
		let nonce: Value = self.rpc("system_accountNextIndex", rpc_params![account.to_string()]);
		let nonce = nonce.as_u64().expect("a nonce is a number") as vbank_runtime::Nonce;
		let extrinsic = vbank_runtime::signed_extrinsic(signer, call.into(), nonce, self.genesis);
		self.try_submit_encoded(&format!("0x{}", hex::encode(extrinsic.encode())))
			.unwrap_or_else(|e| panic!("the node refused the transaction: {e}"))
	}

	/// Submits `call` as a general transaction (no signer, no fee) and waits until it is in a
	/// block; `Err` with the node's answer when its pool refuses it.
	pub fn submit_general(&self, call: impl Into<RuntimeCall>) -> Result<Outcome, String> {
		let extrinsic = vbank_runtime::general_extrinsic(call.into());
		self.try_submit_encoded(&format!("0x{}", hex::encode(extrinsic.encode())))
	}

	/// Submits the extrinsic `encoded` (hex) and waits until it is reported `InBlock`; `Err`
	/// with the node's answer when it refuses it.
	fn try_submit_encoded(&self, encoded: &str) -> Result<Outcome, String> {
		let encoded = encoded.to_string();
		let block = self.runtime.block_on(async {
			let mut watch: Subscription<Value> = self
				.client
				.subscribe(
					"author_submitAndWatchExtrinsic",
					rpc_params![encoded.clone()],
					"author_unwatchExtrinsic",
				)
				.await
				.map_err(|e| e.to_string())?;
			tokio::time::timeout(INCLUSION_TIMEOUT, async {
				while let Some(status) = watch.next().await {
					let status = status.expect("a transaction status");
					// As on any Substrate chain, `inBlock` comes before `finalized`.
					if let Some(in_block) = status.get("inBlock") {
						return H256::from_slice(&hex_bytes(in_block));
					}
					assert!(
						status.get("finalized").is_none(),
						"`finalized` came without `inBlock` before it: {status}"
					);
					if let Some(word) = status.as_str() {
						assert!(
							matches!(word, "ready" | "future"),
							"the transaction was dropped: {status}"
						);
					}
					if status.get("invalid").is_some() || status.get("dropped").is_some() {
						panic!("the transaction was dropped: {status}");
					}
				}
				panic!("the node closed the transaction's subscription")
			})
			.await
			.map_err(|_| "the transaction was not put in a block in time".to_string())
		})?;
		Ok(self.outcome(block, &encoded))
	}

	fn outcome(&self, block: H256, encoded: &str) -> Outcome {
		let body = self.rpc("chain_getBlock", rpc_params![block]);
		let index = body["block"]["extrinsics"]
			.as_array()
			.expect("a block has extrinsics")
			.iter()
			.position(|extrinsic| extrinsic.as_str() == Some(encoded))
			.expect("the block holds the transaction") as u32;
		let events: Vec<RuntimeEvent> = self
			.events(block)
			.into_iter()
			.filter(|record| record.phase == frame_system::Phase::ApplyExtrinsic(index))
			.map(|record| record.event)
			.collect();
		let result = events
			.iter()
			.find_map(|event| match event {
				RuntimeEvent::System(frame_system::Event::ExtrinsicFailed {
					dispatch_error,
					..
				}) => Some(Err(*dispatch_error)),
				_ => None,
			})
			.unwrap_or(Ok(()));
		Outcome { events, result }
	}

	/// The events of block `block`.
	pub fn events(&self, block: H256) -> Vec<frame_system::EventRecord<RuntimeEvent, H256>> {
		let raw = self.storage(&storage_key("System", "Events"), Some(block)).unwrap_or_default();
		Vec::<frame_system::EventRecord<RuntimeEvent, H256>>::decode(&mut &raw[..])
			.expect("System.Events decodes")
	}

	/// The events of blocks `from..=to`, in order.
	pub fn events_between(&self, from: BlockNumber, to: BlockNumber) -> Vec<RuntimeEvent> {
		(from..=to)
			.flat_map(|number| {
				let hash = self.rpc("chain_getBlockHash", rpc_params![number]);
				self.events(H256::from_slice(&hex_bytes(&hash)))
			})
			.map(|record| record.event)
			.collect()
	}

	/// The transaction fees `who` paid in blocks `from..=to`.
	pub fn fees_paid(&self, who: &AccountId, from: BlockNumber, to: BlockNumber) -> Balance {
		self.events_between(from, to)
			.iter()
			.filter_map(|event| match event {
				RuntimeEvent::TransactionPayment(
					pallet_transaction_payment::Event::TransactionFeePaid {
						who: payer,
						actual_fee,
						..
					},
				) if payer == who => Some(*actual_fee),
				_ => None,
			})
			.sum()
	}

	/// Seals `count` blocks by submitting remarks from `signer` (instant seal makes one each).
	pub fn advance(&self, signer: &sr25519::Pair, count: u32) {
		for _ in 0..count {
			let remark = frame_system::Call::<Runtime>::remark { remark: b"tick".to_vec() };
			self.submit(signer, remark).result.expect("a remark succeeds");
		}
	}
}
