//! What one party keeps of a bank: its terms, its phase, and once active the ledger of sheets,
//! waiver keys and revealed secrets that every transition reads and writes.

use super::{Error, Htlc, HtlcUpdate};
use crate::{
	keys::waiver_key,
	secrets::{self, RevealedSecrets, Secret},
};
use codec::{Decode, Encode};
use sp_core::H256;
use sp_runtime::{AccountId32, MultiSignature};
use vbank_primitives::{Balances, ChannelId, Nonce};

/// What a bank is between its two clients, as opened on chain.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Terms {
	pub channel: ChannelId,
	pub genesis_hash: H256,
	pub clients: [AccountId32; 2],
	/// The amounts each brings: the balances of sheet 0.
	pub balances: Balances,
	/// How many blocks a liquidator's share stays frozen.
	pub lock_period: u64,
}

/// A sheet this party can liquidate with: its balances, the HTLCs pending on it, and the
/// peer's signature over it.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct SignedSheet {
	pub nonce: Nonce,
	pub balances: Balances,
	pub htlcs: Vec<Htlc>,
	pub signature: MultiSignature,
}

/// The life of a bank, as one party sees it.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub enum Phase {
	/// Opener: sent `Open`, waiting for the peer's keys and its signature on our sheet 0.
	AwaitingOpenAccept,
	/// Peer: the opener's `Open` waits for our operator (outside our policy); nothing signed.
	Offered { peer_waivers: [AccountId32; 2] },
	/// Peer: signed the opener's sheet 0, waiting for its signature on ours.
	AwaitingOpenConfirm { peer_waivers: [AccountId32; 2] },
	/// Both hold a signed sheet: payments flow.
	Active(Box<Ledger>),
}

impl Phase {
	pub(super) fn name(&self) -> &'static str {
		match self {
			Self::AwaitingOpenAccept => "awaiting the peer's answer to Open",
			Self::Offered { .. } => "offered to our operator",
			Self::AwaitingOpenConfirm { .. } => "awaiting the opener's confirmation",
			Self::Active(_) => "active",
		}
	}
}

/// The payment in flight on an active bank, if any.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub enum InFlight {
	/// We are paying (or, with `update`, changing the HTLCs): we signed the peer's sheet
	/// `nonce` and wait for `Accept`.
	Proposed { nonce: Nonce, balances: Balances, htlcs: Vec<Htlc>, update: Option<HtlcUpdate> },
	/// Our proposal at `nonce` (`update`, if it was one) collided with the peer's, which
	/// stands (SPEC section 4: the proposal of `clients[0]`): we wait for the peer to propose
	/// it again at `nonce + 1`, since each side already signed a sheet of the other's at
	/// `nonce`.
	Yielded { nonce: Nonce, update: Option<HtlcUpdate> },
	/// We are paid (or the peer's `update` is applied): we hold sheet `nonce`, revealed our
	/// older secrets, and wait for the peer's `Revoke` of its older sheets. Not final until
	/// then.
	Accepted { nonce: Nonce, update: Option<HtlcUpdate> },
	/// A splice of the bank (`docs/splice.md`), ours or the peer's, until the chain holds it.
	/// Kept last, so that stores written before splices decode as they are.
	Splicing(Box<Splicing>),
}

/// A splice in flight: client `i` adds `amounts_in[i]` and takes `amounts_out[i]` at sheet
/// `nonce`, whose shares are `balances` (the HTLCs stay). Our newest sheet stays the one we
/// liquidate with until the chain shows the splice final; then `sheet` takes its place.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Splicing {
	pub nonce: Nonce,
	pub amounts_in: Balances,
	pub amounts_out: Balances,
	pub balances: Balances,
	/// Whether we proposed it.
	pub by_us: bool,
	/// Our sheet at `nonce`, once the peer signed it.
	pub sheet: Option<SignedSheet>,
	/// The clients' signatures over the splice payload, by client index.
	pub signatures: [Option<MultiSignature>; 2],
}

impl Splicing {
	/// Both signatures over the splice payload, once both are there: the pallet's `splice`
	/// may go.
	pub fn signatures(&self) -> Option<[MultiSignature; 2]> {
		Some([self.signatures[0].clone()?, self.signatures[1].clone()?])
	}
}

/// The state of an active bank.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Ledger {
	/// Our newest sheet, signed by the peer; we have revealed the secrets of every older one
	/// once nothing is in flight.
	pub sheet: SignedSheet,
	/// The newest of the peer's sheets that we signed: we never sign another at this nonce.
	pub peer_nonce: Nonce,
	pub peer_balances: Balances,
	pub peer_htlcs: Vec<Htlc>,
	/// The waiver keys the peer announced, from its oldest sheet not yet revoked on.
	pub peer_waivers: Vec<AccountId32>,
	/// Every waiver secret the peer revealed: its revoked sheets.
	pub peer_secrets: RevealedSecrets,
	pub in_flight: Option<InFlight>,
	/// The cooperative close under way: once set, no payment is made or accepted.
	pub closing: Option<Closing>,
	/// Set once the chain shows the bank liquidated: no more payments or closes.
	pub liquidated: Option<OnChainLiquidation>,
	/// How many of our payments became final, and how many of our proposals gave way to
	/// the peer's: a payer waiting on its payment counts on these, whichever task moved it.
	pub paid: u64,
	pub yielded: u64,
	/// How many of our HTLC updates became final, counted as `paid` is.
	pub updated: u64,
	/// Set, with the nonce of our newest sheet, once we have decided to liquidate with it and
	/// before the call leaves for the chain: from then on we sign and reveal nothing more, so
	/// that no message of the peer's can make us revoke the sheet on its way there. Kept last:
	/// a store written before it decodes with it unset ([`super::Bank::from_stored`]).
	pub liquidating: Option<Nonce>,
}

