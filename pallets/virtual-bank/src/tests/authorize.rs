//! The penalty authorizes itself: a general transaction with no signer, and no fee.

use super::*;
use codec::Encode;
use frame_support::{pallet_prelude::TransactionSource, traits::Authorize};
use sp_runtime::transaction_validity::{InvalidTransaction, TransactionValidityError};

fn penalty(channel: ChannelId, proof: MultiSignature) -> crate::Call<Test> {
	crate::Call::withdraw_by_peer { channel, waiver_signature: proof }
}

fn authorized() -> RuntimeOrigin {
	frame_system::RawOrigin::Authorized.into()
}

#[test]
fn a_valid_proof_authorizes_the_penalty_once_per_bank_until_the_lock_ends() {
	build_and_execute(|| {
		let channel = liquidated_by_alice();
		let call = penalty(channel, sign_waiver(&waiver_pair(1, 1), channel, 1));
		run_to_block(4);
		let (validity, refund) = call
			.authorize(TransactionSource::External)
			.expect("withdraw_by_peer authorizes itself")
			.expect("a valid proof");
		assert_eq!(refund, frame_support::weights::Weight::zero());
		assert_eq!(validity.provides, vec![("VirtualBankPenalty", channel).encode()]);
		assert!(validity.requires.is_empty());
		assert_eq!(validity.priority, crate::PENALTY_PRIORITY);
		// Valid until the lock ends at block 1 + LOCK.
		assert_eq!(validity.longevity, 1 + LOCK - 4);

		// Dispatched with the origin the extension gives it: the peer gets everything, and
		// nobody paid anything.
		let issuance = Balances::total_issuance();
		assert_ok!(RuntimeCall::VirtualBank(call.clone()).dispatch(authorized()));
		assert_eq!(free(&bob()), ENDOWMENT + 60);
		assert_eq!(Balances::total_issuance(), issuance);
		// Then stale.
		assert_eq!(
			call.authorize(TransactionSource::External),
			Some(Err(TransactionValidityError::Invalid(InvalidTransaction::Stale)))
		);
	});
}

#[test]
fn a_bad_proof_is_refused_before_any_block() {
	build_and_execute(|| {
		let channel = liquidated_by_alice();
		for proof in [
			sign_waiver(&waiver_pair(1, 0), channel, 0),
			sign_waiver(&waiver_pair(1, 1), channel, 2),
			sign_waiver(&pair("Bob"), channel, 1),
		] {
			assert_eq!(
				penalty(channel, proof.clone()).authorize(TransactionSource::External),
				Some(Err(TransactionValidityError::Invalid(InvalidTransaction::BadProof)))
			);
			assert_noop!(
				RuntimeCall::VirtualBank(penalty(channel, proof)).dispatch(authorized()),
				Error::<Test>::BadSignature
			);
		}
		let good = sign_waiver(&waiver_pair(1, 1), channel, 1);
		for unknown in [channel + 1, u64::MAX] {
			assert_eq!(
				penalty(unknown, good.clone()).authorize(TransactionSource::External),
				Some(Err(TransactionValidityError::Invalid(InvalidTransaction::Stale)))
			);
		}
		run_to_block(1 + LOCK);
		assert_eq!(
			penalty(channel, good).authorize(TransactionSource::External),
			Some(Err(TransactionValidityError::Invalid(InvalidTransaction::Stale)))
		);
	});
}

#[test]
fn no_other_call_authorizes_itself_and_none_accepts_an_authorized_origin() {
	build_and_execute(|| {
		let channel = running_bank(&alice(), &bob(), [60, 40]);
		let calls = [
			crate::Call::<Test>::deposit { channel },
			crate::Call::<Test>::cancel { channel },
			crate::Call::<Test>::withdraw_by_master { channel },
		];
		for call in calls {
			assert!(call.authorize(TransactionSource::External).is_none());
			assert_noop!(
				RuntimeCall::VirtualBank(call).dispatch(authorized()),
				DispatchError::BadOrigin
			);
		}
	});
}
