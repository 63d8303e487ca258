//! Splices: a running bank topped up or drawn from by both clients' signatures, and the sheets
//! from before it void.

use super::*;
use crate::SplicedAt;

/// `who` (the caller) splices `channel` at `nonce`, both Alice and Bob signing.
fn splice(
	who: &AccountId,
	channel: ChannelId,
	nonce: u64,
	amounts_in: Shares,
	amounts_out: Shares,
) -> frame_support::dispatch::DispatchResult {
	let signatures = [
		sign_splice(&pair("Alice"), channel, nonce, amounts_in, amounts_out),
		sign_splice(&pair("Bob"), channel, nonce, amounts_in, amounts_out),
	];
	VirtualBank::splice(origin(who), channel, nonce, amounts_in, amounts_out, signatures)
}

#[test]
fn a_top_up_locks_more_of_the_client_and_the_bank_keeps_running() {
	build_and_execute(|| {
		let channel = running_bank(&alice(), &bob(), [100, 50]);
		let alice_free = free(&alice());
		assert_ok!(splice(&bob(), channel, 3, [40, 0], [0, 0]));

		let bank = Channels::<Test>::get(channel).unwrap();
		assert_eq!(bank.state, ChannelState::Running);
		assert_eq!(bank.total(), Some(190));
		assert_eq!(free(&alice()), alice_free - 40);
		assert_eq!(held(&alice()), BANK_DEPOSIT + 140);
		assert_eq!(SplicedAt::<Test>::get(channel), Some(3));
		assert_eq!(VirtualBank::spliced_at(channel), Some(3));
		assert_eq!(
			bank_events(),
			vec![Event::Spliced {
				channel,
				nonce: 3,
				amounts_in: [40, 0],
				amounts_out: [0, 0],
				total: 190
			}]
		);
		// The sheets at the splice's nonce share out the new total.
		liquidate_signed(&bob(), "Alice", 2, channel, 3, [60, 130]);
		assert_eq!(free(&alice()), alice_free - 40 + 60);
	});
}

#[test]
fn a_withdrawal_pays_the_client_out_of_its_hold_then_out_of_its_peers() {
	build_and_execute(|| {
		// Bob brought 50; after payments off chain he owns 120 of the 150.
		let channel = running_bank(&alice(), &bob(), [100, 50]);
		let (alice_free, bob_free) = (free(&alice()), free(&bob()));
		assert_ok!(splice(&alice(), channel, 7, [0, 0], [0, 80]));

		assert_eq!(free(&bob()), bob_free + 80);
		assert_eq!(held(&bob()), 0);
		assert_eq!(held(&alice()), BANK_DEPOSIT + 70);
		assert_eq!(free(&alice()), alice_free);
		let bank = Channels::<Test>::get(channel).unwrap();
		assert_eq!(bank.balances, [70, 0]);
		// Bob's 40 left, Alice's 30, at sheet 7: a close pays exactly that.
		let sheet = [30, 40];
		let signatures = [
			sign_close(&pair("Alice"), channel, 7, sheet),
			sign_close(&pair("Bob"), channel, 7, sheet),
		];
		assert_ok!(VirtualBank::close(origin(&bob()), channel, 7, sheet, signatures));
		assert_eq!(free(&alice()), alice_free + 30 + BANK_DEPOSIT);
		assert_eq!(free(&bob()), bob_free + 80 + 40);
	});
}

#[test]
fn no_sheet_or_close_from_before_the_splice_counts_even_at_the_same_total() {
	build_and_execute(|| {
		let channel = running_bank(&alice(), &bob(), [100, 50]);
		// Topped up by 30, then 30 taken out again: the total is 150 as at the start.
		assert_ok!(splice(&alice(), channel, 2, [30, 0], [0, 0]));
		assert_ok!(splice(&alice(), channel, 4, [0, 0], [30, 0]));
		let waiver = waiver(2, 3);
		let stale = sign_sheet(&pair("Alice"), channel, 3, [100, 50], &waiver);
		assert_noop!(
			VirtualBank::liquidate(origin(&bob()), channel, 3, [100, 50], waiver, stale),
			Error::<Test>::SheetBeforeSplice
		);
		let signatures = [
			sign_close(&pair("Alice"), channel, 3, [0, 150]),
			sign_close(&pair("Bob"), channel, 3, [0, 150]),
		];
		assert_noop!(
			VirtualBank::close(origin(&bob()), channel, 3, [0, 150], signatures),
			Error::<Test>::SheetBeforeSplice
		);
		let no_htlcs = Default::default();
		let waiver = self::waiver(1, 1);
		let stale = sign_sheet(&pair("Bob"), channel, 1, [100, 50], &waiver);
		assert_noop!(
			VirtualBank::liquidate_with_htlcs(
				origin(&alice()),
				channel,
				1,
				[100, 50],
				waiver,
				no_htlcs,
				stale
			),
			Error::<Test>::SheetBeforeSplice
		);
		// The splice's own nonce, and later ones, do.
		liquidate_signed(&alice(), "Bob", 1, channel, 4, [75, 75]);
	});
}

