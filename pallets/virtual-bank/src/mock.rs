//! A test runtime with `pallet_balances`, real key pairs for the clients, and a
//! `build_and_execute` that checks the pallet's money invariant after every test.

use crate as pallet_virtual_bank;
use frame_support::{
	derive_impl, parameter_types,
	traits::fungible::{Inspect, InspectHold},
};
use sp_core::{sr25519, Pair, H256};
use sp_keystore::{testing::MemoryKeystore, KeystoreExt};
use sp_runtime::{traits::IdentityLookup, AccountId32, BuildStorage, MultiSignature};
use std::{cell::RefCell, collections::BTreeMap, sync::Arc};
use vbank_primitives::{Balance, ChannelId, Nonce};

pub type AccountId = AccountId32;
/// Both clients' shares of a bank.
pub type Shares = [Balance; 2];
type Block = frame_system::mocking::MockBlock<Test>;

#[frame_support::runtime]
mod runtime {
	#[runtime::runtime]
	#[runtime::derive(
		RuntimeCall,
		RuntimeEvent,
		RuntimeError,
		RuntimeOrigin,
		RuntimeTask,
		RuntimeHoldReason,
		RuntimeFreezeReason
	)]
	pub struct Test;

	#[runtime::pallet_index(0)]
	pub type System = frame_system;
	#[runtime::pallet_index(1)]
	pub type Balances = pallet_balances;
	#[runtime::pallet_index(2)]
	pub type VirtualBank = pallet_virtual_bank;
}

#[derive_impl(frame_system::config_preludes::TestDefaultConfig)]
impl frame_system::Config for Test {
	type Block = Block;
	type AccountId = AccountId;
	type Lookup = IdentityLookup<AccountId>;
	type AccountData = pallet_balances::AccountData<Balance>;
}

#[derive_impl(pallet_balances::config_preludes::TestDefaultConfig)]
impl pallet_balances::Config for Test {
	type Balance = Balance;
	type AccountStore = System;
	type ExistentialDeposit = ExistentialDeposit;
}

pub const MIN_LOCK: u64 = 5;
pub const MAX_LOCK: u64 = 1_000;
pub const BANK_DEPOSIT: Balance = 10;
/// A real existential deposit, so that the dust rules are exercised.
pub const ED: Balance = 5;
/// Small, so that tests fill blocks of the release schedule.
pub const RELEASES_PER_BLOCK: u32 = 3;
/// The most HTLCs a sheet carries.
pub const MAX_HTLCS: u32 = 30;
/// How long a shown preimage is remembered.
pub const PREIMAGE_RETENTION: u64 = 20;
/// Small, so that tests fill blocks of the preimages to forget.
pub const PREIMAGES_PER_BLOCK: u32 = 2;
/// What every endowed account starts with.
pub const ENDOWMENT: Balance = 1_000_000;

parameter_types! {
	pub static MinLockPeriod: u64 = MIN_LOCK;
	pub static MaxLockPeriod: u64 = MAX_LOCK;
	pub static OpenDeposit: Balance = BANK_DEPOSIT;
	pub static ExistentialDeposit: Balance = ED;
	pub const MaxReleasesPerBlock: u32 = RELEASES_PER_BLOCK;
	pub const MaxHtlcs: u32 = MAX_HTLCS;
	pub const PreimageRetention: u64 = PREIMAGE_RETENTION;
	pub const MaxPreimagesPerBlock: u32 = PREIMAGES_PER_BLOCK;
}

impl pallet_virtual_bank::Config for Test {
	type RuntimeHoldReason = RuntimeHoldReason;
	type Currency = Balances;
	type MinLockPeriod = MinLockPeriod;
	type MaxLockPeriod = MaxLockPeriod;
	type OpenDeposit = OpenDeposit;
	type MaxReleasesPerBlock = MaxReleasesPerBlock;
	type MaxHtlcs = MaxHtlcs;
	type PreimageRetention = PreimageRetention;
	type MaxPreimagesPerBlock = MaxPreimagesPerBlock;
	type WeightInfo = ();
}

thread_local! {
	/// Deriving from the dev phrase runs PBKDF2, slow in a debug build: derive each name once.
	static PAIRS: RefCell<BTreeMap<String, sr25519::Pair>> = Default::default();
}

/// The key pair of a well-known test account (`//Alice`, `//Bob`, ...).
pub fn pair(name: &str) -> sr25519::Pair {
	PAIRS.with_borrow_mut(|pairs| {
		pairs
			.entry(name.into())
			.or_insert_with(|| {
				sr25519::Pair::from_string(&format!("//{name}"), None).expect("a valid dev URI")
			})
			.clone()
	})
}

/// The account of a well-known test account.
pub fn account(name: &str) -> AccountId {
	pair(name).public().into()
}

/// Accounts endowed with [`ENDOWMENT`] at genesis.
pub const ENDOWED: [&str; 5] = ["Alice", "Bob", "Charlie", "Dave", "Eve"];

pub fn alice() -> AccountId {
	account("Alice")
}
pub fn bob() -> AccountId {
	account("Bob")
}
pub fn charlie() -> AccountId {
	account("Charlie")
}

