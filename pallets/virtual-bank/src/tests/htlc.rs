//! Liquidations with pending HTLCs, their claims and refunds, and the preimages the chain
//! remembers (`docs/htlc.md`).

use super::*;
use crate::{HtlcBook, Htlcs, PreimageExpiries, Preimages};
use frame_support::BoundedVec;
use vbank_primitives::{hashlock, Htlc, Preimage};

type TestHtlc = Htlc<u64>;

const PREIMAGE: Preimage = [7; 32];
const OTHER_PREIMAGE: Preimage = [8; 32];

fn htlc(from: u8, amount: Balance, preimage: &Preimage, expiry: u64) -> TestHtlc {
	Htlc { from, amount, hashlock: hashlock(preimage), expiry }
}

fn bounded(htlcs: &[TestHtlc]) -> BoundedVec<TestHtlc, MaxHtlcs> {
	BoundedVec::try_from(htlcs.to_vec()).expect("within MaxHtlcs")
}

/// `master` liquidates `channel` with sheet `nonce` (`balances`, `htlcs`), signed by its peer
/// `signer`, waiver key `(owner, nonce)`.
fn liquidate_with(
	master: &AccountId,
	signer: &str,
	owner: u8,
	channel: ChannelId,
	nonce: u64,
	balances: Shares,
	htlcs: &[TestHtlc],
) -> frame_support::dispatch::DispatchResult {
	let waiver = waiver(owner, nonce);
	let signature = sign_htlc_sheet(&pair(signer), channel, nonce, balances, &waiver, htlcs);
	VirtualBank::liquidate_with_htlcs(
		origin(master),
		channel,
		nonce,
		balances,
		waiver,
		bounded(htlcs),
		signature,
	)
}

/// Alice and Bob, 100 each; Alice liquidates with Bob's sheet 3: Alice 60, Bob 90, an HTLC
/// of 30 from Alice to Bob (expiry block 8) and one of 20 from Bob to Alice (expiry 9).
fn liquidated_with_two_htlcs() -> ChannelId {
	let channel = running_bank(&alice(), &bob(), [100, 100]);
	let htlcs = [htlc(0, 30, &PREIMAGE, 8), htlc(1, 20, &OTHER_PREIMAGE, 9)];
	assert_ok!(liquidate_with(&alice(), "Bob", 1, channel, 3, [60, 90], &htlcs));
	channel
}

#[test]
fn a_liquidation_pays_the_peer_and_keeps_the_htlcs_held_with_the_masters_share() {
	build_and_execute(|| {
		let channel = liquidated_with_two_htlcs();
		// Bob's 90 is free at once; Alice holds her 60 and both HTLCs' 50.
		assert_eq!(free(&bob()), ENDOWMENT - 100 + 90);
		assert_eq!(held(&bob()), 0);
		assert_eq!(held(&alice()), 60 + 50 + BANK_DEPOSIT);
		let bank = Channels::<Test>::get(channel).unwrap();
		assert_eq!(bank.balances, [60, 90]);
		let htlcs = vec![htlc(0, 30, &PREIMAGE, 8), htlc(1, 20, &OTHER_PREIMAGE, 9)];
		assert_eq!(
			VirtualBank::htlcs(channel),
			htlcs.iter().cloned().map(Some).collect::<Vec<_>>()
		);
		let events = bank_events();
		assert!(matches!(events[0], Event::Liquidated { nonce: 3, balances: [60, 90], .. }));
		assert_eq!(events[1], Event::HtlcsPending { channel, htlcs: bounded(&htlcs) });
		assert_eq!(VirtualBank::owed(channel, &bank), [110, 0]);
	});
}

