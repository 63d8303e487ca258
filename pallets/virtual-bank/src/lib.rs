//! # Virtual bank pallet
//!
//! Two-party payment channels ("virtual banks") after the Lightning Network's RSMC design,
//! as SPEC section 2 describes them. Two clients lock funds in a bank; they then pay each
//! other off-chain with *balance sheets* signed by the other side, revoking older sheets by
//! revealing their *waiver keys*. Either client may [`Pallet::liquidate`] the bank with the
//! newest sheet its peer signed: the peer is paid at once, the liquidator's (the *master's*)
//! share stays frozen for the bank's lock period, during which anybody holding the sheet's
//! revealed waiver secret may hand it to the peer with [`Pallet::withdraw_by_peer`] — as a
//! signed transaction, or as a general one that pays no fee, authorized by the proof itself,
//! so a watcher with no money can punish. Otherwise the lock ends by itself: the chain
//! releases the master's share and removes the bank in the block the lock ends, from a
//! bounded schedule ([`Releases`]); nobody has to send a second transaction.
//! [`Pallet::close`] settles at once when both clients sign.
//!
//! Funds never leave their owners' accounts until they are paid: they are held with
//! [`fungible::hold::Mutate`] under [`HoldReason::ChannelDeposit`], and the opener's
//! storage deposit under [`HoldReason::BankStorage`]; each bank records the storage deposit
//! it took, and releases exactly that.
//!
//! ## Dust
//!
//! A payout to an account that does not exist must be at least the existential deposit. A
//! client who brought nothing and has no account, and is owed less than that by a
//! liquidation, a close or a penalty, cannot be paid: its share stays with the other client
//! (as BOLT #3 trims outputs below the dust limit, but without destroying anything), and
//! [`Event::Trimmed`] says so. Every other payout is exact. A master's share is frozen on
//! its account, so a client with no account can't liquidate into a share it does not hold
//! yet (`TokenError::CannotCreateHold`); on a chain with fees, whoever sends `liquidate`
//! has an account.
//!
//! Every signed payload is built by `vbank_primitives` and carries a tag, the chain's
//! genesis hash and the bank's id, so a signature can't be replayed on another bank, another
//! chain, or as another kind of message.
//!
//! ## Changes from the seed contract
//!
//! The Solidity contract this pallet retells had defects that are deliberately not copied:
//!
//! - It refused a sheet where one side holds zero. Here a share of zero is valid, both when
//!   opening (that side then counts as deposited) and in sheets: paying everything to one
//!   side is the most ordinary last payment of all.
//! - It bound the waiver signature to a nonce chosen by the caller of the penalty, so a
//!   waiver revealed for any old sheet could punish a liquidation with the newest one. Here
//!   the waiver payload is built from the nonce recorded at liquidation, and checked against
//!   the waiver key of the very sheet that was used.
//! - It let funds stay locked forever when one side never funded. Here either client may
//!   [`Pallet::cancel`] a bank still in `Funding`, and gets back whatever it deposited.
//! - Its constructor validated a variable that was not its lock argument. Here the lock
//!   period argument itself must lie within `[MinLockPeriod, MaxLockPeriod]`, and the lock is
//!   counted in blocks, with `now + lock_period` refused when it overflows.

#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub use pallet::*;
pub use weights::WeightInfo;

#[cfg(feature = "runtime-benchmarks")]
mod benchmarking;
mod funds;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
#[cfg(any(test, feature = "fuzzing"))]
pub mod mock;
mod schedule;
#[cfg(test)]
mod tests;
#[cfg(any(test, feature = "try-runtime", feature = "fuzzing"))]
mod try_state;
pub mod weights;

pub use vbank_primitives::{
	Balance, BalanceSheet, Balances, ChannelId, ChannelState, Liquidation, Nonce,
};

#[frame_support::pallet]
pub mod pallet {
	use super::*;
	use frame_support::{pallet_prelude::*, traits::fungible, weights::WeightMeter};
	use frame_system::pallet_prelude::*;
	use sp_core::H256;
	use sp_runtime::{
		traits::{Saturating, Zero},
		transaction_validity::{
			InvalidTransaction, TransactionLongevity, TransactionPriority, TransactionSource,
			TransactionValidityWithRefund, ValidTransaction,
		},
		AccountId32, MultiSignature,
	};
	use vbank_primitives::{close_payload, sheet_payload, verify_signature, waiver_payload};

