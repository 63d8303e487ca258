//! Tests of the virtual bank pallet on the mock runtime. Every test runs through
//! `build_and_execute`, which checks `try_state` and the total issuance afterwards.

use crate::{
	mock::*, ChannelState, Channels, ChannelsOf, Error, Event, Liquidation, NextChannelId,
};
use frame_support::{
	assert_noop, assert_ok,
	dispatch::GetDispatchInfo,
	traits::{fungible::Mutate, tokens::Precision, Hooks},
};
use sp_core::{ecdsa, ed25519, sr25519, Pair, H256};
use sp_runtime::{
	traits::{Dispatchable, IdentifyAccount},
	DispatchError, MultiSignature, MultiSigner, TokenError,
};
use vbank_primitives::{wrap_bytes, Balance, ChannelId};

mod authorize;
mod dust;
mod fuzz;
mod htlc;
mod release;
mod splice;

const LOCK: u64 = 10;

fn origin(who: &AccountId) -> RuntimeOrigin {
	RuntimeOrigin::signed(who.clone())
}

/// Opens a bank from `a` to `b` and has both deposit; returns its id, with events cleared.
fn running_bank(a: &AccountId, b: &AccountId, amounts: Shares) -> ChannelId {
	let channel = NextChannelId::<Test>::get();
	assert_ok!(VirtualBank::open(origin(a), b.clone(), amounts[0], amounts[1], LOCK));
	for (who, amount) in [(a, amounts[0]), (b, amounts[1])] {
		if amount > 0 {
			assert_ok!(VirtualBank::deposit(origin(who), channel));
		}
	}
	assert_eq!(Channels::<Test>::get(channel).unwrap().state, ChannelState::Running);
	bank_events();
	channel
}

/// The waiver key pair of sheet `nonce` (in the helper, derived from a per-bank seed).
fn waiver_pair(owner: u8, nonce: u64) -> sr25519::Pair {
	let mut seed = [owner; 32];
	seed[..8].copy_from_slice(&nonce.to_le_bytes());
	sr25519::Pair::from_seed(&seed)
}

fn waiver(owner: u8, nonce: u64) -> AccountId {
	waiver_pair(owner, nonce).public().into()
}

/// `master` liquidates `channel` with sheet `nonce` of `sheet`, naming waiver key
/// `(owner, nonce)`, signed by `signer`; the call must succeed.
fn liquidate_signed(
	master: &AccountId,
	signer: &str,
	owner: u8,
	channel: ChannelId,
	nonce: u64,
	sheet: Shares,
) {
	let waiver = waiver(owner, nonce);
	let signature = sign_sheet(&pair(signer), channel, nonce, sheet, &waiver);
	assert_ok!(VirtualBank::liquidate(origin(master), channel, nonce, sheet, waiver, signature));
}

// ---------------------------------------------------------------------------------------
// Success paths
// ---------------------------------------------------------------------------------------

#[test]
fn open_creates_a_funding_bank_and_holds_the_storage_deposit() {
	build_and_execute(|| {
		assert_ok!(VirtualBank::open(origin(&alice()), bob(), 100, 50, LOCK));

		let bank = Channels::<Test>::get(0).unwrap();
		assert_eq!(bank.clients, [alice(), bob()]);
		assert_eq!(bank.balances, [100, 50]);
		assert_eq!(bank.deposited, [false, false]);
		assert_eq!(bank.lock_period, LOCK);
		assert_eq!(bank.state, ChannelState::Funding);
		assert_eq!(bank.liquidation, None);
		assert_eq!(NextChannelId::<Test>::get(), 1);
		assert!(ChannelsOf::<Test>::contains_key(alice(), 0));
		assert!(ChannelsOf::<Test>::contains_key(bob(), 0));
		assert_eq!(VirtualBank::channels_of(&bob()), vec![0]);
		assert_eq!(held(&alice()), BANK_DEPOSIT);
		assert_eq!(free(&alice()), ENDOWMENT - BANK_DEPOSIT);
		assert_eq!(held(&bob()), 0);
		assert_eq!(
			bank_events(),
			vec![Event::Opened {
				channel: 0,
				clients: [alice(), bob()],
				amounts: [100, 50],
				lock_period: LOCK
			}]
		);
	});
}

#[test]
fn channel_ids_come_from_a_counter_and_are_never_reused() {
	build_and_execute(|| {
		assert_ok!(VirtualBank::open(origin(&alice()), bob(), 1, 1, LOCK));
		assert_ok!(VirtualBank::cancel(origin(&alice()), 0));
		assert_ok!(VirtualBank::open(origin(&bob()), alice(), 1, 1, LOCK));
		assert!(Channels::<Test>::get(0).is_none());
		assert_eq!(Channels::<Test>::get(1).unwrap().clients, [bob(), alice()]);
		assert_eq!(NextChannelId::<Test>::get(), 2);
	});
}

