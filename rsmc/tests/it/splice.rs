//! Splices (`docs/splice.md`): a top-up or a withdrawal agreed off chain, owed to the chain
//! by its proposer, and taking effect only once the chain holds it final; until then each
//! side can liquidate with its sheet from before, after it with its sheet at the splice.

use crate::*;
use codec::Encode;
use rsmc::{
	chain::{ChainCall, ChainEvent},
	store::MemoryStore,
	Error, HelperError,
};
use vbank_primitives::splice_payload;

fn refused(result: Result<impl core::fmt::Debug, HelperError>) -> Error {
	match result {
		Err(HelperError::Protocol(e)) => e,
		other => panic!("expected a protocol error, got {other:?}"),
	}
}

/// `proposer` splices: adds `amount_in` or takes `amount_out`; the three messages over a
/// perfect network. Not yet on chain.
fn splice<S: Store>(
	proposer: &mut Helper<S>,
	peer: &mut Helper<S>,
	amount_in: u128,
	amount_out: u128,
) {
	let splice = proposer.splice(CHANNEL, amount_in, amount_out).unwrap();
	let accept = deliver(peer, &splice).unwrap();
	let signed = deliver(proposer, &accept).unwrap();
	assert_eq!(deliver(peer, &signed), None);
}

fn landed<S: Store>(helpers: [&mut Helper<S>; 2], nonce: u64) {
	for helper in helpers {
		let owed = helper.on_chain_event(&ChainEvent::Spliced { channel: CHANNEL, nonce }).unwrap();
		assert_eq!(owed, vec![]);
	}
}

fn sheet<S: Store>(helper: &Helper<S>) -> (u64, Balances) {
	let bank = helper.bank(CHANNEL).unwrap();
	(bank.nonce(), bank.balances())
}

#[test]
fn a_top_up_and_a_withdrawal_take_effect_once_final_and_payments_go_on() {
	let (mut alice, mut bob) = opened(MemoryStore::default(), MemoryStore::default(), [100, 50]);
	pay(&mut alice, &mut bob, 30);
	splice(&mut alice, &mut bob, 40, 0);

	// Both signed the splice payload; only its proposer owes it to the chain.
	let clients = alice.bank(CHANNEL).unwrap().terms.clients.clone();
	let payload = splice_payload(&GENESIS, CHANNEL, 2, &[40, 0], &[0, 0]);
	for helper in [&alice, &bob] {
		let splicing = helper.bank(CHANNEL).unwrap().splicing().unwrap();
		let signatures = splicing.signatures().expect("both signatures");
		for (signature, client) in signatures.iter().zip(&clients) {
			assert!(verify_signature(signature, &payload, client));
		}
	}
	let owed = alice.owed_calls(1);
	assert!(
		matches!(
			&owed[..],
			[ChainCall::Splice { nonce: 2, amounts_in: [40, 0], amounts_out: [0, 0], .. }]
		),
		"{owed:?}"
	);
	assert_eq!(bob.owed_calls(1), vec![]);

	// Not on chain yet: each still liquidates with its sheet from before, and no payment is
	// made while the chain may go either way.
	for (me, peer) in [(&alice, &bob), (&bob, &alice)] {
		assert_eq!(sheet(me), (1, [70, 80]));
		assert_can_liquidate(me.bank(CHANNEL).unwrap(), peer.bank(CHANNEL).unwrap());
	}
	assert_eq!(refused(alice.pay(CHANNEL, 1)), Error::SplicePending { nonce: 2 });
	assert_eq!(refused(bob.pay(CHANNEL, 1)), Error::SplicePending { nonce: 2 });
	assert_eq!(refused(bob.close(CHANNEL)), Error::SplicePending { nonce: 2 });

	// Final on chain: the sheets at the splice share out the new total.
	landed([&mut alice, &mut bob], 2);
	assert_agree(alice.bank(CHANNEL).unwrap(), bob.bank(CHANNEL).unwrap());
	for (me, peer) in [(&alice, &bob), (&bob, &alice)] {
		assert_eq!(sheet(me), (2, [110, 80]));
		assert_can_liquidate(me.bank(CHANNEL).unwrap(), peer.bank(CHANNEL).unwrap());
	}
	assert_eq!(alice.owed_calls(1), vec![]);

	// Payments go on; the next revokes the sheets from before the splice too.
	pay(&mut bob, &mut alice, 10);
	pay(&mut alice, &mut bob, 5);
	assert_eq!(sheet(&alice), (4, [115, 75]));
	assert_can_punish_every_revoked_sheet(alice.bank(CHANNEL).unwrap(), bob.bank(CHANNEL).unwrap());
	assert_can_punish_every_revoked_sheet(bob.bank(CHANNEL).unwrap(), alice.bank(CHANNEL).unwrap());

	// Bob takes 70 of his 75 out; not more than he has.
	assert_eq!(
		refused(bob.splice(CHANNEL, 0, 76)),
		Error::InsufficientFunds { available: 75, requested: 76 }
	);
	splice(&mut bob, &mut alice, 0, 70);
	landed([&mut alice, &mut bob], 5);
	assert_eq!(sheet(&bob), (5, [115, 5]));
	pay(&mut alice, &mut bob, 15);
	assert_eq!(sheet(&bob), (6, [100, 20]));
	assert_agree(alice.bank(CHANNEL).unwrap(), bob.bank(CHANNEL).unwrap());
}

