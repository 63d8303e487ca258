//! The lock ends by itself: the release schedule.

use super::*;
use crate::{Releases, RELEASE_SEARCH};

fn release_at(channel: ChannelId) -> u64 {
	Channels::<Test>::get(channel).unwrap().liquidation.unwrap().release_at
}

#[test]
fn a_master_whose_share_is_zero_needs_send_nothing_the_bank_and_deposit_are_freed() {
	build_and_execute(|| {
		// Bob brought nothing and was paid nothing: he liquidates, his share is 0, and on the
		// seed contract the bank and Alice's storage deposit would stay held forever.
		let channel = running_bank(&alice(), &bob(), [100, 0]);
		liquidate_signed(&bob(), "Alice", 2, channel, 0, [100, 0]);
		assert_eq!(Releases::<Test>::get(1 + LOCK).into_inner(), vec![channel]);
		assert_eq!(held(&alice()), BANK_DEPOSIT);

		run_to_block(1 + LOCK);

		assert!(Channels::<Test>::get(channel).is_none());
		assert!(!Releases::<Test>::contains_key(1 + LOCK));
		assert!(VirtualBank::channels_of(&alice()).is_empty());
		assert_eq!(held(&alice()), 0);
		assert_eq!(free(&alice()), ENDOWMENT);
		assert!(bank_events().contains(&Event::WithdrawnByMaster {
			channel,
			who: bob(),
			amount: 0
		}));
	});
}

#[test]
fn a_lock_end_that_finds_its_block_full_takes_the_next_block_with_room() {
	build_and_execute(|| {
		let banks: Vec<ChannelId> =
			(0..RELEASES_PER_BLOCK + 1).map(|_| liquidated_by_alice()).collect();
		let (last, first) = banks.split_last().unwrap();
		for channel in first {
			assert_eq!(release_at(*channel), 1 + LOCK);
		}
		// The event tells the block it got.
		assert_eq!(release_at(*last), 2 + LOCK);
		let liquidated = bank_events()
			.into_iter()
			.rev()
			.filter_map(|e| match e {
				Event::Liquidated { channel, unlock_at, release_at, .. } => {
					Some((channel, unlock_at, release_at))
				},
				_ => None,
			})
			.next();
		assert_eq!(liquidated, Some((*last, 1 + LOCK, 2 + LOCK)));

		run_to_block(1 + LOCK);
		for channel in first {
			assert!(Channels::<Test>::get(channel).is_none());
		}
		// The lock of the last is over though the schedule has not reached it: it can no
		// longer be disputed, and anybody may end it now; the funds go to the master only.
		let proof = sign_waiver(&waiver_pair(1, 1), *last, 1);
		assert_noop!(
			VirtualBank::withdraw_by_peer(origin(&bob()), *last, proof),
			Error::<Test>::LockExpired
		);
		let alice_before = free(&alice());
		assert_ok!(VirtualBank::withdraw_by_master(origin(&charlie()), *last));
		assert_eq!(free(&alice()), alice_before + 50 + BANK_DEPOSIT);
		assert!(!Releases::<Test>::contains_key(2 + LOCK), "left in the schedule");
		run_to_block(2 + LOCK);
	});
}

/// Alice liquidates a bank of [60, 40] with sheet 1 ([50, 50]) while every block of the
/// release search from her lock's end is full.
fn liquidated_by_alice_with_the_schedule_full() -> ChannelId {
	let channel = running_bank(&alice(), &bob(), [60, 40]);
	let signature = sign_sheet(&pair("Bob"), channel, 1, [50, 50], &waiver(1, 1));
	let full: frame_support::BoundedVec<ChannelId, _> =
		vec![u64::MAX; RELEASES_PER_BLOCK as usize].try_into().unwrap();
	for block in 1 + LOCK..1 + LOCK + u64::from(RELEASE_SEARCH) {
		Releases::<Test>::insert(block, full.clone());
	}
	assert_ok!(VirtualBank::liquidate(
		origin(&alice()),
		channel,
		1,
		[50, 50],
		waiver(1, 1),
		signature
	));
	channel
}

