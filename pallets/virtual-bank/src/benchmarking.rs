//! Benchmarks of every call, each on its most expensive path: signatures are made over the
//! `<Bytes>`-wrapped payload, so the pallet checks the raw form in vain before the wrapped one;
//! the master is the client whose payout touches the most accounts; `liquidate` searches the
//! release schedule through full blocks; `on_initialize` releases a full block of banks, each
//! between accounts of its own; an HTLC is paid to the peer, out of a bank whose lock has
//! ended, as the last one pending, so that the bank is removed with it.

use super::*;
use crate::Pallet as VirtualBank;
use frame_benchmarking::v2::*;
use frame_support::{
	traits::{
		fungible::{Inspect, Mutate},
		Authorize, Get, Hooks,
	},
	BoundedVec,
};
use frame_system::pallet_prelude::BlockNumberFor;
use frame_system::RawOrigin;
use sp_core::{crypto::KeyTypeId, sr25519, H256};
use sp_runtime::{transaction_validity::TransactionSource, AccountId32, MultiSignature};
use vbank_primitives::{
	close_payload, hashlock, htlc_sheet_payload, sheet_payload, splice_payload, waiver_payload,
	wrap_bytes, Htlc, Preimage,
};

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

type Client<T> = (sr25519::Public, <T as frame_system::Config>::AccountId);

/// A running bank between two fresh funded clients.
fn running_bank<T: Config>() -> (ChannelId, [Client<T>; 2]) {
	running_bank_between::<T>(funded_key::<T>("bench-a"), funded_key::<T>("bench-b"))
}

