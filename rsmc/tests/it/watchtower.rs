//! The watchtower against a fake chain: a liquidation with a revoked sheet is punished at
//! once; our own liquidation is followed by the master's withdrawal when the lock ends.

use super::*;
use rsmc::{
	chain::{Chain, ChainCall, ChainEvent},
	store::MemoryStore,
};
use std::cell::RefCell;

#[derive(Default)]
struct FakeChain(RefCell<Vec<ChainCall>>);

impl Chain for FakeChain {
	fn submit(&self, call: ChainCall) -> Result<(), String> {
		self.0.borrow_mut().push(call);
		Ok(())
	}
}

fn liquidated(master: &AccountId32, nonce: u64, unlock_at: u64) -> ChainEvent {
	ChainEvent::Liquidated {
		channel: CHANNEL,
		master: master.clone(),
		nonce,
		balances: [0, 0],
		unlock_at,
	}
}

#[test]
fn a_liquidation_with_a_revoked_sheet_is_punished_at_once() {
	let (mut alice, mut bob) = opened(MemoryStore::default(), MemoryStore::default(), [100, 100]);
	pay(&mut alice, &mut bob, 10);
	pay(&mut alice, &mut bob, 10);
	let chain = FakeChain::default();
	let alice_account = account(&signer("Alice"));
	for revoked in [0, 1] {
		let calls = bob.on_chain_event(&liquidated(&alice_account, revoked, 50), &chain).unwrap();
		let [ChainCall::WithdrawByPeer { channel, waiver_signature }] = &calls[..] else {
			panic!("expected a penalty, got {calls:?}")
		};
		assert_eq!(*channel, CHANNEL);
		let waiver = alice.bank(CHANNEL).unwrap().my_waiver(revoked).unwrap();
		let payload = waiver_payload(&GENESIS, CHANNEL, revoked);
		assert!(verify_signature(waiver_signature, &payload, &waiver));
	}
	assert_eq!(chain.0.borrow().len(), 2);
}

#[test]
fn a_liquidation_with_the_newest_sheet_is_left_alone() {
	let (mut alice, mut bob) = opened(MemoryStore::default(), MemoryStore::default(), [100, 100]);
	pay(&mut alice, &mut bob, 10);
	let chain = FakeChain::default();
	let alice_account = account(&signer("Alice"));
	assert_eq!(bob.on_chain_event(&liquidated(&alice_account, 1, 50), &chain).unwrap(), vec![]);
	for number in 0..100 {
		assert_eq!(bob.on_chain_event(&ChainEvent::Block { number }, &chain).unwrap(), vec![]);
	}
	assert!(chain.0.borrow().is_empty());
}

#[test]
fn our_own_liquidation_is_withdrawn_when_the_lock_ends() {
	let (mut alice, mut bob) = opened(MemoryStore::default(), MemoryStore::default(), [100, 100]);
	pay(&mut alice, &mut bob, 10);
	let chain = FakeChain::default();
	let liquidation = alice.liquidation(CHANNEL).unwrap();
	assert_eq!((liquidation.nonce, liquidation.balances), (1, [90, 110]));
	let alice_account = account(&signer("Alice"));
	alice.on_chain_event(&liquidated(&alice_account, 1, 20), &chain).unwrap();
	for number in 10..20 {
		assert_eq!(alice.on_chain_event(&ChainEvent::Block { number }, &chain).unwrap(), vec![]);
	}
	let calls = alice.on_chain_event(&ChainEvent::Block { number: 20 }, &chain).unwrap();
	assert_eq!(calls, vec![ChainCall::WithdrawByMaster { channel: CHANNEL }]);
	// Once only.
	assert_eq!(alice.on_chain_event(&ChainEvent::Block { number: 21 }, &chain).unwrap(), vec![]);
	assert_eq!(chain.0.borrow().len(), 1);
}

#[test]
fn liquidations_of_other_banks_are_ignored() {
	let (_alice, mut bob) = opened(MemoryStore::default(), MemoryStore::default(), [100, 100]);
	let chain = FakeChain::default();
	let event = ChainEvent::Liquidated {
		channel: CHANNEL + 1,
		master: account(&signer("Eve")),
		nonce: 0,
		balances: [0, 0],
		unlock_at: 5,
	};
	assert_eq!(bob.on_chain_event(&event, &chain).unwrap(), vec![]);
}
