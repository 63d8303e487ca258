//! What each call does to the funds once its checks have passed: holds, payouts, and the
//! removal of a settled bank. Every function here runs inside a dispatch (or the release
//! schedule's storage layer), so an error undoes its writes.

use crate::{
	pallet::{
		Channels, ChannelsOf, Config, Error, Event, HoldReason, Htlcs, HtlcsOf, NextChannelId,
		Pallet, SplicedAt,
	},
	ChannelOf, HtlcBook, LOG_TARGET,
};
use frame_support::{
	pallet_prelude::*,
	traits::{
		fungible::{self, hold::Mutate as _},
		tokens::{DepositConsequence, Fortitude, Precision, Preservation, Provenance, Restriction},
	},
};
use frame_system::pallet_prelude::BlockNumberFor;
use sp_runtime::traits::CheckedAdd;
use vbank_primitives::{
	Balance, BalanceSheet, Balances, ChannelId, ChannelState, Liquidation, Nonce,
};

impl<T: Config> Pallet<T> {
	pub(crate) fn do_open(
		opener: T::AccountId,
		peer: T::AccountId,
		amounts: Balances,
		lock_period: BlockNumberFor<T>,
	) -> DispatchResult {
		let channel = NextChannelId::<T>::get();
		let next = channel.checked_add(1).ok_or(Error::<T>::NoChannelIdLeft)?;
		let clients = [opener.clone(), peer];
		let storage_deposit = T::OpenDeposit::get();
		let bank = ChannelOf::<T> {
			clients: clients.clone(),
			balances: amounts,
			deposited: [amounts[0] == 0, amounts[1] == 0],
			lock_period,
			state: ChannelState::Funding,
			liquidation: None,
			storage_deposit,
		};
		NextChannelId::<T>::put(next);
		for client in &clients {
			ChannelsOf::<T>::insert(client, channel, ());
		}
		Channels::<T>::insert(channel, bank);
		// Last, and fallible: the dispatch's storage layer undoes the writes above when
		// the opener can't afford the deposit.
		T::Currency::hold(&HoldReason::BankStorage.into(), &opener, storage_deposit)?;
		Self::deposit_event(Event::Opened { channel, clients, amounts, lock_period });
		Ok(())
	}

	pub(crate) fn do_deposit(
		channel: ChannelId,
		mut bank: ChannelOf<T>,
		me: usize,
	) -> DispatchResult {
		let who = bank.clients[me].clone();
		let amount = bank.balances[me];
		Self::lock_in_bank(&who, amount)?;
		bank.deposited[me] = true;
		let running = bank.deposited == [true, true];
		if running {
			bank.state = ChannelState::Running;
		}
		Channels::<T>::insert(channel, bank);
		Self::deposit_event(Event::Deposited { channel, who, amount });
		if running {
			Self::deposit_event(Event::Running { channel });
		}
		Ok(())
	}

	/// Hold `amount` of `who`'s in a bank. Only what the account may spend: funds under a
	/// freeze (vesting, a vote) or the existential deposit would otherwise be held here and
	/// leave through a payout.
	fn lock_in_bank(who: &T::AccountId, amount: Balance) -> DispatchResult {
		let spendable = <T::Currency as fungible::Inspect<_>>::reducible_balance(
			who,
			Preservation::Protect,
			Fortitude::Polite,
		);
		ensure!(spendable >= amount, sp_runtime::TokenError::FundsUnavailable);
		T::Currency::hold(&HoldReason::ChannelDeposit.into(), who, amount)
	}