#[test]
fn deposits_hold_the_agreed_amounts_and_the_second_makes_the_bank_run() {
	build_and_execute(|| {
		assert_ok!(VirtualBank::open(origin(&alice()), bob(), 100, 50, LOCK));
		bank_events();

		assert_ok!(VirtualBank::deposit(origin(&bob()), 0));
		assert_eq!(bank_events(), vec![Event::Deposited { channel: 0, who: bob(), amount: 50 }]);
		assert_eq!(Channels::<Test>::get(0).unwrap().state, ChannelState::Funding);
		assert_eq!(held(&bob()), 50);
		assert_eq!(free(&bob()), ENDOWMENT - 50);

		assert_ok!(VirtualBank::deposit(origin(&alice()), 0));
		assert_eq!(
			bank_events(),
			vec![
				Event::Deposited { channel: 0, who: alice(), amount: 100 },
				Event::Running { channel: 0 }
			]
		);
		let bank = Channels::<Test>::get(0).unwrap();
		assert_eq!(bank.state, ChannelState::Running);
		assert_eq!(bank.deposited, [true, true]);
		assert_eq!(held(&alice()), 100 + BANK_DEPOSIT);
		assert_eq!(free(&alice()), ENDOWMENT - 100 - BANK_DEPOSIT);
	});
}

#[test]
fn a_side_bringing_zero_counts_as_deposited() {
	build_and_execute(|| {
		assert_ok!(VirtualBank::open(origin(&alice()), bob(), 0, 70, LOCK));
		assert_eq!(Channels::<Test>::get(0).unwrap().deposited, [true, false]);
		assert_noop!(VirtualBank::deposit(origin(&alice()), 0), Error::<Test>::AlreadyDeposited);
		bank_events();
		assert_ok!(VirtualBank::deposit(origin(&bob()), 0));
		assert_eq!(
			bank_events(),
			vec![
				Event::Deposited { channel: 0, who: bob(), amount: 70 },
				Event::Running { channel: 0 }
			]
		);
	});
}

#[test]
fn liquidate_pays_the_peer_at_once_and_freezes_the_master_share() {
	build_and_execute(|| {
		let channel = running_bank(&alice(), &bob(), [60, 40]);
		// After Alice paid Bob 30, Bob's signature on Alice's sheet 1.
		let sheet = [30, 70];
		let signature = sign_sheet(&pair("Bob"), channel, 1, sheet, &waiver(1, 1));
		run_to_block(3);

		assert_ok!(VirtualBank::liquidate(
			origin(&alice()),
			channel,
			1,
			sheet,
			waiver(1, 1),
			signature
		));

		assert_eq!(
			bank_events(),
			vec![Event::Liquidated {
				channel,
				master: alice(),
				nonce: 1,
				balances: sheet,
				unlock_at: 3 + LOCK,
				release_at: 3 + LOCK,
			}]
		);
		let bank = Channels::<Test>::get(channel).unwrap();
		assert_eq!(bank.state, ChannelState::Liquidating);
		assert_eq!(bank.balances, sheet);
		assert_eq!(
			bank.liquidation,
			Some(Liquidation {
				master: 0,
				nonce: 1,
				waiver: waiver(1, 1),
				liquidated_at: 3,
				unlock_at: 3 + LOCK,
				release_at: 3 + LOCK,
			})
		);
		// Bob has his 70 free; Alice's 30 stay held, beside the storage deposit.
		assert_eq!(free(&bob()), ENDOWMENT + 30);
		assert_eq!(held(&bob()), 0);
		assert_eq!(held(&alice()), 30 + BANK_DEPOSIT);
		assert_eq!(free(&alice()), ENDOWMENT - 60 - BANK_DEPOSIT);
	});
}

#[test]
fn liquidate_moves_held_funds_to_a_master_owed_more_than_it_brought() {
	build_and_execute(|| {
		let channel = running_bank(&alice(), &bob(), [60, 40]);
		let sheet = [10, 90];
		let signature = sign_sheet(&pair("Alice"), channel, 4, sheet, &waiver(2, 4));

		assert_ok!(VirtualBank::liquidate(
			origin(&bob()),
			channel,
			4,
			sheet,
			waiver(2, 4),
			signature
		));

		assert_eq!(free(&alice()), ENDOWMENT - 60 - BANK_DEPOSIT + 10);
		assert_eq!(held(&alice()), BANK_DEPOSIT);
		assert_eq!(held(&bob()), 90);
		assert_eq!(free(&bob()), ENDOWMENT - 40);
		assert_eq!(Channels::<Test>::get(channel).unwrap().liquidation.unwrap().master, 1);
	});
}

#[test]
fn a_sheet_giving_everything_to_one_side_is_valid() {
	build_and_execute(|| {
		let channel = running_bank(&alice(), &bob(), [60, 40]);
		let sheet = [0, 100];
		liquidate_signed(&alice(), "Bob", 1, channel, 9, sheet);
		assert_eq!(free(&bob()), ENDOWMENT + 60);
		assert_eq!(held(&alice()), BANK_DEPOSIT);

		// The lock ends by itself.
		run_to_block(1 + LOCK);
		assert_eq!(free(&alice()), ENDOWMENT - 60);
		assert_eq!(held(&alice()), 0);
	});
}

#[test]
fn the_lock_ends_by_itself_paying_the_master_and_removing_the_bank() {
	build_and_execute(|| {
		let channel = running_bank(&alice(), &bob(), [60, 40]);
		let sheet = [45, 55];
		liquidate_signed(&alice(), "Bob", 1, channel, 2, sheet);
		bank_events();

		run_to_block(LOCK);
		assert!(Channels::<Test>::contains_key(channel), "released before the lock ended");
		// Nobody sends anything: block 1 + LOCK releases the share by itself.
		run_to_block(1 + LOCK);

		assert_eq!(
			bank_events(),
			vec![Event::WithdrawnByMaster { channel, who: alice(), amount: 45 }]
		);
		assert!(Channels::<Test>::get(channel).is_none());
		assert!(VirtualBank::channels_of(&alice()).is_empty());
		assert!(VirtualBank::channels_of(&bob()).is_empty());
		assert_eq!(free(&alice()), ENDOWMENT - 15);
		assert_eq!(free(&bob()), ENDOWMENT + 15);
		assert_eq!(held(&alice()), 0);
	});
}

