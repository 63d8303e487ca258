//! The pallet's invariants, checked by `try_state` and after every mock-runtime test.

use crate::pallet::{
	Channels, ChannelsOf, Config, HoldReason, Htlcs, NextChannelId, Pallet, PreimageExpiries,
	Preimages, Releases, SplicedAt,
};
use frame_support::{ensure, traits::fungible};
use sp_runtime::traits::Zero;
use vbank_primitives::{Balance, ChannelState};

impl<T: Config> Pallet<T> {
	/// The money invariant: every account holds under `ChannelDeposit` exactly what its
	/// banks owe it, and under `BankStorage` the storage deposits of the banks it opened,
	/// and no account holds anything under this pallet's reasons without a bank behind
	/// it; the account index matches the banks; the release schedule holds exactly the
	/// liquidated banks still to be released; HTLCs are kept only by liquidated banks, each
	/// with one pending at least, and a bank kept for them has released its master's share;
	/// every remembered preimage hashes to its hashlock and is due to be forgotten.
	pub fn do_try_state() -> Result<(), sp_runtime::TryRuntimeError> {
		use alloc::collections::btree_map::BTreeMap;
		use fungible::hold::Inspect;

		let now = Self::now();
		let mut owed: BTreeMap<T::AccountId, Balance> = BTreeMap::new();
		let mut storage: BTreeMap<T::AccountId, Balance> = BTreeMap::new();
		let mut indexed = 0usize;
		let mut scheduled = 0usize;
		for (channel, bank) in Channels::<T>::iter() {
			ensure!(channel < NextChannelId::<T>::get(), "bank id not yet handed out");
			ensure!(bank.clients[0] != bank.clients[1], "bank with itself");
			ensure!(bank.total().is_some(), "bank total overflows");
			ensure!(
				(bank.state == ChannelState::Liquidating) == bank.liquidation.is_some(),
				"liquidation record does not match the state"
			);
			ensure!(
				(bank.state == ChannelState::Running)
					== (bank.deposited == [true, true] && bank.liquidation.is_none()),
				"running exactly when both deposited"
			);
			if let Some(book) = Htlcs::<T>::get(channel) {
				let l = bank.liquidation.as_ref().ok_or("HTLCs kept by a bank not liquidated")?;
				ensure!(book.any_pending(), "HTLCs kept when none is pending");
				ensure!(
					book.htlcs.iter().flatten().all(|h| h.from <= 1 && h.amount > 0),
					"an HTLC from no client, or of nothing"
				);
				ensure!(
					!book.master_released
						|| (bank.balances[usize::from(l.master)] == 0 && now >= l.unlock_at),
					"master's share released before the lock ended, or still counted"
				);
			}
			if let Some(l) = &bank.liquidation {
				ensure!(l.release_at >= l.unlock_at, "released before the lock ends");
				if l.release_at > now
					&& l.release_at != Self::never()
					&& !Self::master_released(channel)
				{
					ensure!(
						Releases::<T>::get(l.release_at).contains(&channel),
						"liquidated bank missing from the release schedule"
					);
					scheduled += 1;
				}
			}
			for (client, amount) in bank.clients.iter().zip(Self::owed(channel, &bank)) {
				ensure!(ChannelsOf::<T>::contains_key(client, channel), "bank not indexed");
				let entry = owed.entry(client.clone()).or_default();
				*entry = entry.checked_add(amount).ok_or("owed overflows")?;
			}
			let entry = storage.entry(bank.clients[0].clone()).or_default();
			*entry = entry.saturating_add(bank.storage_deposit);
			indexed += 2;
		}
		ensure!(ChannelsOf::<T>::iter().count() == indexed, "stale bank index entries");
		let mut in_schedule = 0usize;
		for (block, due) in Releases::<T>::iter() {
			ensure!(block > now, "a release the chain has passed is still scheduled");
			in_schedule += due.len();
		}
		ensure!(in_schedule == scheduled, "the release schedule names banks it should not");
		ensure!(
			Htlcs::<T>::iter_keys().all(Channels::<T>::contains_key),
			"HTLCs kept for a bank that is gone"
		);
		ensure!(
			SplicedAt::<T>::iter_keys().all(Channels::<T>::contains_key),
			"a splice remembered for a bank that is gone"
		);
		let mut to_forget = 0usize;
		for (block, due) in PreimageExpiries::<T>::iter() {
			ensure!(block > now, "a preimage the chain should have forgotten is still due");
			for hashlock in &due {
				let (preimage, at) = Preimages::<T>::get(hashlock).ok_or("forgotten twice")?;
				ensure!(at == block, "a preimage due in another block");
				ensure!(vbank_primitives::hashlock(&preimage) == *hashlock, "wrong preimage");
			}
			to_forget += due.len();
		}
		ensure!(Preimages::<T>::iter().count() == to_forget, "a preimage never forgotten");
		for who in frame_system::Account::<T>::iter_keys() {
			let held = [HoldReason::ChannelDeposit, HoldReason::BankStorage]
				.map(|reason| T::Currency::balance_on_hold(&reason.into(), &who));
			ensure!(
				held[0] == owed.get(&who).copied().unwrap_or_default(),
				"held funds differ from what the banks owe"
			);
			ensure!(
				held[1] == storage.get(&who).copied().unwrap_or_default(),
				"storage deposits differ from the banks opened"
			);
		}
		for (who, amount) in owed.iter().chain(storage.iter()) {
			ensure!(
				amount.is_zero() || frame_system::Account::<T>::contains_key(who),
				"funds owed to an account that does not exist"
			);
		}
		Ok(())
	}
}
