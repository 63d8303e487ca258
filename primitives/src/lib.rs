//! The types and signing payloads of a virtual bank (SPEC sections 2 and 3), shared by the
//! pallet, its runtime API and the off-chain RSMC helper so that every party encodes alike.
//!
//! Every byte that anybody signs is built here and nowhere else: [`sheet_payload`] (and
//! [`htlc_sheet_payload`] for a sheet with pending HTLCs), [`waiver_payload`],
//! [`close_payload`] and [`splice_payload`]. [`verify_signature`] is the one check of a
//! signature over such a payload, accepting the raw payload and the `<Bytes>`-wrapped form
//! that browser wallets produce with `signRaw`.

#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

use alloc::vec::Vec;
use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use scale_info::TypeInfo;
use sp_core::H256;
use sp_runtime::{traits::Verify, AccountId32, MultiSignature};

/// Identifies a bank; taken from a counter and never reused.
pub type ChannelId = u64;

/// The position of a balance sheet in a bank's history; sheet `n + 1` supersedes sheet `n`.
pub type Nonce = u64;

/// Amounts of the chain's currency.
pub type Balance = u128;

/// The two clients' shares, indexed as the bank's `clients`.
pub type Balances = [Balance; 2];

/// Tag that starts every liquidation (balance sheet) payload.
pub const SHEET_TAG: [u8; 11] = *b"vbank/sheet";
/// Tag that starts every waiver payload.
pub const WAIVER_TAG: [u8; 12] = *b"vbank/waiver";
/// Tag that starts every cooperative close payload.
pub const CLOSE_TAG: [u8; 11] = *b"vbank/close";
/// Tag that starts what a helper signs to send a protocol message.
pub const MESSAGE_TAG: [u8; 9] = *b"vbank/msg";
/// The tag of a sheet that carries pending HTLCs (SPEC section 6); a sheet with none keeps
/// [`SHEET_TAG`] and its bytes.
pub const HTLC_SHEET_TAG: [u8; 16] = *b"vbank/sheet+htlc";
/// Tag that starts every splice payload (a top-up or a withdrawal of a running bank).
pub const SPLICE_TAG: [u8; 12] = *b"vbank/splice";
/// Tag that starts what a client signs to hand a watchtower the secrets it learned.
pub const TOWER_TAG: [u8; 11] = *b"vbank/tower";

/// What browser wallets put around a message they sign with `signRaw`.
const BYTES_PREFIX: &[u8] = b"<Bytes>";
const BYTES_SUFFIX: &[u8] = b"</Bytes>";

/// A proposal to liquidate a bank: who gets what if it is liquidated at this nonce.
///
/// The party that may liquidate with it holds the *other* party's signature over
/// [`sheet_payload`]; `waiver` is the public key whose secret, once revealed, revokes it.
#[derive(
	Clone, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, TypeInfo, MaxEncodedLen, Debug,
)]
pub struct BalanceSheet<AccountId> {
	pub channel: ChannelId,
	pub nonce: Nonce,
	pub balances: Balances,
	pub waiver: AccountId,
}

/// A hashed time-locked payment pending on a sheet (SPEC section 6): `amount` from client
/// `from` to the other, paid to the receiver who shows the preimage of `hashlock` (its
/// [`hashlock`]) before block `expiry`, and back to `from` after.
#[derive(
	Clone, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, TypeInfo, MaxEncodedLen, Debug,
)]
pub struct Htlc<BlockNumber> {
	pub from: u8,
	pub amount: Balance,
	pub hashlock: H256,
	pub expiry: BlockNumber,
}

/// The secret whose [`hashlock`] locks an HTLC: 32 bytes, as in BOLT #2, so that a claim's
/// size is fixed and no preimage can be made long to burden a block.
pub type Preimage = [u8; 32];

/// The hashlock of `preimage`: its `blake2_256`.
pub fn hashlock(preimage: &[u8]) -> H256 {
	H256(sp_crypto_hashing::blake2_256(preimage))
}

