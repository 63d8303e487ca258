//! Genesis presets: both fund the well-known dev accounts and make `//Alice` sudo;
//! `development` has `//Alice` as its one authority, `local_testnet` four validators,
//! `//Alice`, `//Bob`, `//Charlie` and `//Dave`.

use crate::{
	AccountId, AuraConfig, AuraId, BalancesConfig, GrandpaConfig, GrandpaId, RuntimeGenesisConfig,
	SudoConfig, UNIT,
};
use alloc::{vec, vec::Vec};
use frame_support::build_struct_json_patch;
use serde_json::Value;
use sp_genesis_builder::{self, PresetId};
use sp_keyring::{Ed25519Keyring, Sr25519Keyring};

/// What each dev account starts with.
pub const DEV_ENDOWMENT: crate::Balance = 1_000_000 * UNIT;

/// A validator: the same well-known seed, as Aura's sr25519 key and GRANDPA's ed25519 one.
pub type Validator = (Sr25519Keyring, Ed25519Keyring);

/// The validators of `--chain local`.
pub const LOCAL_VALIDATORS: [Validator; 4] = [
	(Sr25519Keyring::Alice, Ed25519Keyring::Alice),
	(Sr25519Keyring::Bob, Ed25519Keyring::Bob),
	(Sr25519Keyring::Charlie, Ed25519Keyring::Charlie),
	(Sr25519Keyring::Dave, Ed25519Keyring::Dave),
];

/// The dev chain's one authority.
pub const DEV_VALIDATOR: Validator = (Sr25519Keyring::Alice, Ed25519Keyring::Alice);

fn genesis(validators: &[Validator]) -> Value {
	build_struct_json_patch!(RuntimeGenesisConfig {
		balances: BalancesConfig {
			balances: Sr25519Keyring::iter()
				.map(|k| (k.to_account_id(), DEV_ENDOWMENT))
				.collect::<Vec<(AccountId, _)>>(),
		},
		sudo: SudoConfig { key: Some(Sr25519Keyring::Alice.to_account_id()) },
		aura: AuraConfig {
			authorities: validators.iter().map(|(aura, _)| AuraId::from(aura.public())).collect(),
		},
		grandpa: GrandpaConfig {
			authorities: validators
				.iter()
				.map(|(_, grandpa)| (GrandpaId::from(grandpa.public()), 1))
				.collect(),
		},
	})
}

/// The preset `id`, serialised.
pub fn get_preset(id: &PresetId) -> Option<Vec<u8>> {
	let patch = match id.as_ref() {
		sp_genesis_builder::DEV_RUNTIME_PRESET => genesis(&[DEV_VALIDATOR]),
		sp_genesis_builder::LOCAL_TESTNET_RUNTIME_PRESET => genesis(&LOCAL_VALIDATORS),
		_ => return None,
	};
	Some(
		serde_json::to_string(&patch)
			.expect("serialization to json is expected to work. qed.")
			.into_bytes(),
	)
}

/// The presets this runtime offers.
pub fn preset_names() -> Vec<PresetId> {
	vec![
		PresetId::from(sp_genesis_builder::DEV_RUNTIME_PRESET),
		PresetId::from(sp_genesis_builder::LOCAL_TESTNET_RUNTIME_PRESET),
	]
}
