//! HTLC updates (`docs/htlc.md`): each carried by the payment exchange, several pending at
//! once, and refused when the peer may not make them.

use super::*;
use rsmc::{
	bank::{Htlc, HtlcUpdate, MAX_HTLCS, MAX_HTLCS_PER_SIDE},
	store::MemoryStore,
	Error, HelperError, Progress,
};
use vbank_primitives::{hashlock, Preimage};

fn htlc(from: u8, amount: u128, preimage: &Preimage) -> Htlc {
	Htlc { from, amount, hashlock: hashlock(preimage), expiry: 1_000 }
}

fn preimage(n: u8) -> Preimage {
	[n; 32]
}

/// `update` proposed by `proposer` and carried to `peer` over a perfect network: what each
/// side's last step reported.
pub(crate) fn update_on<S: Store>(
	proposer: &mut Helper<S>,
	peer: &mut Helper<S>,
	update: HtlcUpdate,
) -> (Option<Progress>, Option<Progress>) {
	let propose = proposer.update(CHANNEL, update).unwrap();
	let accept = deliver(peer, &propose).unwrap();
	let step = proposer.handle(&accept).unwrap();
	let peer_step = peer.handle(&step.reply.unwrap()).unwrap();
	assert_eq!(peer_step.reply, None);
	(step.progress, peer_step.progress)
}

fn banks<S: Store>(a: &Helper<S>, b: &Helper<S>) -> (Bank, Bank) {
	(a.bank(CHANNEL).unwrap().clone(), b.bank(CHANNEL).unwrap().clone())
}

#[test]
fn an_htlc_is_added_settled_and_failed_by_the_same_exchange_as_a_payment() {
	let (mut alice, mut bob) =
		opened(MemoryStore::default(), MemoryStore::default(), [1_000, 1_000]);
	let h = htlc(0, 30, &preimage(1));
	let (ours, theirs) = update_on(&mut alice, &mut bob, HtlcUpdate::Add(h.clone()));
	assert_eq!(
		ours,
		Some(Progress::Htlc { nonce: 1, update: HtlcUpdate::Add(h.clone()), by_us: true })
	);
	assert_eq!(
		theirs,
		Some(Progress::Htlc { nonce: 1, update: HtlcUpdate::Add(h.clone()), by_us: false })
	);
	let (a, b) = banks(&alice, &bob);
	assert_agree(&a, &b);
	assert_eq!((a.balances(), a.htlcs()), ([970, 1_000], &[h.clone()][..]));
	// Each can liquidate with the sheet and its HTLC; sheet 0 is revoked on both sides.
	assert_can_liquidate(&a, &b);
	assert_can_liquidate(&b, &a);
	assert_eq!(a.liquidation().unwrap().htlcs, vec![h.clone()]);
	assert_can_punish_every_revoked_sheet(&a, &b);

	// Bob, the receiver, settles it with the preimage: the amount is his.
	let settle = HtlcUpdate::Settle { index: 0, preimage: preimage(1) };
	update_on(&mut bob, &mut alice, settle);
	let (a, b) = banks(&alice, &bob);
	assert_agree(&a, &b);
	assert_eq!((a.balances(), a.htlcs()), ([970, 1_030], &[][..]));

	// Another, failed by Bob: it goes back to Alice.
	let h = htlc(0, 50, &preimage(2));
	update_on(&mut alice, &mut bob, HtlcUpdate::Add(h.clone()));
	let fail = HtlcUpdate::Fail { index: 0, hashlock: h.hashlock };
	let (ours, _) = update_on(&mut bob, &mut alice, fail.clone());
	assert_eq!(ours, Some(Progress::Htlc { nonce: 4, update: fail, by_us: true }));
	let (a, b) = banks(&alice, &bob);
	assert_agree(&a, &b);
	assert_eq!((a.balances(), a.htlcs()), ([970, 1_030], &[][..]));
	assert_can_punish_every_revoked_sheet(&b, &a);
	// Each side made two updates: Alice's two additions, Bob's settle and fail.
	assert_eq!((a.ledger().unwrap().updated, b.ledger().unwrap().updated), (2, 2));
	assert_eq!(a.ledger().unwrap().paid, 0, "an update is not a payment");
}

