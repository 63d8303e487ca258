//! Why a bank refused a message or a request, and what the caller should do about it.

use crate::secrets::SecretError;
use vbank_primitives::{Balance, ChannelId, Nonce};

/// What the caller should do about an [`Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
	/// Nothing happened and nothing needs to: a duplicate or stale message, or one that is not
	/// the peer's.
	Ignore,
	/// The request or message is invalid: refuse it; the bank is unchanged and still usable.
	Refuse,
	/// Try again once the payment in flight is final.
	Retry,
}

/// Why a message or a request was refused. The bank is left as it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
	/// The message belongs to another bank.
	WrongChannel { expected: ChannelId, got: ChannelId },
	/// The message is not signed by the bank's other client: a stranger's, or forged.
	NotFromPeer,
	/// The message does not fit the bank's phase (e.g. a payment before the handshake).
	UnexpectedMessage { phase: &'static str, message: &'static str },
	/// A message for a nonce this bank has already passed: a duplicate or a replay.
	Stale { nonce: Nonce },
	/// A message for a nonce this bank has not reached.
	UnexpectedNonce { expected: Nonce, got: Nonce },
	/// A payment is already in flight on this bank.
	Busy,
	/// The signature is not the peer's over the expected sheet.
	BadSignature,
	/// The balances do not add up to the bank's total.
	BalanceMismatch,
	/// The proposed sheet does not pay this party a positive amount out of the peer's share.
	NotAPayment,
	/// The revealed secret does not open the waiver key the peer announced.
	WrongSecret { nonce: Nonce },
	/// A waiver key the peer announces contradicts one it announced before.
	WaiverMismatch { nonce: Nonce },
	/// The revealed secret is inconsistent with those revealed before.
	Secret(SecretError),
	/// The amount is zero.
	ZeroAmount,
	/// The amount exceeds this party's share.
	InsufficientFunds { available: Balance, requested: Balance },
	/// The peer showed us that our store is older than what we signed: we sign nothing but a
	/// close at its newest sheet, and never liquidate with ours (`docs/recovery.md`).
	Behind,
	/// A payment, HTLC or withdrawal would leave its payer's share below the bank's reserve.
	BelowReserve { left: Balance, reserve: Balance },
	/// The handshake's terms do not name this party, or name it twice.
	BadTerms,
	/// All 2^48 nonces of this bank are used: close it.
	NoncesExhausted,
	/// The bank is being closed cooperatively: no more payments.
	Closing,
	/// The close proposed does not match the newest sheet we hold.
	CloseMismatch,
	/// We already signed another sheet of the peer's at this nonce: signing a second one would
	/// let the peer liquidate with whichever suits it.
	AlreadySigned { nonce: Nonce },
	/// The bank is liquidated on chain: no more payments or closes.
	Liquidated,
	/// An HTLC update this party may not make or accept, and why.
	BadHtlc(&'static str),
	/// HTLCs are pending on the newest sheet: settle or fail them before closing.
	HtlcsPending,
	/// A splice this party may not make or accept, and why.
	BadSplice(&'static str),
	/// The splice of sheet `nonce` is signed and waits for the chain: nothing else is made
	/// on the bank until it is final there.
	SplicePending { nonce: Nonce },
}

impl Error {
	/// What the caller should do.
	pub fn action(&self) -> Action {
		match self {
			Self::Stale { .. } | Self::NotFromPeer => Action::Ignore,
			Self::Busy | Self::SplicePending { .. } => Action::Retry,
			_ => Action::Refuse,
		}
	}
}

impl core::fmt::Display for Error {
	fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
		match self {
			Self::WrongChannel { expected, got } => {
				write!(f, "message for bank {got} delivered to bank {expected}")
			},
			Self::NotFromPeer => {
				write!(f, "the message is not signed by the bank's other client")
			},
			Self::UnexpectedMessage { phase, message } => {
				write!(f, "a {message} message is not expected while the bank is {phase}")
			},
			Self::Stale { nonce } => write!(f, "message for nonce {nonce}, already passed"),
			Self::UnexpectedNonce { expected, got } => {
				write!(f, "message for nonce {got}, expected nonce {expected}")
			},
			Self::Busy => write!(f, "a payment is already in flight on this bank; retry after it"),
			Self::BadSignature => write!(f, "the signature is not the peer's over this sheet"),
			Self::BalanceMismatch => write!(f, "the balances do not add up to the bank's total"),
			Self::NotAPayment => write!(
				f,
				"the proposed sheet does not pay us a positive amount from the peer's share"
			),
			Self::WrongSecret { nonce } => {
				write!(f, "the secret for nonce {nonce} does not open the announced waiver key")
			},
			Self::WaiverMismatch { nonce } => {
				write!(f, "the waiver key for nonce {nonce} contradicts the one announced before")
			},
			Self::Secret(e) => write!(f, "{e}"),
			Self::ZeroAmount => write!(f, "the amount must be positive"),
			Self::InsufficientFunds { available, requested } => {
				write!(f, "cannot pay {requested}: only {available} is ours in this bank")
			},
			Self::BadTerms => write!(f, "the bank's terms do not name us as exactly one client"),
			Self::NoncesExhausted => write!(f, "every nonce of this bank is used; close it"),
			Self::Closing => write!(f, "the bank is being closed: no more payments"),
			Self::CloseMismatch => {
				write!(f, "the close proposed does not match the newest sheet we hold")
			},
			Self::AlreadySigned { nonce } => {
				write!(f, "we already signed another sheet of the peer's at nonce {nonce}")
			},
			Self::Liquidated => write!(f, "the bank is liquidated on chain"),
			Self::BadHtlc(why) => write!(f, "refused HTLC update: {why}"),
			Self::HtlcsPending => {
				write!(f, "HTLCs are pending on the newest sheet: settle or fail them first")
			},
			Self::BadSplice(why) => write!(f, "refused splice: {why}"),
			Self::Behind => f.write_str(
				"this helper's store is older than what it signed for this bank (restored from a \
				 copy?): it waits for the peer's newest sheet to close at, and never liquidates \
				 with its own",
			),
			Self::BelowReserve { left, reserve } => write!(
				f,
				"that would leave its payer {left} in this bank, below the bank's reserve of \
				 {reserve}"
			),
			Self::SplicePending { nonce } => write!(
				f,
				"the splice of sheet {nonce} waits for the chain; retry once it is final there"
			),
		}
	}
}

impl std::error::Error for Error {}
