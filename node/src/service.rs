//! The node's services: client, transaction pool, network, RPC and block sealing.

use crate::cli::Consensus;
use futures::{
	future,
	stream::{self, BoxStream},
	StreamExt,
};
use sc_consensus_manual_seal::{EngineCommand, ManualSealParams};
use sc_service::{error::Error as ServiceError, Configuration, TaskManager};
use sc_telemetry::{Telemetry, TelemetryWorker};
use sc_transaction_pool_api::TransactionPool;
use sp_runtime::traits::Block as BlockT;
use std::{sync::Arc, time::Duration};
use vbank_runtime::{apis::RuntimeApi, opaque::Block};

use crate::types::{FullBackend, FullClient, FullPool};

type FullSelectChain = sc_consensus::LongestChain<FullBackend, Block>;

/// What the chain subcommands need: everything but the network and the sealing task.
pub type Service = sc_service::PartialComponents<
	FullClient,
	FullBackend,
	FullSelectChain,
	sc_consensus::DefaultImportQueue<Block>,
	FullPool,
	Option<Telemetry>,
>;

pub fn new_partial(config: &Configuration) -> Result<Service, ServiceError> {
	let telemetry = config
		.telemetry_endpoints
		.clone()
		.filter(|endpoints| !endpoints.is_empty())
		.map(|endpoints| -> Result<_, sc_telemetry::Error> {
			let worker = TelemetryWorker::new(16)?;
			let telemetry = worker.handle().new_telemetry(endpoints);
			Ok((worker, telemetry))
		})
		.transpose()?;

	let executor = sc_service::new_wasm_executor(&config.executor);
	let (client, backend, keystore_container, task_manager) =
		sc_service::new_full_parts::<Block, RuntimeApi, _>(
			config,
			telemetry.as_ref().map(|(_, telemetry)| telemetry.handle()),
			executor,
			Vec::new(),
		)?;
	let client = Arc::new(client);

	let telemetry = telemetry.map(|(worker, telemetry)| {
		task_manager.spawn_handle().spawn("telemetry", None, worker.run());
		telemetry
	});

	let select_chain = sc_consensus::LongestChain::new(backend.clone());
	let transaction_pool = Arc::from(
		sc_transaction_pool::Builder::new(
			task_manager.spawn_essential_handle(),
			client.clone(),
			config.role.is_authority().into(),
		)
		.with_options(config.transaction_pool.clone())
		.with_prometheus(config.prometheus_registry())
		.build(),
	);
	let import_queue = sc_consensus_manual_seal::import_queue(
		Box::new(client.clone()),
		&task_manager.spawn_essential_handle(),
		config.prometheus_registry(),
	);

	Ok(sc_service::PartialComponents {
		client,
		backend,
		task_manager,
		import_queue,
		keystore_container,
		select_chain,
		transaction_pool,
		other: telemetry,
	})
}

