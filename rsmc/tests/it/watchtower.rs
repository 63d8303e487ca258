//! The watchtower against a fake chain: a liquidation with a revoked sheet is punished at
//! once; our own liquidation is withdrawn when the lock ends only if the chain releases it
//! later.

use super::*;
use rsmc::{
	chain::{ChainCall, ChainEvent},
	keys::Signer,
	store::MemoryStore,
	Body,
};

/// A liquidation whose lock ends at `unlock_at`, released by the chain two blocks later (the
/// release schedule was full at `unlock_at` and the next block).
fn liquidated(master: &AccountId32, nonce: u64, unlock_at: u64) -> ChainEvent {
	ChainEvent::Liquidated {
		channel: CHANNEL,
		master: master.clone(),
		nonce,
		balances: [0, 0],
		unlock_at,
		release_at: unlock_at + 2,
	}
}

#[test]
fn a_liquidation_with_a_revoked_sheet_is_punished_at_once() {
	let (mut alice, mut bob) = opened(MemoryStore::default(), MemoryStore::default(), [100, 100]);
	pay(&mut alice, &mut bob, 10);
	pay(&mut alice, &mut bob, 10);
	let alice_account = account(&signer("Alice"));
	for revoked in [0, 1] {
		let calls = bob.on_chain_event(&liquidated(&alice_account, revoked, 50)).unwrap();
		let [ChainCall::WithdrawByPeer { channel, waiver_signature }] = &calls[..] else {
			panic!("expected a penalty, got {calls:?}")
		};
		assert_eq!(*channel, CHANNEL);
		let waiver = alice.bank(CHANNEL).unwrap().my_waiver(revoked).unwrap();
		let payload = waiver_payload(&GENESIS, CHANNEL, revoked);
		assert!(verify_signature(waiver_signature, &payload, &waiver));
	}
	// Owed again at every block until the lock ends (or the chain settles the bank).
	let calls = bob.on_chain_event(&ChainEvent::Block { number: 49 }).unwrap();
	assert!(matches!(&calls[..], [ChainCall::WithdrawByPeer { .. }]), "{calls:?}");
	assert_eq!(bob.on_chain_event(&ChainEvent::Block { number: 50 }).unwrap(), vec![]);
	bob.forget(CHANNEL).unwrap();
	assert_eq!(bob.on_chain_event(&ChainEvent::Block { number: 49 }).unwrap(), vec![]);
}

#[test]
fn a_liquidation_with_the_newest_sheet_is_left_alone() {
	let (mut alice, mut bob) = opened(MemoryStore::default(), MemoryStore::default(), [100, 100]);
	pay(&mut alice, &mut bob, 10);
	let alice_account = account(&signer("Alice"));
	assert_eq!(bob.on_chain_event(&liquidated(&alice_account, 1, 50)).unwrap(), vec![]);
	for number in 0..100 {
		assert_eq!(bob.on_chain_event(&ChainEvent::Block { number }).unwrap(), vec![]);
	}
}

#[test]
fn our_own_liquidation_is_withdrawn_when_the_lock_ends_before_the_chain_releases_it() {
	let (mut alice, mut bob) = opened(MemoryStore::default(), MemoryStore::default(), [100, 100]);
	pay(&mut alice, &mut bob, 10);
	let liquidation = alice.liquidation(CHANNEL).unwrap();
	assert_eq!((liquidation.nonce, liquidation.balances), (1, [90, 110]));
	let alice_account = account(&signer("Alice"));
	alice.on_chain_event(&liquidated(&alice_account, 1, 20)).unwrap();
	for number in 10..20 {
		assert_eq!(alice.on_chain_event(&ChainEvent::Block { number }).unwrap(), vec![]);
	}
	let calls = alice.on_chain_event(&ChainEvent::Block { number: 20 }).unwrap();
	assert_eq!(calls, vec![ChainCall::WithdrawByMaster { channel: CHANNEL }]);
	// Owed at every block until the chain releases it by itself.
	let calls = alice.on_chain_event(&ChainEvent::Block { number: 21 }).unwrap();
	assert_eq!(calls, vec![ChainCall::WithdrawByMaster { channel: CHANNEL }]);
	assert_eq!(alice.on_chain_event(&ChainEvent::Block { number: 22 }).unwrap(), vec![]);
	alice.forget(CHANNEL).unwrap();
	assert_eq!(alice.on_chain_event(&ChainEvent::Block { number: 21 }).unwrap(), vec![]);
}