#[test]
fn several_htlcs_stay_pending_at_once_while_payments_go_on_and_the_bank_closes_after() {
	let (mut alice, mut bob) =
		opened(MemoryStore::default(), MemoryStore::default(), [1_000, 1_000]);
	let to_bob = [htlc(0, 10, &preimage(1)), htlc(0, 20, &preimage(2))];
	let to_alice = htlc(1, 40, &preimage(3));
	update_on(&mut alice, &mut bob, HtlcUpdate::Add(to_bob[0].clone()));
	pay(&mut bob, &mut alice, 5);
	update_on(&mut bob, &mut alice, HtlcUpdate::Add(to_alice.clone()));
	update_on(&mut alice, &mut bob, HtlcUpdate::Add(to_bob[1].clone()));
	pay(&mut alice, &mut bob, 7);
	let (a, b) = banks(&alice, &bob);
	assert_agree(&a, &b);
	assert_eq!(a.balances(), [1_000 - 30 + 5 - 7, 1_000 - 40 - 5 + 7]);
	assert_eq!(a.htlcs(), [to_bob[0].clone(), to_alice.clone(), to_bob[1].clone()]);

	// Closing is refused while any is pending: the close payload can't carry them.
	assert!(matches!(alice.close(CHANNEL), Err(HelperError::Protocol(Error::HtlcsPending))));

	// Resolved in any order, each by its receiver; the indexes follow the list.
	update_on(&mut bob, &mut alice, HtlcUpdate::Settle { index: 2, preimage: preimage(2) });
	update_on(&mut alice, &mut bob, HtlcUpdate::Settle { index: 1, preimage: preimage(3) });
	let fail = HtlcUpdate::Fail { index: 0, hashlock: to_bob[0].hashlock };
	update_on(&mut bob, &mut alice, fail);
	let (a, b) = banks(&alice, &bob);
	assert_agree(&a, &b);
	assert_eq!(a.balances(), [1_000 + 5 - 7 - 20 + 40, 1_000 - 5 + 7 + 20 - 40]);
	assert!(a.htlcs().is_empty());
	for (bank, peer) in [(&a, &b), (&b, &a)] {
		assert_can_liquidate(bank, peer);
		assert_can_punish_every_revoked_sheet(peer, bank);
	}
	let close = alice.close(CHANNEL).unwrap();
	let accept = deliver(&mut bob, &close).unwrap();
	deliver(&mut alice, &accept);
	assert!(alice.bank(CHANNEL).unwrap().closing().unwrap().signatures().is_some());
}

/// Updates the peer may not make: each refused, and the bank left as it was.
#[test]
fn updates_the_peer_is_not_entitled_to_are_refused_and_change_nothing() {
	let (mut alice, mut bob) =
		opened(MemoryStore::default(), MemoryStore::default(), [1_000, 1_000]);
	let h = htlc(0, 30, &preimage(1));
	update_on(&mut alice, &mut bob, HtlcUpdate::Add(h.clone()));
	let hostile = [
		// Alice spends Bob's money, pays nothing, or more than she has.
		(HtlcUpdate::Add(htlc(1, 30, &preimage(2))), "only its payer"),
		(HtlcUpdate::Add(htlc(0, 0, &preimage(2))), "ZeroAmount"),
		(HtlcUpdate::Add(htlc(0, 971, &preimage(2))), "InsufficientFunds"),
		(HtlcUpdate::Add(htlc(2, 1, &preimage(2))), "only its payer"),
		// Alice settles or fails her own HTLC to Bob: only its receiver may.
		(HtlcUpdate::Settle { index: 0, preimage: preimage(1) }, "only its receiver"),
		(HtlcUpdate::Fail { index: 0, hashlock: h.hashlock }, "only its receiver"),
		// Nothing pending there, or another HTLC than named.
		(HtlcUpdate::Fail { index: 1, hashlock: h.hashlock }, "no HTLC pending"),
	];
	let before = bob.bank(CHANNEL).cloned();
	let nonce = before.as_ref().unwrap().nonce() + 1;
	for (update, why) in hostile {
		let waivers = [
			alice.bank(CHANNEL).unwrap().my_waiver(nonce).unwrap(),
			alice.bank(CHANNEL).unwrap().my_waiver(nonce + 1).unwrap(),
		];
		let signature = alice.bank(CHANNEL).unwrap().liquidation().unwrap().peer_signature;
		let body = rsmc::Body::Update { nonce, update: update.clone(), signature, waivers };
		let message = Message::signed(&GENESIS, CHANNEL, body, &*signer("Alice"));
		let refused = bob.handle(&message).expect_err(why);
		assert!(format!("{refused:?}").contains(why), "{update:?}: {refused:?}");
		assert_eq!(bob.bank(CHANNEL).cloned(), before, "{update:?} changed the bank");
	}
	// Bob settles with a wrong preimage, or names another hashlock: Alice refuses.
	let before = alice.bank(CHANNEL).cloned();
	for update in [
		HtlcUpdate::Settle { index: 0, preimage: preimage(9) },
		HtlcUpdate::Fail { index: 0, hashlock: hashlock(&preimage(9)) },
	] {
		assert!(matches!(
			bob.update(CHANNEL, update),
			Err(HelperError::Protocol(Error::BadHtlc(_)))
		));
	}
	assert_eq!(alice.bank(CHANNEL).cloned(), before);
}

