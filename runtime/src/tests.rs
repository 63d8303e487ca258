//! The runtime's `try-runtime` hooks, wired: `try_state` of every pallet runs the virtual
//! bank's money invariant, and catches funds held for no bank.

use crate::*;
use frame_support::traits::{fungible::MutateHold, TryState, TryStateSelect};
use sp_keyring::Sr25519Keyring::{Alice, Bob};
use sp_runtime::BuildStorage;

fn chain() -> sp_io::TestExternalities {
	let mut storage = frame_system::GenesisConfig::<Runtime>::default().build_storage().unwrap();
	pallet_balances::GenesisConfig::<Runtime> {
		balances: [Alice, Bob].iter().map(|k| (k.to_account_id(), 1_000 * UNIT)).collect(),
		..Default::default()
	}
	.assimilate_storage(&mut storage)
	.unwrap();
	// As on every chain of this runtime: Aura's `try_state` wants an authority.
	pallet_aura::GenesisConfig::<Runtime> { authorities: vec![AuraId::from(Alice.public())] }
		.assimilate_storage(&mut storage)
		.unwrap();
	let mut ext = sp_io::TestExternalities::new(storage);
	ext.execute_with(|| System::set_block_number(1));
	ext
}

#[test]
fn try_state_checks_the_banks_and_catches_funds_held_for_no_bank() {
	chain().execute_with(|| {
		let alice = RuntimeOrigin::signed(Alice.to_account_id());
		VirtualBank::open(alice.clone(), Bob.to_account_id(), 10 * UNIT, 0, 5).unwrap();
		VirtualBank::deposit(alice, 0).unwrap();
		AllPalletsWithSystem::try_state(1, TryStateSelect::All).expect("the bank's funds add up");

		let reason =
			RuntimeHoldReason::VirtualBank(pallet_virtual_bank::HoldReason::ChannelDeposit);
		Balances::hold(&reason, &Bob.to_account_id(), UNIT).unwrap();
		assert!(AllPalletsWithSystem::try_state(1, TryStateSelect::All).is_err());
	});
}

/// Version 3 of the bank API: version 2's HTLCs (`docs/htlc.md`), the runtime building a
/// sheet's payload with HTLCs as `vbank_primitives` does (without any, exactly the plain
/// sheet's) and showing a bank's pending HTLCs; and the splices (`docs/splice.md`), their
/// payload and the nonce of a bank's last one.
#[test]
fn the_bank_api_v3_builds_htlc_and_splice_payloads_and_shows_pending_htlcs() {
	use sp_api::RuntimeApiInfo;
	use vbank_primitives::{
		runtime_decl_for_virtual_bank_api::VirtualBankApiV3, Htlc, VirtualBankApi,
	};
	let id = <dyn VirtualBankApi<Block, AccountId, BlockNumber>>::ID;
	assert_eq!(<dyn VirtualBankApi<Block, AccountId, BlockNumber>>::VERSION, 3);
	assert!(VERSION.apis.contains(&(id, 3)));
	chain().execute_with(|| {
		let waiver = Bob.to_account_id();
		assert_eq!(
			Runtime::htlc_sheet_payload(3, 1, [1, 2], waiver.clone(), vec![]),
			Runtime::sheet_payload(3, 1, [1, 2], waiver.clone())
		);
		let htlc = Htlc { from: 1, amount: 7, hashlock: [9; 32].into(), expiry: 40 };
		let genesis = VirtualBank::genesis_hash();
		assert_eq!(
			Runtime::htlc_sheet_payload(3, 1, [1, 2], waiver.clone(), vec![htlc.clone()]),
			vbank_primitives::htlc_sheet_payload(&genesis, 3, 1, &[1, 2], &waiver, &[htlc])
		);
		assert!(Runtime::htlcs(3).is_empty());
		assert_eq!(
			Runtime::splice_payload(3, 4, [5, 0], [0, 6]),
			vbank_primitives::splice_payload(&genesis, 3, 4, &[5, 0], &[0, 6])
		);
		assert_eq!(Runtime::spliced_at(3), None);
	});
}

/// Each preset's validators: the dev chain's one authority, `--chain local`'s four, each with
/// an Aura and a GRANDPA key, and the dev accounts funded in both.
#[test]
fn the_presets_name_their_validators() {
	use crate::genesis_config_presets::{get_preset, DEV_VALIDATOR, LOCAL_VALIDATORS};
	for (preset, validators) in [
		(sp_genesis_builder::DEV_RUNTIME_PRESET, &[DEV_VALIDATOR][..]),
		(sp_genesis_builder::LOCAL_TESTNET_RUNTIME_PRESET, &LOCAL_VALIDATORS[..]),
	] {
		let patch = get_preset(&preset.into()).expect("the runtime offers the preset");
		// As the node builds a chain spec: the preset patches the default configuration.
		let mut config = serde_json::to_value(RuntimeGenesisConfig::default()).unwrap();
		merge(&mut config, serde_json::from_slice(&patch).unwrap());
		sp_io::TestExternalities::default().execute_with(|| {
			frame_support::genesis_builder_helper::build_state::<RuntimeGenesisConfig>(
				serde_json::to_vec(&config).unwrap(),
			)
			.expect("the preset builds");
			let aura: Vec<_> = validators.iter().map(|(k, _)| AuraId::from(k.public())).collect();
			assert_eq!(pallet_aura::Authorities::<Runtime>::get().into_inner(), aura, "{preset}");
			let grandpa: Vec<_> =
				validators.iter().map(|(_, k)| (GrandpaId::from(k.public()), 1)).collect();
			assert_eq!(Grandpa::grandpa_authorities(), grandpa, "{preset}");
			assert_eq!(
				Balances::free_balance(Bob.to_account_id()),
				genesis_config_presets::DEV_ENDOWMENT
			);
		});
	}
}

/// `patch` laid over `base`, object by object.
fn merge(base: &mut serde_json::Value, patch: serde_json::Value) {
	match (base, patch) {
		(serde_json::Value::Object(base), serde_json::Value::Object(patch)) => {
			for (key, value) in patch {
				merge(base.entry(key).or_insert(serde_json::Value::Null), value);
			}
		},
		(base, patch) => *base = patch,
	}
}
