//! Keys: the account key that signs sheets, behind the [`Signer`] trait, and the waiver key
//! pairs made from waiver secrets.

use crate::secrets::{self, Secret};
use sp_core::{sr25519, Pair, H256};
use sp_runtime::{AccountId32, MultiSignature};
use vbank_primitives::{ChannelId, Nonce};

/// The domain of the waiver seeds an account key derives (`docs/recovery.md`).
pub const WAIVER_SEED_TAG: &[u8] = b"vbank/waiver-seed";

/// Signs with a client's account key. Secrets never leave it but as signatures.
pub trait Signer: Send + Sync {
	/// The account the signatures verify against.
	fn account(&self) -> AccountId32;
	/// A signature over `payload`.
	fn sign(&self, payload: &[u8]) -> MultiSignature;
	/// The root of our waiver secrets for bank `channel` on chain `genesis_hash`: derived from
	/// the account's secret key, so that a helper that lost its store can derive again every
	/// waiver key and secret of its own (`docs/recovery.md`); secret to anyone without that
	/// key. A bank's id is never reused on its chain, so no two banks share a seed.
	fn waiver_seed(&self, genesis_hash: &H256, channel: ChannelId) -> Secret;
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

	fn waiver_seed(&self, genesis_hash: &H256, channel: ChannelId) -> Secret {
		let key = self.0.to_raw_vec();
		let input = [WAIVER_SEED_TAG, &key, genesis_hash.as_bytes(), &channel.to_le_bytes()];
		sp_crypto_hashing::blake2_256(&input.concat())
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

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn a_waiver_seed_is_the_accounts_alone_and_one_per_bank() {
		let alice = Sr25519Signer::from_suri("//Alice").unwrap();
		let (genesis, other_chain) = (H256([1; 32]), H256([2; 32]));
		let seed = alice.waiver_seed(&genesis, 7);
		// The same key derives it again (a helper that lost its store)…
		let again = Sr25519Signer::from_suri("//Alice").unwrap();
		assert_eq!(again.waiver_seed(&genesis, 7), seed);
		// …and nothing else does: another bank, another chain, another account.
		let bob = Sr25519Signer::from_suri("//Bob").unwrap();
		for other in [
			alice.waiver_seed(&genesis, 8),
			alice.waiver_seed(&other_chain, 7),
			bob.waiver_seed(&genesis, 7),
		] {
			assert_ne!(other, seed);
		}
		// Nothing public gives it: not the account, not a hash of what a peer knows.
		let public = alice.account();
		assert_ne!(seed[..], AsRef::<[u8]>::as_ref(&public)[..]);
		let known = [WAIVER_SEED_TAG, public.as_ref(), genesis.as_bytes(), &7u64.to_le_bytes()];
		assert_ne!(seed, sp_crypto_hashing::blake2_256(&known.concat()));
	}
}