#[test]
fn withdraw_by_peer_hands_the_frozen_share_to_the_peer_whoever_submits_it() {
	build_and_execute(|| {
		let channel = running_bank(&alice(), &bob(), [60, 40]);
		let sheet = [50, 50];
		liquidate_signed(&alice(), "Bob", 1, channel, 1, sheet);
		bank_events();
		let charlie_before = free(&charlie());

		// Charlie, a watchtower, holds the waiver secret Alice revealed to Bob.
		let proof = sign_waiver(&waiver_pair(1, 1), channel, 1);
		assert_ok!(VirtualBank::withdraw_by_peer(origin(&charlie()), channel, proof));

		assert_eq!(
			bank_events(),
			vec![Event::WithdrawnByPeer { channel, who: bob(), amount: 50, nonce: 1 }]
		);
		assert!(Channels::<Test>::get(channel).is_none());
		assert_eq!(free(&bob()), ENDOWMENT + 60);
		assert_eq!(free(&alice()), ENDOWMENT - 60);
		assert_eq!(held(&alice()), 0);
		assert_eq!(free(&charlie()), charlie_before);
	});
}

#[test]
fn cancel_releases_what_was_deposited_and_the_storage_deposit() {
	build_and_execute(|| {
		assert_ok!(VirtualBank::open(origin(&alice()), bob(), 100, 50, LOCK));
		assert_ok!(VirtualBank::deposit(origin(&alice()), 0));
		bank_events();

		// Bob never deposits; either side may cancel.
		assert_ok!(VirtualBank::cancel(origin(&bob()), 0));

		assert_eq!(bank_events(), vec![Event::Cancelled { channel: 0 }]);
		assert!(Channels::<Test>::get(0).is_none());
		assert!(VirtualBank::channels_of(&alice()).is_empty());
		assert_eq!(free(&alice()), ENDOWMENT);
		assert_eq!(free(&bob()), ENDOWMENT);
	});
}

#[test]
fn close_pays_both_sides_at_once() {
	build_and_execute(|| {
		let channel = running_bank(&alice(), &bob(), [60, 40]);
		let sheet = [25, 75];
		let signatures = [
			sign_close(&pair("Alice"), channel, 7, sheet),
			sign_close(&pair("Bob"), channel, 7, sheet),
		];

		assert_ok!(VirtualBank::close(origin(&bob()), channel, 7, sheet, signatures));

		assert_eq!(bank_events(), vec![Event::Closed { channel, balances: sheet }]);
		assert!(Channels::<Test>::get(channel).is_none());
		assert_eq!(free(&alice()), ENDOWMENT - 35);
		assert_eq!(free(&bob()), ENDOWMENT + 35);
		assert_eq!(held(&alice()), 0);
		assert_eq!(held(&bob()), 0);
	});
}

// ---------------------------------------------------------------------------------------
// Refusals: each leaves storage as it was (`assert_noop!` compares the storage root).
// ---------------------------------------------------------------------------------------

#[test]
fn open_refuses_oneself_nothing_and_overflowing_amounts() {
	build_and_execute(|| {
		assert_noop!(
			VirtualBank::open(origin(&alice()), alice(), 1, 1, LOCK),
			Error::<Test>::OpenWithSelf
		);
		assert_noop!(
			VirtualBank::open(origin(&alice()), bob(), 0, 0, LOCK),
			Error::<Test>::NothingToLock
		);
		assert_noop!(
			VirtualBank::open(origin(&alice()), bob(), Balance::MAX, 1, LOCK),
			Error::<Test>::AmountOverflow
		);
	});
}

#[test]
fn open_refuses_a_lock_period_out_of_range() {
	build_and_execute(|| {
		for lock in [0, MIN_LOCK - 1, MAX_LOCK + 1, u64::MAX] {
			assert_noop!(
				VirtualBank::open(origin(&alice()), bob(), 1, 1, lock),
				Error::<Test>::LockPeriodOutOfRange
			);
		}
		assert_ok!(VirtualBank::open(origin(&alice()), bob(), 1, 1, MIN_LOCK));
		assert_ok!(VirtualBank::open(origin(&alice()), bob(), 1, 1, MAX_LOCK));
	});
}

#[test]
fn a_call_that_fails_after_writing_leaves_no_trace() {
	build_and_execute(|| {
		// The opener can pay fees but not the storage deposit: `open` has written the bank,
		// its index and the counter when the hold fails.
		let poor = account("Ferdie");
		assert_ok!(Balances::transfer_allow_death(origin(&alice()), poor.clone(), BANK_DEPOSIT));
		let root = sp_io::storage::root(sp_runtime::StateVersion::V1);
		let call = RuntimeCall::VirtualBank(crate::Call::open {
			peer: bob(),
			my_amount: 5,
			peer_amount: 5,
			lock_period: LOCK,
		});
		let result = call.dispatch(origin(&poor));
		assert_eq!(result.map_err(|e| e.error), Err(TokenError::FundsUnavailable.into()));
		assert_eq!(sp_io::storage::root(sp_runtime::StateVersion::V1), root);
		assert_eq!(NextChannelId::<Test>::get(), 0);
		assert!(VirtualBank::channels_of(&bob()).is_empty());
	});
}

