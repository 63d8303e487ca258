//! Weights for `pallet_virtual_bank`.
//!
//! HAND ESTIMATES, NOT GENERATED. The node that runs `benchmark pallet` does not exist yet;
//! until it does, these figures are deliberately conservative guesses: 25 µs of execution per
//! storage access plus 150 µs per signature check (each call may check the raw payload and
//! then its `<Bytes>`-wrapped form), and a proof size of one full `Channel` record (about
//! 250 bytes) per bank read. They are to be replaced with the output of:
//!
//! ```text
//! vbank-node benchmark pallet --runtime <wasm> --pallet pallet_virtual_bank \
//!     --extrinsic '*' --steps 50 --repeat 20 --output pallets/virtual-bank/src/weights.rs
//! ```

#![cfg_attr(rustfmt, rustfmt_skip)]
#![allow(unused_parens)]
#![allow(unused_imports)]
#![allow(missing_docs)]

use frame_support::{traits::Get, weights::{Weight, constants::RocksDbWeight}};
use core::marker::PhantomData;

/// Weight functions needed for `pallet_virtual_bank`.
pub trait WeightInfo {
	fn open() -> Weight;
	fn deposit() -> Weight;
	fn liquidate() -> Weight;
	fn withdraw_by_master() -> Weight;
	fn withdraw_by_peer() -> Weight;
	fn cancel() -> Weight;
	fn close() -> Weight;
}

/// Weights for `pallet_virtual_bank` using the runtime's database weights.
pub struct SubstrateWeight<T>(PhantomData<T>);
impl<T: frame_system::Config> WeightInfo for SubstrateWeight<T> {
	/// Storage: `VirtualBank::NextChannelId` (r:1 w:1), `VirtualBank::ChannelsOf` (w:2),
	/// `VirtualBank::Channels` (w:1), `Balances::Holds` (r:1 w:1), `System::Account` (r:1 w:1)
	fn open() -> Weight {
		Weight::from_parts(60_000_000, 4_000)
			.saturating_add(T::DbWeight::get().reads(3_u64))
			.saturating_add(T::DbWeight::get().writes(6_u64))
	}
	/// Storage: `VirtualBank::Channels` (r:1 w:1), `Balances::Holds` (r:1 w:1),
	/// `System::Account` (r:1 w:1)
	fn deposit() -> Weight {
		Weight::from_parts(50_000_000, 4_000)
			.saturating_add(T::DbWeight::get().reads(3_u64))
			.saturating_add(T::DbWeight::get().writes(3_u64))
	}
	/// Storage: `System::BlockHash` (r:1), `VirtualBank::Channels` (r:1 w:1),
	/// `Balances::Holds` (r:2 w:2), `System::Account` (r:2 w:2)
	fn liquidate() -> Weight {
		Weight::from_parts(400_000_000, 8_000)
			.saturating_add(T::DbWeight::get().reads(6_u64))
			.saturating_add(T::DbWeight::get().writes(5_u64))
	}
	/// Storage: `VirtualBank::Channels` (r:1 w:1), `VirtualBank::ChannelsOf` (w:2),
	/// `Balances::Holds` (r:1 w:1), `System::Account` (r:1 w:1)
	fn withdraw_by_master() -> Weight {
		Weight::from_parts(80_000_000, 4_000)
			.saturating_add(T::DbWeight::get().reads(3_u64))
			.saturating_add(T::DbWeight::get().writes(5_u64))
	}
	/// Storage: `System::BlockHash` (r:1), `VirtualBank::Channels` (r:1 w:1),
	/// `VirtualBank::ChannelsOf` (w:2), `Balances::Holds` (r:2 w:2), `System::Account` (r:2 w:2)
	fn withdraw_by_peer() -> Weight {
		Weight::from_parts(400_000_000, 8_000)
			.saturating_add(T::DbWeight::get().reads(6_u64))
			.saturating_add(T::DbWeight::get().writes(7_u64))
	}
	/// Storage: `VirtualBank::Channels` (r:1 w:1), `VirtualBank::ChannelsOf` (w:2),
	/// `Balances::Holds` (r:2 w:2), `System::Account` (r:2 w:2)
	fn cancel() -> Weight {
		Weight::from_parts(80_000_000, 8_000)
			.saturating_add(T::DbWeight::get().reads(5_u64))
			.saturating_add(T::DbWeight::get().writes(7_u64))
	}
	/// Storage: `System::BlockHash` (r:1), `VirtualBank::Channels` (r:1 w:1),
	/// `VirtualBank::ChannelsOf` (w:2), `Balances::Holds` (r:2 w:2), `System::Account` (r:2 w:2)
	fn close() -> Weight {
		Weight::from_parts(700_000_000, 8_000)
			.saturating_add(T::DbWeight::get().reads(6_u64))
			.saturating_add(T::DbWeight::get().writes(7_u64))
	}
}

// For backwards compatibility and tests.
impl WeightInfo for () {
	fn open() -> Weight {
		Weight::from_parts(60_000_000, 4_000)
			.saturating_add(RocksDbWeight::get().reads(3_u64))
			.saturating_add(RocksDbWeight::get().writes(6_u64))
	}
	fn deposit() -> Weight {
		Weight::from_parts(50_000_000, 4_000)
			.saturating_add(RocksDbWeight::get().reads(3_u64))
			.saturating_add(RocksDbWeight::get().writes(3_u64))
	}
	fn liquidate() -> Weight {
		Weight::from_parts(400_000_000, 8_000)
			.saturating_add(RocksDbWeight::get().reads(6_u64))
			.saturating_add(RocksDbWeight::get().writes(5_u64))
	}
	fn withdraw_by_master() -> Weight {
		Weight::from_parts(80_000_000, 4_000)
			.saturating_add(RocksDbWeight::get().reads(3_u64))
			.saturating_add(RocksDbWeight::get().writes(5_u64))
	}
	fn withdraw_by_peer() -> Weight {
		Weight::from_parts(400_000_000, 8_000)
			.saturating_add(RocksDbWeight::get().reads(6_u64))
			.saturating_add(RocksDbWeight::get().writes(7_u64))
	}
	fn cancel() -> Weight {
		Weight::from_parts(80_000_000, 8_000)
			.saturating_add(RocksDbWeight::get().reads(5_u64))
			.saturating_add(RocksDbWeight::get().writes(7_u64))
	}
	fn close() -> Weight {
		Weight::from_parts(700_000_000, 8_000)
			.saturating_add(RocksDbWeight::get().reads(6_u64))
			.saturating_add(RocksDbWeight::get().writes(7_u64))
	}
}
