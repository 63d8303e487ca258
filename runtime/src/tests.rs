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