#[test]
fn a_splice_is_one_sided_and_positive_and_a_forged_one_is_refused() {
	let (mut alice, mut bob) = opened(MemoryStore::default(), MemoryStore::default(), [100, 50]);
	assert_eq!(
		refused(alice.splice(CHANNEL, 0, 0)),
		Error::BadSplice("a splice adds or takes a positive amount, not both")
	);
	assert_eq!(
		refused(alice.splice(CHANNEL, 5, 5)),
		Error::BadSplice("a splice adds or takes a positive amount, not both")
	);
	assert_eq!(
		refused(alice.splice(CHANNEL, 0, 101)),
		Error::InsufficientFunds { available: 100, requested: 101 }
	);
	let before = bob.bank(CHANNEL).unwrap().clone();
	let splice = alice.splice(CHANNEL, 20, 0).unwrap();
	let Body::Splice { nonce, amounts_in, amounts_out, signature, waivers } = splice.body.clone()
	else {
		panic!("a Splice")
	};
	// Alice asking to take Bob's money, or to add more than her signature covers.
	let takes_bobs = Body::Splice {
		nonce,
		amounts_in,
		amounts_out: [0, 10],
		signature: signature.clone(),
		waivers: waivers.clone(),
	};
	let more = Body::Splice { nonce, amounts_in: [30, 0], amounts_out, signature, waivers };
	for (body, why) in [
		(takes_bobs, Error::BadSplice("a splice changes only its proposer's share")),
		(more, Error::BadSignature),
	] {
		assert_eq!(refused(bob.handle(&with_body(&splice, body, "Alice"))), why);
		// Signed by somebody else than the peer.
		assert_eq!(bob.bank(CHANNEL), Some(&before));
	}
	assert_eq!(
		refused(bob.handle(&with_body(&splice, splice.body.clone(), "Charlie"))),
		Error::NotFromPeer
	);
	assert_eq!(bob.bank(CHANNEL), Some(&before));
	// A `SpliceSigned` over another splice than agreed.
	let accept = deliver(&mut bob, &splice).unwrap();
	let signed = deliver(&mut alice, &accept).unwrap();
	let Body::SpliceSigned { nonce, .. } = signed.body else { panic!("a SpliceSigned") };
	let other = splice_payload(&GENESIS, CHANNEL, nonce, &[21, 0], &[0, 0]);
	let forged = Body::SpliceSigned {
		nonce,
		splice_signature: rsmc::keys::Signer::sign(&*signer("Alice"), &other),
	};
	assert_eq!(refused(bob.handle(&with_body(&signed, forged, "Alice"))), Error::BadSignature);
	assert_eq!(deliver(&mut bob, &signed), None);
}