	/// Lock each client's `amounts_in`, then pay each its `amounts_out`: out of what it holds
	/// in the bank first, the rest out of what the other holds (the chain tracks holds, not
	/// the sheets' shares, which the clients agreed on). Sheets before `nonce` are void after.
	pub(crate) fn do_splice(
		channel: ChannelId,
		mut bank: ChannelOf<T>,
		nonce: Nonce,
		amounts_in: Balances,
		amounts_out: Balances,
	) -> DispatchResult {
		let total = bank.total().ok_or(Error::<T>::AmountOverflow)?;
		let added = amounts_in[0].checked_add(amounts_in[1]).ok_or(Error::<T>::AmountOverflow)?;
		let taken =
			amounts_out[0].checked_add(amounts_out[1]).ok_or(Error::<T>::BalanceMismatch)?;
		let total = total
			.checked_add(added)
			.ok_or(Error::<T>::AmountOverflow)?
			.checked_sub(taken)
			.ok_or(Error::<T>::BalanceMismatch)?;
		ensure!(total > 0, Error::<T>::NothingToLock);
		let reason = HoldReason::ChannelDeposit.into();
		for (i, client) in bank.clients.iter().enumerate() {
			if amounts_in[i] > 0 {
				Self::lock_in_bank(client, amounts_in[i])?;
				bank.balances[i] = bank.balances[i]
					.checked_add(amounts_in[i])
					.ok_or(Error::<T>::AmountOverflow)?;
			}
		}
		for (i, client) in bank.clients.iter().enumerate() {
			let own = amounts_out[i].min(bank.balances[i]);
			if own > 0 {
				T::Currency::release(&reason, client, own, Precision::Exact)?;
				bank.balances[i] -= own;
			}
			let rest = amounts_out[i] - own;
			if rest > 0 {
				T::Currency::transfer_on_hold(
					&reason,
					&bank.clients[1 - i],
					client,
					rest,
					Precision::Exact,
					Restriction::Free,
					Fortitude::Force,
				)?;
				bank.balances[1 - i] =
					bank.balances[1 - i].checked_sub(rest).ok_or(Error::<T>::BalanceMismatch)?;
			}
		}
		SplicedAt::<T>::insert(channel, nonce);
		Channels::<T>::insert(channel, bank);
		Self::deposit_event(Event::Spliced { channel, nonce, amounts_in, amounts_out, total });
		Ok(())
	}

	/// The sheet's HTLCs stay held on the master's account, as its share does: the peer's
	/// share is what leaves at once.
	pub(crate) fn do_liquidate(
		mut bank: ChannelOf<T>,
		master: usize,
		sheet: BalanceSheet<T::AccountId>,
		htlcs: HtlcsOf<T>,
	) -> DispatchResult {
		let now = Self::now();
		let unlock_at = now.checked_add(&bank.lock_period).ok_or(Error::<T>::UnlockOverflow)?;
		let BalanceSheet { channel, nonce, balances, waiver } = sheet;
		let release_at = Self::schedule(channel, unlock_at)?;
		let pending = htlcs.iter().fold(0, |sum: Balance, h| sum.saturating_add(h.amount));
		let mut kept = balances;
		kept[master] = kept[master].checked_add(pending).ok_or(Error::<T>::BalanceMismatch)?;
		bank.balances = Self::settle(channel, &bank.clients, bank.balances, kept, Some(master))?;
		bank.balances[master] = bank.balances[master].saturating_sub(pending);
		bank.state = ChannelState::Liquidating;
		bank.liquidation = Some(Liquidation {
			master: master as u8,
			nonce,
			waiver,
			liquidated_at: now,
			unlock_at,
			release_at,
		});
		let master = bank.clients[master].clone();
		Channels::<T>::insert(channel, bank);
		Self::deposit_event(Event::Liquidated {
			channel,
			master,
			nonce,
			balances,
			unlock_at,
			release_at,
		});
		if !htlcs.is_empty() {
			let book = htlcs.iter().cloned().map(Some).collect::<alloc::vec::Vec<_>>();
			let book = HtlcBook::<T> {
				htlcs: BoundedVec::try_from(book).map_err(|_| Error::<T>::BadHtlc)?,
				master_released: false,
			};
			Htlcs::<T>::insert(channel, book);
			Self::deposit_event(Event::HtlcsPending { channel, htlcs });
		}
		Ok(())
	}

	/// Release the master's share; remove the bank, or, while HTLCs are pending in it,
	/// keep it for them without that share.
	pub(crate) fn do_withdraw_by_master(
		channel: ChannelId,
		mut bank: ChannelOf<T>,
	) -> DispatchResult {
		let master = usize::from(bank.liquidation.as_ref().ok_or(Error::<T>::WrongState)?.master);
		let who = bank.clients[master].clone();
		let amount = bank.balances[master];
		T::Currency::release(&HoldReason::ChannelDeposit.into(), &who, amount, Precision::Exact)?;
		match Htlcs::<T>::get(channel) {
			Some(mut book) if book.any_pending() => {
				book.master_released = true;
				bank.balances[master] = 0;
				Htlcs::<T>::insert(channel, book);
				Channels::<T>::insert(channel, bank);
			},
			_ => Self::remove(channel, &bank),
		}
		Self::deposit_event(Event::WithdrawnByMaster { channel, who, amount });
		Ok(())
	}