	/// How many blocks from a lock's end `liquidate` looks for room in the release schedule
	/// before it gives up with [`Error::ReleaseScheduleFull`]: `liquidate`'s weight pays for
	/// reading this many full blocks of the schedule, so it is kept small (the runtime's 64
	/// releases a block make 256 lock ends within the search).
	pub const RELEASE_SEARCH: u32 = 4;

	/// The priority of a penalty in the transaction pool: above any ordinary transaction,
	/// since it expires with the lock.
	pub const PENALTY_PRIORITY: TransactionPriority = TransactionPriority::MAX / 2;

	/// A bank as stored.
	pub type ChannelOf<T> = vbank_primitives::Channel<AccountIdOf<T>, BlockNumberFor<T>>;
	type AccountIdOf<T> = <T as frame_system::Config>::AccountId;

	/// Where this pallet logs.
	pub(crate) const LOG_TARGET: &str = "runtime::virtual-bank";

	#[pallet::pallet]
	pub struct Pallet<T>(_);

	/// The pallet's configuration.
	///
	/// Clients sign with `MultiSignature` against their `AccountId32`, and payloads bind the
	/// chain's genesis hash, so the runtime's account id and hash are fixed to those types.
	#[pallet::config]
	pub trait Config: frame_system::Config<AccountId = AccountId32, Hash = H256> {
		/// The overarching hold reason.
		type RuntimeHoldReason: From<HoldReason>;

		/// The currency whose funds are held in banks.
		type Currency: fungible::Mutate<Self::AccountId, Balance = Balance>
			+ fungible::hold::Mutate<Self::AccountId, Reason = Self::RuntimeHoldReason>;

		/// The shortest lock period, in blocks, that a bank may be opened with.
		#[pallet::constant]
		type MinLockPeriod: Get<BlockNumberFor<Self>>;

		/// The longest lock period, in blocks, that a bank may be opened with.
		#[pallet::constant]
		type MaxLockPeriod: Get<BlockNumberFor<Self>>;

		/// Held from the opener for the storage a bank takes; released when it is removed.
		/// Each bank records what it took, so changing this affects only banks opened later.
		#[pallet::constant]
		type OpenDeposit: Get<Balance>;

		/// How many lock ends one block releases by itself; a lock end that finds its block
		/// full takes the next block with room.
		#[pallet::constant]
		type MaxReleasesPerBlock: Get<u32>;

		/// Weights of this pallet's calls.
		type WeightInfo: WeightInfo;
	}

	/// Why this pallet holds funds.
	#[pallet::composite_enum]
	pub enum HoldReason {
		/// A client's funds locked in a bank.
		ChannelDeposit,
		/// The opener's deposit for the storage a bank takes.
		BankStorage,
	}

	/// Every bank not yet closed, by id.
	#[pallet::storage]
	pub type Channels<T: Config> = StorageMap<_, Twox64Concat, ChannelId, ChannelOf<T>>;

	/// The id the next bank opened will get.
	#[pallet::storage]
	pub type NextChannelId<T> = StorageValue<_, ChannelId, ValueQuery>;

	/// The release schedule: the liquidated banks whose lock ends in each block, released by
	/// that block's `on_initialize`.
	#[pallet::storage]
	pub type Releases<T: Config> = StorageMap<
		_,
		Twox64Concat,
		BlockNumberFor<T>,
		BoundedVec<ChannelId, T::MaxReleasesPerBlock>,
		ValueQuery,
	>;

	/// The banks of each account, so a wallet can list them.
	#[pallet::storage]
	pub type ChannelsOf<T: Config> =
		StorageDoubleMap<_, Blake2_128Concat, T::AccountId, Twox64Concat, ChannelId, ()>;