#[test]
fn a_claim_pays_the_peer_at_once_and_the_chain_remembers_the_preimage_for_a_while() {
	build_and_execute(|| {
		let channel = liquidated_with_two_htlcs();
		bank_events();
		// Anybody may claim for Bob, before expiry.
		assert_ok!(VirtualBank::claim_htlc(origin(&charlie()), channel, 0, PREIMAGE));
		assert_eq!(free(&bob()), ENDOWMENT - 100 + 90 + 30);
		assert_eq!(held(&alice()), 60 + 20 + BANK_DEPOSIT);
		assert_eq!(
			bank_events(),
			[Event::HtlcClaimed {
				channel,
				index: 0,
				hashlock: hashlock(&PREIMAGE),
				preimage: PREIMAGE,
				who: bob(),
				amount: 30,
			}]
		);
		assert_eq!(VirtualBank::htlcs(channel), [None, Some(htlc(1, 20, &OTHER_PREIMAGE, 9))]);
		let forget_at = 1 + PREIMAGE_RETENTION;
		assert_eq!(Preimages::<Test>::get(hashlock(&PREIMAGE)), Some((PREIMAGE, forget_at)));
		// Another bank of the route claims with the same preimage later: it is kept from then
		// on (L1 of the HTLC review: the first date stayed, so showing a preimage early on a
		// bank of one's own shortened what the chain kept for the route's other banks).
		let other = running_bank(&charlie(), &bob(), [50, 50]);
		assert_ok!(liquidate_with(
			&bob(),
			"Charlie",
			3,
			other,
			1,
			[50, 30],
			&[htlc(0, 20, &PREIMAGE, 8)]
		));
		run_to_block(4);
		assert_ok!(VirtualBank::claim_htlc(origin(&bob()), other, 0, PREIMAGE));
		let later = 4 + PREIMAGE_RETENTION;
		assert_eq!(Preimages::<Test>::get(hashlock(&PREIMAGE)), Some((PREIMAGE, later)));
		assert!(!PreimageExpiries::<Test>::contains_key(forget_at), "the earlier date cleared");
		run_to_block(later - 1);
		assert!(Preimages::<Test>::contains_key(hashlock(&PREIMAGE)));
		run_to_block(later);
		assert!(!Preimages::<Test>::contains_key(hashlock(&PREIMAGE)));
		assert!(!PreimageExpiries::<Test>::contains_key(later));
	});
}

#[test]
fn claims_need_the_preimage_before_expiry_and_refunds_wait_for_it() {
	build_and_execute(|| {
		let channel = liquidated_with_two_htlcs();
		assert_noop!(
			VirtualBank::claim_htlc(origin(&bob()), channel, 0, OTHER_PREIMAGE),
			Error::<Test>::WrongPreimage
		);
		assert_noop!(
			VirtualBank::refund_htlc(origin(&alice()), channel, 0),
			Error::<Test>::HtlcNotExpired
		);
		assert_noop!(
			VirtualBank::claim_htlc(origin(&bob()), channel, 2, PREIMAGE),
			Error::<Test>::UnknownHtlc
		);
		assert_noop!(
			VirtualBank::claim_htlc(origin(&bob()), 99, 0, PREIMAGE),
			Error::<Test>::UnknownChannel
		);
		run_to_block(8);
		assert_noop!(
			VirtualBank::claim_htlc(origin(&bob()), channel, 0, PREIMAGE),
			Error::<Test>::HtlcExpired
		);
		// Refunded to Alice, the master: frozen with her share until the lock ends.
		assert_ok!(VirtualBank::refund_htlc(origin(&charlie()), channel, 0));
		assert_eq!(held(&alice()), 60 + 50 + BANK_DEPOSIT);
		assert_eq!(Channels::<Test>::get(channel).unwrap().balances, [90, 90]);
		assert_noop!(
			VirtualBank::refund_htlc(origin(&alice()), channel, 0),
			Error::<Test>::UnknownHtlc
		);
		assert!(!Preimages::<Test>::contains_key(hashlock(&PREIMAGE)));
		// Bob's HTLC to Alice: refunded to Bob at once, at its expiry.
		run_to_block(9);
		assert_ok!(VirtualBank::refund_htlc(origin(&bob()), channel, 1));
		assert_eq!(free(&bob()), ENDOWMENT - 100 + 90 + 20);
		assert!(!Htlcs::<Test>::contains_key(channel));
		// Nothing pending: the lock's end removes the bank as before.
		run_to_block(1 + LOCK);
		assert!(!Channels::<Test>::contains_key(channel));
		assert_eq!(free(&alice()), ENDOWMENT - 100 + 90);
	});
}