#[test]
fn our_own_liquidation_released_by_the_chain_at_the_lock_end_needs_nothing_sent() {
	let (mut alice, _bob) = opened(MemoryStore::default(), MemoryStore::default(), [100, 100]);
	let mut event = liquidated(&account(&signer("Alice")), 0, 20);
	let ChainEvent::Liquidated { release_at, .. } = &mut event else { unreachable!() };
	*release_at = 20;
	alice.on_chain_event(&event).unwrap();
	for number in 10..30 {
		assert_eq!(alice.on_chain_event(&ChainEvent::Block { number }).unwrap(), vec![]);
	}
}

#[test]
fn an_owed_call_survives_a_restart() {
	let store = MemoryStore::default();
	let (alice, _bob) = opened(store, MemoryStore::default(), [100, 100]);
	let mut alice = alice;
	let alice_account = account(&signer("Alice"));
	alice.on_chain_event(&liquidated(&alice_account, 0, 20)).unwrap();
	let banks = alice.store().load_all().unwrap();
	let restored = MemoryStore::default();
	for bank in &banks {
		rsmc::store::Store::save(&restored, bank).unwrap();
	}
	let alice = Helper::new(signer("Alice"), GENESIS, restored).unwrap();
	assert_eq!(alice.owed_calls(20), vec![ChainCall::WithdrawByMaster { channel: CHANNEL }]);
}

#[test]
fn a_liquidated_bank_takes_no_payment_and_a_secret_revealed_later_is_punished() {
	let (mut alice, mut bob) = opened(MemoryStore::default(), MemoryStore::default(), [100, 100]);
	pay(&mut alice, &mut bob, 10);
	// Alice proposes sheet 2; Bob accepts, revealing his secret 1, and waits for her Revoke.
	let propose = alice.pay(CHANNEL, 10).unwrap();
	let accept = deliver(&mut bob, &propose).unwrap();
	// Alice liquidates with sheet 1 while it is not yet revoked: nothing to punish yet.
	let alice_account = account(&signer("Alice"));
	assert_eq!(bob.on_chain_event(&liquidated(&alice_account, 1, 50)).unwrap(), vec![]);
	let step = alice.handle(&accept).unwrap();
	let revoke = step.reply.unwrap();
	// Her Revoke of sheet 1 arrives after the liquidation: Bob keeps the secret, signs
	// nothing, and now owes the chain the penalty.
	let step = bob.handle(&revoke).unwrap();
	assert_eq!((step.reply, step.progress), (None, Some(rsmc::Progress::SecretsLearned)));
	let calls = bob.on_chain_event(&ChainEvent::Block { number: 10 }).unwrap();
	let [ChainCall::WithdrawByPeer { waiver_signature, .. }] = &calls[..] else {
		panic!("expected a penalty, got {calls:?}")
	};
	let waiver = alice.bank(CHANNEL).unwrap().my_waiver(1).unwrap();
	assert!(verify_signature(waiver_signature, &waiver_payload(&GENESIS, CHANNEL, 1), &waiver));
	// And a proposal on the liquidated bank is refused, however well signed.
	let propose = with_body(
		&revoke,
		Body::Propose {
			nonce: 3,
			balances: [70, 130],
			signature: signer("Alice").sign(b"anything"),
			waivers: [alice_account.clone(), alice_account],
		},
		"Alice",
	);
	assert!(matches!(
		bob.handle(&propose),
		Err(rsmc::HelperError::Protocol(rsmc::Error::Liquidated))
	));
}

#[test]
fn liquidations_of_other_banks_are_ignored() {
	let (_alice, mut bob) = opened(MemoryStore::default(), MemoryStore::default(), [100, 100]);
	let event = ChainEvent::Liquidated {
		channel: CHANNEL + 1,
		master: account(&signer("Eve")),
		nonce: 0,
		balances: [0, 0],
		unlock_at: 5,
		release_at: 5,
	};
	assert_eq!(bob.on_chain_event(&event).unwrap(), vec![]);
}