/// A splice meeting the peer's payment at the same nonce gives way to it. Two splices at one
/// nonce: each side signed a sheet of the other's there, so neither splice may be signed at
/// it (their totals may be equal: a sheet of one and the splice of the other would both
/// stand); `clients[0]`'s is made again at the next nonce, and the other's drops.
#[test]
fn a_splice_gives_way_to_a_payment_and_two_at_once_move_to_the_next_nonce() {
	let (mut alice, mut bob) = opened(MemoryStore::default(), MemoryStore::default(), [100, 50]);
	let splice_message = alice.splice(CHANNEL, 20, 0).unwrap();
	let propose = bob.pay(CHANNEL, 10).unwrap();
	assert_eq!(refused(bob.handle(&splice_message)), Error::Busy);
	let accept = deliver(&mut alice, &propose).unwrap();
	let revoke = deliver(&mut bob, &accept).unwrap();
	assert_eq!(deliver(&mut alice, &revoke), None);
	assert!(alice.bank(CHANNEL).unwrap().splicing().is_none(), "the splice gave way");
	assert_agree(alice.bank(CHANNEL).unwrap(), bob.bank(CHANNEL).unwrap());
	assert_eq!(sheet(&alice), (1, [110, 40]));
	// The old `Splice` arriving late is stale.
	assert_eq!(refused(bob.handle(&splice_message)), Error::Stale { nonce: 1 });

	// Both take 40 out at nonce 2: the sheets each signed the other there add up alike.
	let alices = alice.splice(CHANNEL, 0, 40).unwrap();
	let bobs = bob.splice(CHANNEL, 0, 40).unwrap();
	// Bob's reaches Alice: she makes hers again at nonce 3.
	let again = deliver(&mut alice, &bobs).unwrap();
	assert!(matches!(again.body, Body::Splice { nonce: 3, .. }), "{:?}", again.body);
	// Hers at 2 reaches Bob: he signs nothing more at 2 and sends his back.
	let back = deliver(&mut bob, &alices).unwrap();
	assert!(matches!(back.body, Body::Splice { nonce: 2, .. }), "{:?}", back.body);
	assert_eq!(refused(alice.handle(&back)), Error::Busy);
	// Hers at 3: Bob drops his and accepts.
	let accept = deliver(&mut bob, &again).unwrap();
	assert!(matches!(accept.body, Body::SpliceAccept { nonce: 3, .. }));
	let signed = deliver(&mut alice, &accept).unwrap();
	assert_eq!(deliver(&mut bob, &signed), None);
	assert!(bob.owed_calls(1).is_empty() && !alice.owed_calls(1).is_empty());
	landed([&mut alice, &mut bob], 3);
	assert_eq!(sheet(&bob), (3, [70, 40]));
	assert_agree(alice.bank(CHANNEL).unwrap(), bob.bank(CHANNEL).unwrap());
	// A splice at 3 after a payment at 1 leaves sheets 1 and 2 unrevoked: Bob's next splice
	// waits for a payment, whose messages revoke all of them.
	assert_eq!(
		refused(bob.splice(CHANNEL, 0, 40)),
		Error::BadSplice(
			"two splices since the last payment: the sheets before them are not revoked yet"
		)
	);
	pay(&mut alice, &mut bob, 10);
	assert_can_punish_every_revoked_sheet(alice.bank(CHANNEL).unwrap(), bob.bank(CHANNEL).unwrap());
	assert_can_punish_every_revoked_sheet(bob.bank(CHANNEL).unwrap(), alice.bank(CHANNEL).unwrap());
	splice(&mut bob, &mut alice, 0, 50);
	landed([&mut alice, &mut bob], 5);
	assert_eq!(sheet(&alice), (5, [60, 0]));
	assert_agree(alice.bank(CHANNEL).unwrap(), bob.bank(CHANNEL).unwrap());
}

/// Two splices in a row leave two sheets unrevoked each side; the next payment revokes them
/// all, also when it collides with the peer's and is made one nonce later.
#[test]
fn after_two_splices_a_payment_and_a_collision_revoke_every_sheet_before() {
	let (mut alice, mut bob) = opened(MemoryStore::default(), MemoryStore::default(), [100, 50]);
	splice(&mut alice, &mut bob, 30, 0);
	landed([&mut alice, &mut bob], 1);
	splice(&mut bob, &mut alice, 0, 20);
	landed([&mut alice, &mut bob], 2);
	assert_eq!(sheet(&alice), (2, [130, 30]));
	assert!(matches!(refused(alice.splice(CHANNEL, 1, 0)), Error::BadSplice(_)));
	// Both pay at nonce 3: Alice's stands, made again at 4 (Bob's gives way; his driver would
	// propose it again after, as here by hand).
	let alices = alice.pay(CHANNEL, 7).unwrap();
	let bobs = bob.pay(CHANNEL, 3).unwrap();
	let mut to_bob = vec![alices];
	let mut to_alice = vec![bobs];
	for round in 0.. {
		assert!(round < 20, "the collision never settles");
		if to_bob.is_empty() && to_alice.is_empty() {
			break;
		}
		for message in std::mem::take(&mut to_bob) {
			to_alice.extend(bob.handle(&message).ok().and_then(|s| s.reply));
		}
		for message in std::mem::take(&mut to_alice) {
			to_bob.extend(alice.handle(&message).ok().and_then(|s| s.reply));
		}
		if to_bob.is_empty() && to_alice.is_empty() {
			to_alice.extend(bob.retransmission(CHANNEL));
			to_bob.extend(alice.retransmission(CHANNEL));
		}
	}
	assert_agree(alice.bank(CHANNEL).unwrap(), bob.bank(CHANNEL).unwrap());
	assert_eq!(sheet(&alice), (4, [123, 37]));
	pay(&mut bob, &mut alice, 3);
	assert_eq!(sheet(&alice), (5, [126, 34]));
	assert_can_punish_every_revoked_sheet(alice.bank(CHANNEL).unwrap(), bob.bank(CHANNEL).unwrap());
	assert_can_punish_every_revoked_sheet(bob.bank(CHANNEL).unwrap(), alice.bank(CHANNEL).unwrap());
}

