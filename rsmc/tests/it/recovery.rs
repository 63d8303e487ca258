//! A stale store never costs its owner (issue 28, part 3; `docs/recovery.md`): a helper
//! restored from an older copy of its store learns from the peer's `Reestablish` that it is
//! behind, never liquidates with its own sheets, and closes at the peer's newest sheet, proven
//! with its own signature. A peer that lies about it is caught by the signatures.

use crate::*;
use rsmc::{
	chain::ChainCall, keys::Signer, store::MemoryStore, Error, HelperError, Htlc, HtlcUpdate,
	Progress,
};

type Helpers = (Helper<MemoryStore>, Helper<MemoryStore>);

fn refused(result: Result<impl core::fmt::Debug, HelperError>) -> Error {
	match result {
		Err(HelperError::Protocol(e)) => e,
		other => panic!("expected a protocol error, got {other:?}"),
	}
}

/// Bob's helper started again from `copy`, an older copy of his store.
fn restored(copy: &Bank) -> Helper<MemoryStore> {
	Helper::with_banks(signer("Bob"), GENESIS, MemoryStore::default(), [copy.clone()])
		.with_policy(Policy::ACCEPT_ALL)
}

/// Alice and Bob after three payments, Bob's copy of his store then, and ten payments more.
fn ten_payments_after_a_copy() -> (Helpers, Bank) {
	let (mut alice, mut bob) = opened(MemoryStore::default(), MemoryStore::default(), [500, 500]);
	for amount in [10, 20, 30] {
		pay(&mut alice, &mut bob, amount);
	}
	let copy = bob.bank(CHANNEL).unwrap().clone();
	for i in 0..10 {
		if i % 3 == 0 {
			pay(&mut bob, &mut alice, 7);
		} else {
			pay(&mut alice, &mut bob, 5);
		}
	}
	((alice, bob), copy)
}

/// Carry `message` back and forth between `a` (its receiver) and `b` until neither answers;
/// the progress each side made.
fn exchange(
	message: Message,
	a: &mut Helper<MemoryStore>,
	b: &mut Helper<MemoryStore>,
) -> (Vec<Progress>, Vec<Progress>) {
	let (mut made_a, mut made_b) = (Vec::new(), Vec::new());
	let mut next = Some(message);
	let mut to_a = true;
	while let Some(message) = next.take() {
		let (to, made) = if to_a { (&mut *a, &mut made_a) } else { (&mut *b, &mut made_b) };
		let step = to.handle(&message).unwrap_or_else(|e| panic!("{}: {e}", message.body.name()));
		made.extend(step.progress);
		next = step.reply;
		to_a = !to_a;
	}
	(made_a, made_b)
}

/// Bob, behind, owes the chain the close at Alice's newest sheet, which both signed, and
/// nothing he could liquidate with; Alice holds the same close.
fn assert_closes_at_the_newest(alice: &Helper<MemoryStore>, bob: &Helper<MemoryStore>) {
	let newest = alice.bank(CHANNEL).unwrap();
	let old = bob.bank(CHANNEL).unwrap();
	assert!(old.is_behind() && !old.is_live());
	assert_eq!(old.liquidation(), None, "a behind helper never liquidates with its sheets");
	let owed = bob.owed_calls(0);
	let [ChainCall::Close { nonce, balances, signatures, .. }] = &owed[..] else {
		panic!("the close owed: {owed:?}")
	};
	assert_eq!((*nonce, *balances), (newest.nonce(), newest.balances()));
	let payload = vbank_primitives::close_payload(&GENESIS, CHANNEL, *nonce, balances);
	for (signature, client) in signatures.iter().zip(&newest.terms.clients) {
		assert!(verify_signature(signature, &payload, client));
	}
	assert_eq!(
		alice.bank(CHANNEL).unwrap().closing().and_then(|c| c.signatures()),
		Some(signatures.clone())
	);
	assert_eq!(alice.owed_calls(0), vec![], "the close is sent by the helper that was behind");
}

