//! The vbank runtime: balances, fees, sudo and the virtual bank pallet (as `VirtualBank`, so
//! polkadot.js shows `api.tx.virtualBank`), with Aura and GRANDPA for a network of validators.
//! The same runtime serves the one-authority dev chain, whose node seals a block per
//! transaction, and `--chain local`, four validators taking turns with GRANDPA finality.

#![cfg_attr(not(feature = "std"), no_std)]

#[cfg(feature = "std")]
include!(concat!(env!("OUT_DIR"), "/wasm_binary.rs"));

extern crate alloc;

use alloc::vec::Vec;

pub mod apis;
pub mod configs;
pub mod genesis_config_presets;
#[cfg(all(test, feature = "try-runtime"))]
mod tests;

use sp_runtime::{
	generic,
	traits::{BlakeTwo256, IdentifyAccount, Verify},
	MultiAddress, MultiSignature,
};
use sp_version::RuntimeVersion;

pub use sp_consensus_aura::sr25519::AuthorityId as AuraId;
pub use sp_consensus_grandpa::AuthorityId as GrandpaId;
pub use vbank_primitives as primitives;

/// The length of an Aura slot: a validator network makes a block every three seconds.
pub const SLOT_DURATION: u64 = 3_000;
/// The most validators Aura and GRANDPA take.
pub const MAX_AUTHORITIES: u32 = 32;

/// Block numbers.
pub type BlockNumber = u32;
/// Signatures of transactions, and of balance sheets.
pub type Signature = MultiSignature;
/// Accounts: the 32-byte public key of a `MultiSigner`.
pub type AccountId = <<Signature as Verify>::Signer as IdentifyAccount>::AccountId;
/// Amounts.
pub type Balance = vbank_primitives::Balance;
/// Transaction counters.
pub type Nonce = u32;
/// Block and state hashes.
pub type Hash = sp_core::H256;

/// One unit of the chain's currency (12 decimals).
pub const UNIT: Balance = 1_000_000_000_000;
/// The smallest balance an account may hold.
pub const EXISTENTIAL_DEPOSIT: Balance = UNIT / 1_000;

pub type Address = MultiAddress<AccountId, ()>;
pub type Header = generic::Header<BlockNumber, BlakeTwo256>;
pub type Block = generic::Block<Header, UncheckedExtrinsic>;
/// The checks every transaction goes through. `AuthorizeCall` comes first: a general
/// transaction (no signer) whose call authorizes itself, such as a penalty carrying its proof
/// (`VirtualBank::withdraw_by_peer`), gets the `Authorized` origin there, and then pays no
/// fee and needs no nonce.
pub type TxExtension = (
	frame_system::AuthorizeCall<Runtime>,
	frame_system::CheckNonZeroSender<Runtime>,
	frame_system::CheckSpecVersion<Runtime>,
	frame_system::CheckTxVersion<Runtime>,
	frame_system::CheckGenesis<Runtime>,
	frame_system::CheckEra<Runtime>,
	frame_system::CheckNonce<Runtime>,
	frame_system::CheckWeight<Runtime>,
	pallet_transaction_payment::ChargeTransactionPayment<Runtime>,
);
pub type UncheckedExtrinsic =
	generic::UncheckedExtrinsic<Address, RuntimeCall, Signature, TxExtension>;
pub type SignedPayload = generic::SignedPayload<RuntimeCall, TxExtension>;

/// The transaction extension of a transaction sent as the `nonce`-th of its account:
/// immortal, no tip.
#[cfg(feature = "std")]
fn tx_extension(nonce: Nonce) -> TxExtension {
	(
		frame_system::AuthorizeCall::new(),
		frame_system::CheckNonZeroSender::new(),
		frame_system::CheckSpecVersion::new(),
		frame_system::CheckTxVersion::new(),
		frame_system::CheckGenesis::new(),
		frame_system::CheckEra::from(generic::Era::Immortal),
		frame_system::CheckNonce::from(nonce),
		frame_system::CheckWeight::new(),
		pallet_transaction_payment::ChargeTransactionPayment::from(0),
	)
}

