//! The messages helpers exchange, SCALE-encoded on the wire (`rsmc_message` carries them as
//! hex).

use crate::secrets::Secret;
use codec::{Decode, Encode};
use sp_runtime::{AccountId32, MultiSignature};
use vbank_primitives::{Balances, ChannelId, Nonce};

/// A protocol message about one bank.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Message {
	pub channel: ChannelId,
	pub body: Body,
}

/// What a message says. The comments name the sender.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub enum Body {
	/// Opener: the bank's clients and amounts, and our waiver keys for sheets 0 and 1.
	Open { clients: [AccountId32; 2], balances: Balances, waivers: [AccountId32; 2] },
	/// Peer: our waiver keys for sheets 0 and 1, and our signature on the opener's sheet 0.
	OpenAccept { waivers: [AccountId32; 2], signature: MultiSignature },
	/// Opener: our signature on the peer's sheet 0.
	OpenConfirm { signature: MultiSignature },
	/// Payer: our signature on the payee's sheet `nonce`, which pays it.
	Propose { nonce: Nonce, balances: Balances, signature: MultiSignature },
	/// Payee: our signature on the payer's sheet `nonce`, our waiver secret for `nonce - 1`
	/// and our waiver key for `nonce + 1`.
	Accept { nonce: Nonce, signature: MultiSignature, secret: Secret, next_waiver: AccountId32 },
	/// Payer: our waiver secret for `nonce` and our waiver key for `nonce + 2`.
	Revoke { nonce: Nonce, secret: Secret, next_waiver: AccountId32 },
	/// Either side, with no payment in flight: our signature on the close payload of the
	/// newest sheet (`nonce`, `balances`); no payment may follow.
	Close { nonce: Nonce, balances: Balances, signature: MultiSignature },
	/// The other side: our signature on the same close payload.
	CloseAccept { nonce: Nonce, signature: MultiSignature },
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
		}
	}
}
