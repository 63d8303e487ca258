//! Benchmarks of every call, each on its most expensive path: signatures are made over the
//! `<Bytes>`-wrapped payload, so the pallet checks the raw form in vain before the wrapped one.

use super::*;
use crate::Pallet as VirtualBank;
use frame_benchmarking::v2::*;
use frame_support::traits::{
	fungible::{Inspect, Mutate},
	Get,
};
use frame_system::RawOrigin;
use sp_core::{crypto::KeyTypeId, sr25519};
use sp_runtime::{traits::Zero, AccountId32, MultiSignature};
use vbank_primitives::{close_payload, sheet_payload, waiver_payload, wrap_bytes};

const KEY_TYPE: KeyTypeId = KeyTypeId(*b"vbnk");

/// A key pair in the keystore, and its account funded well beyond what a bank needs.
fn funded_key<T: Config>(name: &str) -> (sr25519::Public, T::AccountId) {
	let public = sp_io::crypto::sr25519_generate(KEY_TYPE, Some(alloc::format!("//{name}").into()));
	let account = AccountId32::from(public);
	let plenty = amount::<T>().saturating_mul(100).saturating_add(T::OpenDeposit::get());
	T::Currency::set_balance(&account, plenty);
	(public, account)
}

/// What each client brings to a benchmarked bank.
fn amount<T: Config>() -> Balance {
	T::Currency::minimum_balance().max(1).saturating_mul(1_000)
}

fn sign(signer: &sr25519::Public, payload: &[u8]) -> MultiSignature {
	sp_io::crypto::sr25519_sign(KEY_TYPE, signer, &wrap_bytes(payload))
		.expect("the key was generated in the keystore")
		.into()
}

/// A running bank between two fresh funded clients.
fn running_bank<T: Config>() -> (ChannelId, [(sr25519::Public, T::AccountId); 2]) {
	let a = funded_key::<T>("bench-a");
	let b = funded_key::<T>("bench-b");
	let channel = NextChannelId::<T>::get();
	let amount = amount::<T>();
	VirtualBank::<T>::open(
		RawOrigin::Signed(a.1.clone()).into(),
		b.1.clone(),
		amount,
		amount,
		T::MinLockPeriod::get(),
	)
	.expect("open");
	VirtualBank::<T>::deposit(RawOrigin::Signed(a.1.clone()).into(), channel).expect("deposit");
	VirtualBank::<T>::deposit(RawOrigin::Signed(b.1.clone()).into(), channel).expect("deposit");
	(channel, [a, b])
}

/// A bank liquidated by client 0 with a sheet moving a quarter of its funds to client 1,
/// and the key pair of that sheet's waiver.
fn liquidated_bank<T: Config>() -> (ChannelId, [(sr25519::Public, T::AccountId); 2], sr25519::Public)
{
	let (channel, clients) = running_bank::<T>();
	let (balances, waiver) = sheet_moving_a_quarter::<T>();
	let payload =
		sheet_payload(&VirtualBank::<T>::genesis_hash(), channel, 1, &balances, &waiver.into());
	VirtualBank::<T>::liquidate(
		RawOrigin::Signed(clients[0].1.clone()).into(),
		channel,
		1,
		balances,
		waiver.into(),
		sign(&clients[1].0, &payload),
	)
	.expect("liquidate");
	(channel, clients, waiver)
}

fn sheet_moving_a_quarter<T: Config>() -> (Balances, sr25519::Public) {
	let amount = amount::<T>();
	let waiver = sp_io::crypto::sr25519_generate(KEY_TYPE, Some(b"//bench-waiver".to_vec()));
	([amount - amount / 4, amount + amount / 4], waiver)
}

#[benchmarks]
mod benchmarks {
	use super::*;

	#[benchmark]
	fn open() {
		let (_, opener) = funded_key::<T>("bench-a");
		let (_, peer) = funded_key::<T>("bench-b");
		let channel = NextChannelId::<T>::get();
		let amount = amount::<T>();
		let lock = T::MaxLockPeriod::get();

		#[extrinsic_call]
		_(RawOrigin::Signed(opener), peer, amount, amount, lock);

		assert_eq!(Channels::<T>::get(channel).map(|b| b.state), Some(ChannelState::Funding));
	}