	#[pallet::event]
	#[pallet::generate_deposit(pub(super) fn deposit_event)]
	pub enum Event<T: Config> {
		/// A bank was opened by `clients[0]` with `clients[1]`, who will bring `amounts`.
		Opened {
			channel: ChannelId,
			clients: [T::AccountId; 2],
			amounts: Balances,
			lock_period: BlockNumberFor<T>,
		},
		/// A client locked its agreed amount in the bank.
		Deposited { channel: ChannelId, who: T::AccountId, amount: Balance },
		/// Both clients have deposited: the bank is running.
		Running { channel: ChannelId },
		/// `master` liquidated the bank with sheet `nonce`: the peer has been paid, and the
		/// master's share is frozen until `unlock_at`; the chain releases it by itself in
		/// block `release_at` (`unlock_at`, or later when that block's schedule was full).
		Liquidated {
			channel: ChannelId,
			master: T::AccountId,
			nonce: Nonce,
			balances: Balances,
			unlock_at: BlockNumberFor<T>,
			release_at: BlockNumberFor<T>,
		},
		/// The lock ended and the master's frozen share was released to it (`who`), by the
		/// release schedule or by `withdraw_by_master`; the bank is removed.
		WithdrawnByMaster { channel: ChannelId, who: T::AccountId, amount: Balance },
		/// Sheet `nonce` was proven revoked: the master's frozen share went to the peer `who`;
		/// the bank is removed.
		WithdrawnByPeer { channel: ChannelId, who: T::AccountId, amount: Balance, nonce: Nonce },
		/// A bank still funding was cancelled and its deposits released; it is removed.
		Cancelled { channel: ChannelId },
		/// Both clients closed the bank with `balances`, paid at once; it is removed.
		Closed { channel: ChannelId, balances: Balances },
		/// `who`'s share, `amount`, was below the existential deposit of an account that does
		/// not exist, so it stayed with the other client (see the pallet's "Dust" section).
		Trimmed { channel: ChannelId, who: T::AccountId, amount: Balance },
	}

	#[pallet::error]
	pub enum Error<T> {
		/// No bank has this id (never opened, or already closed).
		UnknownChannel,
		/// The caller is not one of the bank's two clients.
		NotAClient,
		/// The bank is not in the state this call needs.
		WrongState,
		/// This client has already deposited into the bank.
		AlreadyDeposited,
		/// A signature does not verify against the expected signer and payload.
		BadSignature,
		/// The balances do not add up to what the bank holds.
		BalanceMismatch,
		/// The lock has not ended yet: the master may withdraw only from `unlock_at`.
		StillLocked,
		/// The lock has ended: the sheet can no longer be disputed.
		LockExpired,
		/// The lock period is outside `[MinLockPeriod, MaxLockPeriod]`.
		LockPeriodOutOfRange,
		/// A bank needs two different clients.
		OpenWithSelf,
		/// Both amounts are zero: there would be nothing to pay with.
		NothingToLock,
		/// The amounts add up to more than a balance can hold.
		AmountOverflow,
		/// `now + lock_period` is past the largest block number.
		UnlockOverflow,
		/// Every bank id has been used.
		NoChannelIdLeft,
		/// The release schedule has no room in the [`RELEASE_SEARCH`] blocks from the lock's
		/// end: try again in a later block.
		ReleaseScheduleFull,
	}

	#[pallet::hooks]
	impl<T: Config> Hooks<BlockNumberFor<T>> for Pallet<T> {
		/// End the locks that end in block `n`: release each master's share, remove the bank,
		/// release its storage deposit.
		fn on_initialize(n: BlockNumberFor<T>) -> Weight {
			let due = Releases::<T>::take(n);
			for &channel in &due {
				Self::release(channel, n);
			}
			T::WeightInfo::on_initialize(due.len() as u32)
		}

		fn integrity_test() {
			assert!(
				T::MinLockPeriod::get() <= T::MaxLockPeriod::get(),
				"MinLockPeriod must not exceed MaxLockPeriod"
			);
			assert!(
				!T::MinLockPeriod::get().is_zero(),
				"MinLockPeriod must be at least one block, or a stale sheet could not be disputed"
			);
			assert!(
				!T::OpenDeposit::get().is_zero(),
				"OpenDeposit must not be zero, or bank storage would be free to fill"
			);
			assert!(
				T::MaxReleasesPerBlock::get() > 0,
				"MaxReleasesPerBlock must not be zero, or no liquidation could be scheduled"
			);
			let mut meter =
				WeightMeter::with_limit(<T as frame_system::Config>::BlockWeights::get().max_block);
			assert!(
				meter
					.try_consume(T::WeightInfo::on_initialize(T::MaxReleasesPerBlock::get()))
					.is_ok(),
				"a full block of releases must fit in a block"
			);
		}

