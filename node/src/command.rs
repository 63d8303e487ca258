//! Parses the command line and runs what it asks for.

use crate::{
	chain_spec,
	cli::{Cli, Consensus, Subcommand},
	service,
};
use sc_cli::SubstrateCli;
use sc_service::PartialComponents;

impl SubstrateCli for Cli {
	fn impl_name() -> String {
		"vbank node".into()
	}

	fn impl_version() -> String {
		env!("SUBSTRATE_CLI_IMPL_VERSION").into()
	}

	fn description() -> String {
		env!("CARGO_PKG_DESCRIPTION").into()
	}

	fn author() -> String {
		env!("CARGO_PKG_AUTHORS").into()
	}

	fn support_url() -> String {
		"the project's issue tracker".into()
	}

	fn copyright_start_year() -> i32 {
		2026
	}

	fn load_spec(&self, id: &str) -> Result<Box<dyn sc_service::ChainSpec>, String> {
		Ok(match id {
			"" | "dev" => Box::new(chain_spec::development()?),
			"local" => Box::new(chain_spec::local_testnet()?),
			path => Box::new(chain_spec::ChainSpec::from_json_file(path.into())?),
		})
	}
}

/// Runs the command line's command.
pub fn run() -> sc_cli::Result<()> {
	let mut cli = Cli::from_args();
	// The single-state pool: the fork-aware one was seen to hold ready transactions back
	// from the block builder of an instant-seal chain under load, and a network of four
	// validators has few forks. `--pool-type` still chooses.
	if !std::env::args().any(|arg| arg.starts_with("--pool-type")) {
		cli.run.pool_config.pool_type = sc_cli::TransactionPoolType::SingleState;
	}

	match &cli.subcommand {
		Some(Subcommand::Key(cmd)) => cmd.run(&cli),
		Some(Subcommand::BuildSpec(cmd)) => {
			let runner = cli.create_runner(cmd)?;
			runner.sync_run(|config| cmd.run(config.chain_spec, config.network))
		},
		Some(Subcommand::ExportChainSpec(cmd)) => cmd.run(cli.load_spec(&cmd.chain)?),
		Some(Subcommand::CheckBlock(cmd)) => {
			let runner = cli.create_runner(cmd)?;
			runner.async_run(|config| {
				let PartialComponents { client, task_manager, import_queue, .. } =
					service::new_partial(&config)?;
				Ok((cmd.run(client, import_queue), task_manager))
			})
		},
		Some(Subcommand::ExportBlocks(cmd)) => {
			let runner = cli.create_runner(cmd)?;
			runner.async_run(|config| {
				let PartialComponents { client, task_manager, .. } = service::new_partial(&config)?;
				Ok((cmd.run(client, config.database), task_manager))
			})
		},
		Some(Subcommand::ExportState(cmd)) => {
			let runner = cli.create_runner(cmd)?;
			runner.async_run(|config| {
				let PartialComponents { client, task_manager, .. } = service::new_partial(&config)?;
				Ok((cmd.run(client, config.chain_spec), task_manager))
			})
		},
		Some(Subcommand::ImportBlocks(cmd)) => {
			let runner = cli.create_runner(cmd)?;
			runner.async_run(|config| {
				let PartialComponents { client, task_manager, import_queue, .. } =
					service::new_partial(&config)?;
				Ok((cmd.run(client, import_queue), task_manager))
			})
		},
		Some(Subcommand::PurgeChain(cmd)) => {
			let runner = cli.create_runner(cmd)?;
			runner.sync_run(|config| cmd.run(config.database))
		},
		Some(Subcommand::Revert(cmd)) => {
			let runner = cli.create_runner(cmd)?;
			runner.async_run(|config| {
				let PartialComponents { client, task_manager, backend, .. } =
					service::new_partial(&config)?;
				Ok((cmd.run(client, backend, None), task_manager))
			})
		},
		#[cfg(feature = "runtime-benchmarks")]
		Some(Subcommand::Benchmark(cmd)) => benchmark(&cli, cmd),
		// A refusal is the node's message as it stands, not a Rust error's debug text.
		Some(Subcommand::Rsmc(cmd)) => cmd.run().or_else(|message| {
			eprintln!("error: {message}");
			std::process::exit(1)
		}),
		None => {
			let runner = cli.create_runner(&cli.run)?;
			runner.run_node_until_exit(|config| async move {
				use sc_network::config::NetworkBackendType;
				let consensus = match (service::is_dev(&config), cli.consensus) {
					(true, consensus) => consensus.unwrap_or(Consensus::InstantSeal),
					(false, None) => Consensus::None,
					(false, Some(_)) => {
						return Err(sc_cli::Error::Input(format!(
							"--consensus applies to a development chain only: `{}` is a network \
							 of validators (Aura and GRANDPA); start a validator with \
							 `--validator` and its keys (`--alice` …)",
							config.chain_spec.id()
						)))
					},
				};
				let helpers = helper_settings(&cli, &config);
				match config.network.network_backend {
					NetworkBackendType::Libp2p => {
						service::new_full::<sc_network::NetworkWorker<_, _>>(
							config, consensus, helpers,
						)
						.await
					},
					NetworkBackendType::Litep2p => {
						service::new_full::<sc_network::Litep2pNetworkBackend>(
							config, consensus, helpers,
						)
						.await
					},
				}
				.map_err(sc_cli::Error::Service)
			})
		},
	}
}