/// A deposit was three attempts, then nothing until a restart: a bank whose deposit was lost
/// three times stayed Funding for good, our handshake done. It is now owed like every other
/// call, at every block and tick, exactly while the chain waits for our share of a bank whose
/// handshake is done.
#[test]
fn a_deposit_is_owed_while_the_chain_waits_for_it_and_then_no_more() {
	use rsmc::chain::deposit_owed;
	use vbank_primitives::{Channel, ChannelState};
	let (alice, bob) = opened(MemoryStore::default(), MemoryStore::default(), [100, 0]);
	let on_chain = |state, deposited| Channel {
		clients: [account(&signer("Alice")), account(&signer("Bob"))],
		balances: [100, 0],
		deposited,
		lock_period: 10,
		state,
		liquidation: None,
		storage_deposit: 1,
	};
	let owed = Some(ChainCall::Deposit { channel: CHANNEL });
	let [a, b] = [alice.bank(CHANNEL).unwrap(), bob.bank(CHANNEL).unwrap()];
	assert_eq!(deposit_owed(a, &on_chain(ChannelState::Funding, [false, false])), owed);
	// Bob brings nothing: his side counts as deposited, nothing is owed.
	assert_eq!(deposit_owed(b, &on_chain(ChannelState::Funding, [false, true])), None);
	// Once the chain has it, or the bank runs, no more.
	assert_eq!(deposit_owed(a, &on_chain(ChannelState::Funding, [true, true])), None);
	assert_eq!(deposit_owed(a, &on_chain(ChannelState::Running, [true, true])), None);
}

/// A reorg dropped the liquidation both sides saw, and nothing brought it back: the chain runs
/// the bank again. Neither side signed anything since, so each still holds its newest sheet
/// unrevoked, and liquidates with it; neither goes back to paying (the dropped liquidation,
/// still valid, could come back with what would then be a revoked sheet).
#[test]
fn a_liquidation_a_reorg_dropped_is_made_again_with_the_newest_sheet() {
	let (mut alice, mut bob) = opened(MemoryStore::default(), MemoryStore::default(), [100, 100]);
	pay(&mut alice, &mut bob, 10);
	pay(&mut alice, &mut bob, 10);
	let undone = ChainEvent::LiquidationUndone { channel: CHANNEL };
	// A bank the chain never showed liquidated: nothing to undo.
	assert_eq!(bob.on_chain_event(&undone).unwrap(), vec![]);
	assert!(bob.bank(CHANNEL).unwrap().is_live());

	let alice_account = account(&signer("Alice"));
	for helper in [&mut alice, &mut bob] {
		assert_eq!(helper.on_chain_event(&liquidated(&alice_account, 2, 50)).unwrap(), vec![]);
		let calls = helper.on_chain_event(&undone).unwrap();
		let [ChainCall::Liquidate(sheet)] = &calls[..] else {
			panic!("expected a liquidation, got {calls:?}")
		};
		assert_eq!((sheet.nonce, sheet.balances), (2, [80, 120]), "the newest sheet");
		assert!(!helper.bank(CHANNEL).unwrap().is_live(), "no payment on its way to the chain");
		assert!(helper.pay(CHANNEL, 1).is_err(), "no payment on a bank going on chain");
		// Owed at every block until the chain shows a liquidation again.
		let calls = helper.on_chain_event(&ChainEvent::Block { number: 30 }).unwrap();
		assert!(matches!(&calls[..], [ChainCall::Liquidate(s)] if s.nonce == 2), "{calls:?}");
		assert_eq!(helper.on_chain_event(&liquidated(&alice_account, 2, 60)).unwrap(), vec![]);
		assert_eq!(helper.on_chain_event(&ChainEvent::Block { number: 31 }).unwrap(), vec![]);
	}
	// The same after a restart from the store.
	let store = Arc::new(MemoryStore::default());
	let (mut alice, _) = opened(store.clone(), Arc::default(), [100, 100]);
	alice.on_chain_event(&liquidated(&alice_account, 0, 50)).unwrap();
	alice.on_chain_event(&undone).unwrap();
	let restarted = Helper::new(signer("Alice"), GENESIS, store).unwrap();
	assert!(matches!(&restarted.owed_calls(1)[..], [ChainCall::Liquidate(s)] if s.nonce == 0));
}
