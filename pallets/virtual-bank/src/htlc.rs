//! The HTLCs of a liquidated bank (`docs/htlc.md`): each held on the master's account until
//! it is claimed with its preimage or refunded after its expiry, and the preimages the chain
//! remembers for the other banks of a route.

use crate::{
	pallet::{
		Channels, Config, Error, Event, HoldReason, HtlcOf, Htlcs, Pallet, PreimageExpiries,
		PreimageTail, Preimages, RELEASE_SEARCH,
	},
	LOG_TARGET,
};
use frame_support::{
	pallet_prelude::*,
	traits::{
		fungible::hold::Mutate as _,
		tokens::{Fortitude, Precision, Restriction},
	},
	CloneNoBound, DebugNoBound, EqNoBound, PartialEqNoBound,
};
use frame_system::pallet_prelude::BlockNumberFor;
use sp_core::H256;
use sp_runtime::traits::Saturating;
use vbank_primitives::{Balance, ChannelId, Preimage};

/// The HTLCs a liquidated bank still holds: the sheet's list, in its order, with each entry
/// emptied once paid out, so that an HTLC keeps its index for its whole life.
#[derive(
	Encode,
	Decode,
	DecodeWithMemTracking,
	CloneNoBound,
	PartialEqNoBound,
	EqNoBound,
	DebugNoBound,
	TypeInfo,
	MaxEncodedLen,
)]
#[scale_info(skip_type_params(T))]
#[codec(mel_bound(T: Config))]
pub struct HtlcBook<T: Config> {
	/// The sheet's HTLCs; `None` once claimed or refunded.
	pub htlcs: BoundedVec<Option<HtlcOf<T>>, T::MaxHtlcs>,
	/// Whether the lock has ended and the master's share has been released: the bank is
	/// then kept only for its pending HTLCs, and what they pay the master is paid at once.
	pub master_released: bool,
}

impl<T: Config> HtlcBook<T> {
	/// The sum of the HTLCs not yet paid out (it fits: it is part of a bank's total).
	pub fn pending_total(&self) -> Balance {
		self.htlcs.iter().flatten().fold(0, |sum, h| sum.saturating_add(h.amount))
	}

	/// Whether any HTLC is still to be paid out.
	pub fn any_pending(&self) -> bool {
		self.htlcs.iter().any(Option::is_some)
	}
}

impl<T: Config> Pallet<T> {
	/// HTLC `index` of liquidated bank `channel`, while it is pending.
	pub(crate) fn pending_htlc(channel: ChannelId, index: u32) -> Result<HtlcOf<T>, DispatchError> {
		let bank = Channels::<T>::get(channel).ok_or(Error::<T>::UnknownChannel)?;
		ensure!(bank.liquidation.is_some(), Error::<T>::WrongState);
		let book = Htlcs::<T>::get(channel).ok_or(Error::<T>::UnknownHtlc)?;
		let htlc = book.htlcs.get(index as usize).cloned().flatten();
		htlc.ok_or(Error::<T>::UnknownHtlc.into())
	}

	/// Whom a claim of `htlc` with `preimage` pays (the client it is paid to), if it may be
	/// claimed now: before its expiry, with the preimage of its hashlock.
	pub(crate) fn claim_receiver(
		htlc: &HtlcOf<T>,
		preimage: &Preimage,
	) -> Result<usize, DispatchError> {
		ensure!(Self::now() < htlc.expiry, Error::<T>::HtlcExpired);
		let shown = vbank_primitives::hashlock(preimage);
		ensure!(shown == htlc.hashlock, Error::<T>::WrongPreimage);
		Ok(1 - usize::from(htlc.from))
	}

	/// Whom a refund of `htlc` pays (its sender), if it may be refunded now: at or after its
	/// expiry.
	pub(crate) fn refund_receiver(htlc: &HtlcOf<T>) -> Result<usize, DispatchError> {
		ensure!(Self::now() >= htlc.expiry, Error::<T>::HtlcNotExpired);
		Ok(usize::from(htlc.from))
	}

	/// Whether the master's share of liquidated bank `channel` has been released while
	/// HTLCs kept the bank.
	pub(crate) fn master_released(channel: ChannelId) -> bool {
		Htlcs::<T>::get(channel).is_some_and(|book| book.master_released)
	}

