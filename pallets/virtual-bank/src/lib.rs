#![doc = include_str!("../README.md")]
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub use pallet::*;
pub use weights::WeightInfo;

#[cfg(feature = "runtime-benchmarks")]
mod benchmarking;
mod funds;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
mod htlc;
#[cfg(any(test, feature = "fuzzing"))]
pub mod mock;
mod schedule;
#[cfg(test)]
mod tests;
#[cfg(any(test, feature = "try-runtime", feature = "fuzzing"))]
mod try_state;
mod views;
pub mod weights;

pub use htlc::HtlcBook;
pub use vbank_primitives::{
	Balance, BalanceSheet, Balances, ChannelId, ChannelState, Htlc, Liquidation, Nonce, Preimage,
};

#[frame_support::pallet]
pub mod pallet {
	use super::*;
	use frame_support::{pallet_prelude::*, traits::fungible, weights::WeightMeter};
	use frame_system::pallet_prelude::*;
	use sp_core::H256;
	use sp_runtime::{
		traits::Zero, transaction_validity::TransactionPriority, AccountId32, MultiSignature,
	};
	use vbank_primitives::{
		close_payload, htlc_sheet_payload, sheet_payload, splice_payload, verify_signature,
	};
	use views::balances_match;

	/// How many blocks from a lock's end `liquidate` looks for room in the release schedule
	/// before it leaves the release to `withdraw_by_master`: `liquidate`'s weight pays for
	/// reading this many full blocks of the schedule, so it is kept small (the runtime's 64
	/// releases a block make 256 lock ends within the search).
	pub const RELEASE_SEARCH: u32 = 4;

	/// The priority of a penalty in the transaction pool: above any ordinary transaction,
	/// since it expires with the lock.
	pub const PENALTY_PRIORITY: TransactionPriority = TransactionPriority::MAX / 2;

	/// The priority of an HTLC's claim or refund sent as a general transaction: right after
	/// the penalties, above any ordinary transaction, since a claim expires with its HTLC.
	pub const HTLC_PRIORITY: TransactionPriority = PENALTY_PRIORITY - 1;

	/// A bank as stored.
	pub type ChannelOf<T> = vbank_primitives::Channel<AccountIdOf<T>, BlockNumberFor<T>>;
	/// An HTLC as this chain's sheets carry it.
	pub type HtlcOf<T> = Htlc<BlockNumberFor<T>>;
	/// The HTLCs of one sheet, as many as the chain takes.
	pub type HtlcsOf<T> = BoundedVec<HtlcOf<T>, <T as Config>::MaxHtlcs>;
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

		/// The most HTLCs a sheet may carry into a liquidation.
		#[pallet::constant]
		type MaxHtlcs: Get<u32>;

		/// For how many blocks the chain remembers a preimage shown by [`Pallet::claim_htlc`]
		/// in [`Preimages`], so that a helper of another bank on the route that missed the
		/// event still finds it there in time to claim its own HTLC.
		#[pallet::constant]
		type PreimageRetention: Get<BlockNumberFor<Self>>;

		/// How many preimages one block forgets; a preimage that finds its block full is
		/// forgotten by the next one with room.
		#[pallet::constant]
		type MaxPreimagesPerBlock: Get<u32>;

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

	/// The HTLCs a liquidated bank holds, from the sheet it was liquidated with, until each
	/// is claimed or refunded.
	#[pallet::storage]
	pub type Htlcs<T: Config> = StorageMap<_, Twox64Concat, ChannelId, HtlcBook<T>>;

	/// The preimages shown by [`Pallet::claim_htlc`], by hashlock, with the block that will
	/// forget them (`PreimageRetention` after they were last shown, or the next block with
	/// room).
	#[pallet::storage]
	pub type Preimages<T: Config> =
		StorageMap<_, Identity, H256, (Preimage, BlockNumberFor<T>), OptionQuery>;

	/// The hashlocks each block forgets from [`Preimages`], in its `on_initialize`.
	#[pallet::storage]
	pub type PreimageExpiries<T: Config> = StorageMap<
		_,
		Twox64Concat,
		BlockNumberFor<T>,
		BoundedVec<H256, T::MaxPreimagesPerBlock>,
		ValueQuery,
	>;