#[test]
fn deposit_refuses_outsiders_unknown_banks_and_doubles() {
	build_and_execute(|| {
		assert_ok!(VirtualBank::open(origin(&alice()), bob(), 100, 50, LOCK));
		assert_noop!(VirtualBank::deposit(origin(&alice()), 1), Error::<Test>::UnknownChannel);
		assert_noop!(VirtualBank::deposit(origin(&charlie()), 0), Error::<Test>::NotAClient);
		assert_ok!(VirtualBank::deposit(origin(&alice()), 0));
		assert_noop!(VirtualBank::deposit(origin(&alice()), 0), Error::<Test>::AlreadyDeposited);
		assert_ok!(VirtualBank::deposit(origin(&bob()), 0));
		assert_noop!(VirtualBank::deposit(origin(&bob()), 0), Error::<Test>::WrongState);
	});
}

#[test]
fn deposit_refuses_more_than_the_client_has() {
	build_and_execute(|| {
		assert_ok!(VirtualBank::open(origin(&alice()), bob(), 1, ENDOWMENT, LOCK));
		assert_noop!(VirtualBank::deposit(origin(&bob()), 0), TokenError::FundsUnavailable);
	});
}

#[test]
fn liquidate_refuses_outsiders_and_banks_not_running() {
	build_and_execute(|| {
		assert_ok!(VirtualBank::open(origin(&alice()), bob(), 60, 40, LOCK));
		let sheet = [60, 40];
		let signature = sign_sheet(&pair("Bob"), 0, 0, sheet, &waiver(1, 0));
		assert_noop!(
			VirtualBank::liquidate(origin(&alice()), 0, 0, sheet, waiver(1, 0), signature.clone()),
			Error::<Test>::WrongState
		);
		assert_ok!(VirtualBank::deposit(origin(&alice()), 0));
		assert_ok!(VirtualBank::deposit(origin(&bob()), 0));
		assert_noop!(
			VirtualBank::liquidate(
				origin(&charlie()),
				0,
				0,
				sheet,
				waiver(1, 0),
				signature.clone()
			),
			Error::<Test>::NotAClient
		);
		assert_noop!(
			VirtualBank::liquidate(origin(&alice()), 5, 0, sheet, waiver(1, 0), signature.clone()),
			Error::<Test>::UnknownChannel
		);
		assert_ok!(VirtualBank::liquidate(
			origin(&alice()),
			0,
			0,
			sheet,
			waiver(1, 0),
			signature.clone()
		));
		// Already liquidating: neither side can liquidate again.
		let theirs = sign_sheet(&pair("Alice"), 0, 3, sheet, &waiver(2, 3));
		assert_noop!(
			VirtualBank::liquidate(origin(&bob()), 0, 3, sheet, waiver(2, 3), theirs),
			Error::<Test>::WrongState
		);
	});
}

#[test]
fn liquidate_refuses_balances_that_do_not_add_up() {
	build_and_execute(|| {
		let channel = running_bank(&alice(), &bob(), [60, 40]);
		// The last pair wraps to the total in u128 arithmetic.
		for sheet in [[60, 41], [0, 99], [Balance::MAX, Balance::MAX], [Balance::MAX, 101]] {
			let signature = sign_sheet(&pair("Bob"), channel, 1, sheet, &waiver(1, 1));
			assert_noop!(
				VirtualBank::liquidate(
					origin(&alice()),
					channel,
					1,
					sheet,
					waiver(1, 1),
					signature
				),
				Error::<Test>::BalanceMismatch
			);
		}
	});
}

#[test]
fn liquidate_refuses_a_signature_not_by_the_peer_over_this_sheet() {
	build_and_execute(|| {
		let channel = running_bank(&alice(), &bob(), [60, 40]);
		let sheet = [30, 70];
		let liquidate = |signature: MultiSignature| {
			VirtualBank::liquidate(origin(&alice()), channel, 1, sheet, waiver(1, 1), signature)
		};
		// Signed by the master itself, by an outsider, over another nonce, other balances,
		// another waiver key; a close payload; and no signature at all (zero bytes).
		let bad = [
			sign_sheet(&pair("Alice"), channel, 1, sheet, &waiver(1, 1)),
			sign_sheet(&pair("Charlie"), channel, 1, sheet, &waiver(1, 1)),
			sign_sheet(&pair("Bob"), channel, 2, sheet, &waiver(1, 1)),
			sign_sheet(&pair("Bob"), channel, 1, [31, 69], &waiver(1, 1)),
			sign_sheet(&pair("Bob"), channel, 1, sheet, &waiver(1, 2)),
			sign_close(&pair("Bob"), channel, 1, sheet),
			MultiSignature::Sr25519(sr25519::Signature::from_raw([0; 64])),
		];
		for signature in bad {
			assert_noop!(liquidate(signature), Error::<Test>::BadSignature);
		}
	});
}

