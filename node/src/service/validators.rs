//! A network of validators: Aura authors a block in each slot (`vbank_runtime::SLOT_DURATION`),
//! the slot's validator in turn, and GRANDPA makes blocks final once two thirds of the
//! validators vote for them. The model is polkadot-sdk's solochain template.

use super::{dev::Proposer, FullSelectChain};
use crate::types::{FullBackend, FullClient, FullPool};
use sc_consensus_aura::{ImportQueueParams, SlotProportion, StartAuraParams};
use sc_consensus_grandpa::{warp_proof::NetworkProvider, SharedVoterState};
use sc_network::{
	config::FullNetworkConfiguration, service::traits::NetworkService, NetworkBackend,
	NotificationService, ProtocolName,
};
use sc_network_sync::SyncingService;
use sc_service::{error::Error as ServiceError, Configuration, TaskManager, WarpSyncConfig};
use sc_telemetry::{Telemetry, TelemetryHandle};
use sc_transaction_pool_api::OffchainTransactionPoolFactory;
use sp_consensus_aura::{sr25519::AuthorityPair as AuraPair, SlotDuration};
use sp_keystore::KeystorePtr;
use sp_runtime::traits::Block as BlockT;
use std::{sync::Arc, time::Duration};
use vbank_runtime::opaque::Block;

/// GRANDPA makes a justification at least this often (in blocks), for the nodes that sync.
const JUSTIFICATION_PERIOD: u32 = 512;

type BlockImport =
	sc_consensus_grandpa::GrandpaBlockImport<FullBackend, Block, FullClient, FullSelectChain>;

/// GRANDPA's block import, which Aura's authoring imports through, and its link to the voter.
pub struct Finality {
	block_import: BlockImport,
	link: sc_consensus_grandpa::LinkHalf<Block, FullClient, FullSelectChain>,
}

/// The import queue: Aura checks each block's author against its slot, GRANDPA tracks the
/// authority set and imports justifications.
pub fn import_queue(
	config: &Configuration,
	client: &Arc<FullClient>,
	select_chain: &FullSelectChain,
	task_manager: &TaskManager,
	telemetry: Option<&Telemetry>,
) -> Result<(sc_consensus::DefaultImportQueue<Block>, Finality), ServiceError> {
	let (block_import, link) = sc_consensus_grandpa::block_import(
		client.clone(),
		JUSTIFICATION_PERIOD,
		client,
		select_chain.clone(),
		telemetry.map(Telemetry::handle),
	)?;
	let slots = client.clone();
	let queue = sc_consensus_aura::import_queue::<AuraPair, _, _, _, _, _>(ImportQueueParams {
		block_import: block_import.clone(),
		justification_import: Some(Box::new(block_import.clone())),
		client: client.clone(),
		create_inherent_data_providers: move |parent, ()| {
			let slots = slots.clone();
			async move {
				let slot_duration =
					sc_consensus_aura::standalone::slot_duration_at(&*slots, parent)?;
				Ok(inherent_data(slot_duration))
			}
		},
		spawner: &task_manager.spawn_essential_handle(),
		registry: config.prometheus_registry(),
		check_for_equivocation: Default::default(),
		telemetry: telemetry.map(Telemetry::handle),
		compatibility_mode: Default::default(),
	})?;
	Ok((queue, Finality { block_import, link }))
}

/// A block's time, now, and the Aura slot it falls in.
fn inherent_data(
	slot_duration: SlotDuration,
) -> (sp_consensus_aura::inherents::InherentDataProvider, sp_timestamp::InherentDataProvider) {
	let timestamp = sp_timestamp::InherentDataProvider::from_system_time();
	let slot = sp_consensus_aura::inherents::InherentDataProvider::from_timestamp_and_slot_duration(
		*timestamp,
		slot_duration,
	);
	(slot, timestamp)
}

/// GRANDPA's part of the network: its gossip protocol, and the proofs warp sync asks for.
pub struct Voting {
	finality: Finality,
	protocol_name: ProtocolName,
	notifications: Box<dyn NotificationService>,
	warp_sync: Arc<NetworkProvider<Block, FullBackend>>,
}

impl Voting {
	/// A node joining late syncs by GRANDPA's authority-set proofs, then the state.
	pub fn warp_sync(&self) -> WarpSyncConfig<Block> {
		WarpSyncConfig::WithProvider(self.warp_sync.clone())
	}
}