/// A close meeting an unaccepted splice: the splice gives way, as to a payment.
#[test]
fn a_splice_gives_way_to_a_close_proposed_at_once() {
	let (mut alice, mut bob) = opened(MemoryStore::default(), MemoryStore::default(), [100, 50]);
	pay(&mut alice, &mut bob, 10);
	let splice_message = alice.splice(CHANNEL, 0, 10).unwrap();
	let close = bob.close(CHANNEL).unwrap();
	assert_eq!(refused(bob.handle(&splice_message)), Error::Closing);
	let accept = deliver(&mut alice, &close).unwrap();
	assert!(matches!(accept.body, Body::CloseAccept { nonce: 1, .. }));
	assert_eq!(deliver(&mut bob, &accept), None);
	assert!(alice.bank(CHANNEL).unwrap().splicing().is_none());
	for helper in [&alice, &bob] {
		let closing = helper.bank(CHANNEL).unwrap().closing().unwrap();
		assert_eq!((closing.nonce, closing.balances), (1, [90, 60]));
		assert!(closing.signatures().is_some());
	}
}

/// Lost messages are sent again; a restart keeps the splice owed; a splice the chain never
/// shows leaves the sheets from before in force.
#[test]
fn a_lost_message_is_sent_again_and_a_restart_keeps_the_splice_owed() {
	let store = Arc::new(MemoryStore::default());
	let (mut alice, mut bob) = opened(store.clone(), Arc::default(), [100, 50]);
	// Messages are signed anew each time: compared by what they say.
	let said = |message: Option<Message>| message.map(|m| (m.body.name(), m.body.encode().len()));
	let splice = alice.splice(CHANNEL, 0, 60).unwrap();
	assert_eq!(said(alice.retransmission(CHANNEL)), said(Some(splice.clone())));
	let accept = deliver(&mut bob, &splice).unwrap();
	// The `SpliceAccept` lost: the `Splice` again gets it again.
	assert_eq!(said(deliver(&mut bob, &splice)), said(Some(accept.clone())));
	assert_eq!(said(bob.retransmission(CHANNEL)), said(Some(accept.clone())));
	let signed = deliver(&mut alice, &accept).unwrap();
	// The `SpliceSigned` lost: the `SpliceAccept` again gets it again.
	assert_eq!(said(deliver(&mut alice, &accept)), said(Some(signed.clone())));
	assert_eq!(alice.retransmission(CHANNEL), None, "nothing but the chain is left");
	assert_eq!(deliver(&mut bob, &signed), None);
	assert_eq!(bob.retransmission(CHANNEL), None);

	let restarted = Helper::new(signer("Alice"), GENESIS, store).unwrap();
	assert!(matches!(&restarted.owed_calls(1)[..], [ChainCall::Splice { nonce: 1, .. }]));
	// A splice at another nonce than ours changes nothing.
	let mut alice = restarted;
	alice.on_chain_event(&ChainEvent::Spliced { channel: CHANNEL, nonce: 2 }).unwrap();
	assert_eq!(sheet(&alice), (0, [100, 50]));
	assert_can_liquidate(alice.bank(CHANNEL).unwrap(), bob.bank(CHANNEL).unwrap());
	// Liquidating before the splice is in: with the sheet from before, which the chain
	// still takes.
	let sheet_before = alice.liquidate(CHANNEL).unwrap();
	assert_eq!((sheet_before.nonce, sheet_before.balances), (0, [100, 50]));
}