#[test]
fn a_store_restored_from_a_copy_learns_it_is_behind_and_closes_at_the_newest() {
	// Bob's restored helper speaks first.
	let ((mut alice, _), copy) = ten_payments_after_a_copy();
	let mut old_bob = restored(&copy);
	assert_eq!(old_bob.bank(CHANNEL).unwrap().nonce(), 3);
	let hello = old_bob.reestablish(CHANNEL).unwrap();
	let (by_alice, by_bob) = exchange(hello, &mut alice, &mut old_bob);
	assert_eq!(by_alice, vec![Progress::PeerBehind { nonce: 13 }]);
	assert_eq!(by_bob, vec![Progress::Behind { nonce: 13 }]);
	assert_closes_at_the_newest(&alice, &old_bob);
	assert_eq!(refused(old_bob.pay(CHANNEL, 1)), Error::Behind);

	// Alice speaks first: the same.
	let ((mut alice, _), copy) = ten_payments_after_a_copy();
	let mut old_bob = restored(&copy);
	let hello = alice.reestablish(CHANNEL).unwrap();
	let (by_bob, by_alice) = exchange(hello, &mut old_bob, &mut alice);
	assert_eq!(by_bob, vec![Progress::Behind { nonce: 13 }, Progress::Behind { nonce: 13 }]);
	assert_eq!(by_alice, vec![Progress::PeerBehind { nonce: 13 }]);
	assert_closes_at_the_newest(&alice, &old_bob);
}

#[test]
fn helpers_that_are_up_to_date_compare_and_go_on() {
	let ((mut alice, mut bob), _) = ten_payments_after_a_copy();
	for first_is_alice in [true, false] {
		let (made_a, made_b) = if first_is_alice {
			let hello = alice.reestablish(CHANNEL).unwrap();
			exchange(hello, &mut bob, &mut alice)
		} else {
			let hello = bob.reestablish(CHANNEL).unwrap();
			exchange(hello, &mut alice, &mut bob)
		};
		assert_eq!((made_a, made_b), (vec![], vec![]));
	}
	for helper in [&alice, &bob] {
		let bank = helper.bank(CHANNEL).unwrap();
		assert!(!bank.is_behind() && bank.is_live() && bank.closing().is_none());
	}
	pay(&mut alice, &mut bob, 1);
	assert_agree(alice.bank(CHANNEL).unwrap(), bob.bank(CHANNEL).unwrap());
}

/// With an HTLC pending there is no close: Bob, behind, owes nothing and can liquidate with
/// nothing; Alice keeps her newest sheet, to go on chain with as the HTLC nears its expiry,
/// as with any silent peer. Showing it changed nothing of hers, however often Bob's
/// `Reestablish` comes again.
#[test]
fn with_an_htlc_pending_bob_waits_and_a_replayed_reestablish_changes_nothing() {
	let ((mut alice, mut bob), copy) = ten_payments_after_a_copy();
	let htlc = Htlc { from: 0, amount: 9, hashlock: H256([3; 32]), expiry: 1_000 };
	let add = alice.update(CHANNEL, HtlcUpdate::Add(htlc.clone())).unwrap();
	exchange(add, &mut bob, &mut alice);
	let alices = alice.bank(CHANNEL).unwrap().clone();
	let mut old_bob = restored(&copy);
	let hello = old_bob.reestablish(CHANNEL).unwrap();
	let (by_alice, by_bob) = exchange(hello.clone(), &mut alice, &mut old_bob);
	assert_eq!(by_alice, vec![Progress::PeerBehind { nonce: 14 }]);
	assert_eq!(by_bob, vec![Progress::Behind { nonce: 14 }]);
	assert!(old_bob.bank(CHANNEL).unwrap().is_behind());
	assert_eq!(old_bob.owed_calls(0), vec![]);
	assert_eq!(old_bob.bank(CHANNEL).unwrap().liquidation(), None);
	for _ in 0..2 {
		let step = alice.handle(&hello).unwrap();
		assert!(matches!(step.reply.map(|m| m.body), Some(Body::Newest { nonce: 14, .. })));
	}
	assert_eq!(alice.bank(CHANNEL).unwrap(), &alices, "nothing of Alice's changed");
	let sheet = alices.liquidation().unwrap();
	assert_eq!((sheet.nonce, &sheet.htlcs[..]), (14, &[htlc][..]));
	assert_eq!(alice.owed_calls(0), vec![]);
}