	#[benchmark]
	fn deposit() {
		let (_, opener) = funded_key::<T>("bench-a");
		let (_, peer) = funded_key::<T>("bench-b");
		let channel = NextChannelId::<T>::get();
		let amount = amount::<T>();
		VirtualBank::<T>::open(
			RawOrigin::Signed(opener.clone()).into(),
			peer.clone(),
			amount,
			amount,
			T::MinLockPeriod::get(),
		)
		.expect("open");
		VirtualBank::<T>::deposit(RawOrigin::Signed(peer).into(), channel).expect("deposit");

		// The second deposit: it also makes the bank run.
		#[extrinsic_call]
		_(RawOrigin::Signed(opener), channel);

		assert_eq!(Channels::<T>::get(channel).map(|b| b.state), Some(ChannelState::Running));
	}

	#[benchmark]
	fn liquidate() {
		let (channel, clients) = running_bank::<T>();
		let (balances, waiver) = sheet_moving_a_quarter::<T>();
		let genesis = VirtualBank::<T>::genesis_hash();
		let signature =
			sign(&clients[1].0, &sheet_payload(&genesis, channel, 1, &balances, &waiver.into()));

		#[extrinsic_call]
		_(RawOrigin::Signed(clients[0].1.clone()), channel, 1, balances, waiver.into(), signature);

		assert_eq!(Channels::<T>::get(channel).map(|b| b.state), Some(ChannelState::Liquidating));
	}

	#[benchmark]
	fn withdraw_by_master() {
		let (channel, clients, _) = liquidated_bank::<T>();
		let unlock_at = Channels::<T>::get(channel)
			.and_then(|b| b.liquidation)
			.map(|l| l.unlock_at)
			.unwrap_or_else(Zero::zero);
		frame_system::Pallet::<T>::set_block_number(unlock_at);

		#[extrinsic_call]
		_(RawOrigin::Signed(clients[0].1.clone()), channel);

		assert!(Channels::<T>::get(channel).is_none());
	}

	#[benchmark]
	fn withdraw_by_peer() {
		let (channel, clients, waiver) = liquidated_bank::<T>();
		let watchtower = funded_key::<T>("bench-watchtower").1;
		let genesis = VirtualBank::<T>::genesis_hash();
		let proof = sign(&waiver, &waiver_payload(&genesis, channel, 1));
		let before = T::Currency::balance(&clients[1].1);

		#[extrinsic_call]
		_(RawOrigin::Signed(watchtower), channel, proof);

		assert!(Channels::<T>::get(channel).is_none());
		assert!(T::Currency::balance(&clients[1].1) > before);
	}

	#[benchmark]
	fn cancel() {
		let (_, opener) = funded_key::<T>("bench-a");
		let (_, peer) = funded_key::<T>("bench-b");
		let channel = NextChannelId::<T>::get();
		let amount = amount::<T>();
		VirtualBank::<T>::open(
			RawOrigin::Signed(opener.clone()).into(),
			peer,
			amount,
			amount,
			T::MinLockPeriod::get(),
		)
		.expect("open");
		VirtualBank::<T>::deposit(RawOrigin::Signed(opener.clone()).into(), channel)
			.expect("deposit");

		#[extrinsic_call]
		_(RawOrigin::Signed(opener), channel);

		assert!(Channels::<T>::get(channel).is_none());
	}

	#[benchmark]
	fn close() {
		let (channel, clients) = running_bank::<T>();
		let (balances, _) = sheet_moving_a_quarter::<T>();
		let payload = close_payload(&VirtualBank::<T>::genesis_hash(), channel, 9, &balances);
		let signatures = [sign(&clients[0].0, &payload), sign(&clients[1].0, &payload)];

		#[extrinsic_call]
		_(RawOrigin::Signed(clients[1].1.clone()), channel, 9, balances, signatures);

		assert!(Channels::<T>::get(channel).is_none());
	}

	impl_benchmark_test_suite!(VirtualBank, crate::mock::new_test_ext(), crate::mock::Test);
}
