//! The messages helpers exchange, SCALE-encoded on the wire (`rsmc_message` carries them as
//! hex). Every message is signed by its sender's account key over [`message_payload`], so a
//! helper can tell its peer from a stranger before it reads a word. The HTLC updates a
//! message carries ([`HtlcUpdate`], with the [`Hop`]s of a route) are wire types too; what
//! they do to a sheet is the bank's (`bank::htlc`).

use crate::{keys::Signer, secrets::Secret};
use codec::{Decode, Encode};
use sp_core::H256;
use sp_runtime::{AccountId32, MultiSignature};
use vbank_primitives::{
	hashlock, message_payload, verify_signature, Balance, Balances, ChannelId, Nonce, Preimage,
};

/// A protocol message about one bank, signed by its sender.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Message {
	pub channel: ChannelId,
	pub body: Body,
	/// The sender's account signature over [`message_payload`] of `channel` and `body`.
	pub signature: MultiSignature,
}

impl Message {
	/// `body` about bank `channel` on chain `genesis_hash`, signed by `signer`.
	pub fn signed(
		genesis_hash: &H256,
		channel: ChannelId,
		body: Body,
		signer: &dyn Signer,
	) -> Self {
		let signature = signer.sign(&message_payload(genesis_hash, channel, &body.encode()));
		Self { channel, body, signature }
	}

	/// Whether `who` signed this message for chain `genesis_hash`.
	pub fn is_signed_by(&self, genesis_hash: &H256, who: &AccountId32) -> bool {
		let payload = message_payload(genesis_hash, self.channel, &self.body.encode());
		verify_signature(&self.signature, &payload, who)
	}
}

/// What a message says. The comments name the sender.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub enum Body {
	/// Opener: the bank's clients, amounts and lock period, our waiver keys for sheets 0 and 1,
	/// and the reserve we propose: the least a client's share may be left at by its own
	/// payment, HTLC or withdrawal (a share already below it may only grow).
	Open {
		clients: [AccountId32; 2],
		balances: Balances,
		lock_period: u64,
		waivers: [AccountId32; 2],
		reserve: Balance,
	},
	/// Peer: our waiver keys for sheets 0 and 1, and our signature on the opener's sheet 0.
	OpenAccept { waivers: [AccountId32; 2], signature: MultiSignature },
	/// Opener: our signature on the peer's sheet 0.
	OpenConfirm { signature: MultiSignature },
	/// Payer: our signature on the payee's sheet `nonce`, which pays it, and our waiver keys
	/// for sheets `nonce` and `nonce + 1` (the second lets a payment that collided with the
	/// payee's be made again at the next nonce).
	Propose {
		nonce: Nonce,
		balances: Balances,
		signature: MultiSignature,
		waivers: [AccountId32; 2],
	},
	/// Payee: our signature on the payer's sheet `nonce`, our waiver secrets of every sheet
	/// older than `nonce` not yet revealed (oldest first, ending at `nonce - 1`) and our waiver
	/// key for `nonce + 1`.
	Accept {
		nonce: Nonce,
		signature: MultiSignature,
		secrets: Vec<Secret>,
		next_waiver: AccountId32,
	},
	/// Payer: our waiver secrets up to `nonce` (oldest first) and our waiver key for
	/// `nonce + 2`.
	Revoke { nonce: Nonce, secrets: Vec<Secret>, next_waiver: AccountId32 },
	/// Either side, with no payment in flight: our signature on the close payload of the
	/// newest sheet (`nonce`, `balances`); no payment may follow.
	Close { nonce: Nonce, balances: Balances, signature: MultiSignature },
	/// The other side: our signature on the same close payload.
	CloseAccept { nonce: Nonce, signature: MultiSignature },
	/// Peer: the bank is outside our operator's policy and waits for its `rsmc_accept`; our
	/// `OpenAccept` follows then.
	Offered,
	/// Either side: as `Propose`, for the sheet `nonce` that applies `update` to the HTLCs of
	/// the newest sheet (`docs/htlc.md`); answered by `Accept`, then `Revoke`, as a payment.
	Update {
		nonce: Nonce,
		update: HtlcUpdate,
		signature: MultiSignature,
		waivers: [AccountId32; 2],
	},
	/// Either side, with nothing in flight: a splice at sheet `nonce` (`docs/splice.md`), in
	/// which we add `amounts_in[us]` or take `amounts_out[us]` (the peer's entries are zero);
	/// our signature on the peer's sheet `nonce`, which shares out the new total with the
	/// HTLCs as they are, and our waiver keys for sheets `nonce` and `nonce + 1`.
	Splice {
		nonce: Nonce,
		amounts_in: Balances,
		amounts_out: Balances,
		signature: MultiSignature,
		waivers: [AccountId32; 2],
	},
	/// The other side: our signature on the proposer's sheet `nonce`, our signature on the
	/// splice payload, and our waiver key for `nonce + 1`.
	SpliceAccept {
		nonce: Nonce,
		signature: MultiSignature,
		splice_signature: MultiSignature,
		next_waiver: AccountId32,
	},
	/// Proposer: our signature on the splice payload; either side may submit the splice.
	SpliceSigned { nonce: Nonce, splice_signature: MultiSignature },
	/// Either side, after a start (`docs/recovery.md`, after BOLT #2's `channel_reestablish`):
	/// the nonce of our newest sheet and the newest of the receiver's waiver secrets we hold,
	/// with its nonce. With `answer`, the receiver sends its own back.
	Reestablish { nonce: Nonce, your_secret: Option<(Nonce, Secret)>, answer: bool },
	/// To a peer whose `Reestablish` named a sheet it revoked: it is behind. Our newest sheet
	/// (`nonce`, shares, HTLCs, our waiver key of it) with the peer's signature over it, and the
	/// newest secret of the peer's we hold, which proves it behind. With no HTLC pending, the
	/// peer answers with its `Close` at that sheet.
	Newest {
		nonce: Nonce,
		balances: Balances,
		htlcs: Vec<Htlc>,
		waiver: AccountId32,
		signature: MultiSignature,
		your_secret: (Nonce, Secret),
	},
}

