//! The chain as the helpers see it from inside the node: transactions signed by a helper's
//! account and followed into a block, events, and the banks' on-chain state.

use crate::types::{FullClient, FullPool};
use codec::{Decode, Encode};
use futures::StreamExt;
use sc_client_api::{BlockBackend, BlockchainEvents, StorageProvider};
use sc_transaction_pool_api::{TransactionPool, TransactionSource};
use sp_blockchain::HeaderBackend;
use sp_core::{sr25519, storage::StorageKey, Pair, H256};
use sp_runtime::traits::Header as _;
use sp_runtime::{DispatchError, OpaqueExtrinsic};
use std::{collections::HashMap, sync::Arc, time::Duration};
use substrate_frame_rpc_system::SystemApiServer;
use vbank_primitives::{Channel, ChannelId, Nonce as SheetNonce};
use vbank_runtime::{
	opaque::Block, AccountId, BlockNumber, Nonce, RuntimeCall, RuntimeError, RuntimeEvent,
};

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
	/// `system_accountNextIndex`, in process.
	system: substrate_frame_rpc_system::System<FullPool, FullClient, Block>,
	/// Each account's turn to submit, with the nonce after its last included transaction.
	turns: std::sync::Mutex<HashMap<AccountId, Arc<Turn>>>,
	/// Whether blocks are final only once finalized (a network of validators, where a best
	/// block may be replaced); on a development chain its one authority's best block is.
	finality: bool,
}

/// One account's turn to submit: one transaction at a time, each waited for until it is in a
/// block (no nonce gaps for a pool to hold back). Penalties take no turn: they go out as
/// general transactions, with no signer and no nonce.
#[derive(Default)]
pub struct Turn {
	state: std::sync::Mutex<TurnState>,
	released: tokio::sync::Notify,
}

#[derive(Default)]
struct TurnState {
	held: bool,
	/// The nonce after the account's last transaction we saw included, and the block that
	/// included it: counted only while that block is on the best chain (a reorg may drop it,
	/// and the transaction with it).
	next_nonce: Option<(Nonce, BlockNumber, H256)>,
}

/// Holding an account's turn; the next waiter goes when it is dropped.
pub struct TurnGuard<'a>(&'a Turn);

impl Turn {
	/// Wait for the turn.
	pub async fn take(&self) -> TurnGuard<'_> {
		loop {
			let released = self.released.notified();
			tokio::pin!(released);
			released.as_mut().enable();
			{
				let mut state = self.state.lock().expect("not poisoned");
				if !state.held {
					state.held = true;
					return TurnGuard(self);
				}
			}
			released.await;
		}
	}
}

impl TurnGuard<'_> {
	/// The nonce after our last transaction, if the block that included it is still one of
	/// the best chain's (`on_best_chain`).
	fn next_nonce(&self, on_best_chain: impl Fn(BlockNumber, H256) -> bool) -> Option<Nonce> {
		let counted = self.0.state.lock().expect("not poisoned").next_nonce;
		counted.filter(|&(_, number, hash)| on_best_chain(number, hash)).map(|(nonce, ..)| nonce)
	}

	fn set_next_nonce(&self, nonce: Nonce, included_in: (BlockNumber, H256)) {
		let (number, hash) = included_in;
		self.0.state.lock().expect("not poisoned").next_nonce = Some((nonce, number, hash));
	}
}

impl Drop for TurnGuard<'_> {
	fn drop(&mut self) {
		self.0.state.lock().expect("not poisoned").held = false;
		self.0.released.notify_waiters();
	}
}

