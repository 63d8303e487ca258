//! Banks as stores written before HTLCs hold them: sheets without their HTLC list, payments
//! in flight without an update, no count of updates. A helper upgraded over such a store reads
//! its banks on as they were (no HTLC pending), so that nobody's sheets are lost to an
//! upgrade; what it writes back is the current form.

use super::{ledger::*, Bank};
use crate::secrets::{RevealedSecrets, Secret};
use codec::{Decode, DecodeAll, Encode};
use sp_runtime::{AccountId32, MultiSignature};
use vbank_primitives::{Balances, Nonce};

impl Bank {
	/// A bank from its stored bytes: the current form, the form before reserves and recovery
	/// (the bytes end without a reserve and the flag of being behind: none, not behind), the
	/// form before a liquidation could be marked as on its way (an active bank's bytes end one
	/// `None` short too), or the form before HTLCs.
	pub fn from_stored(bytes: &[u8]) -> Result<Self, codec::Error> {
		// What each older form lacks at its end: a reserve and the flag of being behind (none,
		// not behind); and before them the ledger's `None`.
		const NO_RESERVE: &[u8] = &[0; 17];
		Self::decode_all(&mut &bytes[..]).or_else(|current| {
			let forms = [[bytes, NO_RESERVE].concat(), [bytes, &[0], NO_RESERVE].concat()];
			forms
				.iter()
				.find_map(|form| Self::decode_all(&mut &form[..]).ok())
				.map(Ok)
				.unwrap_or_else(|| LegacyBank::decode_all(&mut &bytes[..]).map(Into::into))
				.map_err(|_| current)
		})
	}
}

#[derive(Encode, Decode)]
struct LegacyBank {
	terms: Terms,
	me: u8,
	seed: Secret,
	phase: LegacyPhase,
}

#[derive(Encode, Decode)]
enum LegacyPhase {
	AwaitingOpenAccept,
	Offered { peer_waivers: [AccountId32; 2] },
	AwaitingOpenConfirm { peer_waivers: [AccountId32; 2] },
	Active(Box<LegacyLedger>),
}

#[derive(Encode, Decode)]
struct LegacySheet {
	nonce: Nonce,
	balances: Balances,
	signature: MultiSignature,
}

#[derive(Encode, Decode)]
enum LegacyInFlight {
	Proposed { nonce: Nonce, balances: Balances },
	Yielded { nonce: Nonce },
	Accepted { nonce: Nonce },
}

#[derive(Encode, Decode)]
struct LegacyLedger {
	sheet: LegacySheet,
	peer_nonce: Nonce,
	peer_balances: Balances,
	peer_waivers: Vec<AccountId32>,
	peer_secrets: RevealedSecrets,
	in_flight: Option<LegacyInFlight>,
	closing: Option<Closing>,
	liquidated: Option<OnChainLiquidation>,
	paid: u64,
	yielded: u64,
}

impl From<LegacyBank> for Bank {
	fn from(old: LegacyBank) -> Self {
		let phase = match old.phase {
			LegacyPhase::AwaitingOpenAccept => Phase::AwaitingOpenAccept,
			LegacyPhase::Offered { peer_waivers } => Phase::Offered { peer_waivers },
			LegacyPhase::AwaitingOpenConfirm { peer_waivers } => {
				Phase::AwaitingOpenConfirm { peer_waivers }
			},
			LegacyPhase::Active(ledger) => Phase::Active(Box::new((*ledger).into())),
		};
		let (terms, me, seed) = (old.terms, old.me, old.seed);
		Bank { terms, me, seed, phase, reserve: 0, behind: false, waivers: Default::default() }
	}
}

impl From<LegacyLedger> for Ledger {
	fn from(old: LegacyLedger) -> Self {
		let LegacySheet { nonce, balances, signature } = old.sheet;
		Ledger {
			sheet: SignedSheet { nonce, balances, htlcs: vec![], signature },
			peer_nonce: old.peer_nonce,
			peer_balances: old.peer_balances,
			peer_htlcs: vec![],
			peer_waivers: old.peer_waivers,
			peer_secrets: old.peer_secrets,
			in_flight: old.in_flight.map(|in_flight| match in_flight {
				LegacyInFlight::Proposed { nonce, balances } => {
					InFlight::Proposed { nonce, balances, htlcs: vec![], update: None }
				},
				LegacyInFlight::Yielded { nonce } => InFlight::Yielded { nonce, update: None },
				LegacyInFlight::Accepted { nonce } => InFlight::Accepted { nonce, update: None },
			}),
			closing: old.closing,
			liquidated: old.liquidated,
			paid: old.paid,
			yielded: old.yielded,
			updated: 0,
			liquidating: None,
		}
	}
}

#[cfg(test)]
mod tests {
	use super::*;
	use crate::keys::{Signer, Sr25519Signer};
	use sp_core::{sr25519, Pair, H256};

	const GENESIS: H256 = H256([9; 32]);