/// C5 of the HTLC review: the release schedule is a resource anyone can fill; before, a full
/// one made `liquidate` fail with `ReleaseScheduleFull`, so an intermediary could be kept off
/// chain past its HTLC's deadline. Now the liquidation goes through, no block releases it,
/// and `withdraw_by_master` ends the lock.
#[test]
fn a_full_release_schedule_never_blocks_a_liquidation() {
	build_and_execute(|| {
		let channel = liquidated_by_alice_with_the_schedule_full();
		assert_eq!(release_at(channel), u64::MAX);
		for block in 1 + LOCK..1 + LOCK + u64::from(RELEASE_SEARCH) {
			assert_eq!(Releases::<Test>::get(block).len(), RELEASES_PER_BLOCK as usize);
			Releases::<Test>::remove(block);
		}
		run_to_block(1 + LOCK);
		assert!(Channels::<Test>::get(channel).is_some(), "no block released it");
		let alice_before = free(&alice());
		assert_ok!(VirtualBank::withdraw_by_master(origin(&charlie()), channel));
		assert_eq!(free(&alice()), alice_before + 50 + BANK_DEPOSIT);
		assert!(Channels::<Test>::get(channel).is_none());
	});
}

/// With the schedule full, a liquidation with a revoked sheet is punished as any other.
#[test]
fn a_liquidation_outside_the_schedule_is_punished_as_any_other() {
	build_and_execute(|| {
		let channel = liquidated_by_alice_with_the_schedule_full();
		let proof = sign_waiver(&waiver_pair(1, 1), channel, 1);
		let bob_before = free(&bob());
		assert_ok!(VirtualBank::withdraw_by_peer(origin(&bob()), channel, proof));
		assert_eq!(free(&bob()), bob_before + 50);
		assert!(Channels::<Test>::get(channel).is_none());
		for block in 1 + LOCK..1 + LOCK + u64::from(RELEASE_SEARCH) {
			Releases::<Test>::remove(block);
		}
	});
}

#[test]
fn a_penalty_takes_the_bank_out_of_the_schedule() {
	build_and_execute(|| {
		let channel = liquidated_by_alice();
		let proof = sign_waiver(&waiver_pair(1, 1), channel, 1);
		assert_ok!(VirtualBank::withdraw_by_peer(origin(&bob()), channel, proof));
		assert!(!Releases::<Test>::contains_key(1 + LOCK));
		run_to_block(1 + LOCK);
		assert_eq!(free(&bob()), ENDOWMENT + 60);
	});
}

#[test]
fn a_release_that_fails_is_undone_and_withdraw_by_master_still_ends_the_lock() {
	build_and_execute(|| {
		let channel = liquidated_by_alice();
		// Alice's held share no longer suffices (as after a slash by another pallet).
		Channels::<Test>::mutate(channel, |b| b.as_mut().unwrap().balances = [51, 50]);
		run_to_block(1 + LOCK);
		let bank = Channels::<Test>::get(channel).expect("a failed release keeps the bank");
		assert_eq!(held(&alice()), 50 + BANK_DEPOSIT);
		assert!(!Releases::<Test>::contains_key(1 + LOCK));
		Channels::<Test>::mutate(channel, |b| b.as_mut().unwrap().balances = [50, 50]);
		assert_eq!(bank.state, ChannelState::Liquidating);
		assert_ok!(VirtualBank::withdraw_by_master(origin(&bob()), channel));
		assert_eq!(free(&alice()), ENDOWMENT - 10);
	});
}

#[test]
fn on_initialize_reports_the_weight_of_the_releases_it_made() {
	build_and_execute(|| {
		use crate::WeightInfo;
		for _ in 0..2 {
			liquidated_by_alice();
		}
		System::set_block_number(1 + LOCK);
		let none_forgotten = <() as WeightInfo>::forget_preimages(0);
		assert_eq!(
			VirtualBank::on_initialize(1 + LOCK),
			<() as WeightInfo>::on_initialize(2) + none_forgotten
		);
		assert_eq!(
			VirtualBank::on_initialize(2 + LOCK),
			<() as WeightInfo>::on_initialize(0) + none_forgotten
		);
	});
}

#[test]
fn storage_deposits_are_those_each_bank_took_whatever_the_chain_charges_now() {
	build_and_execute(|| {
		let old = running_bank(&alice(), &bob(), [60, 40]);
		// A runtime upgrade raises the deposit: the old bank still pays out, releasing what it
		// took; a bank opened now takes the new amount.
		OpenDeposit::set(3 * BANK_DEPOSIT);
		let new = running_bank(&alice(), &bob(), [60, 40]);
		assert_eq!(held(&alice()), 120 + 4 * BANK_DEPOSIT);
		let payload = [60, 40];
		for channel in [old, new] {
			let signatures = [
				sign_close(&pair("Alice"), channel, 1, payload),
				sign_close(&pair("Bob"), channel, 1, payload),
			];
			assert_ok!(VirtualBank::close(origin(&bob()), channel, 1, payload, signatures));
		}
		assert_eq!(held(&alice()), 0);
		assert_eq!(free(&alice()), ENDOWMENT);
		OpenDeposit::set(BANK_DEPOSIT);
	});
}