/// Where a bank is in its life. A closed bank is removed from storage.
#[derive(
	Clone,
	Copy,
	PartialEq,
	Eq,
	Encode,
	Decode,
	DecodeWithMemTracking,
	TypeInfo,
	MaxEncodedLen,
	Debug,
)]
pub enum ChannelState {
	/// Opened; waiting for one or both clients to deposit.
	Funding,
	/// Both sides deposited: payments happen off-chain.
	Running,
	/// One client liquidated; the master's share is frozen until `unlock_at`.
	Liquidating,
}

/// A liquidation in progress.
#[derive(
	Clone, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, TypeInfo, MaxEncodedLen, Debug,
)]
pub struct Liquidation<AccountId, BlockNumber> {
	/// Index into `clients` of the client who liquidated (0 or 1).
	pub master: u8,
	/// Nonce of the sheet used.
	pub nonce: Nonce,
	/// The sheet's waiver key: a signature by it over [`waiver_payload`] proves the sheet revoked.
	pub waiver: AccountId,
	pub liquidated_at: BlockNumber,
	/// First block at which the master may withdraw; the peer's claim ends just before it.
	pub unlock_at: BlockNumber,
	/// The block whose initialisation releases the master's share and removes the bank by
	/// itself: `unlock_at`, or the first block after it with room in the release schedule.
	pub release_at: BlockNumber,
}

/// A virtual bank between two clients.
#[derive(
	Clone, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, TypeInfo, MaxEncodedLen, Debug,
)]
pub struct Channel<AccountId, BlockNumber> {
	/// Client 0 opened the bank; client 1 is its peer.
	pub clients: [AccountId; 2],
	/// What each client brings while funding and running; the liquidation sheet's shares
	/// once liquidating.
	pub balances: Balances,
	pub deposited: [bool; 2],
	pub lock_period: BlockNumber,
	pub state: ChannelState,
	pub liquidation: Option<Liquidation<AccountId, BlockNumber>>,
	/// What the opener paid for the bank's storage, held until the bank is removed: recorded
	/// so that exactly this is released, whatever the chain charges by then.
	pub storage_deposit: Balance,
}

impl<AccountId: PartialEq, BlockNumber> Channel<AccountId, BlockNumber> {
	/// The index (0 or 1) of `who` among the clients, if it is one.
	pub fn client_index(&self, who: &AccountId) -> Option<usize> {
		self.clients.iter().position(|c| c == who)
	}

	/// The sum of both shares, or `None` if it does not fit a [`Balance`].
	pub fn total(&self) -> Option<Balance> {
		self.balances[0].checked_add(self.balances[1])
	}
}

/// The bytes a client signs to let its peer liquidate with `balances` at `nonce`.
pub fn sheet_payload(
	genesis_hash: &H256,
	channel: ChannelId,
	nonce: Nonce,
	balances: &Balances,
	waiver: &AccountId32,
) -> Vec<u8> {
	(SHEET_TAG, genesis_hash, channel, nonce, balances, waiver).encode()
}

/// The bytes the peer signs for a sheet with `htlcs` pending. With none they are exactly
/// [`sheet_payload`]'s, so that every signature and client of sheets without HTLCs keeps
/// working; with some, `(HTLC_SHEET_TAG, genesis_hash, channel, nonce, balances, waiver,
/// htlcs)`, the list with its compact length: a different tag, so neither form can be read
/// as the other.
pub fn htlc_sheet_payload<BlockNumber: Encode>(
	genesis_hash: &H256,
	channel: ChannelId,
	nonce: Nonce,
	balances: &Balances,
	waiver: &AccountId32,
	htlcs: &[Htlc<BlockNumber>],
) -> Vec<u8> {
	if htlcs.is_empty() {
		return sheet_payload(genesis_hash, channel, nonce, balances, waiver);
	}
	(HTLC_SHEET_TAG, genesis_hash, channel, nonce, balances, waiver, htlcs).encode()
}

/// The bytes the waiver key of sheet `nonce` signs to prove that sheet revoked.
pub fn waiver_payload(genesis_hash: &H256, channel: ChannelId, nonce: Nonce) -> Vec<u8> {
	(WAIVER_TAG, genesis_hash, channel, nonce).encode()
}