/// A liquidation of the bank seen on chain.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct OnChainLiquidation {
	/// The client who liquidated.
	pub master: u8,
	/// The sheet it liquidated with.
	pub nonce: Nonce,
	/// The block from which the master may withdraw; the penalty is possible before it.
	pub unlock_at: u64,
	/// The block whose initialisation releases the master's share by itself.
	pub release_at: u64,
}

/// A cooperative close of the newest sheet: both clients' signatures on its close payload.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Closing {
	pub nonce: Nonce,
	pub balances: Balances,
	/// By client index; complete when both are there.
	pub signatures: [Option<MultiSignature>; 2],
}

impl Closing {
	/// Both signatures, once the peer has given its own.
	pub fn signatures(&self) -> Option<[MultiSignature; 2]> {
		Some([self.signatures[0].clone()?, self.signatures[1].clone()?])
	}
}

/// The sheet a liquidation goes on chain with: its shares and HTLCs, the waiver key it names
/// and the peer's signature (the chain's record of a liquidation under way is
/// [`OnChainLiquidation`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiquidationSheet {
	pub channel: ChannelId,
	pub nonce: Nonce,
	pub balances: Balances,
	/// The HTLCs pending on the sheet: with any, the chain's `liquidate_with_htlcs`.
	pub htlcs: Vec<Htlc>,
	pub waiver: AccountId32,
	pub peer_signature: MultiSignature,
}

impl Ledger {
	pub(super) fn new(sheet: SignedSheet, peer_waivers: Vec<AccountId32>) -> Self {
		Self {
			peer_nonce: 0,
			peer_balances: sheet.balances,
			peer_htlcs: sheet.htlcs.clone(),
			sheet,
			peer_waivers,
			peer_secrets: RevealedSecrets::default(),
			in_flight: None,
			closing: None,
			liquidated: None,
			paid: 0,
			yielded: 0,
			updated: 0,
			liquidating: None,
		}
	}

	/// Whether the bank is liquidated on chain, or our liquidation is on its way there: either
	/// way nothing more is signed or revealed.
	pub fn is_going_on_chain(&self) -> bool {
		self.liquidated.is_some() || self.liquidating.is_some()
	}

	/// Whether no payment has been made yet.
	pub(super) fn is_fresh(&self) -> bool {
		self.sheet.nonce == 0 && self.peer_nonce == 0 && self.in_flight.is_none()
	}

	/// Every sheet of the peer's below this nonce is revoked.
	pub fn peer_revoked(&self) -> Nonce {
		self.peer_secrets.revoked_count()
	}

	/// The waiver key the peer announced for its sheet `nonce`, if it is not yet revoked.
	pub(super) fn peer_waiver(&self, nonce: Nonce) -> Option<&AccountId32> {
		let offset = nonce.checked_sub(self.peer_revoked())?;
		self.peer_waivers.get(usize::try_from(offset).ok()?)
	}

	/// Record the peer's waiver key for its sheet `nonce`: it must agree with what the peer
	/// announced before, and follow on from it.
	pub(super) fn learn_peer_waiver(
		&mut self,
		nonce: Nonce,
		waiver: &AccountId32,
	) -> Result<(), Error> {
		let offset = nonce.checked_sub(self.peer_revoked()).ok_or(Error::Stale { nonce })?;
		match usize::try_from(offset) {
			Ok(offset) if offset < self.peer_waivers.len() => {
				if self.peer_waivers[offset] != *waiver {
					return Err(Error::WaiverMismatch { nonce });
				}
			},
			Ok(offset) if offset == self.peer_waivers.len() => {
				self.peer_waivers.push(waiver.clone())
			},
			_ => return Err(Error::UnexpectedNonce { expected: self.peer_revoked(), got: nonce }),
		}
		Ok(())
	}

	/// Take the peer's waiver secrets of the sheets up to `end`, oldest first: each new one
	/// must open the key the peer announced for its sheet, each known one must be the one
	/// stored. Leaves the ledger unchanged when it refuses.
	pub(super) fn take_peer_secrets(
		&mut self,
		end: Nonce,
		secrets: &[Secret],
	) -> Result<(), Error> {
		let count = secrets.len() as u64;
		let first = (end + 1)
			.checked_sub(count)
			.ok_or(Error::UnexpectedNonce { expected: self.peer_revoked(), got: end })?;
		let mut next = self.clone();
		for (nonce, secret) in (first..=end).zip(secrets) {
			let index = secrets::index_of(nonce).ok_or(Error::NoncesExhausted)?;
			let revoked = next.peer_revoked();
			if nonce < revoked {
				if next.peer_secrets.get(index) != Some(*secret) {
					return Err(Error::WrongSecret { nonce });
				}
				continue;
			}
			if nonce > revoked {
				return Err(Error::UnexpectedNonce { expected: revoked, got: nonce });
			}
			if next.peer_waivers.first() != Some(&waiver_key(secret)) {
				return Err(Error::WrongSecret { nonce });
			}
			next.peer_secrets.insert(index, *secret).map_err(Error::Secret)?;
			next.peer_waivers.remove(0);
		}
		*self = next;
		Ok(())
	}
}