		#[cfg(feature = "try-runtime")]
		fn try_state(_n: BlockNumberFor<T>) -> Result<(), sp_runtime::TryRuntimeError> {
			Self::do_try_state()
		}
	}

	#[pallet::call(weight(<T as Config>::WeightInfo))]
	impl<T: Config> Pallet<T> {
		/// Open a bank with `peer`: the caller becomes client 0 and will bring `my_amount`,
		/// `peer` client 1 bringing `peer_amount`. The bank starts in `Funding`; a side
		/// bringing zero counts as deposited. Holds `OpenDeposit` from the caller until the
		/// bank is removed.
		///
		/// Anybody may call. Emits [`Event::Opened`].
		///
		/// ## Errors
		/// - [`Error::OpenWithSelf`]: `peer` is the caller.
		/// - [`Error::NothingToLock`]: both amounts are zero.
		/// - [`Error::AmountOverflow`]: the amounts add up past the largest balance.
		/// - [`Error::LockPeriodOutOfRange`]: `lock_period` is outside the configured range.
		/// - [`Error::NoChannelIdLeft`]: the id counter is exhausted.
		/// - a token error when the caller can't afford `OpenDeposit`.
		#[pallet::call_index(0)]
		pub fn open(
			origin: OriginFor<T>,
			peer: T::AccountId,
			my_amount: Balance,
			peer_amount: Balance,
			lock_period: BlockNumberFor<T>,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			ensure!(peer != who, Error::<T>::OpenWithSelf);
			ensure!(my_amount > 0 || peer_amount > 0, Error::<T>::NothingToLock);
			ensure!(my_amount.checked_add(peer_amount).is_some(), Error::<T>::AmountOverflow);
			ensure!(
				(T::MinLockPeriod::get()..=T::MaxLockPeriod::get()).contains(&lock_period),
				Error::<T>::LockPeriodOutOfRange
			);
			Self::do_open(who, peer, [my_amount, peer_amount], lock_period)
		}

		/// Lock the caller's agreed amount in a bank that is `Funding`. Once both clients have
		/// deposited, the bank is `Running`.
		///
		/// Only a client of the bank may call. Emits [`Event::Deposited`], and
		/// [`Event::Running`] with the second deposit.
		///
		/// ## Errors
		/// - [`Error::UnknownChannel`], [`Error::NotAClient`].
		/// - [`Error::WrongState`]: the bank is not `Funding`.
		/// - [`Error::AlreadyDeposited`]: the caller has deposited already, or brings zero.
		/// - `TokenError::FundsUnavailable` when the caller can't spend its amount: frozen funds
		///   (vesting, a vote) and the existential deposit don't count.
		#[pallet::call_index(1)]
		pub fn deposit(origin: OriginFor<T>, channel: ChannelId) -> DispatchResult {
			let who = ensure_signed(origin)?;
			let (bank, me) = Self::client_bank(channel, &who)?;
			ensure!(bank.state == ChannelState::Funding, Error::<T>::WrongState);
			ensure!(!bank.deposited[me], Error::<T>::AlreadyDeposited);
			Self::do_deposit(channel, bank, me)
		}