#[test]
fn a_signed_sheet_cannot_be_replayed_on_another_bank() {
	build_and_execute(|| {
		let first = running_bank(&alice(), &bob(), [60, 40]);
		let second = running_bank(&alice(), &bob(), [60, 40]);
		let sheet = [0, 100];
		let signature = sign_sheet(&pair("Bob"), first, 1, sheet, &waiver(1, 1));
		assert_noop!(
			VirtualBank::liquidate(
				origin(&alice()),
				second,
				1,
				sheet,
				waiver(1, 1),
				signature.clone()
			),
			Error::<Test>::BadSignature
		);
		assert_ok!(VirtualBank::liquidate(
			origin(&alice()),
			first,
			1,
			sheet,
			waiver(1, 1),
			signature
		));
	});
}

#[test]
fn a_signed_sheet_cannot_be_replayed_on_another_chain() {
	build_and_execute(|| {
		let channel = running_bank(&alice(), &bob(), [60, 40]);
		let sheet = [0, 100];
		let other_genesis = H256::repeat_byte(0x01);
		assert_ne!(other_genesis, VirtualBank::genesis_hash());
		let payload =
			vbank_primitives::sheet_payload(&other_genesis, channel, 1, &sheet, &waiver(1, 1));
		let signature: MultiSignature = pair("Bob").sign(&payload).into();
		assert_noop!(
			VirtualBank::liquidate(origin(&alice()), channel, 1, sheet, waiver(1, 1), signature),
			Error::<Test>::BadSignature
		);
	});
}

#[test]
fn liquidate_refuses_an_unlock_past_the_largest_block_number() {
	build_and_execute(|| {
		let channel = running_bank(&alice(), &bob(), [60, 40]);
		let sheet = [60, 40];
		let signature = sign_sheet(&pair("Bob"), channel, 0, sheet, &waiver(1, 0));
		System::set_block_number(u64::MAX - LOCK + 1);
		assert_noop!(
			VirtualBank::liquidate(
				origin(&alice()),
				channel,
				0,
				sheet,
				waiver(1, 0),
				signature.clone()
			),
			Error::<Test>::UnlockOverflow
		);
		// The last block from which the lock still fits.
		System::set_block_number(u64::MAX - LOCK);
		assert_ok!(VirtualBank::liquidate(
			origin(&alice()),
			channel,
			0,
			sheet,
			waiver(1, 0),
			signature
		));
		assert_eq!(
			Channels::<Test>::get(channel).unwrap().liquidation.unwrap().unlock_at,
			u64::MAX
		);
	});
}

/// Liquidates `channel` (Alice 60, Bob 40) by Alice at block 1 with sheet 1 `[50, 50]`.
fn liquidated_by_alice() -> ChannelId {
	let channel = running_bank(&alice(), &bob(), [60, 40]);
	liquidate_signed(&alice(), "Bob", 1, channel, 1, [50, 50]);
	channel
}

#[test]
fn withdraw_by_master_refuses_before_the_lock_ends_and_banks_not_liquidating() {
	build_and_execute(|| {
		let channel = running_bank(&alice(), &bob(), [60, 40]);
		assert_noop!(
			VirtualBank::withdraw_by_master(origin(&alice()), channel),
			Error::<Test>::WrongState
		);
		let channel = liquidated_by_alice();
		run_to_block(LOCK);
		assert_noop!(
			VirtualBank::withdraw_by_master(origin(&alice()), channel),
			Error::<Test>::StillLocked
		);
		assert_noop!(
			VirtualBank::withdraw_by_master(origin(&alice()), channel + 1),
			Error::<Test>::UnknownChannel
		);
		run_to_block(1 + LOCK);
		assert_noop!(
			VirtualBank::withdraw_by_master(origin(&alice()), channel),
			Error::<Test>::UnknownChannel
		);
	});
}

#[test]
fn withdraw_by_peer_refuses_once_the_lock_is_over() {
	build_and_execute(|| {
		let channel = liquidated_by_alice();
		let proof = sign_waiver(&waiver_pair(1, 1), channel, 1);
		// The bank went with its lock (`LockExpired` when the release comes later: see
		// `release::a_lock_end_that_finds_its_block_full_takes_the_next_block_with_room`).
		run_to_block(1 + LOCK);
		assert_noop!(
			VirtualBank::withdraw_by_peer(origin(&bob()), channel, proof),
			Error::<Test>::UnknownChannel
		);
	});
}

#[test]
fn withdraw_by_peer_refuses_any_proof_but_the_used_sheet_waiver_over_its_nonce() {
	build_and_execute(|| {
		let channel = liquidated_by_alice();
		// The seed bound the waiver to a nonce of the caller's choosing: here a waiver revealed
		// for sheet 0 proves nothing about sheet 1.
		let bad = [
			sign_waiver(&waiver_pair(1, 0), channel, 0),
			sign_waiver(&waiver_pair(1, 1), channel, 0),
			sign_waiver(&waiver_pair(1, 1), channel, 2),
			sign_waiver(&waiver_pair(1, 1), channel + 1, 1),
			sign_waiver(&pair("Bob"), channel, 1),
			sign_sheet(&waiver_pair(1, 1), channel, 1, [50, 50], &waiver(1, 1)),
		];
		for proof in bad {
			assert_noop!(
				VirtualBank::withdraw_by_peer(origin(&bob()), channel, proof),
				Error::<Test>::BadSignature
			);
		}
		let proof = sign_waiver(&waiver_pair(1, 1), channel, 1);
		assert_noop!(
			VirtualBank::withdraw_by_peer(origin(&bob()), channel + 1, proof.clone()),
			Error::<Test>::UnknownChannel
		);
		let running = running_bank(&alice(), &bob(), [1, 1]);
		assert_noop!(
			VirtualBank::withdraw_by_peer(origin(&bob()), running, proof),
			Error::<Test>::WrongState
		);
	});
}