/// The bytes both clients sign to close a bank cooperatively with `balances`.
pub fn close_payload(
	genesis_hash: &H256,
	channel: ChannelId,
	nonce: Nonce,
	balances: &Balances,
) -> Vec<u8> {
	(CLOSE_TAG, genesis_hash, channel, nonce, balances).encode()
}

/// The bytes both clients sign to change what a running bank holds (`docs/splice.md`): client
/// `i` adds `amounts_in[i]` and takes `amounts_out[i]` out, and no sheet older than `nonce` can
/// be liquidated or closed with from then on. `(SPLICE_TAG, genesis_hash, channel, nonce,
/// amounts_in, amounts_out)`.
pub fn splice_payload(
	genesis_hash: &H256,
	channel: ChannelId,
	nonce: Nonce,
	amounts_in: &Balances,
	amounts_out: &Balances,
) -> Vec<u8> {
	(SPLICE_TAG, genesis_hash, channel, nonce, amounts_in, amounts_out).encode()
}

/// What client `client` of bank `channel` signs to hand a watchtower the waiver secrets its
/// peer revealed, as the slots of their compact store (`docs/tower.md`): `(TOWER_TAG,
/// genesis_hash, channel, client, secrets)`, the list with its compact length.
pub fn tower_payload<AccountId: Encode>(
	genesis_hash: &H256,
	channel: ChannelId,
	client: &AccountId,
	secrets: &[(u64, [u8; 32])],
) -> Vec<u8> {
	(TOWER_TAG, genesis_hash, channel, client, secrets).encode()
}

/// What a helper signs to send a protocol message about bank `channel` (SPEC section 4):
/// the tag, the chain, the bank, then `message`, the message's SCALE bytes as they are (no
/// length prefix), so that a message signed for one bank or chain is worthless on another.
pub fn message_payload(genesis_hash: &H256, channel: ChannelId, message: &[u8]) -> Vec<u8> {
	let mut payload = (MESSAGE_TAG, genesis_hash, channel).encode();
	payload.extend_from_slice(message);
	payload
}

/// `payload` wrapped as a browser wallet's `signRaw` wraps it.
pub fn wrap_bytes(payload: &[u8]) -> Vec<u8> {
	let mut wrapped = Vec::with_capacity(BYTES_PREFIX.len() + payload.len() + BYTES_SUFFIX.len());
	wrapped.extend_from_slice(BYTES_PREFIX);
	wrapped.extend_from_slice(payload);
	wrapped.extend_from_slice(BYTES_SUFFIX);
	wrapped
}

/// Whether `signature` is `signer`'s signature over `payload`, raw or `<Bytes>`-wrapped.
///
/// sr25519, ed25519 and ecdsa signatures are all accepted, as [`MultiSignature`] checks them
/// against an [`AccountId32`].
pub fn verify_signature(signature: &MultiSignature, payload: &[u8], signer: &AccountId32) -> bool {
	signature.verify(payload, signer) || signature.verify(&wrap_bytes(payload)[..], signer)
}