		/// Liquidate a `Running` bank with a balance sheet signed by the other client. The
		/// caller becomes the master: the peer's share is paid at once, the caller's stays
		/// held until `now + lock_period`, during which the sheet can be disputed with
		/// [`Pallet::withdraw_by_peer`].
		///
		/// Only a client of the bank may call. Emits [`Event::Liquidated`].
		///
		/// ## Errors
		/// - [`Error::UnknownChannel`], [`Error::NotAClient`].
		/// - [`Error::WrongState`]: the bank is not `Running`.
		/// - [`Error::BalanceMismatch`]: `balances` do not add up to the bank's total.
		/// - [`Error::BadSignature`]: `peer_signature` is not the peer's over the sheet payload.
		/// - [`Error::UnlockOverflow`]: `now + lock_period` is past the largest block number.
		#[pallet::call_index(2)]
		pub fn liquidate(
			origin: OriginFor<T>,
			channel: ChannelId,
			nonce: Nonce,
			balances: Balances,
			waiver: T::AccountId,
			peer_signature: MultiSignature,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			let (bank, master) = Self::client_bank(channel, &who)?;
			ensure!(bank.state == ChannelState::Running, Error::<T>::WrongState);
			ensure!(balances_match(&bank.balances, &balances), Error::<T>::BalanceMismatch);
			let payload = sheet_payload(&Self::genesis_hash(), channel, nonce, &balances, &waiver);
			ensure!(
				verify_signature(&peer_signature, &payload, &bank.clients[1 - master]),
				Error::<T>::BadSignature
			);
			let sheet = BalanceSheet { channel, nonce, balances, waiver };
			Self::do_liquidate(bank, master, sheet)
		}

		/// Release the master's frozen share to the master once the lock is over, before the
		/// release schedule reaches the bank (the chain does it by itself in block
		/// `release_at`, which is later than `unlock_at` only when that block was full); the
		/// bank is removed.
		///
		/// Anybody may call, at or after `unlock_at`; the funds only ever go to the master.
		/// Emits [`Event::WithdrawnByMaster`].
		///
		/// ## Errors
		/// - [`Error::UnknownChannel`].
		/// - [`Error::WrongState`]: the bank is not `Liquidating`.
		/// - [`Error::StillLocked`]: the lock has not ended.
		#[pallet::call_index(3)]
		pub fn withdraw_by_master(origin: OriginFor<T>, channel: ChannelId) -> DispatchResult {
			ensure_signed(origin)?;
			let bank = Channels::<T>::get(channel).ok_or(Error::<T>::UnknownChannel)?;
			let liquidation = bank.liquidation.as_ref().ok_or(Error::<T>::WrongState)?;
			ensure!(Self::now() >= liquidation.unlock_at, Error::<T>::StillLocked);
			Self::unschedule(channel, liquidation.release_at);
			Self::do_withdraw_by_master(channel, bank)
		}

		/// Prove that the sheet a bank was liquidated with had been revoked, by a signature of
		/// its waiver key over the waiver payload of that sheet's nonce: the master's frozen
		/// share goes to the peer, and the bank is removed.
		///
		/// Anybody may call (a watchtower needs no custody); the funds only ever go to the
		/// peer. The proof authorizes the call by itself: sent as a *general* transaction
		/// (`frame_system::AuthorizeCall`, no signer), it pays no fee, so a watcher holding a
		/// revealed waiver secret but no money can punish; the pool keeps one penalty per
		/// bank, and refuses a bad proof before any block. A signed transaction works too.
		/// Emits [`Event::WithdrawnByPeer`].
		///
		/// ## Errors
		/// - [`Error::UnknownChannel`].
		/// - [`Error::WrongState`]: the bank is not `Liquidating`.
		/// - [`Error::LockExpired`]: the lock has ended.
		/// - [`Error::BadSignature`]: not the waiver key's signature over the waiver payload.
		#[pallet::call_index(4)]
		#[pallet::authorize(Self::authorize_withdraw_by_peer)]
		pub fn withdraw_by_peer(
			origin: OriginFor<T>,
			channel: ChannelId,
			waiver_signature: MultiSignature,
		) -> DispatchResult {
			if frame_system::ensure_authorized(origin.clone()).is_err() {
				ensure_signed(origin)?;
			}
			let bank = Self::proven_revoked(channel, &waiver_signature)?;
			Self::do_withdraw_by_peer(channel, bank)
		}

