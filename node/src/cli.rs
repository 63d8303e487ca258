//! The command line: `sc_cli`'s node options, how blocks are sealed, and the subcommands.

use std::str::FromStr;

/// How the node seals blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consensus {
	/// A block as soon as the pool holds a transaction (`instant-seal`).
	InstantSeal,
	/// A block every so many milliseconds, empty or not (`manual-seal-<ms>`).
	ManualSeal(u64),
	/// A block only when `engine_createBlock` asks for one, on the block it names, and final
	/// only when it or `engine_finalizeBlock` says so (`manual`): forks and reorgs on demand,
	/// for tests.
	Manual,
	/// No blocks of its own: the node follows the chain of its peers (`none`).
	None,
}

impl FromStr for Consensus {
	type Err = String;

	fn from_str(s: &str) -> Result<Self, Self::Err> {
		match s {
			"instant-seal" => return Ok(Consensus::InstantSeal),
			"none" => return Ok(Consensus::None),
			"manual" => return Ok(Consensus::Manual),
			_ => {},
		}
		let Some(millis) = s.strip_prefix("manual-seal-") else {
			return Err(format!(
				"unknown consensus `{s}`: expected `instant-seal`, `manual-seal-<milliseconds>`, `manual` or \
				 `none`"
			));
		};
		match millis.parse::<u64>() {
			Ok(0) | Err(_) => {
				Err(format!("`{s}`: the block time must be a positive number of milliseconds"))
			},
			Ok(ms) => Ok(Consensus::ManualSeal(ms)),
		}
	}
}

#[derive(Debug, clap::Parser)]
#[command(version, propagate_version = true, args_conflicts_with_subcommands = true)]
pub struct Cli {
	#[command(subcommand)]
	pub subcommand: Option<Subcommand>,

	/// How a development chain's blocks are sealed: `instant-seal` (a block for each
	/// transaction, the default), `manual-seal-<ms>` (a block every `<ms>` milliseconds),
	/// `manual` (blocks and finality only from the `engine_createBlock` and
	/// `engine_finalizeBlock` RPC methods, on any parent: forks on demand) or `none` (follow
	/// the peers). Other chains (`--chain local`) are a network of validators,
	/// Aura and GRANDPA, and refuse this option.
	#[arg(long)]
	pub consensus: Option<Consensus>,

	#[command(flatten)]
	pub helpers: HelperParams,

	#[command(flatten)]
	pub run: sc_cli::RunCmd,
}

/// The RSMC helpers the node runs (SPEC section 5).
#[derive(Debug, Clone, clap::Args)]
pub struct HelperParams {
	/// Run a helper for this account (a secret URI: `//Alice`, a mnemonic, a hex seed); may
	/// be given more than once. `--dev` runs `//Alice` and `//Bob` unless told otherwise.
	#[arg(long = "rsmc-account", value_name = "SURI")]
	pub accounts: Vec<String>,

	/// How helpers on other nodes reach this node's `rsmc_message` (default: the RPC
	/// server's address, as `ws://<ip>:<port>`).
	#[arg(long = "rsmc-url", value_name = "URL")]
	pub url: Option<String>,

	/// Seconds a peer may stay silent before a payment or a close gives up on it (a payment
	/// then liquidates with the newest sheet).
	#[arg(long = "rsmc-peer-timeout", value_name = "SECONDS", default_value_t = 30)]
	pub peer_timeout: u64,

	/// The most a helper deposits, in planck, into one bank another account opened without
	/// its operator's `rsmc_accept` (default 0: ask every time; `--dev`: 10^15, 1,000 VBK).
	#[arg(long = "rsmc-inbound-limit", value_name = "PLANCK")]
	pub inbound_limit: Option<u128>,

	/// The shortest lock period, in blocks, of a bank a helper opens or joins without its
	/// operator's `rsmc_accept` (default 100; `--dev`: the runtime's minimum).
	#[arg(long = "rsmc-min-lock", value_name = "BLOCKS")]
	pub min_lock: Option<u64>,

	/// The longest lock period, in blocks, of a bank a helper joins without its operator's
	/// `rsmc_accept`: liquidating a bank freezes the liquidator's share that long, and a peer
	/// can force a liquidation (an HTLC it never resolves), so a long lock lets a stranger
	/// freeze our money cheaply.
	#[arg(long = "rsmc-max-lock", value_name = "BLOCKS", default_value_t = rsmc::Policy::DEFAULT_MAX_LOCK)]
	pub max_lock: u64,