/// Adds GRANDPA's gossip protocol, named after the genesis hash, to the network.
pub fn network<N: NetworkBackend<Block, <Block as BlockT>::Hash>>(
	finality: Finality,
	config: &Configuration,
	client: &FullClient,
	backend: &Arc<FullBackend>,
	net_config: &mut FullNetworkConfiguration<Block, <Block as BlockT>::Hash, N>,
	metrics: &sc_network::service::NotificationMetrics,
) -> Result<Voting, ServiceError> {
	use sp_blockchain::HeaderBackend;
	let genesis = client.info().genesis_hash;
	let protocol_name = sc_consensus_grandpa::protocol_standard_name(&genesis, &config.chain_spec);
	let (protocol, notifications) = sc_consensus_grandpa::grandpa_peers_set_config::<_, N>(
		protocol_name.clone(),
		metrics.clone(),
		net_config.peer_store_handle(),
	);
	net_config.add_notification_protocol(protocol);
	let warp_sync = Arc::new(NetworkProvider::new(
		backend.clone(),
		finality.link.shared_authority_set().clone(),
		Vec::new(),
	));
	Ok(Voting { finality, protocol_name, notifications, warp_sync })
}

/// What authoring and voting need of the node.
pub struct Authoring<'a> {
	pub voting: Voting,
	pub role: sc_service::Role,
	pub force_authoring: bool,
	pub name: String,
	pub client: Arc<FullClient>,
	pub select_chain: FullSelectChain,
	pub proposer: Proposer,
	pub keystore: KeystorePtr,
	pub network: Arc<dyn NetworkService>,
	pub sync: Arc<SyncingService<Block>>,
	pub pool: Arc<FullPool>,
	pub prometheus_registry: Option<substrate_prometheus_endpoint::Registry>,
	pub telemetry: Option<TelemetryHandle>,
	pub task_manager: &'a TaskManager,
}

/// A validator (`--validator`, with its keys in the keystore) authors in its slots and votes;
/// any other node follows GRANDPA's votes to know what is final.
pub fn author_and_vote(node: Authoring) -> Result<(), ServiceError> {
	let authority = node.role.is_authority();
	if authority {
		let slot_duration = sc_consensus_aura::slot_duration(&*node.client)?;
		let aura = sc_consensus_aura::start_aura::<AuraPair, _, _, _, _, _, _, _, _, _, _>(
			StartAuraParams {
				slot_duration,
				client: node.client.clone(),
				select_chain: node.select_chain,
				block_import: node.voting.finality.block_import,
				proposer_factory: node.proposer,
				create_inherent_data_providers: move |_, ()| async move {
					Ok(inherent_data(slot_duration))
				},
				force_authoring: node.force_authoring,
				backoff_authoring_blocks: Option::<()>::None,
				keystore: node.keystore.clone(),
				sync_oracle: node.sync.clone(),
				justification_sync_link: node.sync.clone(),
				block_proposal_slot_portion: SlotProportion::new(2f32 / 3f32),
				max_block_proposal_slot_portion: None,
				telemetry: node.telemetry.clone(),
				compatibility_mode: Default::default(),
			},
		)?;
		node.task_manager.spawn_essential_handle().spawn_blocking(
			"aura",
			Some("block-authoring"),
			aura,
		);
	}
	let voter = sc_consensus_grandpa::run_grandpa_voter(sc_consensus_grandpa::GrandpaParams {
		config: sc_consensus_grandpa::Config {
			gossip_duration: Duration::from_millis(333),
			justification_generation_period: JUSTIFICATION_PERIOD,
			name: Some(node.name),
			observer_enabled: false,
			keystore: authority.then_some(node.keystore),
			local_role: node.role,
			telemetry: node.telemetry.clone(),
			protocol_name: node.voting.protocol_name,
		},
		link: node.voting.finality.link,
		network: node.network,
		sync: node.sync,
		notification_service: node.voting.notifications,
		voting_rule: sc_consensus_grandpa::VotingRulesBuilder::default().build(),
		prometheus_registry: node.prometheus_registry,
		shared_voter_state: SharedVoterState::empty(),
		telemetry: node.telemetry,
		offchain_tx_pool_factory: OffchainTransactionPoolFactory::new(node.pool),
	})?;
	node.task_manager.spawn_essential_handle().spawn_blocking("grandpa-voter", None, voter);
	Ok(())
}