	/// The bytes a store written before HTLCs holds for `bank` (which has none).
	fn legacy_bytes(bank: &Bank) -> Vec<u8> {
		let phase = match &bank.phase {
			Phase::AwaitingOpenAccept => LegacyPhase::AwaitingOpenAccept,
			Phase::Offered { peer_waivers } => {
				LegacyPhase::Offered { peer_waivers: peer_waivers.clone() }
			},
			Phase::AwaitingOpenConfirm { peer_waivers } => {
				LegacyPhase::AwaitingOpenConfirm { peer_waivers: peer_waivers.clone() }
			},
			Phase::Active(l) => LegacyPhase::Active(Box::new(LegacyLedger {
				sheet: LegacySheet {
					nonce: l.sheet.nonce,
					balances: l.sheet.balances,
					signature: l.sheet.signature.clone(),
				},
				peer_nonce: l.peer_nonce,
				peer_balances: l.peer_balances,
				peer_waivers: l.peer_waivers.clone(),
				peer_secrets: l.peer_secrets.clone(),
				in_flight: l.in_flight.as_ref().map(|f| match f {
					InFlight::Proposed { nonce, balances, .. } => {
						LegacyInFlight::Proposed { nonce: *nonce, balances: *balances }
					},
					InFlight::Yielded { nonce, .. } => LegacyInFlight::Yielded { nonce: *nonce },
					InFlight::Accepted { nonce, .. } => LegacyInFlight::Accepted { nonce: *nonce },
					InFlight::Splicing(_) => unreachable!("stores before HTLCs had no splices"),
				}),
				closing: l.closing.clone(),
				liquidated: l.liquidated.clone(),
				paid: l.paid,
				yielded: l.yielded,
			})),
		};
		LegacyBank { terms: bank.terms.clone(), me: bank.me, seed: bank.seed, phase }.encode()
	}

	/// Alice's and Bob's banks after the handshake, two payments, and a third in flight.
	fn banks_mid_life() -> Vec<Bank> {
		let signer = |seed| Sr25519Signer::new(sr25519::Pair::from_seed(&[seed; 32]));
		let (a, b) = (signer(1), signer(2));
		let terms = Terms {
			channel: 3,
			genesis_hash: GENESIS,
			clients: [a.account(), b.account()],
			balances: [100, 100],
			lock_period: 10,
		};
		let (mut alice, open) = Bank::open(terms, 0, [1; 32], &a).unwrap();
		let (mut bob, accept) = Bank::offered(&open, GENESIS, [2; 32], &b, true).unwrap();
		let confirm = alice.handle(&accept, &a).unwrap().reply.unwrap();
		bob.handle(&confirm, &b).unwrap();
		let mut snapshots = vec![alice.clone(), bob.clone()];
		for (amount, alice_pays) in [(10, true), (3, false), (7, true)] {
			let (payer, payee, ps, qs) = if alice_pays {
				(&mut alice, &mut bob, &a, &b)
			} else {
				(&mut bob, &mut alice, &b, &a)
			};
			let propose = payer.propose(amount, ps).unwrap();
			snapshots.push(payer.clone());
			let accept = payee.handle(&propose, qs).unwrap().reply.unwrap();
			snapshots.push(payee.clone());
			if amount == 7 {
				break;
			}
			let revoke = payer.handle(&accept, ps).unwrap().reply.unwrap();
			payee.handle(&revoke, qs).unwrap();
		}
		snapshots
	}

	#[test]
	fn a_store_written_before_htlcs_reads_as_the_same_banks() {
		for bank in banks_mid_life() {
			let old = legacy_bytes(&bank);
			assert_ne!(old, bank.encode(), "the forms differ once active");
			assert_eq!(Bank::from_stored(&old).unwrap(), bank);
			assert_eq!(Bank::from_stored(&bank.encode()).unwrap(), bank);
		}
		assert!(Bank::from_stored(&[1, 2, 3]).is_err());
	}

	/// Stores written before reserves and recovery hold a bank's bytes without its reserve and
	/// its flag of being behind: they read as the same banks, with no reserve, not behind.
	#[test]
	fn a_store_written_before_reserves_and_recovery_reads_as_the_same_banks() {
		for bank in banks_mid_life() {
			let mut old = bank.encode();
			assert_eq!(old.split_off(old.len() - 17), [0; 17], "no reserve, not behind");
			assert_eq!(Bank::from_stored(&old).unwrap(), bank);
		}
	}

	/// Stores written with HTLCs but before `Ledger::liquidating` hold an active bank's bytes
	/// without the `None` that ends its ledger (and without a reserve): they read as the same
	/// banks, not marked.
	#[test]
	fn a_store_written_before_liquidations_were_marked_reads_as_the_same_banks() {
		for bank in banks_mid_life() {
			let mut old = bank.encode();
			old.truncate(old.len() - 17);
			if bank.ledger().is_some() {
				assert_eq!(old.pop(), Some(0), "an unmarked ledger ends with its `None`");
			}
			assert_eq!(Bank::from_stored(&old).unwrap(), bank);
		}
	}
}
