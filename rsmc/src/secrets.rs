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
pub const SLOTS: usize = 49;

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

/// The slot of the secret at `index`: its count of trailing zero bits (48 for index 0).
fn slot_of(index: u64) -> usize {
	index.trailing_zeros().min(48) as usize
}

/// The index slot `slot` holds in a store whose newest index is `newest`: the least index
/// from `newest` on with `slot` trailing zero bits, if there is one up to `MAX_INDEX`.
fn slot_index(newest: u64, slot: usize) -> Option<u64> {
	if slot == 48 {
		return (newest == 0).then_some(0);
	}
	// The indexes with `slot` trailing zeros are the odd multiples of 2^slot.
	let multiple = newest.div_ceil(1 << slot) | 1;
	let index = multiple.checked_shl(slot as u32)?;
	(index <= MAX_INDEX && index >> slot == multiple).then_some(index)
}

/// Why a revealed secret was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretError {
	/// The secret does not derive the ones already stored: it is not from the same chain.
	Inconsistent { index: u64 },
	/// Secrets must arrive in order, each one index below the last.
	OutOfOrder { expected: u64, got: u64 },
	/// A compact store must hold exactly the slots of every secret from its newest index on.
	Incomplete { newest: u64 },
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
			Self::Incomplete { newest } => write!(
				f,
				"the secrets are not the compact store of every secret from index {newest} on"
			),
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
		self.place(index, secret)
	}

	/// Put the secret at `index` in its slot, after checking that it derives the secrets of the
	/// slots below, which (in order, or in a compact store's descending order) share its
	/// prefix.
	fn place(&mut self, index: u64, secret: Secret) -> Result<(), SecretError> {
		let slot = slot_of(index);
		for (stored, stored_index) in self.slots[..slot].iter().flatten() {
			if derive(secret, slot as u32, *stored_index) != *stored {
				return Err(SecretError::Inconsistent { index });
			}
		}
		self.slots[slot] = Some((secret, index));
		self.newest = Some(self.newest.map_or(index, |newest| newest.min(index)));
		Ok(())
	}

	/// The store's slots, as `(index, secret)`: at most 49, about log2 of the secrets
	/// revealed, from which every one of them is derived. What a client hands its watchtower.
	pub fn compact(&self) -> Vec<(u64, Secret)> {
		self.slots.iter().flatten().map(|(secret, index)| (*index, *secret)).collect()
	}

	/// The store whose slots are `compact`, in any order: refused unless they are exactly the
	/// slots of every secret from the newest index on, each deriving those below it.
	pub fn from_compact(compact: &[(u64, Secret)]) -> Result<Self, SecretError> {
		if compact.len() > SLOTS {
			let newest = compact.iter().map(|(index, _)| *index).min().unwrap_or_default();
			return Err(SecretError::Incomplete { newest });
		}
		let mut sorted = compact.to_vec();
		sorted.sort_unstable_by_key(|(index, _)| core::cmp::Reverse(*index));
		let Some(&(newest, _)) = sorted.last() else { return Ok(Self::default()) };
		let indexes: Vec<u64> = sorted.iter().map(|(index, _)| *index).collect();
		let mut expected: Vec<u64> =
			(0..SLOTS).filter_map(|slot| slot_index(newest, slot)).collect();
		expected.sort_unstable_by_key(|index| core::cmp::Reverse(*index));
		if indexes != expected {
			return Err(SecretError::Incomplete { newest });
		}
		let mut store = Self::default();
		for (index, secret) in sorted {
			store.place(index, secret)?;
		}
		Ok(store)
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

	/// What a client hands its watchtower: the slots alone rebuild the store, whatever the
	/// number of secrets and in any order, and anything but the slots of one chain is refused.
	#[test]
	fn a_compact_store_rebuilds_the_whole_and_nothing_else() {
		let seed = [3; 32];
		let mut store = RevealedSecrets::default();
		assert_eq!(RevealedSecrets::from_compact(&store.compact()), Ok(store.clone()));
		for n in 0..300u64 {
			let index = index_of(n).unwrap();
			store.insert(index, generate(&seed, index)).unwrap();
			let mut compact = store.compact();
			assert!(compact.len() <= SLOTS);
			compact.reverse();
			let rebuilt = RevealedSecrets::from_compact(&compact).unwrap();
			assert_eq!(rebuilt.revoked_count(), n + 1);
			assert_eq!(rebuilt.get(index_of(n / 2).unwrap()), store.get(index_of(n / 2).unwrap()));
			assert_eq!(rebuilt, store, "nonce {n}");
		}
		let compact = store.compact();
		let newest = store.newest_index().unwrap();
		// A slot missing, or one too many: not the whole of the secrets.
		assert_eq!(
			RevealedSecrets::from_compact(&compact[1..]),
			Err(SecretError::Incomplete { newest })
		);
		let extra = [&compact[..], &[(newest - 1, generate(&seed, newest - 1))]].concat();
		assert!(matches!(
			RevealedSecrets::from_compact(&extra),
			Err(SecretError::Incomplete { .. })
		));
		// One secret of another chain: it does not derive the ones below its slot.
		let mut forged = compact.clone();
		let top = forged.iter().position(|(index, _)| slot_of(*index) > 0).unwrap();
		forged[top].1 = generate(&[4; 32], forged[top].0);
		assert!(matches!(
			RevealedSecrets::from_compact(&forged),
			Err(SecretError::Inconsistent { .. })
		));
	}

	/// The slots of a store whose newest index is `newest`, by brute force over small indexes.
	#[test]
	fn each_slot_holds_the_least_index_with_its_trailing_zeros() {
		for newest in 0..200u64 {
			for slot in 0..12 {
				let least = (newest..1 << 13).find(|index| slot_of(*index) == slot);
				assert_eq!(slot_index(newest, slot), least, "newest {newest}, slot {slot}");
			}
		}
		assert_eq!(slot_index(0, 48), Some(0));
		assert_eq!(slot_index(1, 48), None);
		assert_eq!(slot_index(MAX_INDEX, 0), Some(MAX_INDEX));
		assert_eq!(slot_index(MAX_INDEX, 1), None);
		assert_eq!(slot_index(MAX_INDEX - 1, 1), Some(MAX_INDEX - 1));
	}
}
