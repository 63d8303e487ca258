//! A byzantine peer: every malformed message is refused with a typed error, leaves the bank
//! and its store as they were, and the honest protocol goes on afterwards.

use super::*;
use codec::{Decode, Encode};
use rsmc::{keys::Signer, secrets, store::MemoryStore, Body, Error, HelperError};
use sp_core::{sr25519, Pair};
use sp_runtime::MultiSignature;

fn refuses(helper: &mut Helper<MemoryStore>, message: &Message) -> Error {
	let before = helper.bank(message.channel).cloned();
	let stored = helper.store().load_all().unwrap();
	let error = match helper.handle(message) {
		Err(HelperError::Protocol(e)) => e,
		other => panic!("{} was not refused: {other:?}", message.body.name()),
	};
	assert_eq!(helper.bank(message.channel).cloned(), before, "state changed by {error}");
	assert_eq!(helper.store().load_all().unwrap(), stored, "store changed by {error}");
	error
}

fn garbage_signature() -> MultiSignature {
	sr25519::Pair::from_seed(&[9; 32]).sign(b"nothing").into()
}

#[test]
fn a_forged_proposal_is_refused() {
	let (mut alice, mut bob) = opened(MemoryStore::default(), MemoryStore::default(), [100, 100]);
	let propose = alice.pay(CHANNEL, 10).unwrap();
	let Body::Propose { nonce, balances, signature, waivers } = propose.body.clone() else {
		panic!()
	};
	let eve = signer("Eve");
	let sheet = |nonce, balances: [u128; 2]| {
		let bank = bob.bank(CHANNEL).unwrap();
		sheet_payload(&GENESIS, CHANNEL, nonce, &balances, &bank.my_waiver(nonce).unwrap())
	};
	let cases = [
		// Signed by someone else, or over other balances, or not at all.
		(
			Body::Propose {
				nonce,
				balances,
				signature: eve.sign(&sheet(nonce, balances)),
				waivers: waivers.clone(),
			},
			Error::BadSignature,
		),
		(
			Body::Propose {
				nonce,
				balances,
				signature: garbage_signature(),
				waivers: waivers.clone(),
			},
			Error::BadSignature,
		),
		(
			Body::Propose {
				nonce,
				balances: [89, 111],
				signature: signature.clone(),
				waivers: waivers.clone(),
			},
			Error::BadSignature,
		),
		// Balances that do not add up, even when signed.
		(
			Body::Propose {
				nonce,
				balances: [95, 100],
				signature: signer("Alice").sign(&sheet(nonce, [95, 100])),
				waivers: waivers.clone(),
			},
			Error::BalanceMismatch,
		),
		// A "payment" that takes from Bob.
		(
			Body::Propose {
				nonce,
				balances: [110, 90],
				signature: signer("Alice").sign(&sheet(nonce, [110, 90])),
				waivers: waivers.clone(),
			},
			Error::NotAPayment,
		),
		// Wrong nonces: a skipped one and a replayed one.
		(
			Body::Propose {
				nonce: 2,
				balances,
				signature: signature.clone(),
				waivers: waivers.clone(),
			},
			Error::UnexpectedNonce { expected: 1, got: 2 },
		),
		(
			Body::Propose {
				nonce: 0,
				balances,
				signature: signature.clone(),
				waivers: waivers.clone(),
			},
			Error::Stale { nonce: 0 },
		),
		// Out of turn: an Accept or a Revoke nobody asked for.
		(
			Body::Revoke { nonce: 0, secrets: vec![[1; 32]], next_waiver: account(&eve) },
			Error::UnexpectedMessage { phase: "not awaiting a revocation", message: "Revoke" },
		),
	];
	for (body, expected) in cases {
		assert_eq!(refuses(&mut bob, &with_body(&propose, body, "Alice")), expected);
	}
	// The honest proposal, signed by a stranger or re-addressed to another bank, is ignored.
	for stranger in ["Eve", "Bob"] {
		assert_eq!(
			refuses(&mut bob, &with_body(&propose, propose.body.clone(), stranger)),
			Error::NotFromPeer
		);
	}
	let elsewhere = Message { channel: CHANNEL + 1, ..propose.clone() };
	assert!(matches!(bob.handle(&elsewhere), Err(HelperError::UnknownBank(_))));

	// The honest proposal still goes through.
	let accept = deliver(&mut bob, &propose).unwrap();
	let revoke = deliver(&mut alice, &accept).unwrap();
	deliver(&mut bob, &revoke);
	assert_agree(alice.bank(CHANNEL).unwrap(), bob.bank(CHANNEL).unwrap());
}