#[test]
fn a_penalty_takes_the_masters_share_and_every_htlc_not_paid_out() {
	build_and_execute(|| {
		let channel = liquidated_with_two_htlcs();
		// Alice claims Bob's HTLC to her: it joins her frozen share.
		assert_ok!(VirtualBank::claim_htlc(origin(&alice()), channel, 1, OTHER_PREIMAGE));
		assert_eq!(held(&alice()), 60 + 50 + BANK_DEPOSIT);
		assert_eq!(Channels::<Test>::get(channel).unwrap().balances, [80, 90]);
		// Sheet 3 had been revoked: Bob takes her 80 and the pending 30.
		let proof = sign_waiver(&waiver_pair(1, 3), channel, 3);
		assert_ok!(VirtualBank::withdraw_by_peer(origin(&charlie()), channel, proof));
		assert_eq!(free(&bob()), ENDOWMENT + 100);
		assert_eq!(free(&alice()), ENDOWMENT - 100);
		assert!(!Channels::<Test>::contains_key(channel));
		assert!(!Htlcs::<Test>::contains_key(channel));
		let events = bank_events();
		assert!(matches!(
			events.last(),
			Some(Event::WithdrawnByPeer { amount: 110, nonce: 3, .. })
		));
	});
}

#[test]
fn the_lock_ends_with_htlcs_pending_and_the_bank_stays_only_for_them() {
	build_and_execute(|| {
		let channel = running_bank(&alice(), &bob(), [100, 100]);
		let expiry = 1 + LOCK + 5;
		let htlcs = [htlc(1, 20, &PREIMAGE, expiry), htlc(0, 10, &OTHER_PREIMAGE, expiry)];
		assert_ok!(liquidate_with(&alice(), "Bob", 1, channel, 2, [120, 50], &htlcs));
		run_to_block(1 + LOCK);
		// Her share is released by the schedule; the bank stays for the HTLCs.
		assert_eq!(free(&alice()), ENDOWMENT - 100 + 120 - BANK_DEPOSIT);
		assert_eq!(held(&alice()), 30 + BANK_DEPOSIT);
		let book = Htlcs::<Test>::get(channel).unwrap();
		assert!(book.master_released);
		assert_eq!(Channels::<Test>::get(channel).unwrap().balances, [0, 50]);
		assert_noop!(
			VirtualBank::withdraw_by_master(origin(&alice()), channel),
			Error::<Test>::WrongState
		);
		// What the master now receives is paid at once.
		assert_ok!(VirtualBank::claim_htlc(origin(&alice()), channel, 0, PREIMAGE));
		assert_eq!(free(&alice()), ENDOWMENT - 100 + 140 - BANK_DEPOSIT);
		assert!(Channels::<Test>::contains_key(channel));
		// The last HTLC paid out removes the bank and its storage deposit.
		run_to_block(expiry);
		assert_ok!(VirtualBank::refund_htlc(origin(&bob()), channel, 1));
		assert_eq!(free(&alice()), ENDOWMENT - 100 + 150);
		assert_eq!(held(&alice()), 0);
		assert!(!Channels::<Test>::contains_key(channel));
		assert!(!Htlcs::<Test>::contains_key(channel));
		assert!(VirtualBank::channels_of(&alice()).is_empty());
	});
}

#[test]
fn without_htlcs_both_liquidations_check_the_same_signature() {
	build_and_execute(|| {
		let channel = running_bank(&alice(), &bob(), [100, 100]);
		let waiver = waiver(1, 4);
		let signature = sign_sheet(&pair("Bob"), channel, 4, [70, 130], &waiver);
		assert_ok!(VirtualBank::liquidate_with_htlcs(
			origin(&alice()),
			channel,
			4,
			[70, 130],
			waiver,
			bounded(&[]),
			signature,
		));
		assert!(!Htlcs::<Test>::contains_key(channel));
		assert_eq!(bank_events().len(), 1, "Liquidated, and no HtlcsPending");
		run_to_block(1 + LOCK);
		assert!(!Channels::<Test>::contains_key(channel));
	});
}

