//! What handling a message gives its caller: the reply to send, and the progress it made.

use crate::message::{HtlcUpdate, Message};
use vbank_primitives::Nonce;

/// What handling a message achieved, beyond its reply: what the caller reports or acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
	/// The handshake is done: each side holds a signed sheet 0; deposits may follow.
	Handshake,
	/// The peer holds our `Open` for its operator's `rsmc_accept`.
	Offered,
	/// Our payment is final for us: we hold sheet `nonce` and have revoked the older ones.
	Paid { nonce: Nonce },
	/// The peer's payment is final: it revoked its sheets before `nonce`.
	Received { nonce: Nonce },
	/// Our payment collided with the peer's and gave way to it: propose it again after.
	Yielded,
	/// The peer revealed waiver secrets after the bank was liquidated: judge it again.
	SecretsLearned,
	/// An HTLC update is final at sheet `nonce`: ours (`by_us`) once the peer accepted it,
	/// the peer's once it revoked its older sheets.
	Htlc { nonce: Nonce, update: HtlcUpdate, by_us: bool },
	/// Both clients signed the splice of sheet `nonce`: it may go to the chain.
	SpliceSigned { nonce: Nonce },
	/// The peer showed us that our store is older than what we signed (`docs/recovery.md`):
	/// we never liquidate with our sheets. Its newest sheet is `nonce` or later; once it shows
	/// it, `nonce` (we ask to close at it, with no HTLC pending).
	Behind { nonce: Nonce },
	/// The peer is behind: we showed it our newest sheet `nonce`, to close at.
	PeerBehind { nonce: Nonce },
}

/// A handled message: the reply to send, if any, and what it achieved.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Step {
	pub reply: Option<Message>,
	pub progress: Option<Progress>,
}

impl Step {
	pub(super) fn reply(message: Message) -> Self {
		Self { reply: Some(message), progress: None }
	}

	pub(super) fn with(mut self, progress: Progress) -> Self {
		self.progress = Some(progress);
		self
	}
}