impl Body {
	/// The message's name, for errors and logs.
	pub fn name(&self) -> &'static str {
		match self {
			Self::Open { .. } => "Open",
			Self::OpenAccept { .. } => "OpenAccept",
			Self::OpenConfirm { .. } => "OpenConfirm",
			Self::Propose { .. } => "Propose",
			Self::Accept { .. } => "Accept",
			Self::Revoke { .. } => "Revoke",
			Self::Close { .. } => "Close",
			Self::CloseAccept { .. } => "CloseAccept",
			Self::Offered => "Offered",
			Self::Update { .. } => "Update",
			Self::Splice { .. } => "Splice",
			Self::SpliceAccept { .. } => "SpliceAccept",
			Self::SpliceSigned { .. } => "SpliceSigned",
			Self::Reestablish { .. } => "Reestablish",
			Self::Newest { .. } => "Newest",
		}
	}
}

/// An HTLC as the chain's sheets carry it: the runtime counts blocks in `u32`, and the bytes a
/// peer signs must be the chain's.
pub type Htlc = vbank_primitives::Htlc<u32>;

/// A change to the HTLCs pending on a bank's newest sheet, proposed by one client.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub enum HtlcUpdate {
	/// The payer (the HTLC's `from`) locks `amount` of its balance under `hashlock` until
	/// `expiry`.
	Add(Htlc),
	/// The receiver of pending HTLC `index` takes it, showing its preimage.
	Settle { index: u32, preimage: Preimage },
	/// The receiver of pending HTLC `index`, locked under `hashlock`, gives it back to the
	/// payer. The hashlock guards against naming another HTLC than meant.
	Fail { index: u32, hashlock: H256 },
	/// As `Add`, asking the receiver to pass the payment on along `onward`, the route's
	/// remaining hops (at most [`MAX_HOPS`](crate::route::MAX_HOPS)); the receiver locks the first of them only if
	/// [`crate::route::next_hop`] allows it, and fails this HTLC otherwise.
	AddRouted { htlc: Htlc, onward: Vec<Hop> },
}

impl HtlcUpdate {
	/// The hashlock of the HTLC the update is about.
	pub fn hashlock(&self) -> H256 {
		match self {
			Self::Add(htlc) | Self::AddRouted { htlc, .. } => htlc.hashlock,
			Self::Settle { preimage, .. } => hashlock(preimage),
			Self::Fail { hashlock, .. } => *hashlock,
		}
	}

	/// The HTLC the update adds, and the hops it asks the receiver to pass it on along.
	pub fn added(&self) -> Option<(&Htlc, &[Hop])> {
		match self {
			Self::Add(htlc) => Some((htlc, &[])),
			Self::AddRouted { htlc, onward } => Some((htlc, onward)),
			_ => None,
		}
	}
}

/// One bank of a route: lock `amount` on `channel` until block `expiry`.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Hop {
	pub channel: ChannelId,
	pub amount: Balance,
	pub expiry: u32,
}