#[test]
fn the_signature_covers_the_htlcs_and_the_sums_must_add_up() {
	build_and_execute(|| {
		let channel = running_bank(&alice(), &bob(), [100, 100]);
		let htlcs = [htlc(0, 30, &PREIMAGE, 8)];
		let waiver = waiver(1, 3);
		let signed = sign_htlc_sheet(&pair("Bob"), channel, 3, [70, 100], &waiver, &htlcs);
		let call = |htlcs: &[TestHtlc], balances: Shares, signature: MultiSignature| {
			VirtualBank::liquidate_with_htlcs(
				origin(&alice()),
				channel,
				3,
				balances,
				waiver.clone(),
				bounded(htlcs),
				signature,
			)
		};
		// Another amount, hashlock or expiry than signed; the list dropped; the plain call.
		for other in [
			htlc(0, 29, &PREIMAGE, 8),
			htlc(0, 30, &OTHER_PREIMAGE, 8),
			htlc(0, 30, &PREIMAGE, 9),
			htlc(1, 30, &PREIMAGE, 8),
		] {
			let balances = if other.amount == 29 { [71, 100] } else { [70, 100] };
			assert_noop!(call(&[other], balances, signed.clone()), Error::<Test>::BadSignature);
		}
		assert_noop!(call(&[], [70, 130], signed.clone()), Error::<Test>::BadSignature);
		assert_noop!(
			VirtualBank::liquidate(
				origin(&alice()),
				channel,
				3,
				[70, 100],
				waiver.clone(),
				signed.clone()
			),
			Error::<Test>::BalanceMismatch
		);
		// Sums that don't add up, bad HTLCs, an overflowing list: refused before any check of
		// the signature.
		assert_noop!(call(&htlcs, [70, 101], signed.clone()), Error::<Test>::BalanceMismatch);
		let huge = [htlc(0, u128::MAX, &PREIMAGE, 8), htlc(0, 1, &PREIMAGE, 8)];
		assert_noop!(call(&huge, [0, 0], signed.clone()), Error::<Test>::BalanceMismatch);
		assert_noop!(
			call(&[htlc(2, 30, &PREIMAGE, 8)], [70, 100], signed.clone()),
			Error::<Test>::BadHtlc
		);
		assert_noop!(
			call(&[htlc(0, 0, &PREIMAGE, 8), htlc(0, 30, &PREIMAGE, 8)], [70, 100], signed.clone()),
			Error::<Test>::BadHtlc
		);
		// Bob as master would need Alice's signature.
		assert_noop!(
			VirtualBank::liquidate_with_htlcs(
				origin(&bob()),
				channel,
				3,
				[70, 100],
				waiver.clone(),
				bounded(&htlcs),
				signed.clone()
			),
			Error::<Test>::BadSignature
		);
		assert_ok!(call(&htlcs, [70, 100], signed));
	});
}

#[test]
fn the_most_htlcs_a_sheet_may_carry_all_liquidate_and_pay_out() {
	build_and_execute(|| {
		let channel = running_bank(&alice(), &bob(), [1_000, 1_000]);
		let htlcs: Vec<_> = (0..MAX_HTLCS)
			.map(|i| htlc((i % 2) as u8, 10, &[i as u8; 32], 5 + u64::from(i % 3)))
			.collect();
		let total: Balance = htlcs.iter().map(|h| h.amount).sum();
		assert_ok!(liquidate_with(
			&bob(),
			"Alice",
			0,
			channel,
			9,
			[1_000 - total / 2, 1_000 - total / 2],
			&htlcs
		));
		let eve = account("Eve");
		for i in (0..MAX_HTLCS).filter(|i| i % 4 == 0) {
			assert_ok!(VirtualBank::claim_htlc(origin(&eve), channel, i, [i as u8; 32]));
		}
		run_to_block(8);
		for i in (0..MAX_HTLCS).filter(|i| i % 4 != 0) {
			assert_ok!(VirtualBank::refund_htlc(origin(&eve), channel, i));
		}
		assert!(!Htlcs::<Test>::contains_key(channel));
		run_to_block(1 + LOCK);
		assert!(!Channels::<Test>::contains_key(channel));
		// Each side got its share, the HTLCs it was paid and those refunded to it.
		assert_eq!(free(&alice()) + free(&bob()), 2 * ENDOWMENT);
	});
}