	pub(crate) fn do_withdraw_by_peer(channel: ChannelId, bank: ChannelOf<T>) -> DispatchResult {
		let Some(liquidation) = &bank.liquidation else {
			return Err(Error::<T>::WrongState.into());
		};
		let master = usize::from(liquidation.master);
		let nonce = liquidation.nonce;
		Self::unschedule(channel, liquidation.release_at);
		let peer = bank.clients[1 - master].clone();
		let pending = Htlcs::<T>::get(channel).map_or(0, |book| book.pending_total());
		let share = bank.balances[master].saturating_add(pending);
		let amount = if Self::can_receive(&peer, share) {
			T::Currency::transfer_on_hold(
				&HoldReason::ChannelDeposit.into(),
				&bank.clients[master],
				&peer,
				share,
				Precision::Exact,
				Restriction::Free,
				Fortitude::Force,
			)?;
			share
		} else {
			T::Currency::release(
				&HoldReason::ChannelDeposit.into(),
				&bank.clients[master],
				share,
				Precision::Exact,
			)?;
			Self::deposit_event(Event::Trimmed { channel, who: peer.clone(), amount: share });
			0
		};
		Self::remove(channel, &bank);
		Self::deposit_event(Event::WithdrawnByPeer { channel, who: peer, amount, nonce });
		Ok(())
	}

	pub(crate) fn do_cancel(channel: ChannelId, bank: ChannelOf<T>) -> DispatchResult {
		for (client, owed) in bank.clients.iter().zip(Self::owed(channel, &bank)) {
			T::Currency::release(
				&HoldReason::ChannelDeposit.into(),
				client,
				owed,
				Precision::Exact,
			)?;
		}
		Self::remove(channel, &bank);
		Self::deposit_event(Event::Cancelled { channel });
		Ok(())
	}

	pub(crate) fn do_close(
		channel: ChannelId,
		bank: ChannelOf<T>,
		balances: Balances,
	) -> DispatchResult {
		Self::settle(channel, &bank.clients, bank.balances, balances, None)?;
		Self::remove(channel, &bank);
		Self::deposit_event(Event::Closed { channel, balances });
		Ok(())
	}

	/// Whether `who` can be paid `amount` free: always, but for an account that does not
	/// exist and an amount below the existential deposit (dust).
	pub(crate) fn can_receive(who: &T::AccountId, amount: Balance) -> bool {
		<T::Currency as fungible::Inspect<_>>::can_deposit(who, amount, Provenance::Extant)
			== DepositConsequence::Success
	}

	/// Move held funds so that each client gets its share of `owed` out of what it holds,
	/// `held`, both adding up to the same total. Every share is paid out free, but for the
	/// client `keep`, whose share stays held. A share that is dust to its receiver stays
	/// with the other client ([`Event::Trimmed`]). What each client got: `owed`, but for
	/// dust.
	pub(crate) fn settle(
		channel: ChannelId,
		clients: &[T::AccountId; 2],
		held: Balances,
		owed: Balances,
		keep: Option<usize>,
	) -> Result<Balances, DispatchError> {
		let reason = HoldReason::ChannelDeposit.into();
		let mut got = held;
		for from in 0..2 {
			let to = 1 - from;
			let excess = held[from].saturating_sub(owed[from]);
			if excess == 0 {
				continue;
			}
			// Held funds, moved on hold, make no account; paid free, they must be no dust.
			if keep != Some(to) && !Self::can_receive(&clients[to], excess) {
				Self::deposit_event(Event::Trimmed {
					channel,
					who: clients[to].clone(),
					amount: excess,
				});
				continue;
			}
			let restriction =
				if keep == Some(to) { Restriction::OnHold } else { Restriction::Free };
			T::Currency::transfer_on_hold(
				&reason,
				&clients[from],
				&clients[to],
				excess,
				Precision::Exact,
				restriction,
				Fortitude::Force,
			)?;
			got[from] -= excess;
			got[to] = got[to].saturating_add(excess);
		}
		for (i, client) in clients.iter().enumerate() {
			// What `i` still holds: what it got if it gave, else all it held, as what came
			// in from the other side came in free.
			let still_held = held[i].min(got[i]);
			if keep != Some(i) && still_held > 0 {
				T::Currency::release(&reason, client, still_held, Precision::Exact)?;
			}
		}
		Ok(got)
	}

	/// Remove a settled bank and release the storage deposit it took. A deposit that
	/// can't be released in full is released as far as it can be, and never blocks the
	/// clients' payouts.
	pub(crate) fn remove(channel: ChannelId, bank: &ChannelOf<T>) {
		Channels::<T>::remove(channel);
		Htlcs::<T>::remove(channel);
		SplicedAt::<T>::remove(channel);
		for client in &bank.clients {
			ChannelsOf::<T>::remove(client, channel);
		}
		let released = T::Currency::release(
			&HoldReason::BankStorage.into(),
			&bank.clients[0],
			bank.storage_deposit,
			Precision::BestEffort,
		);
		if released != Ok(bank.storage_deposit) {
			log::warn!(
				target: LOG_TARGET,
				"bank {channel}: storage deposit of {} released as {released:?}",
				bank.storage_deposit
			);
		}
	}
}