/// The helpers to run: those named, or in `--dev` `//Alice` and `//Bob`; their stores under
/// the node's base path.
fn helper_settings(cli: &Cli, config: &sc_service::Configuration) -> crate::helpers::Settings {
	let params = &cli.helpers;
	let accounts = if params.accounts.is_empty() && cli.run.shared_params.dev {
		vec!["//Alice".into(), "//Bob".into()]
	} else {
		params.accounts.clone()
	};
	let own_url = params.url.clone().unwrap_or_else(|| {
		let listen = config
			.rpc
			.addr
			.as_ref()
			.and_then(|endpoints| endpoints.first())
			.map(|endpoint| endpoint.listen_addr)
			.unwrap_or_else(|| ([127, 0, 0, 1], config.rpc.port).into());
		let ip = if listen.ip().is_unspecified() { [127, 0, 0, 1].into() } else { listen.ip() };
		format!("ws://{}", std::net::SocketAddr::new(ip, listen.port()))
	});
	use frame_support::traits::Get;
	let dev = cli.run.shared_params.dev;
	let default = rsmc::Policy::default();
	let policy = rsmc::Policy {
		inbound_limit: params.inbound_limit.unwrap_or(if dev {
			1_000_000_000_000_000
		} else {
			default.inbound_limit
		}),
		min_lock: params.min_lock.unwrap_or(if dev {
			u64::from(
				<<vbank_runtime::Runtime as pallet_virtual_bank::Config>::MinLockPeriod as Get<
					u32,
				>>::get(),
			)
		} else {
			default.min_lock
		}),
		max_lock: params.max_lock,
		reserve_percent: params.reserve_percent,
		min_reserve: params.min_reserve,
	};
	crate::helpers::Settings {
		policy,
		accounts,
		dir: config.base_path.path().join("rsmc"),
		own_url,
		peer_timeout: std::time::Duration::from_secs(params.peer_timeout),
		test_cheats: params.test_cheats,
		forwarding: rsmc::route::Forwarding {
			fee: params.forward_fee,
			delta: params.htlc_delta,
			dust: params.dust_limit,
		},
		tower: params.tower.then_some(params.tower_max_banks),
		tower_url: params.tower_url.clone(),
	}
}

#[cfg(feature = "runtime-benchmarks")]
fn benchmark(cli: &Cli, cmd: &frame_benchmarking_cli::BenchmarkCmd) -> sc_cli::Result<()> {
	use frame_benchmarking_cli::BenchmarkCmd;
	use sp_runtime::traits::HashingFor;

	let runner = cli.create_runner(cmd)?;
	match cmd {
		BenchmarkCmd::Pallet(cmd) => runner.sync_run(|config| {
			cmd.run_with_spec::<HashingFor<vbank_runtime::opaque::Block>, crate::types::HostFunctions>(
				Some(config.chain_spec),
			)
		}),
		BenchmarkCmd::Machine(cmd) => runner.sync_run(|config| {
			cmd.run(&config, frame_benchmarking_cli::SUBSTRATE_REFERENCE_HARDWARE.clone())
		}),
		_ => Err("this node offers `benchmark pallet` and `benchmark machine`".into()),
	}
}