#[test]
fn a_full_block_of_preimages_to_forget_pushes_the_next_to_a_later_block() {
	build_and_execute(|| {
		let channel = running_bank(&alice(), &bob(), [100, 100]);
		let preimages: Vec<Preimage> =
			(0..PREIMAGES_PER_BLOCK + 1).map(|i| [40 + i as u8; 32]).collect();
		let htlcs: Vec<_> = preimages.iter().map(|p| htlc(0, 10, p, 50)).collect();
		let rest = 100 - 10 * htlcs.len() as Balance;
		assert_ok!(liquidate_with(&alice(), "Bob", 1, channel, 1, [rest, 100], &htlcs));
		for (i, preimage) in preimages.iter().enumerate() {
			assert_ok!(VirtualBank::claim_htlc(origin(&bob()), channel, i as u32, *preimage));
		}
		let forget_at = 1 + PREIMAGE_RETENTION;
		assert_eq!(PreimageExpiries::<Test>::get(forget_at).len() as u32, PREIMAGES_PER_BLOCK);
		let last = hashlock(preimages.last().unwrap());
		assert_eq!(Preimages::<Test>::get(last).map(|(_, at)| at), Some(forget_at + 1));
		run_to_block(forget_at);
		assert!(Preimages::<Test>::contains_key(last));
		assert_eq!(Preimages::<Test>::iter().count(), 1);
		run_to_block(forget_at + 1);
		assert_eq!(Preimages::<Test>::iter().count(), 0);
	});
}

#[test]
fn an_htlc_that_is_dust_to_a_peer_with_no_account_stays_with_the_master() {
	build_and_execute(|| {
		let ferdie = account("Ferdie");
		// Ferdie brings nothing and has no account; Alice paid him an HTLC of 3 < ED.
		let channel = running_bank(&alice(), &ferdie, [100, 0]);
		assert_ok!(liquidate_with(
			&alice(),
			"Ferdie",
			1,
			channel,
			1,
			[97, 0],
			&[htlc(0, 3, &PREIMAGE, 50)]
		));
		bank_events();
		assert_ok!(VirtualBank::claim_htlc(origin(&bob()), channel, 0, PREIMAGE));
		assert_eq!(free(&ferdie), 0);
		let events = bank_events();
		assert_eq!(events[0], Event::Trimmed { channel, who: ferdie.clone(), amount: 3 });
		assert!(matches!(events[1], Event::HtlcClaimed { amount: 0, .. }));
		assert_eq!(Channels::<Test>::get(channel).unwrap().balances, [100, 0]);
		run_to_block(1 + LOCK);
		assert_eq!(free(&alice()), ENDOWMENT);
	});
}

#[test]
fn an_htlc_book_counts_only_what_is_pending() {
	let book = HtlcBook::<Test> {
		htlcs: BoundedVec::try_from(vec![
			None,
			Some(htlc(0, 5, &PREIMAGE, 1)),
			Some(htlc(1, 7, &PREIMAGE, 1)),
		])
		.unwrap(),
		master_released: false,
	};
	assert_eq!(book.pending_total(), 12);
	assert!(book.any_pending());
	let empty = HtlcBook::<Test> {
		htlcs: BoundedVec::try_from(vec![None]).unwrap(),
		master_released: true,
	};
	assert_eq!(empty.pending_total(), 0);
	assert!(!empty.any_pending());
}