	/// The reserve a helper proposes in a bank it opens and wants in one it joins without its
	/// operator's `rsmc_accept`, in percent of the bank's total: the least a client's share may
	/// be left at by its own payment, HTLC or withdrawal, so that liquidating with a revoked
	/// sheet always costs the cheat.
	#[arg(
		long = "rsmc-reserve-percent",
		value_name = "PERCENT",
		default_value_t = 1,
		value_parser = clap::value_parser!(u8).range(0..=50)
	)]
	pub reserve_percent: u8,

	/// The least reserve, in planck, whatever the bank's total (default: the chain's
	/// existential deposit).
	#[arg(long = "rsmc-min-reserve", value_name = "PLANCK", default_value_t = vbank_runtime::EXISTENTIAL_DEPOSIT)]
	pub min_reserve: u128,

	/// Blocks an HTLC this node's helpers pass on must expire before the one they were given,
	/// and that a payee's HTLC is given to expire: the time each hop has to claim on chain.
	/// At least 12 (`rsmc::route::MIN_DELTA`): fewer leave no room for a liquidation and its
	/// claim.
	#[arg(
		long = "rsmc-htlc-delta",
		value_name = "BLOCKS",
		default_value_t = 40,
		value_parser = clap::value_parser!(u32).range(i64::from(rsmc::route::MIN_DELTA)..)
	)]
	pub htlc_delta: u32,

	/// What this node's helpers take, in planck, for passing a payment on (and what routes
	/// found here assume each intermediary takes).
	#[arg(long = "rsmc-forward-fee", value_name = "PLANCK", default_value_t = 0)]
	pub forward_fee: u128,

	/// The amount, in planck, under which an HTLC is never a reason for this node's helpers to
	/// go on chain: its claim would cost more in fees than it brings, and a peer could force a
	/// liquidation (and the freeze of our share) for a planck. Such an HTLC is settled or
	/// failed off chain, or left. The default, 0.001 VBK, is about a claim's fee.
	#[arg(long = "rsmc-dust-limit", value_name = "PLANCK", default_value_t = 1_000_000_000)]
	pub dust_limit: u128,

	/// Serve as a watchtower for others (`docs/tower.md`): take the waiver secrets clients
	/// this node does not serve hand it with `rsmc_towerUpdate`, and punish a liquidation with
	/// a sheet they revoke, feeless and with no account of its own.
	#[arg(long = "rsmc-tower")]
	pub tower: bool,

	/// The most banks of one client a watchtower for others watches (49 secrets each).
	#[arg(long = "rsmc-tower-max-banks", value_name = "BANKS", default_value_t = 100)]
	pub tower_max_banks: usize,

	/// The watchtower (a node started with `--rsmc-tower`, as `ws://` or `wss://`) this node's
	/// helpers hand each waiver secret of their peers to, as they learn it: it guards their
	/// banks while this node is down.
	#[arg(long = "rsmc-tower-url", value_name = "URL")]
	pub tower_url: Option<String>,

	/// Tests only: serve `rsmc_liquidateRevoked`, which liquidates with a revoked sheet,
	/// `rsmc_testIgnore`, which makes a helper ignore its peer on one bank, and
	/// `rsmc_testHold`, which makes it keep the HTLCs paid to it unresolved.
	#[arg(long = "rsmc-test-cheats")]
	pub test_cheats: bool,
}

#[derive(Debug, clap::Subcommand)]
#[allow(clippy::large_enum_variant)]
pub enum Subcommand {
	/// Key management: generate, inspect and insert keys.
	#[command(subcommand)]
	Key(sc_cli::KeySubcommand),

	/// Build a chain specification.
	BuildSpec(sc_cli::BuildSpecCmd),

	/// Export the chain specification.
	ExportChainSpec(sc_cli::ExportChainSpecCmd),

	/// Validate blocks.
	CheckBlock(sc_cli::CheckBlockCmd),

	/// Export blocks.
	ExportBlocks(sc_cli::ExportBlocksCmd),

	/// Export the state of a given block into a chain spec.
	ExportState(sc_cli::ExportStateCmd),

	/// Import blocks.
	ImportBlocks(sc_cli::ImportBlocksCmd),

	/// Remove the whole chain.
	PurgeChain(sc_cli::PurgeChainCmd),

	/// Revert the chain to a previous state.
	Revert(sc_cli::RevertCmd),

	/// Talk to a running node's helpers: open a bank, pay, close, list banks.
	Rsmc(crate::rsmc_cli::RsmcCmd),

	/// Benchmark the runtime's pallets (`benchmark pallet`, `benchmark machine`). Only in a
	/// node built with `--features runtime-benchmarks`: the benchmarking command line pulls
	/// in some 120 crates a chain that only runs never needs.
	#[cfg(feature = "runtime-benchmarks")]
	#[command(subcommand)]
	Benchmark(frame_benchmarking_cli::BenchmarkCmd),
}

#[cfg(test)]
mod tests {
	use super::*;

	/// M4 of the HTLC review: a delta of 3 or less made the on-chain fallback impossible.
	#[test]
	fn the_htlc_delta_has_a_floor() {
		use clap::Parser;
		#[derive(Parser)]
		struct Flags {
			#[command(flatten)]
			rsmc: HelperParams,
		}
		let parse = |delta: &str| Flags::try_parse_from(["vbank-node", "--rsmc-htlc-delta", delta]);
		let low = parse("11").err().expect("11 is under the floor").to_string();
		assert!(low.contains("12"), "{low}");
		assert_eq!(parse("12").ok().map(|f| f.rsmc.htlc_delta), Some(12));
		assert_eq!(Flags::try_parse_from(["vbank-node"]).unwrap().rsmc.htlc_delta, 40);
	}

	#[test]
	fn consensus_parses_both_forms_and_names_the_problem() {
		assert_eq!("instant-seal".parse(), Ok(Consensus::InstantSeal));
		assert_eq!("manual-seal-6000".parse(), Ok(Consensus::ManualSeal(6000)));
		assert_eq!("none".parse(), Ok(Consensus::None));
		assert_eq!("manual".parse(), Ok(Consensus::Manual));
		for bad in ["manual-seal-", "manual-seal-0", "manual-seal-x", "aura", ""] {
			let err = bad.parse::<Consensus>().unwrap_err();
			assert!(err.contains(&format!("`{bad}`")), "{bad}: {err}");
		}
	}
}