#[test]
fn cancel_refuses_outsiders_and_banks_past_funding() {
	build_and_execute(|| {
		assert_ok!(VirtualBank::open(origin(&alice()), bob(), 1, 1, LOCK));
		assert_noop!(VirtualBank::cancel(origin(&charlie()), 0), Error::<Test>::NotAClient);
		assert_noop!(VirtualBank::cancel(origin(&alice()), 1), Error::<Test>::UnknownChannel);
		let channel = running_bank(&alice(), &bob(), [1, 1]);
		assert_noop!(VirtualBank::cancel(origin(&alice()), channel), Error::<Test>::WrongState);
	});
}

#[test]
fn close_refuses_missing_or_foreign_signatures_and_wrong_sums() {
	build_and_execute(|| {
		let channel = running_bank(&alice(), &bob(), [60, 40]);
		let sheet = [25, 75];
		let a = sign_close(&pair("Alice"), channel, 7, sheet);
		let b = sign_close(&pair("Bob"), channel, 7, sheet);
		let bad_pairs = [
			[a.clone(), a.clone()],
			[b.clone(), a.clone()],
			[a.clone(), sign_close(&pair("Charlie"), channel, 7, sheet)],
			[a.clone(), sign_close(&pair("Bob"), channel, 8, sheet)],
			[a.clone(), sign_sheet(&pair("Bob"), channel, 7, sheet, &waiver(1, 7))],
		];
		for signatures in bad_pairs {
			assert_noop!(
				VirtualBank::close(origin(&alice()), channel, 7, sheet, signatures),
				Error::<Test>::BadSignature
			);
		}
		assert_noop!(
			VirtualBank::close(origin(&alice()), channel, 7, [25, 76], [a.clone(), b.clone()]),
			Error::<Test>::BalanceMismatch
		);
		assert_noop!(
			VirtualBank::close(origin(&charlie()), channel, 7, sheet, [a.clone(), b.clone()]),
			Error::<Test>::NotAClient
		);
		let funding = NextChannelId::<Test>::get();
		assert_ok!(VirtualBank::open(origin(&alice()), bob(), 60, 40, LOCK));
		assert_noop!(
			VirtualBank::close(origin(&alice()), funding, 7, sheet, [a, b]),
			Error::<Test>::WrongState
		);
	});
}

// ---------------------------------------------------------------------------------------
// Signature schemes and wrapping
// ---------------------------------------------------------------------------------------

#[test]
fn ed25519_and_ecdsa_clients_can_liquidate_close_and_dispute() {
	build_and_execute(|| {
		let ed = ed25519::Pair::from_seed(&[7; 32]);
		let ec = ecdsa::Pair::from_seed(&[8; 32]);
		let ed_account: AccountId = ed.public().into();
		let ec_account: AccountId = MultiSigner::from(ec.public()).into_account();
		for who in [&ed_account, &ec_account] {
			assert_ok!(Balances::transfer_allow_death(origin(&alice()), who.clone(), 1_000));
		}
		let genesis = VirtualBank::genesis_hash();

		// ecdsa signs the ed25519 client's sheet; the ed25519 client liquidates with it.
		let channel = running_bank(&ed_account, &ec_account, [100, 100]);
		let ed_waiver = ed25519::Pair::from_seed(&[9; 32]);
		let waiver_account: AccountId = ed_waiver.public().into();
		let payload =
			vbank_primitives::sheet_payload(&genesis, channel, 1, &[150, 50], &waiver_account);
		assert_ok!(VirtualBank::liquidate(
			origin(&ed_account),
			channel,
			1,
			[150, 50],
			waiver_account,
			ec.sign(&payload).into()
		));
		// An ed25519 waiver key proves the sheet revoked.
		let proof = ed_waiver.sign(&vbank_primitives::waiver_payload(&genesis, channel, 1));
		assert_ok!(VirtualBank::withdraw_by_peer(origin(&alice()), channel, proof.into()));
		assert_eq!(free(&ec_account), 1_000 + 100);

		// Both schemes close together.
		let channel = running_bank(&ed_account, &ec_account, [100, 100]);
		let payload = vbank_primitives::close_payload(&genesis, channel, 3, &[120, 80]);
		let signatures = [ed.sign(&payload).into(), ec.sign(&payload).into()];
		assert_ok!(VirtualBank::close(origin(&ec_account), channel, 3, [120, 80], signatures));
		// Lost its 100 in the first bank, gained 20 in the second; deposits released.
		assert_eq!(free(&ed_account), 1_000 - 100 + 20);
	});
}

#[test]
fn signatures_over_the_bytes_wrapped_payload_are_accepted() {
	build_and_execute(|| {
		let channel = running_bank(&alice(), &bob(), [60, 40]);
		let genesis = VirtualBank::genesis_hash();
		let sheet = [20, 80];
		let payload = vbank_primitives::sheet_payload(&genesis, channel, 1, &sheet, &waiver(1, 1));
		let signature = pair("Bob").sign(&wrap_bytes(&payload));
		assert_ok!(VirtualBank::liquidate(
			origin(&alice()),
			channel,
			1,
			sheet,
			waiver(1, 1),
			signature.into()
		));
		let proof = waiver_pair(1, 1)
			.sign(&wrap_bytes(&vbank_primitives::waiver_payload(&genesis, channel, 1)));
		assert_ok!(VirtualBank::withdraw_by_peer(origin(&bob()), channel, proof.into()));
		assert_eq!(free(&bob()), ENDOWMENT + 60);
	});
}