sp_api::decl_runtime_apis! {
	/// What a client needs from the chain to sign for a virtual bank (SPEC section 3): the
	/// exact payload bytes, built by this crate, and the banks themselves.
	///
	/// Version 2 adds the HTLCs of SPEC section 6: a sheet's payload with them, and the ones
	/// a liquidated bank still holds. Version 3 adds splices (`docs/splice.md`): their payload,
	/// and the nonce below which a spliced bank's sheets are void. (A method's version is named
	/// only while it is newer than the trait's, so these carry none now.)
	#[api_version(3)]
	pub trait VirtualBankApi<AccountId, BlockNumber> where
		AccountId: codec::Codec,
		BlockNumber: codec::Codec,
	{
		/// The liquidation payload of a sheet of `channel` on this chain.
		fn sheet_payload(channel: ChannelId, nonce: Nonce, balances: Balances, waiver: AccountId32) -> Vec<u8>;
		/// The waiver payload of sheet `nonce` of `channel` on this chain.
		fn waiver_payload(channel: ChannelId, nonce: Nonce) -> Vec<u8>;
		/// The cooperative close payload of `channel` on this chain.
		fn close_payload(channel: ChannelId, nonce: Nonce, balances: Balances) -> Vec<u8>;
		/// The bank `channel`, if it is open.
		fn channel(channel: ChannelId) -> Option<Channel<AccountId, BlockNumber>>;
		/// The ids of the banks `account` is a client of.
		fn channels_of(account: AccountId) -> Vec<ChannelId>;
		/// The payload of a sheet of `channel` with `htlcs` pending on this chain: with none,
		/// exactly [`sheet_payload`]'s.
		fn htlc_sheet_payload(channel: ChannelId, nonce: Nonce, balances: Balances, waiver: AccountId32, htlcs: Vec<Htlc<BlockNumber>>) -> Vec<u8>;
		/// The HTLCs liquidated bank `channel` holds, by their index in its sheet, `None` once
		/// paid out; empty when it holds none.
		fn htlcs(channel: ChannelId) -> Vec<Option<Htlc<BlockNumber>>>;
		/// The splice payload of `channel` on this chain.
		fn splice_payload(channel: ChannelId, nonce: Nonce, amounts_in: Balances, amounts_out: Balances) -> Vec<u8>;
		/// The nonce of bank `channel`'s last splice: sheets and closes older than it are
		/// refused. `None` for a bank never spliced (or not open).
		fn spliced_at(channel: ChannelId) -> Option<Nonce>;
	}
}

#[cfg(test)]
mod tests {
	use super::*;
	use hex_literal::hex;
	use sp_core::{ecdsa, ed25519, sr25519, Pair};
	use sp_runtime::traits::IdentifyAccount;

	const GENESIS: H256 = H256([0x11; 32]);

	fn waiver() -> AccountId32 {
		AccountId32::new([0x22; 32])
	}

	#[test]
	fn sheet_payload_bytes_are_pinned() {
		let payload = sheet_payload(&GENESIS, 7, 3, &[1_000, u128::MAX], &waiver());
		let expected = [
			&b"vbank/sheet"[..],
			&[0x11; 32],
			&hex!("0700000000000000"),
			&hex!("0300000000000000"),
			&hex!("e8030000000000000000000000000000"),
			&hex!("ffffffffffffffffffffffffffffffff"),
			&[0x22; 32],
		]
		.concat();
		assert_eq!(payload, expected);
		assert_eq!(payload.len(), 11 + 32 + 8 + 8 + 32 + 32);
	}

	#[test]
	fn a_sheet_without_htlcs_keeps_its_bytes_and_one_with_htlcs_has_its_own() {
		let balances = [1_000, u128::MAX];
		let none: [Htlc<u32>; 0] = [];
		assert_eq!(
			htlc_sheet_payload(&GENESIS, 7, 3, &balances, &waiver(), &none),
			sheet_payload(&GENESIS, 7, 3, &balances, &waiver())
		);
		let htlc =
			Htlc { from: 1, amount: 5, hashlock: hashlock(b"secret"), expiry: 0x0102_0304u32 };
		let payload =
			htlc_sheet_payload(&GENESIS, 7, 3, &balances, &waiver(), std::slice::from_ref(&htlc));
		// The sheet's own fields (pinned above) after the tag, then the list.
		let sheet = sheet_payload(&GENESIS, 7, 3, &balances, &waiver());
		let expected = [
			&b"vbank/sheet+htlc"[..],
			&sheet[SHEET_TAG.len()..],
			&[0x04], // compact 1: one HTLC
			&[0x01], // from
			&hex!("05000000000000000000000000000000"),
			&sp_crypto_hashing::blake2_256(b"secret"),
			&hex!("04030201"),
		]
		.concat();
		assert_eq!(payload, expected);
		// The list is covered: another HTLC, another payload.
		let other = Htlc { expiry: 0x0102_0305u32, ..htlc };
		assert_ne!(payload, htlc_sheet_payload(&GENESIS, 7, 3, &balances, &waiver(), &[other]));
	}

	#[test]
	fn waiver_payload_bytes_are_pinned() {
		let payload = waiver_payload(&GENESIS, 0x0102, u64::MAX);
		assert_eq!(
			hex::encode(&payload),
			concat!(
				"7662616e6b2f776169766572",
				"1111111111111111111111111111111111111111111111111111111111111111",
				"0201000000000000",
				"ffffffffffffffff",
			)
		);
	}