/// H1 of the HTLC review: one side filling its slots (thirty 1-planck HTLCs held by a
/// jamming payee) left the bank no slot in either direction. Each side now has half of what
/// the chain takes, whatever the other does, and a sheet still carries no more than that.
#[test]
fn each_direction_has_its_own_htlc_slots() {
	let (mut alice, mut bob) =
		opened(MemoryStore::default(), MemoryStore::default(), [1_000, 1_000]);
	let side = |from: u8| (0..MAX_HTLCS_PER_SIDE as u8).map(move |i| htlc(from, 1, &preimage(i)));
	for h in side(0) {
		update_on(&mut alice, &mut bob, HtlcUpdate::Add(h));
	}
	let one_more = alice.update(CHANNEL, HtlcUpdate::Add(htlc(0, 1, &preimage(99))));
	assert!(matches!(one_more, Err(HelperError::Protocol(Error::BadHtlc(_)))));
	// Bob's direction is untouched by Alice's: all his slots are his.
	for h in side(1) {
		update_on(&mut bob, &mut alice, HtlcUpdate::Add(h));
	}
	for (payer, from) in [(&mut alice, 0), (&mut bob, 1)] {
		let one_more = payer.update(CHANNEL, HtlcUpdate::Add(htlc(from, 1, &preimage(99))));
		assert!(matches!(one_more, Err(HelperError::Protocol(Error::BadHtlc(_)))));
	}
	let (a, b) = banks(&alice, &bob);
	assert_agree(&a, &b);
	assert_eq!(a.htlcs().len(), MAX_HTLCS, "a full sheet is what the chain takes");
	assert_can_liquidate(&a, &b);
}

/// The payee's `Accept` of an update is lost: the proposer's update, sent again, is answered
/// with the same `Accept` (not applied twice), and a copy arriving after all is done is
/// ignored as stale.
#[test]
fn an_update_sent_again_after_a_lost_accept_is_answered_and_not_applied_twice() {
	let (mut alice, mut bob) =
		opened(MemoryStore::default(), MemoryStore::default(), [1_000, 1_000]);
	let h = htlc(0, 30, &preimage(1));
	let steps: [(bool, HtlcUpdate); 2] = [
		(true, HtlcUpdate::Add(h.clone())),
		(false, HtlcUpdate::Settle { index: 0, preimage: preimage(1) }),
	];
	for (by_alice, update) in steps {
		let (proposer, peer) =
			if by_alice { (&mut alice, &mut bob) } else { (&mut bob, &mut alice) };
		let first = proposer.update(CHANNEL, update).unwrap();
		let _lost = deliver(peer, &first).unwrap();
		let again = proposer.retransmission(CHANNEL).expect("the update is unanswered");
		let accept = deliver(peer, &again).unwrap();
		assert!(matches!(accept.body, Body::Accept { .. }), "{:?}", accept.body);
		let revoke = deliver(proposer, &accept).unwrap();
		assert_eq!(deliver(peer, &revoke), None);
		let before = peer.bank(CHANNEL).cloned();
		let late = peer.handle(&first).expect_err("a stale update");
		assert!(matches!(late, HelperError::Protocol(Error::Stale { .. })), "{late:?}");
		assert_eq!(peer.bank(CHANNEL).cloned(), before);
	}
	let (a, b) = banks(&alice, &bob);
	assert_agree(&a, &b);
	assert_eq!((a.balances(), a.htlcs()), ([970, 1_030], &[][..]));
}

