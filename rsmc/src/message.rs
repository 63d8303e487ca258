//! The messages helpers exchange, SCALE-encoded on the wire (`rsmc_message` carries them as
//! hex). Every message is signed by its sender's account key over [`message_payload`], so a
//! helper can tell its peer from a stranger before it reads a word.

use crate::{bank::HtlcUpdate, keys::Signer, secrets::Secret};
use codec::{Decode, Encode};
use sp_core::H256;
use sp_runtime::{AccountId32, MultiSignature};
use vbank_primitives::{message_payload, verify_signature, Balances, ChannelId, Nonce};

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
	/// Opener: the bank's clients, amounts and lock period, and our waiver keys for sheets 0
	/// and 1.
	Open {
		clients: [AccountId32; 2],
		balances: Balances,
		lock_period: u64,
		waivers: [AccountId32; 2],
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
		}
	}
}
