//! Cooperative close: both sides end up holding both signatures on the close payload of the
//! newest sheet, and no payment can follow.

use crate::*;
use rsmc::{bank::Action, keys::Signer, store::MemoryStore, Body, Error, HelperError};
use vbank_primitives::close_payload;

fn refused(result: Result<impl core::fmt::Debug, HelperError>) -> Error {
	match result {
		Err(HelperError::Protocol(e)) => e,
		other => panic!("expected a protocol error, got {other:?}"),
	}
}

#[test]
fn both_sides_hold_both_signatures_on_the_newest_sheet() {
	let (mut alice, mut bob) = opened(MemoryStore::default(), MemoryStore::default(), [100, 50]);
	pay(&mut alice, &mut bob, 30);
	pay(&mut bob, &mut alice, 5);

	// Bob (client 1) asks; Alice signs back.
	let close = bob.close(CHANNEL).unwrap();
	let accept = deliver(&mut alice, &close).unwrap();
	assert!(matches!(accept.body, Body::CloseAccept { nonce: 2, .. }));
	assert_eq!(deliver(&mut bob, &accept), None);

	let payload = close_payload(&GENESIS, CHANNEL, 2, &[75, 75]);
	let clients = alice.bank(CHANNEL).unwrap().terms.clients.clone();
	for helper in [&alice, &bob] {
		let closing = helper.bank(CHANNEL).unwrap().closing().unwrap();
		assert_eq!((closing.nonce, closing.balances), (2, [75, 75]));
		let signatures = closing.signatures().expect("both signatures");
		for (signature, client) in signatures.iter().zip(&clients) {
			assert!(verify_signature(signature, &payload, client));
		}
	}

	// No payment after a close was signed, either way.
	assert_eq!(refused(alice.pay(CHANNEL, 1)), Error::Closing);
	assert_eq!(refused(bob.pay(CHANNEL, 1)), Error::Closing);
}

#[test]
fn a_close_that_is_not_the_newest_sheet_or_not_signed_is_refused_and_changes_nothing() {
	let (mut alice, mut bob) = opened(MemoryStore::default(), MemoryStore::default(), [100, 50]);
	pay(&mut alice, &mut bob, 30);
	let before = bob.bank(CHANNEL).unwrap().clone();

	let Body::Close { nonce, balances, signature } = alice.close(CHANNEL).unwrap().body else {
		panic!("a Close")
	};
	let forged = |nonce, balances, signature| {
		Message::signed(
			&GENESIS,
			CHANNEL,
			Body::Close { nonce, balances, signature },
			&*signer("Alice"),
		)
	};
	let mut richer = balances;
	richer[0] += 10;
	richer[1] -= 10;
	assert_eq!(
		refused(bob.handle(&forged(nonce, richer, signature.clone()))),
		Error::CloseMismatch
	);
	assert_eq!(refused(bob.handle(&forged(nonce - 1, balances, signature))), Error::CloseMismatch);
	let bob_signature = signer("Bob").sign(&close_payload(&GENESIS, CHANNEL, nonce, &balances));
	assert_eq!(refused(bob.handle(&forged(nonce, balances, bob_signature))), Error::BadSignature);
	assert_eq!(bob.bank(CHANNEL).unwrap(), &before);
	// Bob may still pay: only a valid close stops payments.
	assert!(bob.bank(CHANNEL).unwrap().closing().is_none());
}

#[test]
fn a_close_waits_for_the_payment_in_flight() {
	let (mut alice, mut bob) = opened(MemoryStore::default(), MemoryStore::default(), [100, 50]);
	let propose = alice.pay(CHANNEL, 10).unwrap();
	let e = refused(alice.close(CHANNEL));
	assert_eq!((e.clone(), e.action()), (Error::Busy, Action::Retry));
	let accept = deliver(&mut bob, &propose).unwrap();
	// Bob has accepted but not yet been paid: he cannot close either.
	assert_eq!(refused(bob.close(CHANNEL)), Error::Busy);
	let revoke = deliver(&mut alice, &accept).unwrap();
	deliver(&mut bob, &revoke);
	let close = bob.close(CHANNEL).unwrap();
	let accept = deliver(&mut alice, &close).unwrap();
	deliver(&mut bob, &accept);
	assert_eq!(bob.bank(CHANNEL).unwrap().closing().unwrap().balances, [90, 60]);
}
