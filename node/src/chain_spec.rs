//! The chain specifications the node knows by name.

use sc_service::{ChainType, Properties};
use sp_genesis_builder::{DEV_RUNTIME_PRESET, LOCAL_TESTNET_RUNTIME_PRESET};
use vbank_runtime::WASM_BINARY;

pub type ChainSpec = sc_service::GenericChainSpec;

fn properties() -> Properties {
	let mut properties = Properties::new();
	properties.insert("tokenSymbol".into(), "VBK".into());
	properties.insert("tokenDecimals".into(), 12.into());
	properties.insert("ss58Format".into(), 42.into());
	properties
}

fn spec(name: &str, id: &str, chain_type: ChainType, preset: &str) -> Result<ChainSpec, String> {
	let wasm = WASM_BINARY.ok_or("the runtime's Wasm binary was not built (SKIP_WASM_BUILD?)")?;
	Ok(ChainSpec::builder(wasm, Default::default())
		.with_name(name)
		.with_id(id)
		.with_chain_type(chain_type)
		.with_genesis_config_preset_name(preset)
		.with_properties(properties())
		.build())
}

/// `--dev`: one node, the dev accounts funded, `//Alice` sudo.
pub fn development() -> Result<ChainSpec, String> {
	spec("Development", "dev", ChainType::Development, DEV_RUNTIME_PRESET)
}

/// `--chain local`: the same accounts, as a local testnet.
pub fn local_testnet() -> Result<ChainSpec, String> {
	spec("Local Testnet", "local_testnet", ChainType::Local, LOCAL_TESTNET_RUNTIME_PRESET)
}
