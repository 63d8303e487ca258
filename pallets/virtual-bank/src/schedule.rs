//! The release schedule: the liquidated banks whose lock ends in each block, released by
//! that block's `on_initialize` so that nobody has to send a second transaction.

use crate::{
	pallet::{Channels, Config, Error, Pallet, Releases, RELEASE_SEARCH},
	LOG_TARGET,
};
use frame_support::pallet_prelude::*;
use frame_system::pallet_prelude::BlockNumberFor;
use sp_runtime::traits::{Bounded, CheckedAdd};
use vbank_primitives::ChannelId;

impl<T: Config> Pallet<T> {
	/// Put `channel` in the release schedule of the first block from `unlock_at` with
	/// room: that block. With no room within [`RELEASE_SEARCH`] blocks, [`Self::never`]: the
	/// schedule is a convenience and never blocks a liquidation (anyone could fill it ahead
	/// of an HTLC's deadline), so the master ends the lock with `withdraw_by_master`.
	pub(crate) fn schedule(
		channel: ChannelId,
		unlock_at: BlockNumberFor<T>,
	) -> Result<BlockNumberFor<T>, DispatchError> {
		let mut block = unlock_at;
		for _ in 0..RELEASE_SEARCH {
			// The largest block number means "never": nothing is scheduled there.
			if block == Self::never() {
				break;
			}
			// `try_mutate` writes only a block it could push to: a full one is read, not
			// written back.
			if Releases::<T>::try_mutate(block, |due| due.try_push(channel)).is_ok() {
				return Ok(block);
			}
			block = block.checked_add(&1u32.into()).ok_or(Error::<T>::UnlockOverflow)?;
		}
		Ok(Self::never())
	}

	/// The `release_at` of a liquidation the schedule had no room for: no block releases it.
	pub(crate) fn never() -> BlockNumberFor<T> {
		BlockNumberFor::<T>::max_value()
	}

	/// Take `channel` out of the release schedule of block `release_at`.
	pub(crate) fn unschedule(channel: ChannelId, release_at: BlockNumberFor<T>) {
		if release_at == Self::never() {
			return;
		}
		Releases::<T>::mutate_exists(release_at, |due| {
			if let Some(list) = due {
				list.retain(|c| *c != channel);
				if list.is_empty() {
					*due = None;
				}
			}
		});
	}

	/// The release schedule's work for `channel` in block `n`: the master's share and the
	/// storage deposit released, the bank removed. A bank no longer there, or scheduled
	/// elsewhere, is left alone; a release that fails is undone and logged, and
	/// `withdraw_by_master` can still end the lock.
	pub(crate) fn release(channel: ChannelId, n: BlockNumberFor<T>) {
		let Some(bank) = Channels::<T>::get(channel) else { return };
		if bank.liquidation.as_ref().map(|l| l.release_at) != Some(n) {
			return;
		}
		let released = frame_support::storage::with_storage_layer(|| {
			Self::do_withdraw_by_master(channel, bank)
		});
		if let Err(e) = released {
			log::error!(target: LOG_TARGET, "bank {channel}: release at block {n:?} failed: {e:?}");
		}
	}
}