/// A peer that claims we are behind is caught by the signatures: a secret not made from our
/// seed, an old secret of ours, or a sheet we never signed changes nothing.
#[test]
fn a_peer_that_lies_about_being_ahead_is_caught_by_the_signatures() {
	let ((mut alice, mut bob), copy) = ten_payments_after_a_copy();
	let before = bob.bank(CHANNEL).unwrap().clone();
	let to_bob = |body| Message::signed(&GENESIS, CHANNEL, body, &*signer("Alice"));
	// The newest secret of Bob's Alice really holds (his sheet 12, revoked), as her
	// `Reestablish` shows it.
	let Body::Reestablish { your_secret: Some((revoked, secret)), .. } =
		alice.reestablish(CHANNEL).unwrap().body
	else {
		panic!("Alice holds Bob's secrets")
	};
	assert_eq!(revoked, 12);
	// A made-up secret for Bob's newest sheet.
	let forged = Body::Reestablish { nonce: 13, your_secret: Some((13, [7; 32])), answer: true };
	assert_eq!(refused(bob.handle(&to_bob(forged))), Error::WrongSecret { nonce: 13 });
	// A real secret of an older sheet, or a real secret renamed as the newest.
	let old = Body::Reestablish { nonce: 13, your_secret: Some((revoked, secret)), answer: false };
	assert_eq!(bob.handle(&to_bob(old)).unwrap().progress, None);
	let renamed = Body::Reestablish { nonce: 13, your_secret: Some((13, secret)), answer: false };
	assert_eq!(refused(bob.handle(&to_bob(renamed))), Error::WrongSecret { nonce: 13 });
	// A `Newest` proving nothing: Bob is not behind.
	let newest = |your_secret, signature| Body::Newest {
		nonce: 20,
		balances: [1_000, 0],
		htlcs: vec![],
		waiver: account(&signer("Alice")),
		signature,
		your_secret,
	};
	let alices_signature = signer("Alice").sign(b"anything");
	let unproven = newest((revoked, secret), alices_signature.clone());
	assert_eq!(refused(bob.handle(&to_bob(unproven))), Error::Stale { nonce: revoked });
	assert_eq!(bob.bank(CHANNEL).unwrap(), &before, "nothing changed");

	// Bob really behind (a restored copy), shown a sheet he never signed: refused.
	let mut old_bob = restored(&copy);
	let made_up = newest((revoked, secret), alices_signature);
	assert_eq!(refused(old_bob.handle(&to_bob(made_up))), Error::BadSignature);
	assert!(!old_bob.bank(CHANNEL).unwrap().is_behind());
	assert_eq!(old_bob.bank(CHANNEL).unwrap(), &copy);
	pay(&mut alice, &mut bob, 1);
}

/// What a helper that lost its store entirely can derive again from its account key alone:
/// the waiver seed of each bank, so every waiver key and secret of its own sheets.
#[test]
fn a_helper_that_lost_its_store_derives_its_waiver_keys_again_from_its_account_key() {
	let ((alice, bob), _) = ten_payments_after_a_copy();
	for (helper, name) in [(&alice, "Alice"), (&bob, "Bob")] {
		let bank = helper.bank(CHANNEL).unwrap();
		let seed = signer(name).waiver_seed(&GENESIS, CHANNEL);
		for nonce in 0..=bank.nonce() + 1 {
			let secret = rsmc::keys::waiver_secret(&seed, nonce).unwrap();
			assert_eq!(
				rsmc::keys::waiver_key(&secret),
				bank.my_waiver(nonce).unwrap(),
				"{name} {nonce}"
			);
		}
	}
}

/// A store lost entirely: Bob's helper knows only his account key. It takes the bank back from
/// the chain's terms, derives its waiver secrets again, learns from Alice's `Newest` where the
/// bank is, and closes at her newest sheet, which it signed. Whoever speaks first.
#[test]
fn a_lost_store_is_rebuilt_from_the_chain_and_the_account_key_and_closes_at_the_newest() {
	for bob_first in [true, false] {
		let ((mut alice, bob), _) = ten_payments_after_a_copy();
		let terms = bob.bank(CHANNEL).unwrap().terms.clone();
		drop(bob);
		let mut lost = Helper::new(signer("Bob"), GENESIS, MemoryStore::default()).unwrap();
		// Only as the client the chain names, and only once.
		assert!(lost.recover_lost(terms.clone(), 0).is_err());
		lost.recover_lost(terms.clone(), 1).unwrap();
		assert!(lost.recover_lost(terms, 1).is_err());
		let bank = lost.bank(CHANNEL).unwrap();
		assert!(bank.is_behind() && !bank.is_live());
		assert_eq!(bank.liquidation(), None, "nothing to liquidate with");
		assert_eq!(refused(lost.pay(CHANNEL, 1)), Error::Behind);
		if bob_first {
			let hello = lost.reestablish(CHANNEL).unwrap();
			let (by_alice, by_bob) = exchange(hello, &mut alice, &mut lost);
			assert_eq!(by_alice, vec![Progress::PeerBehind { nonce: 13 }]);
			assert_eq!(by_bob, vec![Progress::Behind { nonce: 13 }]);
		} else {
			// Alice's `Reestablish` holds a secret of Bob's sheet 12: he learns nothing from
			// it he did not know, and asks her for her newest.
			let hello = alice.reestablish(CHANNEL).unwrap();
			exchange(hello, &mut lost, &mut alice);
			let hello = lost.reestablish(CHANNEL).unwrap();
			exchange(hello, &mut alice, &mut lost);
		}
		assert_closes_at_the_newest(&alice, &lost);
		// The store holds it: a crash now loses nothing more.
		let stored = lost.store().load_all().unwrap();
		assert_eq!(stored, vec![lost.bank(CHANNEL).unwrap().clone()]);
	}
}

