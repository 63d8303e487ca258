//! A bank's cache of its own waiver keys.

use super::Error;
use sp_runtime::AccountId32;
use vbank_primitives::Nonce;

/// Our waiver keys of the last few nonces, as derived: the steps of a payment ask for the same
/// ones again, and each derivation is a scalar multiplication (perf: a third of a payment's
/// time went to deriving eight keys where four are new). Shared by a bank's copies, which
/// have the same seed; not part of the state, so any two are equal and none is stored.
#[derive(Clone, Default)]
pub(super) struct WaiverKeys(std::sync::Arc<std::sync::Mutex<[Option<WaiverKey>; 4]>>);

type WaiverKey = (Nonce, AccountId32);

impl WaiverKeys {
	pub(super) fn get_or(
		&self,
		nonce: Nonce,
		derive: impl FnOnce() -> Result<AccountId32, Error>,
	) -> Result<AccountId32, Error> {
		let slot = (nonce % 4) as usize;
		let cached = self.0.lock().map(|keys| keys[slot].clone()).ok().flatten();
		match cached {
			Some((n, key)) if n == nonce => Ok(key),
			_ => {
				let key = derive()?;
				if let Ok(mut keys) = self.0.lock() {
					keys[slot] = Some((nonce, key.clone()));
				}
				Ok(key)
			},
		}
	}
}

impl PartialEq for WaiverKeys {
	fn eq(&self, _: &Self) -> bool {
		true
	}
}

impl Eq for WaiverKeys {}

impl core::fmt::Debug for WaiverKeys {
	fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
		f.write_str("WaiverKeys")
	}
}

#[cfg(test)]
mod tests {
	use super::*;
	use crate::keys::{waiver_key, waiver_secret};

	#[test]
	fn cached_keys_are_the_derived_ones_in_any_order_and_a_failure_is_not_kept() {
		let seed = [7; 32];
		let derive = |nonce| Ok(waiver_key(&waiver_secret(&seed, nonce).unwrap()));
		let keys = WaiverKeys::default();
		for nonce in [0, 1, 2, 1, 5, 1, 0, 9, 5, 4, 8, 0] {
			assert_eq!(keys.get_or(nonce, || derive(nonce)), derive(nonce), "nonce {nonce}");
		}
		// Nonce 5 is cached now: asking again derives nothing.
		assert_eq!(keys.get_or(5, || panic!("derived again")), derive(5));
		assert_eq!(keys.get_or(12, || Err(Error::NoncesExhausted)), Err(Error::NoncesExhausted));
		assert_eq!(keys.get_or(12, || derive(12)), derive(12));
		// A copy shares what was derived, and any two caches are equal.
		assert_eq!(keys.clone().get_or(12, || panic!("derived again")), derive(12));
		assert_eq!(keys, WaiverKeys::default());
	}
}