	#[test]
	fn splice_payload_bytes_are_pinned() {
		let payload = splice_payload(&GENESIS, 1, 4, &[5, 0], &[0, 7]);
		assert_eq!(
			hex::encode(&payload),
			concat!(
				"7662616e6b2f73706c696365",
				"1111111111111111111111111111111111111111111111111111111111111111",
				"0100000000000000",
				"0400000000000000",
				"05000000000000000000000000000000",
				"00000000000000000000000000000000",
				"00000000000000000000000000000000",
				"07000000000000000000000000000000",
			)
		);
		assert_ne!(payload[..SPLICE_TAG.len()], close_payload(&GENESIS, 1, 4, &[5, 0])[..12]);
	}

	#[test]
	fn message_payload_bytes_are_pinned() {
		let payload = message_payload(&GENESIS, 258, &[0xde, 0xad]);
		assert_eq!(
			hex::encode(&payload),
			concat!(
				"7662616e6b2f6d7367",
				"1111111111111111111111111111111111111111111111111111111111111111",
				"0201000000000000",
				"dead",
			)
		);
	}

	#[test]
	fn close_payload_bytes_are_pinned() {
		let payload = close_payload(&GENESIS, 1, 0, &[5, 0]);
		assert_eq!(
			hex::encode(&payload),
			concat!(
				"7662616e6b2f636c6f7365",
				"1111111111111111111111111111111111111111111111111111111111111111",
				"0100000000000000",
				"0000000000000000",
				"05000000000000000000000000000000",
				"00000000000000000000000000000000",
			)
		);
	}

	#[test]
	fn payloads_of_different_kinds_never_coincide() {
		// A waiver signature can't stand in for a sheet signature and vice versa.
		let sheet = sheet_payload(&GENESIS, 1, 1, &[0, 0], &waiver());
		let close = close_payload(&GENESIS, 1, 1, &[0, 0]);
		let waiver = waiver_payload(&GENESIS, 1, 1);
		assert_ne!(sheet[..11], close[..11]);
		assert_ne!(sheet[..11], waiver[..11]);
		assert!(!sheet.starts_with(&close));
	}

	#[test]
	fn every_signature_scheme_verifies_raw_and_wrapped() {
		let payload = waiver_payload(&GENESIS, 9, 9);
		let sr = sr25519::Pair::from_seed(&[1; 32]);
		let ed = ed25519::Pair::from_seed(&[2; 32]);
		let ec = ecdsa::Pair::from_seed(&[3; 32]);
		let cases: [(MultiSignature, MultiSignature, AccountId32); 3] = [
			(sr.sign(&payload).into(), sr.sign(&wrap_bytes(&payload)).into(), sr.public().into()),
			(ed.sign(&payload).into(), ed.sign(&wrap_bytes(&payload)).into(), ed.public().into()),
			(
				ec.sign(&payload).into(),
				ec.sign(&wrap_bytes(&payload)).into(),
				sp_runtime::MultiSigner::from(ec.public()).into_account(),
			),
		];
		for (raw, wrapped, signer) in cases {
			assert!(verify_signature(&raw, &payload, &signer));
			assert!(verify_signature(&wrapped, &payload, &signer));
			assert!(!verify_signature(&raw, &waiver_payload(&GENESIS, 9, 10), &signer));
			assert!(!verify_signature(&raw, &payload, &AccountId32::new([0; 32])));
		}
	}

	#[test]
	fn channel_total_refuses_overflow() {
		let mut channel = Channel::<u8, u32> {
			clients: [1, 2],
			balances: [u128::MAX, 0],
			deposited: [false; 2],
			lock_period: 1,
			state: ChannelState::Funding,
			liquidation: None,
			storage_deposit: 1,
		};
		assert_eq!(channel.total(), Some(u128::MAX));
		channel.balances[1] = 1;
		assert_eq!(channel.total(), None);
		assert_eq!(channel.client_index(&2), Some(1));
		assert_eq!(channel.client_index(&3), None);
	}
}