// ---------------------------------------------------------------------------------------
// The seed's story, end to end
// ---------------------------------------------------------------------------------------

/// The sheets of two off-chain payments from Alice to Bob on `channel` (60 / 40): Alice's
/// sheet n, signed by Bob, with Alice's waiver key for n.
fn alices_signed_sheets(channel: ChannelId) -> Vec<(u64, Shares, MultiSignature)> {
	[(0, [60, 40]), (1, [50, 50]), (2, [35, 65])]
		.into_iter()
		.map(|(nonce, sheet)| {
			(nonce, sheet, sign_sheet(&pair("Bob"), channel, nonce, sheet, &waiver(1, nonce)))
		})
		.collect()
}

#[test]
fn seed_story_a_payer_liquidating_with_a_revoked_sheet_loses_its_share() {
	build_and_execute(|| {
		let channel = running_bank(&alice(), &bob(), [60, 40]);
		let sheets = alices_signed_sheets(channel);
		// Alice paid 10 then 15, and revealed her waiver secrets for sheets 0 and 1 to Bob,
		// who handed them to Charlie's watchtower.
		let (nonce, sheet, signature) = sheets[1].clone();
		run_to_block(4);
		assert_ok!(VirtualBank::liquidate(
			origin(&alice()),
			channel,
			nonce,
			sheet,
			waiver(1, nonce),
			signature
		));
		assert_eq!(free(&bob()), ENDOWMENT + 10);

		run_to_block(4 + LOCK - 1);
		let proof = sign_waiver(&waiver_pair(1, nonce), channel, nonce);
		assert_ok!(VirtualBank::withdraw_by_peer(origin(&charlie()), channel, proof));

		assert_eq!(free(&bob()), ENDOWMENT + 60);
		assert_eq!(free(&alice()), ENDOWMENT - 60);
		assert_eq!(held(&alice()) + held(&bob()), 0);
		assert_eq!(free(&charlie()), ENDOWMENT);
	});
}

#[test]
fn seed_story_an_honest_master_withdraws_after_the_lock() {
	build_and_execute(|| {
		let channel = running_bank(&alice(), &bob(), [60, 40]);
		let (nonce, sheet, signature) = alices_signed_sheets(channel)[2].clone();
		assert_ok!(VirtualBank::liquidate(
			origin(&alice()),
			channel,
			nonce,
			sheet,
			waiver(1, nonce),
			signature
		));
		// Nobody knows the newest waiver secret: no proof exists, and the lock runs out.
		let guess = sign_waiver(&waiver_pair(1, nonce - 1), channel, nonce - 1);
		assert_noop!(
			VirtualBank::withdraw_by_peer(origin(&bob()), channel, guess),
			Error::<Test>::BadSignature
		);
		run_to_block(1 + LOCK);
		assert!(Channels::<Test>::get(channel).is_none());
		assert_eq!(free(&alice()), ENDOWMENT - 25);
		assert_eq!(free(&bob()), ENDOWMENT + 25);
	});
}

// ---------------------------------------------------------------------------------------
// Edges
// ---------------------------------------------------------------------------------------

#[test]
fn amounts_near_the_largest_balance_settle_exactly() {
	new_test_ext().execute_with(|| {
		let whale = account("Whale");
		let orca = account("Orca");
		// pallet_balances refuses to release a hold when held + free + amount overflows (it
		// counts the released amount twice), so a quarter of the range each is the most two
		// accounts can bank together and still be paid out.
		let quarter = Balance::MAX / 4;
		assert_ok!(Balances::mint_into(&whale, quarter));
		assert_ok!(Balances::mint_into(&orca, quarter));
		let issuance = Balances::total_issuance();
		let big = quarter - 1_000;

		// The whale can't deposit u128::MAX: refused with a token error, not a panic.
		assert_ok!(VirtualBank::open(origin(&whale), orca.clone(), Balance::MAX, 0, LOCK));
		assert_noop!(VirtualBank::deposit(origin(&whale), 0), TokenError::FundsUnavailable);
		assert_ok!(VirtualBank::cancel(origin(&orca), 0));

		let channel = running_bank(&whale, &orca, [big, big]);
		let total = 2 * big;
		let waiver_key = waiver(3, 1);
		let signature = sign_sheet(&pair("Orca"), channel, 1, [total, 0], &waiver_key);
		assert_ok!(VirtualBank::liquidate(
			origin(&whale),
			channel,
			1,
			[total, 0],
			waiver_key,
			signature
		));
		assert_eq!(held(&whale), total + BANK_DEPOSIT);
		run_to_block(1 + LOCK);
		assert!(Channels::<Test>::get(channel).is_none());
		assert_eq!(free(&whale), quarter + big);
		check_invariants(issuance);
	});
}

