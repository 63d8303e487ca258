//! What the calls check before they act, and what the runtime API and wallets read: the
//! bank of a client, a penalty's proof and validity, what a bank holds for whom.

use crate::{
	pallet::{
		Channels, ChannelsOf, Config, Error, Htlcs, Pallet, SplicedAt, HTLC_PRIORITY,
		PENALTY_PRIORITY,
	},
	ChannelOf,
};
use frame_support::pallet_prelude::*;
use frame_system::pallet_prelude::BlockNumberFor;
use sp_core::H256;
use sp_runtime::{
	traits::{Saturating, Zero},
	transaction_validity::{
		InvalidTransaction, TransactionLongevity, TransactionSource, TransactionValidityWithRefund,
		ValidTransaction,
	},
	MultiSignature,
};
use vbank_primitives::{
	verify_signature, waiver_payload, Balances, ChannelId, ChannelState, Nonce, Preimage,
};

/// How many blocks a refund stays in the pool before it must be sent again: it stays valid
/// until the HTLC is paid out, and the watchtower sends it again while it is owed.
const REFUND_LONGEVITY: TransactionLongevity = 64;

/// Whether `proposed` shares out exactly the total of `current`.
pub(crate) fn balances_match(current: &Balances, proposed: &Balances) -> bool {
	let total = current[0].checked_add(current[1]);
	total.is_some() && proposed[0].checked_add(proposed[1]) == total
}

impl<T: Config> Pallet<T> {
	/// Whether a sheet (or close) of bank `channel` at `nonce` is no older than its last
	/// splice, if it had one.
	pub(crate) fn after_splice(channel: ChannelId, nonce: Nonce) -> bool {
		SplicedAt::<T>::get(channel).is_none_or(|at| nonce >= at)
	}

	/// The validity of a penalty sent as a general transaction: valid exactly when the
	/// call would succeed now, until the lock ends, one per bank in the pool.
	pub(crate) fn authorize_withdraw_by_peer(
		_source: TransactionSource,
		channel: &ChannelId,
		waiver_signature: &MultiSignature,
	) -> TransactionValidityWithRefund {
		let bank = Self::proven_revoked(*channel, waiver_signature).map_err(|e| {
			if e == Error::<T>::BadSignature.into() {
				InvalidTransaction::BadProof
			} else {
				InvalidTransaction::Stale
			}
		})?;
		let unlock_at = bank.liquidation.map(|l| l.unlock_at).unwrap_or_else(Self::now);
		let blocks_left: TransactionLongevity =
			unlock_at.saturating_sub(Self::now()).try_into().unwrap_or(TransactionLongevity::MAX);
		let validity = ValidTransaction::with_tag_prefix("VirtualBankPenalty")
			.and_provides(channel)
			.priority(PENALTY_PRIORITY)
			.longevity(blocks_left.max(1))
			.propagate(true)
			.build()?;
		Ok((validity, Weight::zero()))
	}

	/// The validity of an HTLC's claim sent as a general transaction: valid exactly when the
	/// call would succeed now (the HTLC pending, `preimage` its hashlock's, before its
	/// expiry), until the expiry, one per HTLC in the pool.
	pub(crate) fn authorize_claim_htlc(
		_source: TransactionSource,
		channel: &ChannelId,
		index: &u32,
		preimage: &Preimage,
	) -> TransactionValidityWithRefund {
		let claimable = Self::pending_htlc(*channel, *index)
			.and_then(|htlc| Self::claim_receiver(&htlc, preimage).map(|_| htlc));
		let htlc = claimable.map_err(|e| {
			if e == Error::<T>::WrongPreimage.into() {
				InvalidTransaction::BadProof
			} else {
				InvalidTransaction::Stale
			}
		})?;
		let blocks_left = htlc.expiry.saturating_sub(Self::now());
		Self::htlc_validity(*channel, *index, blocks_left.try_into().unwrap_or(u64::MAX))
	}

	/// The validity of an HTLC's refund sent as a general transaction: valid exactly when the
	/// call would succeed now (the HTLC pending, at or after its expiry), one per HTLC in the
	/// pool.
	pub(crate) fn authorize_refund_htlc(
		_source: TransactionSource,
		channel: &ChannelId,
		index: &u32,
	) -> TransactionValidityWithRefund {
		let htlc = Self::pending_htlc(*channel, *index).map_err(|_| InvalidTransaction::Stale)?;
		Self::refund_receiver(&htlc).map_err(|_| InvalidTransaction::Future)?;
		Self::htlc_validity(*channel, *index, REFUND_LONGEVITY)
	}