/// A lost store's helper is not fooled either: the secret must be made from its key, and the
/// sheet one its account signed.
#[test]
fn a_lost_store_refuses_a_peer_that_lies_about_the_newest() {
	let ((_, bob), _) = ten_payments_after_a_copy();
	let terms = bob.bank(CHANNEL).unwrap().terms.clone();
	let mut lost = Helper::new(signer("Bob"), GENESIS, MemoryStore::default()).unwrap();
	lost.recover_lost(terms, 1).unwrap();
	let before = lost.bank(CHANNEL).unwrap().clone();
	let lie = |secret: [u8; 32], signature| {
		let body = Body::Newest {
			nonce: 20,
			balances: [1, 999],
			htlcs: vec![],
			waiver: account(&signer("Alice")),
			signature,
			your_secret: (12, secret),
		};
		Message::signed(&GENESIS, CHANNEL, body, &*signer("Alice"))
	};
	let by_alice = |payload: &[u8]| rsmc::keys::Signer::sign(&*signer("Alice"), payload);
	let forged = lie([9; 32], by_alice(b"anything"));
	assert!(lost.handle(&forged).is_err());
	// A real secret of Bob's, but a sheet only Alice signed.
	let bob_secret = rsmc::keys::waiver_secret(
		&rsmc::keys::Signer::waiver_seed(&*signer("Bob"), &GENESIS, CHANNEL),
		12,
	)
	.unwrap();
	let unsigned = lie(bob_secret, by_alice(b"a sheet Bob never signed"));
	assert!(lost.handle(&unsigned).is_err());
	assert_eq!(lost.bank(CHANNEL).unwrap(), &before);
	assert_eq!(lost.owed_calls(0), vec![]);
}

/// A peer may show a helper that lost its store any sheet of its own the helper signed: the
/// helper cannot tell the newest from an older one. It signs one close only: a peer that
/// showed an old sheet, then the newest, holds a close signature for the first alone, and the
/// same `Newest` again is answered with the same `Close`.
#[test]
fn a_helper_behind_signs_one_close_only() {
	let (mut alice, mut bob) = opened(MemoryStore::default(), MemoryStore::default(), [500, 500]);
	for amount in [10, 20, 30] {
		pay(&mut alice, &mut bob, amount);
	}
	let old_alice = alice.bank(CHANNEL).unwrap().clone();
	for _ in 0..10 {
		pay(&mut alice, &mut bob, 5);
	}
	let terms = bob.bank(CHANNEL).unwrap().terms.clone();
	let mut lost = Helper::new(signer("Bob"), GENESIS, MemoryStore::default()).unwrap();
	lost.recover_lost(terms, 1).unwrap();

	// Alice as she was at sheet 3 answers first: Bob closes there (he cannot know better).
	let mut then =
		Helper::with_banks(signer("Alice"), GENESIS, MemoryStore::default(), [old_alice])
			.with_policy(Policy::ACCEPT_ALL);
	let hello = lost.reestablish(CHANNEL).unwrap();
	let newest_then = then.handle(&hello).unwrap().reply.unwrap();
	let close = lost.handle(&newest_then).unwrap().reply.unwrap();
	assert!(matches!(close.body, Body::Close { nonce: 3, .. }), "{:?}", close.body);
	let signed = lost.bank(CHANNEL).unwrap().clone();
	// The same `Newest` again: the same `Close`, nothing else signed.
	let again = lost.handle(&newest_then).unwrap().reply.unwrap();
	assert_eq!(again.body, close.body);

	// Alice now shows her newest: refused, and Bob's close stays the one at sheet 3.
	let newest_now = alice.handle(&hello).unwrap().reply.unwrap();
	assert!(matches!(newest_now.body, Body::Newest { nonce: 13, .. }));
	assert_eq!(refused(lost.handle(&newest_now)), Error::UnexpectedNonce { expected: 3, got: 13 });
	assert_eq!(lost.bank(CHANNEL).unwrap(), &signed);
}