#[test]
fn weights_of_every_call_are_those_of_the_weight_info() {
	build_and_execute(|| {
		use crate::{Call, WeightInfo};
		use frame_support::traits::Authorize;
		type W = ();
		let signature = MultiSignature::Sr25519(sr25519::Signature::from_raw([0; 64]));
		let close_signatures = [signature.clone(), signature.clone()];
		let calls: [(Call<Test>, _); 8] = [
			(
				Call::open { peer: bob(), my_amount: 1, peer_amount: 1, lock_period: LOCK },
				W::open(),
			),
			(Call::deposit { channel: 0 }, W::deposit()),
			(
				Call::liquidate {
					channel: 0,
					nonce: 0,
					balances: [0, 0],
					waiver: alice(),
					peer_signature: signature.clone(),
				},
				W::liquidate(),
			),
			(Call::withdraw_by_master { channel: 0 }, W::withdraw_by_master()),
			(
				Call::withdraw_by_peer { channel: 0, waiver_signature: signature.clone() },
				W::withdraw_by_peer(),
			),
			(Call::cancel { channel: 0 }, W::cancel()),
			(
				Call::close {
					channel: 0,
					nonce: 0,
					balances: [0, 0],
					signatures: close_signatures,
				},
				W::close(),
			),
			(
				Call::splice {
					channel: 0,
					nonce: 1,
					amounts_in: [1, 0],
					amounts_out: [0, 0],
					signatures: [signature.clone(), signature.clone()],
				},
				W::splice(),
			),
		];
		for (call, weight) in calls {
			let authorize_weight = match call {
				Call::withdraw_by_peer { .. } => W::authorize_withdraw_by_peer(),
				_ => frame_support::weights::Weight::zero(),
			};
			assert_eq!(call.weight_of_authorize(), authorize_weight, "{call:?}");
			assert_eq!(call.get_dispatch_info().call_weight, weight, "{call:?}");
		}
	});
}

#[test]
#[should_panic(expected = "MinLockPeriod must not exceed MaxLockPeriod")]
fn integrity_test_rejects_a_minimum_lock_above_the_maximum() {
	new_test_ext().execute_with(|| {
		MinLockPeriod::set(MAX_LOCK + 1);
		<VirtualBank as Hooks<u64>>::integrity_test();
	});
}

#[test]
#[should_panic(expected = "OpenDeposit must not be zero")]
fn integrity_test_rejects_a_zero_storage_deposit() {
	new_test_ext().execute_with(|| {
		OpenDeposit::set(0);
		<VirtualBank as Hooks<u64>>::integrity_test();
	});
}

#[test]
fn integrity_test_accepts_the_mock_config() {
	new_test_ext().execute_with(<VirtualBank as Hooks<u64>>::integrity_test);
}

#[test]
fn try_state_catches_funds_held_for_a_bank_that_does_not_owe_them() {
	build_and_execute(|| {
		let channel = running_bank(&alice(), &bob(), [60, 40]);
		assert_ok!(VirtualBank::do_try_state());
		Channels::<Test>::mutate(channel, |bank| bank.as_mut().unwrap().balances = [61, 39]);
		assert!(VirtualBank::do_try_state().is_err());
		Channels::<Test>::mutate(channel, |bank| bank.as_mut().unwrap().balances = [60, 40]);
	});
}

#[test]
fn try_state_catches_funds_held_under_this_pallets_reasons_with_no_bank_behind_them() {
	use frame_support::traits::fungible::MutateHold;
	build_and_execute(|| {
		let reason: RuntimeHoldReason = crate::HoldReason::ChannelDeposit.into();
		assert_ok!(Balances::hold(&reason, &charlie(), 7));
		assert!(VirtualBank::do_try_state().is_err());
		assert_ok!(Balances::release(&reason, &charlie(), 7, Precision::Exact));
		let reason: RuntimeHoldReason = crate::HoldReason::BankStorage.into();
		assert_ok!(Balances::hold(&reason, &charlie(), 7));
		assert!(VirtualBank::do_try_state().is_err());
		assert_ok!(Balances::release(&reason, &charlie(), 7, Precision::Exact));
	});
}

#[test]
fn a_failing_dispatch_reports_the_named_error() {
	build_and_execute(|| {
		let call = RuntimeCall::VirtualBank(crate::Call::deposit { channel: 42 });
		let error = call.dispatch(origin(&alice())).unwrap_err().error;
		assert_eq!(error, DispatchError::from(Error::<Test>::UnknownChannel));
	});
}

#[test]
fn a_deposit_takes_only_what_the_account_may_spend_never_frozen_funds() {
	use frame_support::traits::{LockableCurrency, WithdrawReasons};
	build_and_execute(|| {
		assert_ok!(VirtualBank::open(origin(&alice()), bob(), 100, 500_000, LOCK));
		// Most of Bob's balance vests: frozen, though still his.
		Balances::set_lock(*b"vesting ", &bob(), ENDOWMENT - 400_000, WithdrawReasons::all());
		assert_noop!(VirtualBank::deposit(origin(&bob()), 0), TokenError::FundsUnavailable);
		assert_eq!(held(&bob()), 0);
		// Once the lock is lifted to what leaves him enough, the deposit goes through.
		Balances::set_lock(*b"vesting ", &bob(), ENDOWMENT - 500_001, WithdrawReasons::all());
		assert_ok!(VirtualBank::deposit(origin(&bob()), 0));
		assert_eq!(held(&bob()), 500_000);
		Balances::remove_lock(*b"vesting ", &bob());
	});
}