/// The full node: imports, seals as `consensus` says, and serves RPC.
pub async fn new_full<Network: sc_network::NetworkBackend<Block, <Block as BlockT>::Hash>>(
	config: Configuration,
	consensus: Consensus,
	helper_settings: crate::helpers::Settings,
) -> Result<TaskManager, ServiceError> {
	let sc_service::PartialComponents {
		client,
		backend,
		mut task_manager,
		import_queue,
		keystore_container,
		select_chain,
		transaction_pool,
		other: mut telemetry,
	} = new_partial(&config)?;

	let net_config = sc_network::config::FullNetworkConfiguration::<
		Block,
		<Block as BlockT>::Hash,
		Network,
	>::new(&config.network, config.prometheus_registry().cloned());
	let metrics = Network::register_notification_metrics(config.prometheus_registry());

	let (network, system_rpc_tx, tx_handler_controller, sync_service, _bitswap) =
		sc_service::build_network(sc_service::BuildNetworkParams {
			config: &config,
			net_config,
			client: client.clone(),
			transaction_pool: transaction_pool.clone(),
			spawn_handle: task_manager.spawn_handle(),
			spawn_essential_handle: task_manager.spawn_essential_handle(),
			import_queue,
			block_announce_validator_builder: None,
			warp_sync_config: None,
			block_relay: None,
			metrics,
			gap_sync_body_policy: None,
		})?;

	let chain = crate::helpers::chain::NodeChain::new(client.clone(), transaction_pool.clone())
		.map_err(ServiceError::Other)?;
	let helpers = crate::helpers::Accounts::start(helper_settings, Arc::new(chain))
		.map_err(ServiceError::Other)?;
	task_manager.spawn_handle().spawn(
		"rsmc-watchtower",
		None,
		crate::helpers::watchtower::run(helpers.clone()),
	);

	let rpc_builder = {
		let client = client.clone();
		let pool = transaction_pool.clone();
		Box::new(move |_| {
			let module = || -> Result<_, Box<dyn std::error::Error + Send + Sync>> {
				let mut module = crate::rpc::create_full(crate::rpc::FullDeps {
					client: client.clone(),
					pool: pool.clone(),
				})?;
				module.merge(crate::helpers::rpc::Rsmc(helpers.clone()).into_module()?)?;
				Ok(module)
			};
			module().map_err(Into::into)
		})
	};

	let prometheus_registry = config.prometheus_registry().cloned();
	let rpc = sc_service::spawn_tasks(sc_service::SpawnTasksParams {
		network,
		client: client.clone(),
		keystore: keystore_container.keystore(),
		task_manager: &mut task_manager,
		transaction_pool: transaction_pool.clone(),
		rpc_builder,
		backend,
		system_rpc_tx,
		tx_handler_controller,
		sync_service,
		config,
		telemetry: telemetry.as_mut(),
		tracing_execute_block: None,
	})?;
	// No Nagle delay on the RPC server's connections (see `nodelay`).
	let rpc_addresses: Vec<_> =
		rpc.listen_addresses().iter().filter_map(crate::nodelay::socket_addr).collect();
	let set = crate::nodelay::on_listeners(&rpc_addresses);
	if set.len() < rpc_addresses.len() {
		log::warn!("TCP_NODELAY set on the RPC listeners {set:?} of {rpc_addresses:?} only");
	}

	let proposer = sc_basic_authorship::ProposerFactory::new(
		task_manager.spawn_handle(),
		client.clone(),
		transaction_pool.clone(),
		prometheus_registry.as_ref(),
		telemetry.as_ref().map(|telemetry| telemetry.handle()),
	);
	let create_inherent_data_providers =
		|_, ()| async move { Ok(sp_timestamp::InherentDataProvider::from_system_time()) };

	let commands: BoxStream<'static, EngineCommand<<Block as BlockT>::Hash>> = match consensus {
		// The fork-aware pool keeps transactions back until it has seen a block: seal an
		// empty one first, then one for each transaction the pool takes in.
		Consensus::InstantSeal => {
			// The pool may announce a transaction a moment before its view offers it to the
			// block builder; one left behind so is sealed on the next tick.
			let pool = transaction_pool.clone();
			let stragglers = stream::unfold(transaction_pool.clone(), |pool| async move {
				futures_timer::Delay::new(Duration::from_millis(500)).await;
				let ready = pool.status().ready > 0;
				Some((ready, pool))
			})
			.filter_map(|ready| future::ready(ready.then(|| seal(false))));
			stream::once(future::ready(seal(true)))
				.chain(stream::select(
					transaction_pool.import_notification_stream().filter_map(move |_| {
						future::ready((pool.status().ready > 0).then(|| seal(false)))
					}),
					stragglers,
				))
				.boxed()
		},
		Consensus::ManualSeal(millis) => stream::unfold((), move |()| async move {
			futures_timer::Delay::new(Duration::from_millis(millis)).await;
			Some((seal(true), ()))
		})
		.boxed(),
		Consensus::None => return Ok(task_manager),
	};
	// Blocks are sealed unfinalized and finalized a second later by a task of their own, so
	// that a transaction's watchers see `InBlock` and then `Finalized`, as on every Substrate
	// chain. Finalizing in the seal itself reports only `Finalized`; finalizing at once on
	// import races the pool, which then skips `InBlock` (seen from polkadot.js).
	let finality = sc_consensus_manual_seal::run_delayed_finalize(
		sc_consensus_manual_seal::DelayedFinalizeParams {
			client: client.clone(),
			spawn_handle: task_manager.spawn_handle(),
			delay_sec: FINALITY_DELAY_SECS,
		},
	);
	task_manager.spawn_essential_handle().spawn_blocking("finalize", None, finality);
	let sealing = sc_consensus_manual_seal::run_manual_seal(ManualSealParams {
		block_import: client.clone(),
		env: proposer,
		client,
		pool: transaction_pool,
		commands_stream: commands,
		select_chain,
		consensus_data_provider: None,
		create_inherent_data_providers,
	});
	task_manager.spawn_essential_handle().spawn_blocking("seal", None, sealing);

	Ok(task_manager)
}

/// How long after its import a sealed block is finalized.
const FINALITY_DELAY_SECS: u64 = 1;

/// Seal a block on the best one; the finality task finalizes it once imported (there is one
/// authority).
fn seal(create_empty: bool) -> EngineCommand<<Block as BlockT>::Hash> {
	EngineCommand::SealNewBlock { create_empty, finalize: false, parent_hash: None, sender: None }
}