/// C4 of the HTLC review: every call of an account waited for the one before (one signed
/// transaction per account per block), so an intermediary's claims on a bank of 30 HTLCs
/// queued past their expiry. A claim and a refund now authorize themselves, as the penalty
/// does: general transactions with no signer, no fee and no nonce, valid exactly when the call
/// would succeed, one per HTLC in the pool, refused before any block when they would fail.
#[test]
fn claims_and_refunds_authorize_themselves_one_per_htlc_and_cost_nothing() {
	use codec::Encode;
	use frame_support::{pallet_prelude::TransactionSource, traits::Authorize};
	use sp_runtime::transaction_validity::{InvalidTransaction, TransactionValidityError};
	let invalid = |why| Some(Err(TransactionValidityError::Invalid(why)));
	let authorized = || RuntimeOrigin::from(frame_system::RawOrigin::Authorized);
	build_and_execute(|| {
		let channel = liquidated_with_two_htlcs();
		let claim = |index, preimage| crate::Call::<Test>::claim_htlc { channel, index, preimage };
		let refund = |index| crate::Call::<Test>::refund_htlc { channel, index };
		let now = System::block_number();
		let (validity, weight_refund) = claim(0, PREIMAGE)
			.authorize(TransactionSource::External)
			.expect("claim_htlc authorizes itself")
			.expect("a valid claim");
		assert_eq!(weight_refund, frame_support::weights::Weight::zero());
		assert_eq!(validity.provides, vec![("VirtualBankHtlc", (channel, 0u32)).encode()]);
		assert_eq!(validity.priority, crate::HTLC_PRIORITY);
		assert!(validity.priority < crate::PENALTY_PRIORITY);
		assert_eq!(validity.longevity, 8 - now, "valid until the HTLC's expiry");
		// Refused before any block: a wrong preimage, an HTLC that is not there, a refund
		// before the expiry, a bank that is not liquidated.
		let auth = |call: crate::Call<Test>| call.authorize(TransactionSource::External);
		assert_eq!(auth(claim(0, OTHER_PREIMAGE)), invalid(InvalidTransaction::BadProof));
		assert_eq!(auth(claim(2, PREIMAGE)), invalid(InvalidTransaction::Stale));
		assert_eq!(auth(refund(1)), invalid(InvalidTransaction::Future));
		let running = running_bank(&charlie(), &bob(), [10, 10]);
		let on_running = crate::Call::<Test>::refund_htlc { channel: running, index: 0 };
		assert_eq!(auth(on_running), invalid(InvalidTransaction::Stale));

		// Dispatched with the origin the extension gives it: Bob is paid, nobody paid a fee.
		let issuance = Balances::total_issuance();
		assert_ok!(RuntimeCall::VirtualBank(claim(0, PREIMAGE)).dispatch(authorized()));
		assert_eq!(free(&bob()), ENDOWMENT - 100 - 10 + 90 + 30);
		assert_eq!(auth(claim(0, PREIMAGE)), invalid(InvalidTransaction::Stale), "paid out");
		// Bob's HTLC to Alice goes back to him once it has expired.
		run_to_block(9);
		assert!(auth(refund(1)).is_some_and(|v| v.is_ok()));
		assert_eq!(auth(claim(1, OTHER_PREIMAGE)), invalid(InvalidTransaction::Stale));
		assert_ok!(RuntimeCall::VirtualBank(refund(1)).dispatch(authorized()));
		assert_eq!(free(&bob()), ENDOWMENT - 100 - 10 + 90 + 30 + 20);
		assert_eq!(Balances::total_issuance(), issuance);
		assert_eq!(auth(refund(1)), invalid(InvalidTransaction::Stale));
	});
}

/// L1 of the HTLC review: a block forgets at most `MaxPreimagesPerBlock` preimages, and a
/// claim looked for room in four blocks from its retention's end; with those full (claims are
/// free, and a block holds thousands) its preimage kept no storage copy, and a helper that
/// missed the event could not claim its own HTLC with it. Now each claim goes to the first
/// block with room after those earlier claims filled (`PreimageTail`): five blocks' worth of
/// claims in one block are all kept, each for at least `PreimageRetention`, and forgotten in
/// turn.
#[test]
fn a_crowd_of_claims_in_one_block_leaves_none_without_its_copy() {
	build_and_execute(|| {
		let channel = running_bank(&alice(), &bob(), [100, 100]);
		let count = 5 * PREIMAGES_PER_BLOCK;
		let preimages: Vec<Preimage> = (0..count).map(|i| [60 + i as u8; 32]).collect();
		let htlcs: Vec<_> = preimages.iter().map(|p| htlc(0, 5, p, 50)).collect();
		let rest = 100 - 5 * htlcs.len() as Balance;
		assert_ok!(liquidate_with(&alice(), "Bob", 1, channel, 1, [rest, 100], &htlcs));
		for (i, preimage) in preimages.iter().enumerate() {
			assert_ok!(VirtualBank::claim_htlc(origin(&bob()), channel, i as u32, *preimage));
		}
		let forget_at = 1 + PREIMAGE_RETENTION;
		for (i, preimage) in preimages.iter().enumerate() {
			let at = forget_at + i as u64 / u64::from(PREIMAGES_PER_BLOCK);
			assert_eq!(Preimages::<Test>::get(hashlock(preimage)), Some((*preimage, at)), "{i}");
		}
		for block in forget_at..forget_at + 5 {
			run_to_block(block);
			let left = (forget_at + 4 - block) as usize * PREIMAGES_PER_BLOCK as usize;
			assert_eq!(Preimages::<Test>::iter().count(), left, "at block {block}");
		}
	});
}