	/// A claim's or refund's validity in the pool: one per HTLC, `longevity` blocks.
	fn htlc_validity(
		channel: ChannelId,
		index: u32,
		longevity: TransactionLongevity,
	) -> TransactionValidityWithRefund {
		let validity = ValidTransaction::with_tag_prefix("VirtualBankHtlc")
			.and_provides((channel, index))
			.priority(HTLC_PRIORITY)
			.longevity(longevity.max(1))
			.propagate(true)
			.build()?;
		Ok((validity, Weight::zero()))
	}

	/// The liquidating bank `channel`, if `waiver_signature` proves the sheet it was
	/// liquidated with revoked and the lock has not ended.
	pub(crate) fn proven_revoked(
		channel: ChannelId,
		waiver_signature: &MultiSignature,
	) -> Result<ChannelOf<T>, DispatchError> {
		let bank = Channels::<T>::get(channel).ok_or(Error::<T>::UnknownChannel)?;
		let liquidation = bank.liquidation.as_ref().ok_or(Error::<T>::WrongState)?;
		ensure!(Self::now() < liquidation.unlock_at, Error::<T>::LockExpired);
		let payload = waiver_payload(&Self::genesis_hash(), channel, liquidation.nonce);
		ensure!(
			verify_signature(waiver_signature, &payload, &liquidation.waiver),
			Error::<T>::BadSignature
		);
		Ok(bank)
	}

	/// The hash of block 0, which every signed payload binds.
	///
	/// `frame_system` records the real genesis hash when block 1 is initialised; no
	/// extrinsic can run before then.
	pub fn genesis_hash() -> H256 {
		frame_system::Pallet::<T>::block_hash(BlockNumberFor::<T>::zero())
	}

	/// The bank `channel` and the index of `who` among its clients.
	pub(crate) fn client_bank(
		channel: ChannelId,
		who: &T::AccountId,
	) -> Result<(ChannelOf<T>, usize), DispatchError> {
		let bank = Channels::<T>::get(channel).ok_or(Error::<T>::UnknownChannel)?;
		let me = bank.client_index(who).ok_or(Error::<T>::NotAClient)?;
		Ok((bank, me))
	}

	pub(crate) fn now() -> BlockNumberFor<T> {
		frame_system::Pallet::<T>::block_number()
	}

	/// What bank `channel` holds for each client under `ChannelDeposit`: once liquidated,
	/// the master holds its frozen share and every HTLC not yet paid out.
	pub fn owed(channel: ChannelId, bank: &ChannelOf<T>) -> Balances {
		match (&bank.state, &bank.liquidation) {
			(ChannelState::Funding, _) => {
				[0, 1].map(|i| if bank.deposited[i] { bank.balances[i] } else { 0 })
			},
			(ChannelState::Running, _) => bank.balances,
			(ChannelState::Liquidating, Some(l)) => {
				let mut owed = [0; 2];
				let master = usize::from(l.master).min(1);
				let pending = Htlcs::<T>::get(channel).map_or(0, |book| book.pending_total());
				owed[master] = bank.balances[master].saturating_add(pending);
				owed
			},
			(ChannelState::Liquidating, None) => [0; 2],
		}
	}

	/// The bank `channel`, as the runtime API shows it.
	pub fn channel(channel: ChannelId) -> Option<ChannelOf<T>> {
		Channels::<T>::get(channel)
	}

	/// The HTLCs liquidated bank `channel` holds, by their index in its sheet, `None` once
	/// paid out, as the runtime API shows them.
	pub fn htlcs(channel: ChannelId) -> alloc::vec::Vec<Option<crate::HtlcOf<T>>> {
		Htlcs::<T>::get(channel).map(|book| book.htlcs.into_inner()).unwrap_or_default()
	}

	/// The nonce of bank `channel`'s last splice, as the runtime API shows it: its sheets and
	/// closes older than it are refused.
	pub fn spliced_at(channel: ChannelId) -> Option<Nonce> {
		SplicedAt::<T>::get(channel)
	}

	/// The ids of every bank `who` is a client of, in ascending order of their hashes.
	pub fn channels_of(who: &T::AccountId) -> alloc::vec::Vec<ChannelId> {
		ChannelsOf::<T>::iter_key_prefix(who).collect()
	}
}
