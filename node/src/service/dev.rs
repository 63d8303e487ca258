//! A development chain's blocks: its one node seals them (a block per transaction, or one
//! every so many milliseconds) and makes each final once the transaction pool has seen it.

use super::FullSelectChain;
use crate::{
	cli::Consensus,
	types::{FullClient, FullPool},
};
use futures::{
	future,
	stream::{self, BoxStream},
	StreamExt,
};
use sc_client_api::{BlockchainEvents, Finalizer};
use sc_consensus_manual_seal::{
	consensus::aura::AuraConsensusDataProvider, EngineCommand, ManualSealParams,
};
use sc_service::TaskManager;
use sc_transaction_pool_api::TransactionPool;
use sp_runtime::traits::Block as BlockT;
use std::{sync::Arc, time::Duration};
use vbank_runtime::opaque::Block;

pub type Proposer = sc_basic_authorship::ProposerFactory<FullPool, FullClient>;

/// What `engine_createBlock` and `engine_finalizeBlock` send the sealing task.
pub type Engine = futures::channel::mpsc::Receiver<EngineCommand<<Block as BlockT>::Hash>>;

/// Spawn the sealing and the finality tasks as `consensus` says (none for `none`); for
/// `manual`, the blocks and the finality that `engine` asks for, and no other.
pub fn seal(
	consensus: Consensus,
	engine: Option<Engine>,
	client: Arc<FullClient>,
	pool: Arc<FullPool>,
	select_chain: FullSelectChain,
	proposer: Proposer,
	task_manager: &TaskManager,
) {
	let commands: BoxStream<'static, EngineCommand<<Block as BlockT>::Hash>> = match consensus {
		// The fork-aware pool keeps transactions back until it has seen a block: seal an
		// empty one first, then one for each transaction the pool takes in.
		Consensus::InstantSeal => {
			// The pool may announce a transaction a moment before its view offers it to the
			// block builder; one left behind so is sealed on the next tick.
			let stragglers = stream::unfold(pool.clone(), |pool| async move {
				futures_timer::Delay::new(Duration::from_millis(500)).await;
				let ready = pool.status().ready > 0;
				Some((ready, pool))
			})
			.filter_map(|ready| future::ready(ready.then(|| command(false))));
			let imported = {
				let pool = pool.clone();
				pool.clone().import_notification_stream().filter_map(move |_| {
					future::ready((pool.status().ready > 0).then(|| command(false)))
				})
			};
			stream::once(future::ready(command(true)))
				.chain(stream::select(imported, stragglers))
				.boxed()
		},
		Consensus::ManualSeal(millis) => stream::unfold((), move |()| async move {
			futures_timer::Delay::new(Duration::from_millis(millis)).await;
			Some((command(true), ()))
		})
		.boxed(),
		Consensus::Manual => match engine {
			Some(engine) => engine.boxed(),
			None => return,
		},
		Consensus::None => return,
	};
	if consensus != Consensus::Manual {
		task_manager.spawn_essential_handle().spawn_blocking(
			"finalize",
			None,
			finalize_once_pooled(client.clone(), pool.clone()),
		);
	}
	let sealing = sc_consensus_manual_seal::run_manual_seal(ManualSealParams {
		block_import: client.clone(),
		env: proposer,
		// The runtime checks each block's time against its Aura slot: the digest names the
		// slot of the block's timestamp. Several blocks share a slot here.
		consensus_data_provider: Some(Box::new(AuraConsensusDataProvider::new(client.clone()))),
		client,
		pool,
		commands_stream: commands,
		select_chain,
		create_inherent_data_providers: |_, ()| async move {
			Ok(sp_timestamp::InherentDataProvider::from_system_time())
		},
	});
	task_manager.spawn_essential_handle().spawn_blocking("seal", None, sealing);
}

/// Seal a block on the best one, unfinalized: [`finalize_once_pooled`] finalizes it.
fn command(create_empty: bool) -> EngineCommand<<Block as BlockT>::Hash> {
	EngineCommand::SealNewBlock { create_empty, finalize: false, parent_hash: None, sender: None }
}

/// How long after the pool has handled a block it is finalized.
const FINALITY_DELAY: Duration = Duration::from_secs(1);

/// Finalize each new best block once the transaction pool has handled its import, and a
/// second more, so that a transaction's watchers see `InBlock` and then `Finalized`, as on
/// every Substrate chain. The pool tells them `InBlock` as it handles the import: a block
/// finalized before that has them see `Finalized` alone, as a timer from the import did
/// under load (polkadot.js, 2 times in 40). And polkadot.js reads a status's block before it
/// reports it, dropping a status whose read a newer status overtakes: `Finalized` the same
/// millisecond as `InBlock` hides `InBlock` from `signAndSend` (seen here with no delay).
async fn finalize_once_pooled(client: Arc<FullClient>, pool: Arc<FullPool>) {
	use futures::stream::FuturesUnordered;
	use sp_runtime::traits::Header as _;
	let mut imports = client.import_notification_stream().fuse();
	let mut pending = FuturesUnordered::new();
	loop {
		futures::select! {
			import = imports.next() => match import {
				Some(import) if import.is_new_best => {
					let pool = pool.clone();
					let (hash, number) = (import.hash, *import.header.number());
					pending.push(async move {
						// Resolves once the pool has handled this block (or a later one); at
						// once when the pool is empty, which it is only once the block's
						// transactions are pruned.
						let _ = pool.ready_at(hash).await;
						futures_timer::Delay::new(FINALITY_DELAY).await;
						(hash, number)
					});
				},
				Some(_) => {},
				None => return,
			},
			(hash, number) = pending.select_next_some() => {
				// A later block finalized first has made this one final too.
				if sp_blockchain::HeaderBackend::info(&*client).finalized_number >= number {
					continue;
				}
				if let Err(e) = client.finalize_block(hash, None, true) {
					log::warn!("cannot finalize block {hash}: {e}");
				}
			},
		}
	}
}
