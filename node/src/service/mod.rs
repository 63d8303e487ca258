//! The node's services: client, transaction pool, network, RPC, and making blocks final.
//!
//! Two kinds of chain share the runtime. A development chain (`--dev`, or any spec of chain
//! type `Development`) is one node that seals blocks itself (`dev`); every other chain is a
//! network of validators, Aura authoring in turns and GRANDPA finalizing (`validators`).

mod dev;
mod validators;

use crate::cli::Consensus;
use sc_service::{error::Error as ServiceError, ChainType, Configuration, TaskManager};
use sc_telemetry::{Telemetry, TelemetryWorker};
use sp_runtime::traits::Block as BlockT;
use std::sync::Arc;
use vbank_runtime::{apis::RuntimeApi, opaque::Block};

use crate::types::{FullBackend, FullClient, FullPool};

type FullSelectChain = sc_consensus::LongestChain<FullBackend, Block>;

/// What the chain subcommands need: everything but the network and the authoring tasks.
pub type Service = sc_service::PartialComponents<
	FullClient,
	FullBackend,
	FullSelectChain,
	sc_consensus::DefaultImportQueue<Block>,
	FullPool,
	(Option<Telemetry>, Option<validators::Finality>),
>;

/// Whether `config`'s chain is a development chain, sealed by its one node.
pub fn is_dev(config: &Configuration) -> bool {
	config.chain_spec.chain_type() == ChainType::Development
}

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
	let (import_queue, finality) = if is_dev(config) {
		let queue = sc_consensus_manual_seal::import_queue(
			Box::new(client.clone()),
			&task_manager.spawn_essential_handle(),
			config.prometheus_registry(),
		);
		(queue, None)
	} else {
		let (queue, finality) = validators::import_queue(
			config,
			&client,
			&select_chain,
			&task_manager,
			telemetry.as_ref(),
		)?;
		(queue, Some(finality))
	};

	Ok(sc_service::PartialComponents {
		client,
		backend,
		task_manager,
		import_queue,
		keystore_container,
		select_chain,
		transaction_pool,
		other: (telemetry, finality),
	})
}

/// The full node: imports, makes blocks (sealing them as `consensus` says on a development
/// chain, authoring in its turn on a network when it is a validator), and serves RPC.
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
		other: (mut telemetry, finality),
	} = new_partial(&config)?;

	let mut net_config = sc_network::config::FullNetworkConfiguration::<
		Block,
		<Block as BlockT>::Hash,
		Network,
	>::new(&config.network, config.prometheus_registry().cloned());
	let metrics = Network::register_notification_metrics(config.prometheus_registry());
	// The helpers' own protocols (`helpers::p2p`), named after the genesis hash.
	let genesis = sp_blockchain::HeaderBackend::info(&*client).genesis_hash;
	let (rsmc_protocols, rsmc_requests) =
		crate::helpers::p2p::protocols::<Network>(&genesis, helper_settings.peer_timeout);
	for protocol in rsmc_protocols {
		net_config.add_request_response_protocol(protocol);
	}
	let (stream_protocol, streams) = crate::helpers::p2p::stream::protocol::<Network>(
		&genesis,
		metrics.clone(),
		net_config.peer_store_handle(),
	);
	net_config.add_notification_protocol(stream_protocol);
	let voting = finality
		.map(|finality| {
			validators::network(finality, &config, &client, &backend, &mut net_config, &metrics)
		})
		.transpose()?;

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
			warp_sync_config: voting.as_ref().map(validators::Voting::warp_sync),
			block_relay: None,
			metrics,
			gap_sync_body_policy: None,
		})?;

	// `--consensus manual` finalizes only on demand: the helpers wait for it as on a network.
	let finality = !is_dev(&config) || consensus == Consensus::Manual;
	let chain =
		crate::helpers::chain::NodeChain::new(client.clone(), transaction_pool.clone(), finality)
			.map_err(ServiceError::Other)?;
	let p2p = crate::helpers::p2p::P2p::new(network.clone(), sync_service.clone(), &genesis);
	let helpers =
		crate::helpers::Accounts::start(helper_settings, Arc::new(chain), Some(Arc::new(p2p)))
			.map_err(ServiceError::Other)?;
	task_manager.spawn_handle().spawn(
		"rsmc-p2p",
		None,
		crate::helpers::p2p::serve(helpers.clone(), rsmc_requests),
	);
	task_manager.spawn_handle().spawn("rsmc-dht", None, crate::helpers::p2p::dht(helpers.clone()));
	task_manager.spawn_handle().spawn(
		"rsmc-stream",
		None,
		crate::helpers::p2p::stream::run(helpers.clone(), sync_service.clone(), streams),
	);
	task_manager.spawn_handle().spawn(
		"rsmc-watchtower",
		None,
		crate::helpers::watchtower::run(helpers.clone()),
	);

	// `--consensus manual`: the sealing task takes its orders from the RPC methods.
	let (engine_tx, engine) = match consensus {
		Consensus::Manual if voting.is_none() => {
			let (tx, rx) = futures::channel::mpsc::channel(16);
			(Some(tx), Some(rx))
		},
		_ => (None, None),
	};
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
				if let Some(engine) = &engine_tx {
					use sc_consensus_manual_seal::rpc::{ManualSeal, ManualSealApiServer};
					module.merge(ManualSeal::new(engine.clone()).into_rpc())?;
				}
				Ok(module)
			};
			module().map_err(Into::into)
		})
	};

	let prometheus_registry = config.prometheus_registry().cloned();
	let (role, force_authoring, node_name) =
		(config.role, config.force_authoring, config.network.node_name.clone());
	let rpc = sc_service::spawn_tasks(sc_service::SpawnTasksParams {
		network: network.clone(),
		client: client.clone(),
		keystore: keystore_container.keystore(),
		task_manager: &mut task_manager,
		transaction_pool: transaction_pool.clone(),
		rpc_builder,
		backend,
		system_rpc_tx,
		tx_handler_controller,
		sync_service: sync_service.clone(),
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
	match voting {
		None => dev::seal(
			consensus,
			engine,
			client,
			transaction_pool,
			select_chain,
			proposer,
			&task_manager,
		),
		Some(voting) => validators::author_and_vote(validators::Authoring {
			voting,
			role,
			force_authoring,
			name: node_name,
			client,
			select_chain,
			proposer,
			keystore: keystore_container.keystore(),
			network,
			sync: sync_service,
			pool: transaction_pool,
			prometheus_registry,
			telemetry: telemetry.as_ref().map(|telemetry| telemetry.handle()),
			task_manager: &task_manager,
		})?,
	}
	Ok(task_manager)
}