/// `signer`'s signature over the liquidation payload of a sheet on this chain.
pub fn sign_sheet(
	signer: &sr25519::Pair,
	channel: ChannelId,
	nonce: Nonce,
	balances: Shares,
	waiver: &AccountId,
) -> MultiSignature {
	let payload = vbank_primitives::sheet_payload(
		&VirtualBank::genesis_hash(),
		channel,
		nonce,
		&balances,
		waiver,
	);
	signer.sign(&payload).into()
}

/// `signer`'s signature over the payload of a sheet with `htlcs` pending on this chain.
pub fn sign_htlc_sheet(
	signer: &sr25519::Pair,
	channel: ChannelId,
	nonce: Nonce,
	balances: Shares,
	waiver: &AccountId,
	htlcs: &[vbank_primitives::Htlc<u64>],
) -> MultiSignature {
	let payload = vbank_primitives::htlc_sheet_payload(
		&VirtualBank::genesis_hash(),
		channel,
		nonce,
		&balances,
		waiver,
		htlcs,
	);
	signer.sign(&payload).into()
}

/// `waiver`'s signature over the waiver payload of sheet `nonce` on this chain.
pub fn sign_waiver(waiver: &sr25519::Pair, channel: ChannelId, nonce: Nonce) -> MultiSignature {
	let payload = vbank_primitives::waiver_payload(&VirtualBank::genesis_hash(), channel, nonce);
	waiver.sign(&payload).into()
}

/// `signer`'s signature over the close payload on this chain.
pub fn sign_close(
	signer: &sr25519::Pair,
	channel: ChannelId,
	nonce: Nonce,
	balances: Shares,
) -> MultiSignature {
	let payload =
		vbank_primitives::close_payload(&VirtualBank::genesis_hash(), channel, nonce, &balances);
	signer.sign(&payload).into()
}

/// `signer`'s signature over the splice payload on this chain.
pub fn sign_splice(
	signer: &sr25519::Pair,
	channel: ChannelId,
	nonce: Nonce,
	amounts_in: Shares,
	amounts_out: Shares,
) -> MultiSignature {
	let genesis = VirtualBank::genesis_hash();
	let payload =
		vbank_primitives::splice_payload(&genesis, channel, nonce, &amounts_in, &amounts_out);
	signer.sign(&payload).into()
}

pub fn free(who: &AccountId) -> Balance {
	Balances::balance(who)
}

pub fn held(who: &AccountId) -> Balance {
	Balances::total_balance_on_hold(who)
}

/// The genesis of every test: the [`ENDOWED`] accounts funded, at block 1.
pub fn new_test_ext() -> sp_io::TestExternalities {
	let mut storage = frame_system::GenesisConfig::<Test>::default().build_storage().unwrap();
	pallet_balances::GenesisConfig::<Test> {
		balances: ENDOWED.iter().map(|name| (account(name), ENDOWMENT)).collect(),
		..Default::default()
	}
	.assimilate_storage(&mut storage)
	.unwrap();
	let mut ext = sp_io::TestExternalities::new(storage);
	// Benchmarks make their signing keys in the keystore, as they do on a node.
	ext.register_extension(KeystoreExt(Arc::new(MemoryKeystore::new())));
	ext.execute_with(|| {
		System::set_block_number(1);
		// As on a real chain, where block 1's initialisation records block 0's hash.
		frame_system::BlockHash::<Test>::insert(0, H256::repeat_byte(0x47));
	});
	ext
}

/// Run `test` on a fresh chain, then check the pallet's invariants and that no funds were
/// created or destroyed.
pub fn build_and_execute(test: impl FnOnce()) {
	new_test_ext().execute_with(|| {
		let issuance = Balances::total_issuance();
		test();
		check_invariants(issuance);
	});
}

/// The pallet's `try_state`, plus what it can't see on its own: the total issuance is still
/// `issuance`, every account's funds add up to it, and no account holds funds under this
/// pallet's reasons without being a client of some bank.
pub fn check_invariants(issuance: Balance) {
	VirtualBank::do_try_state().expect("try_state");
	assert_eq!(Balances::total_issuance(), issuance, "funds created or destroyed");
	let mut accounted: Balance = 0;
	for who in frame_system::Account::<Test>::iter_keys() {
		accounted += Balances::total_balance(&who);
		if VirtualBank::channels_of(&who).is_empty() {
			assert_eq!(held(&who), 0, "{who} holds funds for no bank");
		}
	}
	assert_eq!(accounted, issuance, "the accounts' funds do not add up to the issuance");
}

/// Advance to block `n`.
pub fn run_to_block(n: u64) {
	System::run_to_block::<AllPalletsWithSystem>(n);
}

/// The pallet's events since the last call, oldest first.
pub fn bank_events() -> Vec<pallet_virtual_bank::Event<Test>> {
	let events = System::events()
		.into_iter()
		.filter_map(|record| match record.event {
			RuntimeEvent::VirtualBank(event) => Some(event),
			_ => None,
		})
		.collect();
	System::reset_events();
	events
}
