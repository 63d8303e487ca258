//! C1 of the HTLC review: a helper that has decided to liquidate signs and reveals nothing
//! more, so that no message of its peer's can revoke the sheet on its way to the chain.

use super::*;
use rsmc::{
	chain::{ChainCall, ChainEvent},
	store::MemoryStore,
	Error, HelperError,
};

fn liquidated_refusal<T: std::fmt::Debug>(result: Result<T, HelperError>) {
	match result {
		Err(HelperError::Protocol(Error::Liquidated)) => {},
		other => panic!("expected Liquidated, got {other:?}"),
	}
}

/// The review's test: Bob decides to liquidate with sheet n; Alice's 1-planck payment
/// arrives before the chain includes it. Before the fix Bob answered with an `Accept` that
/// revealed the secret of n, and Alice could take everything.
#[test]
fn a_payment_arriving_while_our_liquidation_is_on_its_way_reveals_nothing() {
	let (mut alice, mut bob) = opened(MemoryStore::default(), MemoryStore::default(), [100, 100]);
	pay(&mut alice, &mut bob, 10);
	let sheet = bob.liquidate(CHANNEL).unwrap();
	let propose = alice.pay(CHANNEL, 1).unwrap();
	liquidated_refusal(bob.handle(&propose));
	assert!(!alice.bank(CHANNEL).unwrap().is_revoked_by_peer(sheet.nonce));
	assert_eq!(alice.bank(CHANNEL).unwrap().penalty(sheet.nonce), None);
	// Nothing of ours starts either, and nothing is sent again.
	liquidated_refusal(bob.pay(CHANNEL, 1));
	liquidated_refusal(bob.close(CHANNEL));
	assert_eq!(bob.retransmission(CHANNEL), None);
	// Asked again, the same sheet.
	assert_eq!(bob.liquidate(CHANNEL).unwrap(), sheet);
	assert_can_liquidate(bob.bank(CHANNEL).unwrap(), alice.bank(CHANNEL).unwrap());
}

/// The fallback's variant: Bob proposed, Alice stayed silent, Bob liquidates with his
/// newest sheet; Alice's late `Accept` then gets no `Revoke` (which would reveal it), though
/// the secrets it brings are kept.
#[test]
fn a_late_accept_of_our_proposal_gets_no_revoke_once_we_liquidate() {
	let (mut alice, mut bob) = opened(MemoryStore::default(), MemoryStore::default(), [100, 100]);
	pay(&mut alice, &mut bob, 10);
	let propose = bob.pay(CHANNEL, 5).unwrap();
	let accept = deliver(&mut alice, &propose).unwrap();
	let sheet = bob.liquidate(CHANNEL).unwrap();
	assert_eq!(sheet.nonce, 1, "the newest sheet Bob holds");
	let step = bob.handle(&accept).unwrap();
	assert_eq!(step.reply, None, "no Revoke");
	assert!(!alice.bank(CHANNEL).unwrap().is_revoked_by_peer(sheet.nonce));
	// Alice's secret of her sheet 1 came with the Accept: Bob can punish it.
	assert!(bob.bank(CHANNEL).unwrap().is_revoked_by_peer(1));
}

/// The mark is durable: a helper restarted from its store still refuses, and owes the
/// liquidation to the chain until the chain shows it.
#[test]
fn a_liquidation_decided_is_owed_until_the_chain_shows_it_even_after_a_restart() {
	let store = Arc::new(MemoryStore::default());
	let (mut alice, mut bob) =
		opened_at(CHANNEL, MemoryStore::default(), store.clone(), [100, 100]);
	pay_on(CHANNEL, &mut alice, &mut bob, 10);
	let sheet = bob.liquidate(CHANNEL).unwrap();
	drop(bob);
	let mut bob = Helper::new(signer("Bob"), GENESIS, store).unwrap();
	let propose = alice.pay(CHANNEL, 1).unwrap();
	liquidated_refusal(bob.handle(&propose));
	let owed = bob.on_chain_event(&ChainEvent::Block { number: 5 }).unwrap();
	assert_eq!(owed, vec![ChainCall::Liquidate(sheet.clone())]);
	let bob_account = account(&signer("Bob"));
	let seen = ChainEvent::Liquidated {
		channel: CHANNEL,
		master: bob_account,
		nonce: sheet.nonce,
		balances: sheet.balances,
		unlock_at: 20,
		release_at: 20,
	};
	bob.on_chain_event(&seen).unwrap();
	let owed = bob.on_chain_event(&ChainEvent::Block { number: 6 }).unwrap();
	assert!(!owed.iter().any(|c| matches!(c, ChainCall::Liquidate(_))), "{owed:?}");
}

/// Peeking at the sheet (the bank view, the test cheats) marks nothing: payments go on.
#[test]
fn reading_the_newest_sheet_is_not_deciding_to_liquidate() {
	let (mut alice, mut bob) = opened(MemoryStore::default(), MemoryStore::default(), [100, 100]);
	bob.liquidation(CHANNEL).unwrap();
	pay(&mut alice, &mut bob, 10);
	assert!(bob.bank(CHANNEL).unwrap().is_live());
	assert_eq!(bob.on_chain_event(&ChainEvent::Block { number: 5 }).unwrap(), vec![]);
}
