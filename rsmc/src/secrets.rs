//! Waiver secrets: Lightning's per-commitment secrets (BOLT #3), generated from one per-bank
//! seed, and the receiver's compact store of at most 49 of them from which every older one
//! is derived. Each secret is the seed of the sr25519 key pair whose public key is a sheet's
//! `waiver`.

use codec::{Decode, Encode};
use sha2::{Digest, Sha256};
use vbank_primitives::Nonce;

/// A 32-byte secret.
pub type Secret = [u8; 32];

/// The largest index BOLT #3 uses; nonce `n` takes index `MAX_INDEX - n`.
pub const MAX_INDEX: u64 = (1 << 48) - 1;

/// Number of slots in the compact store: one per possible count of trailing zero bits.
const SLOTS: usize = 49;

/// The BOLT #3 index of nonce `nonce`, or `None` once the 2^48 secrets are used up.
pub fn index_of(nonce: Nonce) -> Option<u64> {
	MAX_INDEX.checked_sub(nonce)
}

/// BOLT #3 `generate_from_seed`: the secret at `index` of the chain rooted at `seed`.
pub fn generate(seed: &Secret, index: u64) -> Secret {
	derive(*seed, 48, index)
}

/// The flip-and-hash of `generate`, only for the bits of `index` below `bits`.
fn derive(mut secret: Secret, bits: u32, index: u64) -> Secret {
	for bit in (0..bits).rev() {
		if index >> bit & 1 == 1 {
			secret[(bit / 8) as usize] ^= 1 << (bit % 8);
			secret = Sha256::digest(secret).into();
		}
	}
	secret
}

/// Why a revealed secret was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretError {
	/// The secret does not derive the ones already stored: it is not from the same chain.
	Inconsistent { index: u64 },
	/// Secrets must arrive in order, each one index below the last.
	OutOfOrder { expected: u64, got: u64 },
}

impl core::fmt::Display for SecretError {
	fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
		match self {
			Self::Inconsistent { index } => write!(
				f,
				"the secret for index {index} does not derive the secrets already revealed"
			),
			Self::OutOfOrder { expected, got } => {
				write!(f, "expected the secret for index {expected}, got index {got}")
			},
		}
	}
}

impl std::error::Error for SecretError {}

/// The receiver's compact store: every revealed secret, in at most 49 slots, slot `k` holding
/// the newest secret whose index has `k` trailing zero bits.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode)]
pub struct RevealedSecrets {
	slots: Vec<Option<(Secret, u64)>>,
	/// The index of the newest secret stored, if any.
	newest: Option<u64>,
}

impl Default for RevealedSecrets {
	fn default() -> Self {
		Self { slots: vec![None; SLOTS], newest: None }
	}
}

impl RevealedSecrets {
	/// Store the secret at `index`, after checking that it derives every secret stored so far.
	/// Leaves the store unchanged when it refuses.
	pub fn insert(&mut self, index: u64, secret: Secret) -> Result<(), SecretError> {
		let expected = self.newest.map_or(MAX_INDEX, |newest| newest.wrapping_sub(1));
		if index != expected || self.newest == Some(0) {
			return Err(SecretError::OutOfOrder { expected, got: index });
		}
		let slot = index.trailing_zeros().min(48) as usize;
		for (stored, stored_index) in self.slots[..slot].iter().flatten() {
			if derive(secret, slot as u32, *stored_index) != *stored {
				return Err(SecretError::Inconsistent { index });
			}
		}
		self.slots[slot] = Some((secret, index));
		self.newest = Some(index);
		Ok(())
	}

	/// The secret at `index`, if it was revealed (directly, or derived from a later one).
	pub fn get(&self, index: u64) -> Option<Secret> {
		if self.newest.is_none_or(|newest| index < newest) || index > MAX_INDEX {
			return None;
		}
		self.slots.iter().enumerate().find_map(|(slot, entry)| {
			let (secret, stored_index) = entry.as_ref()?;
			(index >> slot == stored_index >> slot).then(|| derive(*secret, slot as u32, index))
		})
	}

	/// The index of the newest secret stored.
	pub fn newest_index(&self) -> Option<u64> {
		self.newest
	}

	/// How many sheets these secrets revoke: every nonce below the answer.
	pub fn revoked_count(&self) -> Nonce {
		self.newest.map_or(0, |newest| MAX_INDEX - newest + 1)
	}
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn nonces_use_indexes_from_the_top_down() {
		assert_eq!(index_of(0), Some(MAX_INDEX));
		assert_eq!(index_of(5), Some(MAX_INDEX - 5));
		assert_eq!(index_of(MAX_INDEX), Some(0));
		assert_eq!(index_of(MAX_INDEX + 1), None);
	}

	#[test]
	fn every_older_secret_is_derived_from_a_few_slots() {
		let seed = [7; 32];
		let mut store = RevealedSecrets::default();
		for n in 0..1_000u64 {
			store.insert(index_of(n).unwrap(), generate(&seed, index_of(n).unwrap())).unwrap();
			assert!(store.slots.iter().flatten().count() <= 11);
		}
		for n in 0..1_000u64 {
			let index = index_of(n).unwrap();
			assert_eq!(store.get(index), Some(generate(&seed, index)), "nonce {n}");
		}
		assert_eq!(store.get(index_of(1_000).unwrap()), None, "not revealed yet");
	}

	#[test]
	fn a_refused_secret_leaves_the_store_as_it_was() {
		let seed = [1; 32];
		let mut store = RevealedSecrets::default();
		store.insert(MAX_INDEX, generate(&seed, MAX_INDEX)).unwrap();
		let before = store.clone();
		assert_eq!(
			store.insert(MAX_INDEX - 1, generate(&[2; 32], MAX_INDEX - 1)),
			Err(SecretError::Inconsistent { index: MAX_INDEX - 1 })
		);
		assert_eq!(
			store.insert(MAX_INDEX - 2, generate(&seed, MAX_INDEX - 2)),
			Err(SecretError::OutOfOrder { expected: MAX_INDEX - 1, got: MAX_INDEX - 2 })
		);
		assert_eq!(store, before);
	}
}
