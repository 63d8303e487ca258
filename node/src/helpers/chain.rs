//! The chain as the helpers see it from inside the node: transactions signed by a helper's
//! account and followed into a block, events, and the banks' on-chain state.

use crate::service::{FullClient, FullPool};
use codec::{Decode, Encode};
use futures::StreamExt;
use sc_client_api::StorageProvider;
use sc_transaction_pool_api::{TransactionPool, TransactionSource, TransactionStatus};
use sp_api::ProvideRuntimeApi;
use sp_blockchain::HeaderBackend;
use sp_core::{sr25519, storage::StorageKey, Pair, H256};
use sp_runtime::{DispatchError, OpaqueExtrinsic};
use std::{collections::HashMap, sync::Arc, time::Duration};
use substrate_frame_rpc_system::AccountNonceApi;
use vbank_primitives::{Channel, ChannelId, VirtualBankApi};
use vbank_runtime::{AccountId, BlockNumber, Nonce, RuntimeCall, RuntimeError, RuntimeEvent};

/// How long a transaction may wait for a block before the helper gives up on it.
const INCLUSION_TIMEOUT: Duration = Duration::from_secs(60);

/// A bank as the chain holds it.
pub type OnChain = Channel<AccountId, BlockNumber>;

/// The events of one block, with the index of the extrinsic that emitted each (`None` for
/// those of block initialisation and finalisation).
pub type BlockEvents = Vec<(Option<u32>, RuntimeEvent)>;

/// The node's client and pool, for the helpers.
pub struct NodeChain {
	client: Arc<FullClient>,
	pool: Arc<FullPool>,
	/// The hash of block 0, as every signing payload carries it.
	pub genesis: H256,
	/// Each account's turn to submit, with the nonce after its last included transaction.
	turns: tokio::sync::Mutex<HashMap<AccountId, Arc<tokio::sync::Mutex<Nonce>>>>,
}

impl NodeChain {
	pub fn new(client: Arc<FullClient>, pool: Arc<FullPool>) -> Result<Self, String> {
		let genesis =
			client.hash(0).map_err(|e| e.to_string())?.ok_or("the chain has no genesis block")?;
		Ok(Self { client, pool, genesis, turns: Default::default() })
	}

	pub fn client(&self) -> &Arc<FullClient> {
		&self.client
	}

	pub fn best(&self) -> (H256, BlockNumber) {
		let info = self.client.info();
		(info.best_hash, info.best_number)
	}

	/// Signs `call` as `signer`, submits it, and waits until it is in a block: the events it
	/// emitted there, or the reason it failed (named by the runtime's error, e.g.
	/// `VirtualBank(StillLocked)`).
	pub async fn submit(
		&self,
		signer: &sr25519::Pair,
		call: RuntimeCall,
	) -> Result<Vec<RuntimeEvent>, String> {
		let account = AccountId::from(signer.public());
		let what = call_name(&call);
		// One transaction per account at a time, each waited for until it is in a block:
		// no nonce gaps for a pool (ours or the authoring node's) to hold back.
		let turn = self.turns.lock().await.entry(account.clone()).or_default().clone();
		let mut next_nonce = turn.lock().await;
		let (best, _) = self.best();
		let on_chain = self
			.client
			.runtime_api()
			.account_nonce(best, account.clone())
			.map_err(|e| format!("cannot read the nonce of {account}: {e}"))?;
		let nonce = next_nonce.max(on_chain);
		let extrinsic = vbank_runtime::signed_extrinsic(signer, call, nonce, self.genesis);
		let opaque = OpaqueExtrinsic::try_from_encoded_extrinsic(&extrinsic.encode())
			.map_err(|e| format!("{what}: {e}"))?;
		let mut watch = self
			.pool
			.submit_and_watch(best, TransactionSource::Local, opaque)
			.await
			.map_err(|e| format!("{what}: the transaction pool refused it: {e}"))?;
		let included = tokio::time::timeout(INCLUSION_TIMEOUT, async {
			while let Some(status) = watch.next().await {
				match status {
					// Blocks are finalized as they are sealed: either may come first.
					TransactionStatus::InBlock(at) | TransactionStatus::Finalized(at) => {
						return Ok(at)
					},
					TransactionStatus::Future
					| TransactionStatus::Ready
					| TransactionStatus::Broadcast(_)
					| TransactionStatus::Retracted(_) => {},
					other => {
						return Err(format!("{what}: the transaction was dropped ({other:?})"))
					},
				}
			}
			Err(format!("{what}: the pool stopped reporting on the transaction"))
		})
		.await
		.unwrap_or_else(|_| Err(format!("{what}: not in a block after {INCLUSION_TIMEOUT:?}")));
		let (block, index) = included?;
		// The best block may not show it yet: count it ourselves.
		*next_nonce = nonce + 1;
		drop(next_nonce);
		let index = index as u32;
		let events: Vec<RuntimeEvent> = self
			.events(block)?
			.into_iter()
			.filter(|(at, _)| *at == Some(index))
			.map(|(_, event)| event)
			.collect();
		for event in &events {
			if let RuntimeEvent::System(frame_system::Event::ExtrinsicFailed {
				dispatch_error,
				..
			}) = event
			{
				return Err(format!("{what} failed: {}", describe(*dispatch_error)));
			}
		}
		Ok(events)
	}

	/// The events of block `hash`.
	pub fn events(&self, hash: H256) -> Result<BlockEvents, String> {
		let key =
			[sp_io::hashing::twox_128(b"System"), sp_io::hashing::twox_128(b"Events")].concat();
		let raw = self
			.client
			.storage(hash, &StorageKey(key))
			.map_err(|e| format!("cannot read the events of {hash}: {e}"))?
			.map(|data| data.0)
			.unwrap_or_default();
		let records = Vec::<frame_system::EventRecord<RuntimeEvent, H256>>::decode(&mut &raw[..])
			.map_err(|e| format!("the events of {hash} do not decode: {e}"))?;
		Ok(records
			.into_iter()
			.map(|record| {
				let index = match record.phase {
					frame_system::Phase::ApplyExtrinsic(index) => Some(index),
					_ => None,
				};
				(index, record.event)
			})
			.collect())
	}

	/// Bank `channel` at the best block, if it is open.
	pub fn channel(&self, channel: ChannelId) -> Result<Option<OnChain>, String> {
		let (best, _) = self.best();
		self.client
			.runtime_api()
			.channel(best, channel)
			.map_err(|e| format!("cannot read bank {channel}: {e}"))
	}
}

/// `pallet.call`, for messages.
fn call_name(call: &RuntimeCall) -> String {
	use frame_support::traits::GetCallMetadata;
	let meta = call.get_call_metadata();
	format!("{}.{}", meta.pallet_name, meta.function_name)
}

/// A dispatch error by the name the runtime gives it.
fn describe(error: DispatchError) -> String {
	match RuntimeError::from_dispatch_error(error) {
		Some(named) => format!("{named:?}"),
		None => format!("{error:?}"),
	}
}