		/// Cancel a bank that is still `Funding`: whatever was deposited is released, and the
		/// bank is removed. This is how a client gets its funds back when the other never
		/// deposits.
		///
		/// Only a client of the bank may call. Emits [`Event::Cancelled`].
		///
		/// ## Errors
		/// - [`Error::UnknownChannel`], [`Error::NotAClient`].
		/// - [`Error::WrongState`]: the bank is not `Funding`.
		#[pallet::call_index(5)]
		pub fn cancel(origin: OriginFor<T>, channel: ChannelId) -> DispatchResult {
			let who = ensure_signed(origin)?;
			let (bank, _) = Self::client_bank(channel, &who)?;
			ensure!(bank.state == ChannelState::Funding, Error::<T>::WrongState);
			Self::do_cancel(channel, bank)
		}

		/// Close a `Running` bank cooperatively with `balances`, signed by both clients over
		/// the close payload: everybody is paid at once, with no lock; the bank is removed.
		///
		/// Only a client of the bank may call. Emits [`Event::Closed`].
		///
		/// ## Errors
		/// - [`Error::UnknownChannel`], [`Error::NotAClient`].
		/// - [`Error::WrongState`]: the bank is not `Running`.
		/// - [`Error::BalanceMismatch`]: `balances` do not add up to the bank's total.
		/// - [`Error::BadSignature`]: `signatures[i]` is not client `i`'s over the payload.
		#[pallet::call_index(6)]
		pub fn close(
			origin: OriginFor<T>,
			channel: ChannelId,
			nonce: Nonce,
			balances: Balances,
			signatures: [MultiSignature; 2],
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			let (bank, _) = Self::client_bank(channel, &who)?;
			ensure!(bank.state == ChannelState::Running, Error::<T>::WrongState);
			ensure!(balances_match(&bank.balances, &balances), Error::<T>::BalanceMismatch);
			let payload = close_payload(&Self::genesis_hash(), channel, nonce, &balances);
			ensure!(
				signatures
					.iter()
					.zip(&bank.clients)
					.all(|(signature, client)| verify_signature(signature, &payload, client)),
				Error::<T>::BadSignature
			);
			Self::do_close(channel, bank, balances)
		}
	}

	/// Whether `proposed` shares out exactly the total of `current`.
	fn balances_match(current: &Balances, proposed: &Balances) -> bool {
		let total = current[0].checked_add(current[1]);
		total.is_some() && proposed[0].checked_add(proposed[1]) == total
	}

	impl<T: Config> Pallet<T> {
		/// The validity of a penalty sent as a general transaction: valid exactly when the
		/// call would succeed now, until the lock ends, one per bank in the pool.
		fn authorize_withdraw_by_peer(
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
			let blocks_left: TransactionLongevity = unlock_at
				.saturating_sub(Self::now())
				.try_into()
				.unwrap_or(TransactionLongevity::MAX);
			let validity = ValidTransaction::with_tag_prefix("VirtualBankPenalty")
				.and_provides(channel)
				.priority(PENALTY_PRIORITY)
				.longevity(blocks_left.max(1))
				.propagate(true)
				.build()?;
			Ok((validity, Weight::zero()))
		}

		/// The liquidating bank `channel`, if `waiver_signature` proves the sheet it was
		/// liquidated with revoked and the lock has not ended.
		fn proven_revoked(
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

		/// What `bank` holds for each client under `ChannelDeposit`.
		pub fn owed(bank: &ChannelOf<T>) -> Balances {
			match (&bank.state, &bank.liquidation) {
				(ChannelState::Funding, _) => {
					[0, 1].map(|i| if bank.deposited[i] { bank.balances[i] } else { 0 })
				},
				(ChannelState::Running, _) => bank.balances,
				(ChannelState::Liquidating, Some(l)) => {
					let mut owed = [0; 2];
					let master = usize::from(l.master).min(1);
					owed[master] = bank.balances[master];
					owed
				},
				(ChannelState::Liquidating, None) => [0; 2],
			}
		}

		/// The bank `channel`, as the runtime API shows it.
		pub fn channel(channel: ChannelId) -> Option<ChannelOf<T>> {
			Channels::<T>::get(channel)
		}

		/// The ids of every bank `who` is a client of, in ascending order of their hashes.
		pub fn channels_of(who: &T::AccountId) -> alloc::vec::Vec<ChannelId> {
			ChannelsOf::<T>::iter_key_prefix(who).collect()
		}
	}
}
