//! Dust: a client that has no account, owed less than the existential deposit.

use super::*;
use crate::Releases;

/// A client that was never funded: it has no account.
fn nobody() -> AccountId {
	account("Nobody")
}

/// A running bank where Alice brings `amount` and Nobody nothing.
fn bank_with_nobody(amount: Balance) -> ChannelId {
	let channel = running_bank(&alice(), &nobody(), [amount, 0]);
	assert!(!frame_system::Account::<Test>::contains_key(nobody()));
	channel
}

/// Alice liquidates `channel` with sheet 1, `sheet`, which Nobody signed.
fn alice_liquidates(channel: ChannelId, sheet: Shares) {
	liquidate_signed(&alice(), "Nobody", 1, channel, 1, sheet);
}

fn trimmed(channel: ChannelId, amount: Balance) -> Event<Test> {
	Event::Trimmed { channel, who: nobody(), amount }
}

#[test]
fn a_liquidation_owing_dust_to_a_client_with_no_account_leaves_it_with_the_master() {
	build_and_execute(|| {
		let channel = bank_with_nobody(100);
		let sheet = [100 - (ED - 1), ED - 1];
		alice_liquidates(channel, sheet);
		let events = bank_events();
		assert_eq!(events[0], trimmed(channel, ED - 1));
		assert!(!frame_system::Account::<Test>::contains_key(nobody()));
		// The master holds the whole bank, and gets it when the lock ends.
		assert_eq!(Channels::<Test>::get(channel).unwrap().balances, [100, 0]);
		assert_eq!(held(&alice()), 100 + BANK_DEPOSIT);
		run_to_block(1 + LOCK);
		assert_eq!(free(&alice()), ENDOWMENT);
	});
}

#[test]
fn a_liquidation_paying_a_client_with_no_account_at_least_the_deposit_creates_it() {
	build_and_execute(|| {
		let channel = bank_with_nobody(100);
		let sheet = [100 - ED, ED];
		alice_liquidates(channel, sheet);
		assert_eq!(free(&nobody()), ED);
	});
}

#[test]
fn a_master_with_no_account_cannot_liquidate_into_a_frozen_share() {
	build_and_execute(|| {
		// Funds can only be frozen on an account that exists. On a chain with fees a client
		// that sends `liquidate` always has one; here the mock charges none.
		let channel = bank_with_nobody(100);
		let sheet = [50, 50];
		let signature = sign_sheet(&pair("Alice"), channel, 1, sheet, &waiver(2, 1));
		assert_noop!(
			VirtualBank::liquidate(origin(&nobody()), channel, 1, sheet, waiver(2, 1), signature),
			TokenError::CannotCreateHold
		);
		// Alice can still close it or liquidate it herself.
		alice_liquidates(channel, sheet);
		assert_eq!(free(&nobody()), 50);
	});
}

#[test]
fn a_close_owing_dust_to_a_client_with_no_account_leaves_it_with_the_other() {
	build_and_execute(|| {
		let channel = bank_with_nobody(100);
		let sheet = [100 - (ED - 1), ED - 1];
		let signatures = [
			sign_close(&pair("Alice"), channel, 2, sheet),
			sign_close(&pair("Nobody"), channel, 2, sheet),
		];
		assert_ok!(VirtualBank::close(origin(&alice()), channel, 2, sheet, signatures));
		assert_eq!(
			bank_events(),
			vec![trimmed(channel, ED - 1), Event::Closed { channel, balances: sheet }]
		);
		assert_eq!(free(&alice()), ENDOWMENT);
		assert!(!frame_system::Account::<Test>::contains_key(nobody()));
	});
}

#[test]
fn a_penalty_below_the_deposit_for_a_client_with_no_account_stays_with_the_cheat() {
	build_and_execute(|| {
		// A bank worth less than the existential deposit: nothing in it can ever make Nobody
		// an account.
		let total = ED - 1;
		let channel = bank_with_nobody(total);
		let revoked = [total - 1, 1];
		alice_liquidates(channel, revoked);
		bank_events();
		let proof = sign_waiver(&waiver_pair(1, 1), channel, 1);
		assert_ok!(VirtualBank::withdraw_by_peer(origin(&bob()), channel, proof));
		assert_eq!(
			bank_events(),
			vec![
				trimmed(channel, total),
				Event::WithdrawnByPeer { channel, who: nobody(), amount: 0, nonce: 1 }
			]
		);
		assert!(Channels::<Test>::get(channel).is_none());
		assert!(!Releases::<Test>::contains_key(1 + LOCK));
		assert_eq!(free(&alice()), ENDOWMENT);
	});
}

#[test]
fn a_penalty_pays_a_client_with_no_account_once_it_is_at_least_the_deposit() {
	build_and_execute(|| {
		let channel = bank_with_nobody(100);
		let revoked = [100 - (ED - 1), ED - 1];
		alice_liquidates(channel, revoked);
		// Its dust was trimmed into Alice's frozen share; the penalty hands it all over.
		let proof = sign_waiver(&waiver_pair(1, 1), channel, 1);
		assert_ok!(VirtualBank::withdraw_by_peer(origin(&bob()), channel, proof));
		assert_eq!(free(&nobody()), 100);
		assert_eq!(free(&alice()), ENDOWMENT - 100);
	});
}