/// A running bank between `a` and `b`, funded already.
fn running_bank_between<T: Config>(a: Client<T>, b: Client<T>) -> (ChannelId, [Client<T>; 2]) {
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

/// A bank liquidated by client `master` with a sheet moving a quarter of its funds to client
/// 1, and the key pair of that sheet's waiver.
fn liquidated_bank<T: Config>(master: usize) -> (ChannelId, [Client<T>; 2], sr25519::Public) {
	let (channel, clients) = running_bank::<T>();
	let waiver = liquidate_with_a_quarter_moved::<T>(channel, &clients, master);
	(channel, clients, waiver)
}

/// Liquidate `channel` as client `master`, with a sheet moving a quarter of its funds to
/// client 1: the key pair of that sheet's waiver.
fn liquidate_with_a_quarter_moved<T: Config>(
	channel: ChannelId,
	clients: &[Client<T>; 2],
	master: usize,
) -> sr25519::Public {
	let (balances, waiver) = sheet_moving_a_quarter::<T>();
	let payload =
		sheet_payload(&VirtualBank::<T>::genesis_hash(), channel, 1, &balances, &waiver.into());
	VirtualBank::<T>::liquidate(
		RawOrigin::Signed(clients[master].1.clone()).into(),
		channel,
		1,
		balances,
		waiver.into(),
		sign(&clients[1 - master].0, &payload),
	)
	.expect("liquidate");
	waiver
}

/// The block a bank liquidated now would be released in, if the schedule had room.
fn lock_end<T: Config>() -> BlockNumberFor<T> {
	frame_system::Pallet::<T>::block_number() + T::MinLockPeriod::get()
}

/// Fill the release schedule of `blocks` blocks from `from` with banks that do not exist.
fn fill_schedule<T: Config>(from: BlockNumberFor<T>, blocks: u32) {
	let full: alloc::vec::Vec<ChannelId> =
		(0..T::MaxReleasesPerBlock::get()).map(|i| u64::MAX - u64::from(i)).collect();
	let full = BoundedVec::<_, T::MaxReleasesPerBlock>::try_from(full).expect("fits its bound");
	for i in 0..blocks {
		Releases::<T>::insert(from + i.into(), full.clone());
	}
}

fn sheet_moving_a_quarter<T: Config>() -> (Balances, sr25519::Public) {
	let amount = amount::<T>();
	let waiver = sp_io::crypto::sr25519_generate(KEY_TYPE, Some(b"//bench-waiver".to_vec()));
	([amount - amount / 4, amount + amount / 4], waiver)
}

/// `h` HTLCs of one planck each from client 0 to client 1, with the preimages `[i; 32]`,
/// expiring after the lock ends.
fn htlcs<T: Config>(h: u32) -> HtlcsOf<T> {
	let expiry = lock_end::<T>() + 10u32.into();
	let htlcs = (0..h)
		.map(|i| Htlc { from: 0, amount: 1, hashlock: hashlock(&preimage(i)), expiry })
		.collect::<alloc::vec::Vec<_>>();
	BoundedVec::try_from(htlcs).expect("at most MaxHtlcs")
}

fn preimage(i: u32) -> Preimage {
	let mut preimage = [0; 32];
	preimage[..4].copy_from_slice(&i.to_le_bytes());
	preimage
}

/// A bank liquidated by client 0 with a sheet that moves a quarter to client 1 and carries
/// one HTLC to client 1; the lock has ended and client 0's share is released, so the bank is
/// kept only for that HTLC.
fn released_with_one_htlc<T: Config>() -> (ChannelId, [Client<T>; 2]) {
	let (channel, clients) = running_bank::<T>();
	let (mut balances, waiver) = sheet_moving_a_quarter::<T>();
	let htlcs = htlcs::<T>(1);
	balances[0] -= 1;
	let genesis = VirtualBank::<T>::genesis_hash();
	let payload = htlc_sheet_payload(&genesis, channel, 1, &balances, &waiver.into(), &htlcs);
	VirtualBank::<T>::liquidate_with_htlcs(
		RawOrigin::Signed(clients[0].1.clone()).into(),
		channel,
		1,
		balances,
		waiver.into(),
		htlcs,
		sign(&clients[1].0, &payload),
	)
	.expect("liquidate");
	let unlock_at = lock_end::<T>();
	frame_system::Pallet::<T>::set_block_number(unlock_at);
	VirtualBank::<T>::withdraw_by_master(RawOrigin::Signed(clients[0].1.clone()).into(), channel)
		.expect("the lock has ended");
	(channel, clients)
}

/// Fill the blocks that forget preimages, `blocks` of them from `from`, with hashlocks of
/// nothing remembered.
fn fill_preimage_expiries<T: Config>(from: BlockNumberFor<T>, blocks: u32) {
	let full: alloc::vec::Vec<H256> =
		(0..T::MaxPreimagesPerBlock::get()).map(|i| H256::repeat_byte(i as u8)).collect();
	let full = BoundedVec::<_, T::MaxPreimagesPerBlock>::try_from(full).expect("fits");
	for i in 0..blocks {
		PreimageExpiries::<T>::insert(from + i.into(), full.clone());
	}
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
			sign(&clients[0].0, &sheet_payload(&genesis, channel, 1, &balances, &waiver.into()));
		// Every block the schedule may look at is full but the last.
		let lock_end = lock_end::<T>();
		fill_schedule::<T>(lock_end, RELEASE_SEARCH - 1);

		#[extrinsic_call]
		_(RawOrigin::Signed(clients[1].1.clone()), channel, 1, balances, waiver.into(), signature);

		let liquidation = Channels::<T>::get(channel).and_then(|b| b.liquidation);
		assert_eq!(liquidation.map(|l| l.release_at), Some(lock_end + (RELEASE_SEARCH - 1).into()));
	}

	#[benchmark]
	fn withdraw_by_master() {
		// Client 1 as master: its share, and client 0's storage deposit, are released.
		let (channel, clients, _) = liquidated_bank::<T>(1);
		let liquidation = Channels::<T>::get(channel).and_then(|b| b.liquidation);
		let unlock_at = liquidation.map(|l| l.unlock_at).expect("liquidated");
		frame_system::Pallet::<T>::set_block_number(unlock_at);
		let anybody = funded_key::<T>("bench-watchtower").1;
		let before = T::Currency::balance(&clients[1].1);

		#[extrinsic_call]
		_(RawOrigin::Signed(anybody), channel);

		assert!(Channels::<T>::get(channel).is_none());
		assert!(T::Currency::balance(&clients[1].1) > before);
	}

	#[benchmark]
	fn withdraw_by_peer() {
		let (channel, clients, waiver) = liquidated_bank::<T>(1);
		let watchtower = funded_key::<T>("bench-watchtower").1;
		let genesis = VirtualBank::<T>::genesis_hash();
		let proof = sign(&waiver, &waiver_payload(&genesis, channel, 1));
		let before = T::Currency::balance(&clients[0].1);

		#[extrinsic_call]
		_(RawOrigin::Signed(watchtower), channel, proof);

		assert!(Channels::<T>::get(channel).is_none());
		assert!(T::Currency::balance(&clients[0].1) > before);
	}

	#[benchmark]
	fn authorize_withdraw_by_peer() {
		let (channel, _, waiver) = liquidated_bank::<T>(1);
		let genesis = VirtualBank::<T>::genesis_hash();
		let waiver_signature = sign(&waiver, &waiver_payload(&genesis, channel, 1));
		let call = Call::<T>::withdraw_by_peer { channel, waiver_signature };

		#[block]
		{
			call.authorize(TransactionSource::External)
				.expect("withdraw_by_peer authorizes itself")
				.expect("a valid penalty");
		}
	}

	/// The block where `n` locks end, each bank between two accounts of its own, liquidated
	/// by client 1.
	#[benchmark]
	fn on_initialize(n: Linear<0, { T::MaxReleasesPerBlock::get() }>) {
		let mut channels = alloc::vec::Vec::new();
		for i in 0..n {
			let a = funded_key::<T>(&alloc::format!("bench-a-{i}"));
			let b = funded_key::<T>(&alloc::format!("bench-b-{i}"));
			let (channel, clients) = running_bank_between::<T>(a, b);
			liquidate_with_a_quarter_moved::<T>(channel, &clients, 1);
			channels.push(channel);
		}
		let lock_end = lock_end::<T>();
		frame_system::Pallet::<T>::set_block_number(lock_end);

		#[block]
		{
			VirtualBank::<T>::on_initialize(lock_end);
		}

		assert!(channels.iter().all(|c| !Channels::<T>::contains_key(c)));
		assert!(!Releases::<T>::contains_key(lock_end));
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

	/// Its most expensive path: both clients add, and client 0 takes out more than it holds,
	/// so that it is paid from its own hold and from its peer's, after a splice before.
	#[benchmark]
	fn splice() {
		let (channel, clients) = running_bank::<T>();
		let amount = amount::<T>();
		let genesis = VirtualBank::<T>::genesis_hash();
		let sign_both = |nonce, amounts_in: &Balances, amounts_out: &Balances| {
			let payload = splice_payload(&genesis, channel, nonce, amounts_in, amounts_out);
			[sign(&clients[0].0, &payload), sign(&clients[1].0, &payload)]
		};
		let first = ([0, amount], [0, 0]);
		let signatures = sign_both(1, &first.0, &first.1);
		VirtualBank::<T>::splice(
			RawOrigin::Signed(clients[0].1.clone()).into(),
			channel,
			1,
			first.0,
			first.1,
			signatures,
		)
		.expect("the first splice");
		let (amounts_in, amounts_out) = ([1, 1], [amount + amount / 2, 0]);
		let signatures = sign_both(2, &amounts_in, &amounts_out);

		#[extrinsic_call]
		_(RawOrigin::Signed(clients[1].1.clone()), channel, 2, amounts_in, amounts_out, signatures);

		assert_eq!(SplicedAt::<T>::get(channel), Some(2));
		let total = Channels::<T>::get(channel).and_then(|bank| bank.total());
		assert_eq!(total, Some(3 * amount + 2 - (amount + amount / 2)));
	}

	/// With `h` HTLCs: the payload the signature covers grows with them, and each is stored.
	#[benchmark]
	fn liquidate_with_htlcs(h: Linear<0, { T::MaxHtlcs::get() }>) {
		let (channel, clients) = running_bank::<T>();
		let (mut balances, waiver) = sheet_moving_a_quarter::<T>();
		let htlcs = htlcs::<T>(h);
		balances[1] -= Balance::from(h);
		let genesis = VirtualBank::<T>::genesis_hash();
		let payload = htlc_sheet_payload(&genesis, channel, 1, &balances, &waiver.into(), &htlcs);
		let signature = sign(&clients[0].0, &payload);
		fill_schedule::<T>(lock_end::<T>(), RELEASE_SEARCH - 1);

		#[extrinsic_call]
		_(
			RawOrigin::Signed(clients[1].1.clone()),
			channel,
			1,
			balances,
			waiver.into(),
			htlcs,
			signature,
		);

		assert_eq!(
			Htlcs::<T>::get(channel).map(|book| book.htlcs.len() as u32),
			(h > 0).then_some(h)
		);
	}

	#[benchmark]
	fn claim_htlc() {
		let (channel, clients) = released_with_one_htlc::<T>();
		let now = frame_system::Pallet::<T>::block_number();
		fill_preimage_expiries::<T>(now + T::PreimageRetention::get(), RELEASE_SEARCH - 1);
		let anybody = funded_key::<T>("bench-watchtower").1;
		let before = T::Currency::balance(&clients[1].1);

		#[extrinsic_call]
		_(RawOrigin::Signed(anybody), channel, 0, preimage(0));

		assert!(Channels::<T>::get(channel).is_none());
		assert_eq!(T::Currency::balance(&clients[1].1), before + 1);
		assert!(Preimages::<T>::contains_key(hashlock(&preimage(0))));
	}

	/// What the pool checks of a claim sent as a general transaction: the HTLC pending, the
	/// preimage its hashlock's, before its expiry.
	#[benchmark]
	fn authorize_claim_htlc() {
		let (channel, _) = released_with_one_htlc::<T>();
		let call = Call::<T>::claim_htlc { channel, index: 0, preimage: preimage(0) };

		#[block]
		{
			call.authorize(TransactionSource::External)
				.expect("claim_htlc authorizes itself")
				.expect("a valid claim");
		}
	}

	/// What the pool checks of a refund sent as a general transaction.
	#[benchmark]
	fn authorize_refund_htlc() {
		let (channel, _) = released_with_one_htlc::<T>();
		let book = Htlcs::<T>::get(channel).expect("kept for its HTLC");
		let expiry = book.htlcs.iter().flatten().map(|h| h.expiry).next().expect("one pending");
		frame_system::Pallet::<T>::set_block_number(expiry);
		let call = Call::<T>::refund_htlc { channel, index: 0 };

		#[block]
		{
			call.authorize(TransactionSource::External)
				.expect("refund_htlc authorizes itself")
				.expect("a valid refund");
		}
	}

	/// Refunded to client 0, the master: released at once, the bank removed.
	#[benchmark]
	fn refund_htlc() {
		let (channel, clients) = released_with_one_htlc::<T>();
		let book = Htlcs::<T>::get(channel).expect("kept for its HTLC");
		let expiry = book.htlcs.iter().flatten().map(|h| h.expiry).next().expect("one pending");
		frame_system::Pallet::<T>::set_block_number(expiry);
		let anybody = funded_key::<T>("bench-watchtower").1;
		let before = T::Currency::balance(&clients[0].1);

		#[extrinsic_call]
		_(RawOrigin::Signed(anybody), channel, 0);

		assert!(Channels::<T>::get(channel).is_none());
		assert!(T::Currency::balance(&clients[0].1) > before);
	}

	/// A block forgetting `p` preimages.
	#[benchmark]
	fn forget_preimages(p: Linear<0, { T::MaxPreimagesPerBlock::get() }>) {
		let block = frame_system::Pallet::<T>::block_number();
		for i in 0..p {
			VirtualBank::<T>::remember_preimage(hashlock(&preimage(i)), preimage(i));
		}
		let forget_at = block + T::PreimageRetention::get();

		#[block]
		{
			VirtualBank::<T>::forget_preimages(forget_at);
		}

		assert_eq!(Preimages::<T>::iter().count(), 0);
	}

	impl_benchmark_test_suite!(VirtualBank, crate::mock::new_test_ext(), crate::mock::Test);
}