impl NodeChain {
	/// The chain of `client`; `finality` when a block is final only once finalized.
	pub fn new(
		client: Arc<FullClient>,
		pool: Arc<FullPool>,
		finality: bool,
	) -> Result<Self, String> {
		let genesis =
			client.hash(0).map_err(|e| e.to_string())?.ok_or("the chain has no genesis block")?;
		let system = substrate_frame_rpc_system::System::new(client.clone(), pool.clone());
		Ok(Self { client, pool, genesis, system, turns: Default::default(), finality })
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
	/// `VirtualBank(StillLocked)`). A penalty (`withdraw_by_peer`) authorizes itself with its
	/// proof, a claim (`claim_htlc`) with its preimage, a refund (`refund_htlc`) with its
	/// HTLC's expiry: each goes out as a general transaction, unsigned, so it costs `signer` no
	/// fee and waits for no other transaction of its.
	pub async fn submit(
		&self,
		signer: &sr25519::Pair,
		call: RuntimeCall,
	) -> Result<Vec<RuntimeEvent>, String> {
		let what = &call_name(&call);
		use pallet_virtual_bank::Call as Bank;
		if matches!(
			call,
			RuntimeCall::VirtualBank(
				Bank::withdraw_by_peer { .. } | Bank::claim_htlc { .. } | Bank::refund_htlc { .. }
			)
		) {
			return self.submit_general(call).await;
		}
		let account = AccountId::from(signer.public());
		// One transaction per account at a time, each waited for until it is in a block:
		// no nonce gaps for a pool (ours or the authoring node's) to hold back.
		let turn =
			self.turns.lock().expect("not poisoned").entry(account.clone()).or_default().clone();
		let turn = turn.take().await;
		// The chain's nonce, moved past what the pool still holds from this account, as
		// `system_accountNextIndex` has it.
		let pending = SystemApiServer::nonce(&self.system, account.clone())
			.await
			.map_err(|e| format!("cannot read the nonce of {account}: {}", e.message()))?;
		let on_best_chain = |number, hash| self.client.hash(number).ok().flatten() == Some(hash);
		let nonce = turn.next_nonce(on_best_chain).map_or(pending, |counted| counted.max(pending));
		let extrinsic = vbank_runtime::signed_extrinsic(signer, call, nonce, self.genesis);
		let (block, index) = self.include(what, extrinsic.encode()).await?;
		// The best block may not show it yet: count it ourselves.
		let number = self.client.number(block).ok().flatten().unwrap_or_default();
		turn.set_next_nonce(nonce + 1, (number, block));
		drop(turn);
		self.outcome(what, block, index)
	}

	/// Submits `call`, which authorizes itself (a penalty, a claim, a refund), as a general
	/// transaction with no signer and no fee, and waits until it is in a block: the events it
	/// emitted there, or the reason it failed. What a watchtower for others sends, with no
	/// account of its own.
	pub async fn submit_general(&self, call: RuntimeCall) -> Result<Vec<RuntimeEvent>, String> {
		let what = &call_name(&call);
		let extrinsic = vbank_runtime::general_extrinsic(call);
		let (block, index) = self.include(what, extrinsic.encode()).await?;
		self.outcome(what, block, index)
	}

	/// Submits the extrinsic `encoded` and waits until it is in a block: that block, and its
	/// index there.
	async fn include(&self, what: &str, encoded: Vec<u8>) -> Result<(H256, u32), String> {
		let opaque = OpaqueExtrinsic::try_from_encoded_extrinsic(&encoded)
			.map_err(|e| format!("{what}: {e}"))?;
		let encoded = opaque.encode();
		// Watch the blocks themselves rather than the pool's report, which a busy pool may
		// get wrong (a transaction it called dropped can still be sealed).
		let mut imports = self.client.import_notification_stream();
		let (best, mut scanned) = self.best();
		self.pool
			.submit_one(best, TransactionSource::Local, opaque)
			.await
			.map_err(|e| format!("{what}: the transaction pool refused it: {e}"))?;
		tokio::time::timeout(INCLUSION_TIMEOUT, async {
			while let Some(imported) = imports.next().await {
				if !imported.is_new_best {
					continue;
				}
				let best = *imported.header.number();
				for number in scanned.saturating_add(1)..=best {
					if let Some(found) = self.find(number, &encoded)? {
						return Ok(found);
					}
				}
				scanned = scanned.max(best);
			}
			Err(format!("{what}: the node is stopping"))
		})
		.await
		.unwrap_or_else(|_| Err(format!("{what}: not in a block after {INCLUSION_TIMEOUT:?}")))
	}

	/// The events extrinsic `index` of `block` emitted, or the reason it failed.
	fn outcome(&self, what: &str, block: H256, index: u32) -> Result<Vec<RuntimeEvent>, String> {
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

	/// Block `number`'s hash and the index of `encoded` among its extrinsics, if it is there.
	fn find(&self, number: BlockNumber, encoded: &[u8]) -> Result<Option<(H256, u32)>, String> {
		let Some(hash) = self.client.hash(number).map_err(|e| e.to_string())? else {
			return Ok(None);
		};
		let body = self.client.block_body(hash).map_err(|e| e.to_string())?.unwrap_or_default();
		Ok(body
			.iter()
			.position(|extrinsic| extrinsic.encode() == encoded)
			.map(|index| (hash, index as u32)))
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

	/// What `account` may spend at the best block (its free balance).
	pub fn free_balance(&self, account: &AccountId) -> Result<vbank_runtime::Balance, String> {
		use frame_system::Config;
		type Info = frame_system::AccountInfo<
			<vbank_runtime::Runtime as Config>::Nonce,
			<vbank_runtime::Runtime as Config>::AccountData,
		>;
		let key = frame_system::Account::<vbank_runtime::Runtime>::hashed_key_for(account);
		let info: Option<Info> = self.read(key, || format!("the account of {account}"))?;
		Ok(info.unwrap_or_default().data.free)
	}

	/// The id the next bank opened will get, at the best block.
	pub fn next_channel_id(&self) -> Result<ChannelId, String> {
		let key = pallet_virtual_bank::NextChannelId::<vbank_runtime::Runtime>::hashed_key();
		Ok(self.read(key.to_vec(), || "the next bank id".into())?.unwrap_or(0))
	}

	/// Bank `channel` at the best block, if it is there. Read from the state directly: a
	/// payment asks first, and a runtime call would cost it a Wasm instance.
	pub fn channel(&self, channel: ChannelId) -> Result<Option<OnChain>, String> {
		self.channel_at(self.best().0, channel)
	}

	/// The banks `account` is a client of at the best block (the pallet's `ChannelsOf`, by the
	/// runtime API): what a helper that lost its store looks for.
	pub fn channels_of(&self, account: &AccountId) -> Result<Vec<ChannelId>, String> {
		use sp_api::ProvideRuntimeApi;
		use vbank_primitives::VirtualBankApi;
		self.client
			.runtime_api()
			.channels_of(self.best().0, account.clone())
			.map_err(|e| format!("cannot list the banks of {account}: {e}"))
	}

	/// Bank `channel` in the state of block `at`, if it is there.
	pub fn channel_at(&self, at: H256, channel: ChannelId) -> Result<Option<OnChain>, String> {
		let key = pallet_virtual_bank::Channels::<vbank_runtime::Runtime>::hashed_key_for(channel);
		self.read_at(at, key, || format!("bank {channel}"))
	}

	/// Whether a block is final only once finalized (a network of validators, or a
	/// development chain finalized on demand): what no fork can undo waits for finality.
	pub fn has_finality(&self) -> bool {
		self.finality
	}

	/// Bank `channel` in the newest final block: on a network of validators the newest
	/// finalized one, which no fork can undo; on a development chain the best.
	pub fn final_channel(&self, channel: ChannelId) -> Result<Option<OnChain>, String> {
		let info = self.client.info();
		let at = if self.finality { info.finalized_hash } else { info.best_hash };
		self.channel_at(at, channel)
	}

	/// The HTLCs liquidated bank `channel` holds, by index, `None` once paid out; empty when it
	/// holds none.
	pub fn htlcs(&self, channel: ChannelId) -> Result<Vec<Option<rsmc::Htlc>>, String> {
		type Book = pallet_virtual_bank::HtlcBook<vbank_runtime::Runtime>;
		let key = pallet_virtual_bank::Htlcs::<vbank_runtime::Runtime>::hashed_key_for(channel);
		let book: Option<Book> = self.read(key, || format!("the HTLCs of bank {channel}"))?;
		Ok(book.map(|b| b.htlcs.into_inner()).unwrap_or_default())
	}

	/// The nonce of bank `channel`'s last splice at the best block, if it was spliced.
	pub fn spliced_at(&self, channel: ChannelId) -> Result<Option<SheetNonce>, String> {
		self.spliced_at_in(self.best().0, channel)
	}

	/// The nonce of bank `channel`'s last splice in the newest final block (as
	/// [`Self::final_channel`]), if it was spliced.
	pub fn final_spliced_at(&self, channel: ChannelId) -> Result<Option<SheetNonce>, String> {
		let info = self.client.info();
		let at = if self.finality { info.finalized_hash } else { info.best_hash };
		self.spliced_at_in(at, channel)
	}

	fn spliced_at_in(&self, at: H256, channel: ChannelId) -> Result<Option<SheetNonce>, String> {
		let key = pallet_virtual_bank::SplicedAt::<vbank_runtime::Runtime>::hashed_key_for(channel);
		self.read_at(at, key, || format!("the last splice of bank {channel}"))
	}

	/// The preimage of `hashlock` shown on chain and still remembered, if any.
	pub fn preimage(&self, hashlock: H256) -> Result<Option<vbank_primitives::Preimage>, String> {
		let key =
			pallet_virtual_bank::Preimages::<vbank_runtime::Runtime>::hashed_key_for(hashlock);
		let found: Option<(vbank_primitives::Preimage, BlockNumber)> =
			self.read(key, || format!("the preimage of {hashlock:?}"))?;
		Ok(found.map(|(preimage, _)| preimage))
	}

	/// The value at `key` in the best block's state, if any; `what` names it in an error.
	fn read<V: Decode>(
		&self,
		key: Vec<u8>,
		what: impl Fn() -> String,
	) -> Result<Option<V>, String> {
		self.read_at(self.best().0, key, what)
	}

	/// The value at `key` in block `at`'s state, if any.
	fn read_at<V: Decode>(
		&self,
		at: H256,
		key: Vec<u8>,
		what: impl Fn() -> String,
	) -> Result<Option<V>, String> {
		let raw = self
			.client
			.storage(at, &StorageKey(key))
			.map_err(|e| format!("cannot read {}: {e}", what()))?;
		raw.map(|data| V::decode(&mut &data.0[..]))
			.transpose()
			.map_err(|e| format!("{} does not decode: {e}", what()))
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

#[cfg(test)]
mod tests {
	use super::Turn;
	use std::sync::{Arc, Mutex};

	#[tokio::test]
	async fn an_account_submits_one_transaction_at_a_time_in_the_order_they_came() {
		let turn = Arc::new(Turn::default());
		let order = Arc::new(Mutex::new(Vec::new()));
		let held = turn.take().await;
		let waiter = |name: &'static str| {
			let (turn, order) = (turn.clone(), order.clone());
			tokio::spawn(async move {
				let _guard = turn.take().await;
				order.lock().unwrap().push(name);
			})
		};
		let first = waiter("deposit");
		tokio::task::yield_now().await;
		assert!(order.lock().unwrap().is_empty(), "went while the turn was held");
		drop(held);
		let second = waiter("withdraw_by_master");
		for task in [first, second] {
			task.await.unwrap();
		}
		assert_eq!(order.lock().unwrap().len(), 2);
	}
}