#[test]
fn a_forged_accept_or_revoke_is_refused() {
	let (mut alice, mut bob) = opened(MemoryStore::default(), MemoryStore::default(), [100, 100]);
	pay(&mut alice, &mut bob, 1);
	let propose = alice.pay(CHANNEL, 10).unwrap();
	let accept = deliver(&mut bob, &propose).unwrap();
	let Body::Accept { nonce, signature, secrets, next_waiver } = accept.body.clone() else {
		panic!()
	};
	let secret = *secrets.last().unwrap();
	let other_chain = secrets::generate(&[3; 32], secrets::index_of(nonce - 1).unwrap());
	let cases = [
		(
			Body::Accept {
				nonce,
				signature: garbage_signature(),
				secrets: secrets.clone(),
				next_waiver: next_waiver.clone(),
			},
			Error::BadSignature,
		),
		// A secret that does not open Bob's announced key for his revoked sheet.
		(
			Body::Accept {
				nonce,
				signature: signature.clone(),
				secrets: vec![secrets[0], other_chain],
				next_waiver: next_waiver.clone(),
			},
			Error::WrongSecret { nonce: nonce - 1 },
		),
		(
			Body::Accept {
				nonce: nonce + 1,
				signature: signature.clone(),
				secrets: vec![secret],
				next_waiver: next_waiver.clone(),
			},
			Error::UnexpectedNonce { expected: nonce, got: nonce + 1 },
		),
	];
	for (body, expected) in cases {
		assert_eq!(refuses(&mut alice, &with_body(&accept, body, "Bob")), expected);
	}
	let revoke = deliver(&mut alice, &accept).unwrap();
	let Body::Revoke { nonce, secrets, next_waiver } = revoke.body.clone() else { panic!() };
	let secret = *secrets.last().unwrap();
	let mut flipped = secret;
	flipped[0] ^= 1;
	let cases = [
		(
			Body::Revoke { nonce, secrets: vec![flipped], next_waiver: next_waiver.clone() },
			Error::WrongSecret { nonce },
		),
		(
			Body::Revoke {
				nonce: nonce + 1,
				secrets: vec![secret],
				next_waiver: next_waiver.clone(),
			},
			Error::UnexpectedMessage { phase: "not awaiting a revocation", message: "Revoke" },
		),
	];
	for (body, expected) in cases {
		assert_eq!(refuses(&mut bob, &with_body(&revoke, body, "Alice")), expected);
	}
	deliver(&mut bob, &revoke);
	// Now a stale repeat.
	assert_eq!(refuses(&mut bob, &revoke), Error::Stale { nonce });
	assert_agree(alice.bank(CHANNEL).unwrap(), bob.bank(CHANNEL).unwrap());
}

#[test]
fn a_forged_handshake_is_refused() {
	let alice_signer = signer("Alice");
	let bob_signer = signer("Bob");
	let (a, b) = (account(&alice_signer), account(&bob_signer));
	let mut alice = Helper::new(alice_signer, GENESIS, MemoryStore::default()).unwrap();
	let mut bob = Helper::new(bob_signer, GENESIS, MemoryStore::default())
		.unwrap()
		.with_policy(rsmc::Policy::ACCEPT_ALL);
	// Terms that do not name the receiver, or name one account twice.
	for clients in [[a.clone(), account(&signer("Eve"))], [b.clone(), b.clone()]] {
		let body = Body::Open {
			clients,
			balances: [1, 1],
			lock_period: 10,
			waivers: [a.clone(), a.clone()],
			reserve: 0,
		};
		let open = Message::signed(&GENESIS, CHANNEL, body, &*signer("Alice"));
		assert_eq!(
			bob.handle(&open).map(drop).map_err(|e| e.to_string()),
			Err(Error::BadTerms.to_string())
		);
	}
	let open = alice.open(terms(&a, &b, [u128::MAX, 0])).unwrap();
	let accept = deliver(&mut bob, &open).unwrap();
	let Body::OpenAccept { waivers, .. } = accept.body.clone() else { panic!() };
	let forged =
		with_body(&accept, Body::OpenAccept { waivers, signature: garbage_signature() }, "Bob");
	assert_eq!(refuses(&mut alice, &forged), Error::BadSignature);
	// A payment before the handshake is done.
	let early = with_body(
		&open,
		Body::Propose {
			nonce: 1,
			balances: [0, 0],
			signature: garbage_signature(),
			waivers: [a.clone(), a.clone()],
		},
		"Alice",
	);
	assert!(matches!(refuses(&mut bob, &early), Error::UnexpectedMessage { .. }));
	let confirm = deliver(&mut alice, &accept).unwrap();
	let forged = with_body(&confirm, Body::OpenConfirm { signature: garbage_signature() }, "Alice");
	assert_eq!(refuses(&mut bob, &forged), Error::BadSignature);
	deliver(&mut bob, &confirm);
	assert_agree(alice.bank(CHANNEL).unwrap(), bob.bank(CHANNEL).unwrap());
}

#[test]
fn bytes_that_are_no_message_do_not_decode() {
	let body =
		Body::Revoke { nonce: 1, secrets: vec![[0; 32]], next_waiver: account(&signer("Eve")) };
	let open = Message::signed(&GENESIS, CHANNEL, body, &*signer("Eve"));
	let bytes = open.encode();
	assert_eq!(Message::decode(&mut &bytes[..]).unwrap(), open);
	assert!(Message::decode(&mut &bytes[..bytes.len() - 1]).is_err());
	assert!(Message::decode(&mut &[0xff, 0, 0][..]).is_err());
}