	/// Pay pending HTLC `index` out of the master's holds to the client `receiver` names once
	/// it has checked the HTLC (the claim's or the refund's rule): to the peer free (or,
	/// when dust to it, to the master: [`Event::Trimmed`]); to the master frozen with its
	/// share until that is released, free after. The last HTLC paid out removes the bank
	/// when the master's share has been released, and the book in any case. The HTLC, who
	/// was paid, and what.
	pub(crate) fn pay_htlc(
		channel: ChannelId,
		index: u32,
		receiver: impl FnOnce(&HtlcOf<T>) -> Result<usize, DispatchError>,
	) -> Result<(HtlcOf<T>, T::AccountId, Balance), DispatchError> {
		let mut bank = Channels::<T>::get(channel).ok_or(Error::<T>::UnknownChannel)?;
		let mut book = Htlcs::<T>::get(channel).ok_or(Error::<T>::UnknownHtlc)?;
		let slot = book.htlcs.get_mut(index as usize).ok_or(Error::<T>::UnknownHtlc)?;
		let htlc = slot.take().ok_or(Error::<T>::UnknownHtlc)?;
		let receiver = receiver(&htlc)?;
		let liquidation = bank.liquidation.as_ref().ok_or(Error::<T>::WrongState)?;
		let master = usize::from(liquidation.master);
		let reason = HoldReason::ChannelDeposit.into();
		let who = bank.clients[receiver].clone();
		let mut paid = htlc.amount;
		let mut to_master = receiver == master;
		if !to_master {
			if Self::can_receive(&who, htlc.amount) {
				T::Currency::transfer_on_hold(
					&reason,
					&bank.clients[master],
					&who,
					htlc.amount,
					Precision::Exact,
					Restriction::Free,
					Fortitude::Force,
				)?;
			} else {
				Self::deposit_event(Event::Trimmed { channel, who: who.clone(), amount: paid });
				paid = 0;
				to_master = true;
			}
		}
		if to_master {
			if book.master_released {
				T::Currency::release(
					&reason,
					&bank.clients[master],
					htlc.amount,
					Precision::Exact,
				)?;
			} else {
				bank.balances[master] = bank.balances[master].saturating_add(htlc.amount);
			}
		}
		match (book.any_pending(), book.master_released) {
			(true, _) => {
				Htlcs::<T>::insert(channel, book);
				Channels::<T>::insert(channel, bank);
			},
			(false, true) => Self::remove(channel, &bank),
			(false, false) => {
				Htlcs::<T>::remove(channel);
				Channels::<T>::insert(channel, bank);
			},
		}
		Ok((htlc, who, paid))
	}

	/// Remember `preimage` under `hashlock` until `PreimageRetention` blocks from now, or the
	/// first block after with room to forget it ([`PreimageTail`]: blocks filled by earlier
	/// claims are skipped at once, so a crowd of claims never leaves one without its copy). A
	/// preimage shown again later is kept from then on: nobody shortens its retention by
	/// showing it early on a bank of their own (L1 of the HTLC review). At most
	/// [`RELEASE_SEARCH`] lists are written, as the weight counts; only a run of full blocks
	/// beyond the tail (left by an older runtime) can exhaust them: then the claim still
	/// succeeds, its event still shows the preimage, and the copy is skipped (and logged).
	pub(crate) fn remember_preimage(hashlock: H256, preimage: Preimage) {
		let tail = PreimageTail::<T>::get();
		let target = Self::now().saturating_add(T::PreimageRetention::get()).max(tail);
		let kept = Preimages::<T>::get(hashlock).map(|(_, at)| at);
		if kept.is_some_and(|at| at >= target) {
			return;
		}
		// Clearing the earlier date is one of the lists written.
		let probes = RELEASE_SEARCH - u32::from(kept.is_some());
		let mut block = target;
		for _ in 0..probes {
			if PreimageExpiries::<T>::try_mutate(block, |due| due.try_push(hashlock)).is_ok() {
				if let Some(at) = kept {
					PreimageExpiries::<T>::mutate_exists(at, |due| {
						if let Some(list) = due {
							list.retain(|h| *h != hashlock);
						}
						if due.as_ref().is_some_and(|list| list.is_empty()) {
							*due = None;
						}
					});
				}
				Preimages::<T>::insert(hashlock, (preimage, block));
				PreimageTail::<T>::put(block);
				return;
			}
			block = block.saturating_add(1u32.into());
		}
		PreimageTail::<T>::put(block);
		log::warn!(target: LOG_TARGET, "preimage of {hashlock:?} not remembered: no room to forget it");
	}

	/// Forget the preimages whose retention ends in block `n`: how many.
	pub(crate) fn forget_preimages(n: BlockNumberFor<T>) -> u32 {
		let due = PreimageExpiries::<T>::take(n);
		for hashlock in &due {
			Preimages::<T>::remove(hashlock);
		}
		due.len() as u32
	}
}