	/// The latest block a preimage's retention was set to end in: a claim's retention ends
	/// `PreimageRetention` from now or here, whichever is later, so that blocks filled by
	/// earlier claims are not searched again and no claim goes without its storage copy.
	#[pallet::storage]
	pub type PreimageTail<T: Config> = StorageValue<_, BlockNumberFor<T>, ValueQuery>;

	/// The nonce of each bank's last splice ([`Pallet::splice`]): no sheet older than it may
	/// liquidate the bank, nor close it, since it shares out what the bank held before.
	#[pallet::storage]
	pub type SplicedAt<T: Config> = StorageMap<_, Twox64Concat, ChannelId, Nonce>;

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
		/// block `release_at` (`unlock_at`, or later when that block's schedule was full; the
		/// largest block number when no block near it had room, and then only
		/// `withdraw_by_master` releases it).
		Liquidated {
			channel: ChannelId,
			master: T::AccountId,
			nonce: Nonce,
			balances: Balances,
			unlock_at: BlockNumberFor<T>,
			release_at: BlockNumberFor<T>,
		},
		/// The lock ended and the master's frozen share was released to it (`who`), by the
		/// release schedule or by `withdraw_by_master`; the bank is removed, unless HTLCs are
		/// still pending in it (then once the last is paid out).
		WithdrawnByMaster { channel: ChannelId, who: T::AccountId, amount: Balance },
		/// Sheet `nonce` was proven revoked: the master's frozen share, and every HTLC of the
		/// bank not yet paid out, went to the peer `who`; the bank is removed.
		WithdrawnByPeer { channel: ChannelId, who: T::AccountId, amount: Balance, nonce: Nonce },
		/// The bank was liquidated with a sheet carrying these HTLCs, numbered from 0 in this
		/// order: each now waits for [`Pallet::claim_htlc`] or [`Pallet::refund_htlc`].
		HtlcsPending { channel: ChannelId, htlcs: HtlcsOf<T> },
		/// HTLC `index` was claimed with `preimage`: its receiver `who` got `amount` (zero
		/// when it was dust, see [`Event::Trimmed`]; frozen with its share when `who` is the
		/// master and the lock has not ended).
		HtlcClaimed {
			channel: ChannelId,
			index: u32,
			hashlock: H256,
			preimage: Preimage,
			who: T::AccountId,
			amount: Balance,
		},
		/// HTLC `index` expired unclaimed and went back to its sender `who`, as
		/// [`Event::HtlcClaimed`] pays its receiver.
		HtlcRefunded {
			channel: ChannelId,
			index: u32,
			hashlock: H256,
			who: T::AccountId,
			amount: Balance,
		},
		/// A bank still funding was cancelled and its deposits released; it is removed.
		Cancelled { channel: ChannelId },
		/// Both clients closed the bank with `balances`, paid at once; it is removed.
		Closed { channel: ChannelId, balances: Balances },
		/// `who`'s share, `amount`, was below the existential deposit of an account that does
		/// not exist, so it stayed with the other client (see the pallet's "Dust" section).
		Trimmed { channel: ChannelId, who: T::AccountId, amount: Balance },
		/// Both clients spliced the running bank at sheet `nonce`: client `i` locked
		/// `amounts_in[i]` more and was paid `amounts_out[i]`; the bank now holds `total`, and
		/// no sheet older than `nonce` can liquidate or close it.
		Spliced {
			channel: ChannelId,
			nonce: Nonce,
			amounts_in: Balances,
			amounts_out: Balances,
			total: Balance,
		},
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
		/// No longer returned: a liquidation the release schedule has no room for is released
		/// by `withdraw_by_master` (its `release_at` is the largest block number). Kept so
		/// that the errors' indexes stay as clients know them.
		ReleaseScheduleFull,
		/// An HTLC of the sheet pays from a client other than 0 or 1, or pays nothing.
		BadHtlc,
		/// The bank holds no pending HTLC at this index (none, or paid out already).
		UnknownHtlc,
		/// The preimage's `blake2_256` is not the HTLC's hashlock.
		WrongPreimage,
		/// The HTLC has expired: it can only be refunded now.
		HtlcExpired,
		/// The HTLC has not expired yet: it can only be claimed until then.
		HtlcNotExpired,
		/// The sheet (or close) is older than the bank's last splice: it shares out what the
		/// bank held before.
		SheetBeforeSplice,
		/// The bank was spliced at this nonce or a later one already.
		StaleSplice,
		/// The splice moves nothing in or out.
		NothingToSplice,
	}

	#[pallet::hooks]
	impl<T: Config> Hooks<BlockNumberFor<T>> for Pallet<T> {
		/// End the locks that end in block `n`: release each master's share, remove the bank,
		/// release its storage deposit.
		/// And forget the preimages whose retention ends in block `n`.
		fn on_initialize(n: BlockNumberFor<T>) -> Weight {
			let due = Releases::<T>::take(n);
			for &channel in &due {
				Self::release(channel, n);
			}
			let forgotten = Self::forget_preimages(n);
			T::WeightInfo::on_initialize(due.len() as u32)
				.saturating_add(T::WeightInfo::forget_preimages(forgotten))
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
			assert!(
				T::MaxPreimagesPerBlock::get() > 0,
				"MaxPreimagesPerBlock must not be zero, or no preimage could be remembered"
			);
			let mut meter =
				WeightMeter::with_limit(<T as frame_system::Config>::BlockWeights::get().max_block);
			assert!(
				meter
					.try_consume(T::WeightInfo::on_initialize(T::MaxReleasesPerBlock::get()))
					.is_ok() && meter
					.try_consume(T::WeightInfo::forget_preimages(T::MaxPreimagesPerBlock::get()))
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
		/// [`Pallet::withdraw_by_peer`]. A sheet with pending HTLCs liquidates with
		/// [`Pallet::liquidate_with_htlcs`].
		///
		/// Only a client of the bank may call. Emits [`Event::Liquidated`].
		///
		/// ## Errors
		/// - [`Error::UnknownChannel`], [`Error::NotAClient`].
		/// - [`Error::WrongState`]: the bank is not `Running`.
		/// - [`Error::BalanceMismatch`]: `balances` do not add up to the bank's total.
		/// - [`Error::SheetBeforeSplice`]: `nonce` is older than the bank's last splice.
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
			ensure!(Self::after_splice(channel, nonce), Error::<T>::SheetBeforeSplice);
			ensure!(balances_match(&bank.balances, &balances), Error::<T>::BalanceMismatch);
			let payload = sheet_payload(&Self::genesis_hash(), channel, nonce, &balances, &waiver);
			ensure!(
				verify_signature(&peer_signature, &payload, &bank.clients[1 - master]),
				Error::<T>::BadSignature
			);
			let sheet = BalanceSheet { channel, nonce, balances, waiver };
			Self::do_liquidate(bank, master, sheet, Default::default())
		}

		/// Release the master's frozen share to the master once the lock is over, before the
		/// release schedule reaches the bank (the chain does it by itself in block
		/// `release_at`, which is later than `unlock_at` only when that block was full); the
		/// bank is removed.
		///
		/// Anybody may call, at or after `unlock_at`; the funds only ever go to the master.
		/// Emits [`Event::WithdrawnByMaster`]. A bank with HTLCs still pending stays, without
		/// the master's share, until the last is paid out.
		///
		/// ## Errors
		/// - [`Error::UnknownChannel`].
		/// - [`Error::WrongState`]: the bank is not `Liquidating`, or its master's share has
		///   been released already (HTLCs are still pending in it).
		/// - [`Error::StillLocked`]: the lock has not ended.
		#[pallet::call_index(3)]
		pub fn withdraw_by_master(origin: OriginFor<T>, channel: ChannelId) -> DispatchResult {
			ensure_signed(origin)?;
			let bank = Channels::<T>::get(channel).ok_or(Error::<T>::UnknownChannel)?;
			let liquidation = bank.liquidation.as_ref().ok_or(Error::<T>::WrongState)?;
			ensure!(Self::now() >= liquidation.unlock_at, Error::<T>::StillLocked);
			ensure!(!Self::master_released(channel), Error::<T>::WrongState);
			Self::unschedule(channel, liquidation.release_at);
			Self::do_withdraw_by_master(channel, bank)
		}

		/// Prove that the sheet a bank was liquidated with had been revoked, by a signature of
		/// its waiver key over the waiver payload of that sheet's nonce: the master's frozen
		/// share, and every HTLC of the bank not yet paid out, go to the peer, and the bank is
		/// removed.
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
		/// - [`Error::SheetBeforeSplice`]: `nonce` is older than the bank's last splice.
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
			ensure!(Self::after_splice(channel, nonce), Error::<T>::SheetBeforeSplice);
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

		/// Liquidate a `Running` bank, as [`Pallet::liquidate`] does, with a sheet that
		/// carries pending HTLCs: `balances` plus the HTLCs' amounts add up to the bank's
		/// total, and `peer_signature` is the peer's over [`htlc_sheet_payload`] (which, with
		/// no HTLC, is the payload `liquidate` checks). The peer's share is paid at once; the
		/// HTLCs stay held, on the master's account, until each is claimed with
		/// [`Pallet::claim_htlc`] or refunded with [`Pallet::refund_htlc`]; a penalty
		/// ([`Pallet::withdraw_by_peer`]) takes those not yet paid out.
		///
		/// Only a client of the bank may call. Emits [`Event::Liquidated`], then
		/// [`Event::HtlcsPending`] when the sheet carries any.
		///
		/// ## Errors
		/// As [`Pallet::liquidate`], and [`Error::BadHtlc`]: an HTLC pays from a client other
		/// than 0 or 1, or pays nothing.
		#[pallet::call_index(7)]
		#[pallet::weight(T::WeightInfo::liquidate_with_htlcs(htlcs.len() as u32))]
		pub fn liquidate_with_htlcs(
			origin: OriginFor<T>,
			channel: ChannelId,
			nonce: Nonce,
			balances: Balances,
			waiver: T::AccountId,
			htlcs: HtlcsOf<T>,
			peer_signature: MultiSignature,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			let (bank, master) = Self::client_bank(channel, &who)?;
			ensure!(bank.state == ChannelState::Running, Error::<T>::WrongState);
			ensure!(Self::after_splice(channel, nonce), Error::<T>::SheetBeforeSplice);
			ensure!(htlcs.iter().all(|h| h.from <= 1 && h.amount > 0), Error::<T>::BadHtlc);
			let pending = htlcs.iter().try_fold(0, |sum: Balance, h| sum.checked_add(h.amount));
			let with_htlcs = pending.and_then(|p| {
				let mut shares = balances;
				shares[master] = shares[master].checked_add(p)?;
				Some(shares)
			});
			ensure!(
				with_htlcs.is_some_and(|shares| balances_match(&bank.balances, &shares)),
				Error::<T>::BalanceMismatch
			);
			let payload = htlc_sheet_payload(
				&Self::genesis_hash(),
				channel,
				nonce,
				&balances,
				&waiver,
				&htlcs,
			);
			ensure!(
				verify_signature(&peer_signature, &payload, &bank.clients[1 - master]),
				Error::<T>::BadSignature
			);
			let sheet = BalanceSheet { channel, nonce, balances, waiver };
			Self::do_liquidate(bank, master, sheet, htlcs)
		}

		/// Pay HTLC `index` of a liquidated bank to its receiver, by showing the `preimage`
		/// of its hashlock before its expiry. The chain remembers the preimage in
		/// [`Preimages`] for `PreimageRetention` blocks. What the peer receives is paid at
		/// once; what the master receives joins its frozen share until the lock ends (a
		/// penalty takes it), and is paid at once after.
		///
		/// Anybody may call (a helper forwarding the preimage, a watchtower); the funds only
		/// ever go to the receiver. The preimage authorizes the call by itself: sent as a
		/// *general* transaction (no signer) it pays no fee and waits behind no account's
		/// nonce, so that every HTLC of a liquidated bank can be claimed in the same block
		/// (C4 of the HTLC review: one signed call per account per block let HTLCs expire
		/// unclaimed); the pool keeps one per HTLC and refuses a wrong preimage before any
		/// block. A signed transaction works too. Emits [`Event::HtlcClaimed`];
		/// [`Event::WithdrawnByMaster`] does not repeat. The bank is removed when this was its
		/// last pending HTLC and the master's share has been released.
		///
		/// ## Errors
		/// - [`Error::UnknownChannel`].
		/// - [`Error::UnknownHtlc`]: no pending HTLC at `index`.
		/// - [`Error::HtlcExpired`]: the chain is at or past the HTLC's expiry.
		/// - [`Error::WrongPreimage`]: `blake2_256(preimage)` is not the hashlock.
		#[pallet::call_index(8)]
		#[pallet::authorize(Self::authorize_claim_htlc)]
		pub fn claim_htlc(
			origin: OriginFor<T>,
			channel: ChannelId,
			index: u32,
			preimage: Preimage,
		) -> DispatchResult {
			if frame_system::ensure_authorized(origin.clone()).is_err() {
				ensure_signed(origin)?;
			}
			let (htlc, who, amount) =
				Self::pay_htlc(channel, index, |htlc| Self::claim_receiver(htlc, &preimage))?;
			Self::remember_preimage(htlc.hashlock, preimage);
			Self::deposit_event(Event::HtlcClaimed {
				channel,
				index,
				hashlock: htlc.hashlock,
				preimage,
				who,
				amount,
			});
			Ok(())
		}

		/// Give HTLC `index` of a liquidated bank back to its sender, once the chain is at or
		/// past its expiry and nobody claimed it; paid as [`Pallet::claim_htlc`] pays.
		///
		/// Anybody may call; the funds only ever go to the sender. The expiry authorizes the
		/// call by itself, as a claim's preimage does (a general transaction, no fee, one per
		/// HTLC in the pool). Emits [`Event::HtlcRefunded`].
		///
		/// ## Errors
		/// - [`Error::UnknownChannel`].
		/// - [`Error::UnknownHtlc`]: no pending HTLC at `index`.
		/// - [`Error::HtlcNotExpired`]: the HTLC can still be claimed.
		#[pallet::call_index(9)]
		#[pallet::authorize(Self::authorize_refund_htlc)]
		pub fn refund_htlc(origin: OriginFor<T>, channel: ChannelId, index: u32) -> DispatchResult {
			if frame_system::ensure_authorized(origin.clone()).is_err() {
				ensure_signed(origin)?;
			}
			let (htlc, who, amount) = Self::pay_htlc(channel, index, Self::refund_receiver)?;
			Self::deposit_event(Event::HtlcRefunded {
				channel,
				index,
				hashlock: htlc.hashlock,
				who,
				amount,
			});
			Ok(())
		}

		/// Change what a `Running` bank holds while it keeps running (a splice, after
		/// Sprites): client `i` locks `amounts_in[i]` more and is paid `amounts_out[i]` out of
		/// the bank, both clients having signed [`splice_payload`]; from now on no sheet older
		/// than `nonce` can liquidate the bank or close it. The clients agree off chain on
		/// their sheets at `nonce`, with the new total, before they sign
		/// (`docs/splice.md`); the bank's HTLCs stay as they are on those sheets.
		///
		/// Only a client of the bank may call. Emits [`Event::Spliced`].
		///
		/// ## Errors
		/// - [`Error::UnknownChannel`], [`Error::NotAClient`].
		/// - [`Error::WrongState`]: the bank is not `Running`.
		/// - [`Error::NothingToSplice`]: every amount is zero.
		/// - [`Error::StaleSplice`]: the bank was spliced at `nonce` or later already.
		/// - [`Error::BadSignature`]: `signatures[i]` is not client `i`'s over the payload.
		/// - [`Error::AmountOverflow`]: the new total does not fit a balance.
		/// - [`Error::BalanceMismatch`]: more would be paid out than the bank holds.
		/// - [`Error::NothingToLock`]: the bank would hold nothing.
		/// - `TokenError::FundsUnavailable` when a client can't spend what it adds.
		#[pallet::call_index(10)]
		pub fn splice(
			origin: OriginFor<T>,
			channel: ChannelId,
			nonce: Nonce,
			amounts_in: Balances,
			amounts_out: Balances,
			signatures: [MultiSignature; 2],
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			let (bank, _) = Self::client_bank(channel, &who)?;
			ensure!(bank.state == ChannelState::Running, Error::<T>::WrongState);
			ensure!(
				amounts_in.iter().chain(&amounts_out).any(|amount| *amount > 0),
				Error::<T>::NothingToSplice
			);
			ensure!(
				SplicedAt::<T>::get(channel).is_none_or(|at| nonce > at),
				Error::<T>::StaleSplice
			);
			let payload =
				splice_payload(&Self::genesis_hash(), channel, nonce, &amounts_in, &amounts_out);
			ensure!(
				signatures
					.iter()
					.zip(&bank.clients)
					.all(|(signature, client)| verify_signature(signature, &payload, client)),
				Error::<T>::BadSignature
			);
			Self::do_splice(channel, bank, nonce, amounts_in, amounts_out)
		}
	}
}
