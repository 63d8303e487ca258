//! Keys: the account key that signs sheets, behind the [`Signer`] trait, and the waiver key
//! pairs made from waiver secrets.

use crate::secrets::{self, Secret};
use sp_core::{sr25519, Pair};
use sp_runtime::{AccountId32, MultiSignature};
use vbank_primitives::Nonce;

/// Signs with a client's account key. Secrets never leave it but as signatures.
pub trait Signer: Send + Sync {
	/// The account the signatures verify against.
	fn account(&self) -> AccountId32;
	/// A signature over `payload`.
	fn sign(&self, payload: &[u8]) -> MultiSignature;
}

/// A [`Signer`] holding an sr25519 key pair in memory.
#[derive(Clone)]
pub struct Sr25519Signer(sr25519::Pair);

impl Sr25519Signer {
	pub fn new(pair: sr25519::Pair) -> Self {
		Self(pair)
	}

	/// The signer of a secret URI such as `//Alice`.
	pub fn from_suri(suri: &str) -> Result<Self, String> {
		sr25519::Pair::from_string(suri, None)
			.map(Self)
			.map_err(|e| format!("bad secret URI: {e:?}"))
	}
}

impl Signer for Sr25519Signer {
	fn account(&self) -> AccountId32 {
		self.0.public().into()
	}

	fn sign(&self, payload: &[u8]) -> MultiSignature {
		self.0.sign(payload).into()
	}
}

impl core::fmt::Debug for Sr25519Signer {
	fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
		write!(f, "Sr25519Signer({})", self.account())
	}
}

/// The waiver key pair whose seed is `secret`.
pub fn waiver_pair(secret: &Secret) -> sr25519::Pair {
	sr25519::Pair::from_seed(secret)
}

/// The waiver key (as the account a sheet names) whose seed is `secret`.
pub fn waiver_key(secret: &Secret) -> AccountId32 {
	waiver_pair(secret).public().into()
}

/// The waiver secret of sheet `nonce` in the chain rooted at `seed`.
pub fn waiver_secret(seed: &Secret, nonce: Nonce) -> Option<Secret> {
	secrets::index_of(nonce).map(|index| secrets::generate(seed, index))
}