/// M1 of the HTLC review: the payer of an HTLC took its `Settle` off chain after its expiry,
/// though the chain would refuse the claim by then and the payer's own upstream HTLC may be
/// gone; L2: an HTLC added that has already expired was taken onto the sheets. Both are
/// refused at the helper's height, and change nothing; an update accepted in time and sent
/// again after is still answered, so that the round it began can finish.
#[test]
fn an_update_whose_time_has_passed_is_refused_and_one_accepted_in_time_is_still_answered() {
	let (mut alice, mut bob) =
		opened(MemoryStore::default(), MemoryStore::default(), [1_000, 1_000]);
	let h = htlc(0, 30, &preimage(1));
	update_on(&mut alice, &mut bob, HtlcUpdate::Add(h.clone()));
	let settle = HtlcUpdate::Settle { index: 0, preimage: preimage(1) };

	// At block 999 the next block is the HTLC's expiry: too late to settle.
	alice.set_height(h.expiry as u64 - 1);
	let before = alice.bank(CHANNEL).cloned();
	let late = bob.update(CHANNEL, settle.clone()).unwrap();
	let refused = alice.handle(&late).expect_err("a settlement after the expiry");
	assert!(refused.to_string().contains("too late"), "{refused}");
	assert_eq!(alice.bank(CHANNEL).cloned(), before, "the refusal changed nothing");
	// A lower height told later does not take the helper back.
	alice.set_height(10);
	assert_eq!(alice.height(), h.expiry as u64 - 1);
	assert!(alice.handle(&late).is_err());

	// The same settlement one block earlier is taken, and sent again once its `Accept` is
	// lost, it is answered though its time has passed meanwhile.
	let (mut alice, mut bob) =
		opened(MemoryStore::default(), MemoryStore::default(), [1_000, 1_000]);
	update_on(&mut alice, &mut bob, HtlcUpdate::Add(h.clone()));
	alice.set_height(h.expiry as u64 - 2);
	let first = bob.update(CHANNEL, settle).unwrap();
	let _lost = deliver(&mut alice, &first).unwrap();
	alice.set_height(h.expiry as u64);
	let again = bob.retransmission(CHANNEL).expect("unanswered");
	let accept = deliver(&mut alice, &again).unwrap();
	let revoke = deliver(&mut bob, &accept).unwrap();
	assert_eq!(deliver(&mut alice, &revoke), None);
	let (a, b) = banks(&alice, &bob);
	assert_agree(&a, &b);
	assert_eq!(a.balances(), [970, 1_030]);

	// An HTLC that expires with the next block is never taken onto the sheets.
	bob.set_height(h.expiry as u64 - 1);
	let before = bob.bank(CHANNEL).cloned();
	let add = alice.update(CHANNEL, HtlcUpdate::Add(htlc(0, 5, &preimage(2)))).unwrap();
	let refused = bob.handle(&add).expect_err("an HTLC already expired");
	assert!(refused.to_string().contains("too late"), "{refused}");
	assert_eq!(bob.bank(CHANNEL).cloned(), before);
}

/// A routed addition is an addition: the receiver gets the route's remaining hops with it,
/// and a route of no hop, or of more than `MAX_HOPS`, is refused.
#[test]
fn a_routed_htlc_carries_its_onward_hops_to_the_receiver_and_nothing_else_changes() {
	use rsmc::route::{Hop, MAX_HOPS};
	let (mut alice, mut bob) =
		opened(MemoryStore::default(), MemoryStore::default(), [1_000, 1_000]);
	let h = htlc(0, 30, &preimage(1));
	let onward = vec![Hop { channel: 9, amount: 29, expiry: 900 }];
	let routed = HtlcUpdate::AddRouted { htlc: h.clone(), onward: onward.clone() };
	assert_eq!(routed.added(), Some((&h, &onward[..])));
	assert_eq!(routed.hashlock(), h.hashlock);
	let (_, theirs) = update_on(&mut alice, &mut bob, routed.clone());
	assert_eq!(theirs, Some(Progress::Htlc { nonce: 1, update: routed, by_us: false }));
	let (a, b) = banks(&alice, &bob);
	assert_agree(&a, &b);
	assert_eq!((a.balances(), a.htlcs()), ([970, 1_000], &[h.clone()][..]));

	for onward in [vec![], vec![Hop { channel: 9, amount: 1, expiry: 1 }; MAX_HOPS + 1]] {
		let bad = HtlcUpdate::AddRouted { htlc: htlc(0, 1, &preimage(2)), onward };
		let err = alice.update(CHANNEL, bad).unwrap_err();
		assert!(matches!(err, HelperError::Protocol(Error::BadHtlc(_))), "{err:?}");
	}
	assert_eq!(alice.bank(CHANNEL).unwrap(), &a, "a refused update changes nothing");
}