#[test]
fn a_splice_is_refused_replayed_unsigned_empty_or_beyond_what_the_bank_holds() {
	build_and_execute(|| {
		let channel = running_bank(&alice(), &bob(), [100, 50]);
		assert_noop!(splice(&alice(), channel, 1, [0, 0], [0, 0]), Error::<Test>::NothingToSplice);
		assert_noop!(
			splice(&alice(), channel, 1, [0, 0], [151, 0]),
			Error::<Test>::BalanceMismatch
		);
		assert_noop!(splice(&alice(), channel, 1, [0, 0], [100, 50]), Error::<Test>::NothingToLock);
		assert_noop!(
			splice(&alice(), channel, 1, [u128::MAX, 0], [0, 0]),
			Error::<Test>::AmountOverflow
		);
		assert_noop!(
			splice(&alice(), channel, 1, [0, ENDOWMENT], [0, 0]),
			TokenError::FundsUnavailable
		);
		assert_noop!(splice(&charlie(), channel, 1, [5, 0], [0, 0]), Error::<Test>::NotAClient);
		// One signature of the two over another payload.
		let signatures = [
			sign_splice(&pair("Alice"), channel, 1, [5, 0], [0, 0]),
			sign_splice(&pair("Bob"), channel, 1, [6, 0], [0, 0]),
		];
		assert_noop!(
			VirtualBank::splice(origin(&alice()), channel, 1, [5, 0], [0, 0], signatures),
			Error::<Test>::BadSignature
		);
		// Both signatures by one client.
		let alices = sign_splice(&pair("Alice"), channel, 1, [5, 0], [0, 0]);
		assert_noop!(
			VirtualBank::splice(
				origin(&alice()),
				channel,
				1,
				[5, 0],
				[0, 0],
				[alices.clone(), alices]
			),
			Error::<Test>::BadSignature
		);
		assert_ok!(splice(&alice(), channel, 1, [5, 0], [0, 0]));
		// The same splice again, or one at an older nonce: refused.
		assert_noop!(splice(&bob(), channel, 1, [5, 0], [0, 0]), Error::<Test>::StaleSplice);
		assert_noop!(splice(&bob(), channel, 0, [5, 0], [0, 0]), Error::<Test>::StaleSplice);
		assert_eq!(Channels::<Test>::get(channel).unwrap().total(), Some(155));
	});
}

#[test]
fn only_a_running_bank_is_spliced_and_its_record_goes_with_it() {
	build_and_execute(|| {
		assert_ok!(VirtualBank::open(origin(&alice()), bob(), 10, 10, LOCK));
		assert_noop!(splice(&alice(), 0, 1, [5, 0], [0, 0]), Error::<Test>::WrongState);
		assert_noop!(splice(&alice(), 9, 1, [5, 0], [0, 0]), Error::<Test>::UnknownChannel);
		let channel = running_bank(&alice(), &bob(), [100, 50]);
		assert_ok!(splice(&alice(), channel, 1, [0, 10], [0, 0]));
		liquidate_signed(&alice(), "Bob", 1, channel, 1, [100, 60]);
		assert_noop!(splice(&alice(), channel, 2, [5, 0], [0, 0]), Error::<Test>::WrongState);
		// The lock ends: the bank and its splice record are removed (`try_state` checks none
		// is left behind).
		run_to_block(System::block_number() + LOCK);
		assert!(Channels::<Test>::get(channel).is_none());
		assert_eq!(SplicedAt::<Test>::get(channel), None);
	});
}