/// `call` signed by `signer` as its `nonce`-th transaction on the chain `genesis_hash`:
/// immortal, no tip. With [`general_extrinsic`], the one place clients in Rust (the node's
/// helpers, the tests) build a transaction.
#[cfg(feature = "std")]
pub fn signed_extrinsic(
	signer: &sp_core::sr25519::Pair,
	call: RuntimeCall,
	nonce: Nonce,
	genesis_hash: Hash,
) -> UncheckedExtrinsic {
	use codec::Encode;
	use sp_core::Pair;
	let extension = tx_extension(nonce);
	let implicit = (
		(),
		(),
		VERSION.spec_version,
		VERSION.transaction_version,
		genesis_hash,
		genesis_hash,
		(),
		(),
		(),
	);
	let payload = SignedPayload::from_raw(call.clone(), extension.clone(), implicit);
	let signature = payload.using_encoded(|bytes| signer.sign(bytes));
	UncheckedExtrinsic::new_signed(
		call,
		MultiAddress::Id(AccountId::from(signer.public())),
		MultiSignature::Sr25519(signature),
		extension,
	)
}

/// `call` as a general transaction: no signer, no fee, no nonce. Valid only for a call that
/// authorizes itself (`VirtualBank::withdraw_by_peer`); the pool refuses any other.
#[cfg(feature = "std")]
pub fn general_extrinsic(call: RuntimeCall) -> UncheckedExtrinsic {
	UncheckedExtrinsic::new_transaction(call, tx_extension(0))
}
pub type Executive = frame_executive::Executive<
	Runtime,
	Block,
	frame_system::ChainContext<Runtime>,
	Runtime,
	AllPalletsWithSystem,
>;

/// Types the node needs without knowing the runtime's extrinsic format.
pub mod opaque {
	use super::*;
	pub use sp_runtime::OpaqueExtrinsic as UncheckedExtrinsic;
	pub type Block = generic::Block<Header, UncheckedExtrinsic>;

	sp_runtime::impl_opaque_keys! {
		/// A validator's keys: Aura's to author blocks, GRANDPA's to vote on finality.
		pub struct SessionKeys {
			pub aura: Aura,
			pub grandpa: Grandpa,
		}
	}
}

#[sp_version::runtime_version]
pub const VERSION: RuntimeVersion = RuntimeVersion {
	spec_name: alloc::borrow::Cow::Borrowed("vbank"),
	impl_name: alloc::borrow::Cow::Borrowed("vbank"),
	authoring_version: 1,
	spec_version: 101,
	impl_version: 1,
	apis: apis::RUNTIME_API_VERSIONS,
	transaction_version: 1,
	system_version: 1,
};

#[frame_support::runtime]
mod runtime {
	#[runtime::runtime]
	#[runtime::derive(
		RuntimeCall,
		RuntimeEvent,
		RuntimeError,
		RuntimeOrigin,
		RuntimeFreezeReason,
		RuntimeHoldReason,
		RuntimeSlashReason,
		RuntimeLockId,
		RuntimeTask,
		RuntimeViewFunction
	)]
	pub struct Runtime;

	#[runtime::pallet_index(0)]
	pub type System = frame_system;
	#[runtime::pallet_index(1)]
	pub type Timestamp = pallet_timestamp;
	#[runtime::pallet_index(2)]
	pub type Balances = pallet_balances;
	#[runtime::pallet_index(3)]
	pub type TransactionPayment = pallet_transaction_payment;
	#[runtime::pallet_index(4)]
	pub type Sudo = pallet_sudo;
	#[runtime::pallet_index(5)]
	pub type VirtualBank = pallet_virtual_bank;
	#[runtime::pallet_index(6)]
	pub type Aura = pallet_aura;
	#[runtime::pallet_index(7)]
	pub type Grandpa = pallet_grandpa;
}