/// The watchtower's HTLC rules: on a liquidated bank, claim what is ours while it can be
/// claimed and we know the preimage, refund what we sent once it expired; on a running one,
/// go on chain when only the chain can save an HTLC.
#[test]
fn the_watchtower_claims_before_expiry_refunds_after_and_liquidates_only_when_it_must() {
	use rsmc::{
		chain::{htlc_deadline, owed_htlcs, ChainCall},
		route::Forwarding,
	};
	// A margin of 10 blocks; HTLCs of 5 are not dust.
	let f = Forwarding { fee: 0, delta: 20, dust: 5 };
	let known = |lock: &sp_core::H256| (*lock == hashlock(&preimage(1))).then_some(preimage(1));
	let ours_to_us = Htlc { expiry: 100, ..htlc(1, 5, &preimage(1)) };
	let unknown_to_us = Htlc { expiry: 100, ..htlc(1, 5, &preimage(2)) };
	let ours_sent = Htlc { expiry: 50, ..htlc(0, 5, &preimage(3)) };
	let htlcs = [Some(ours_to_us.clone()), None, Some(unknown_to_us), Some(ours_sent.clone())];
	// We are client 0. The next block is `now + 1`.
	let claim = ChainCall::ClaimHtlc { channel: CHANNEL, index: 0, preimage: preimage(1) };
	let refund = ChainCall::RefundHtlc { channel: CHANNEL, index: 3 };
	assert_eq!(owed_htlcs(CHANNEL, 0, &htlcs, known, 10), vec![claim.clone()]);
	assert_eq!(owed_htlcs(CHANNEL, 0, &htlcs, known, 49), vec![claim.clone(), refund.clone()]);
	assert_eq!(owed_htlcs(CHANNEL, 0, &htlcs, known, 98), vec![claim, refund.clone()]);
	assert_eq!(owed_htlcs(CHANNEL, 0, &htlcs, known, 99), vec![refund]);
	assert!(owed_htlcs(CHANNEL, 1, &htlcs, known, 10).is_empty(), "the other side's view");

	// Running: Bob's HTLC to Alice, whose preimage she knows, goes on chain `margin` blocks
	// before its expiry; hers to Bob once it expired.
	let (mut alice, mut bob) =
		opened(MemoryStore::default(), MemoryStore::default(), [1_000, 1_000]);
	update_on(&mut bob, &mut alice, HtlcUpdate::Add(ours_to_us));
	let a = alice.bank(CHANNEL).unwrap().clone();
	// The next block is `now + 1`: block 90 is the first within 10 of 100, 99 the last
	// before it.
	assert_eq!(htlc_deadline(&a, known, 88, f), None);
	assert!(htlc_deadline(&a, known, 89, f).is_some());
	assert!(htlc_deadline(&a, known, 98, f).is_some());
	assert_eq!(htlc_deadline(&a, |_| None, 89, f), None, "no preimage, nothing to save");
	assert_eq!(htlc_deadline(&a, known, 99, f), None, "too late to claim");
	update_on(&mut alice, &mut bob, HtlcUpdate::Add(ours_sent));
	let a = alice.bank(CHANNEL).unwrap().clone();
	assert_eq!(htlc_deadline(&a, |_| None, 48, f), None);
	assert!(htlc_deadline(&a, |_| None, 49, f).is_some());

	// H1: with a dust floor above them, neither HTLC is a reason to go on chain, ever.
	let dust = Forwarding { dust: 6, ..f };
	for now in [49, 89, 98, 200] {
		assert_eq!(htlc_deadline(&a, known, now, dust), None, "block {now}");
	}
}
