//! Where an account's helper is served on the chain's p2p network: a record the account signs,
//! naming the node (its network identity, a libp2p peer id's bytes) that answers for it, and
//! the block it was signed at. A node that asks its peers where an account is served believes
//! only a record that the account signed for this chain and that names the node it came from;
//! of two good records, the one signed later wins, so a node an account has left cannot keep
//! it by replaying an old one.
//!
//! The payload, SCALE-encoded: `(b"vbank/serves", genesis_hash, account, node, at)`.
//!
//! A node also publishes the records of the accounts it serves in the network's DHT (Kademlia),
//! under [`dht_key`]: a node that no neighbour of ours knows is found there. A node stores a
//! record put to it only if [`from_dht`] accepts it.

use crate::keys::Signer;
use codec::{Decode, Encode};
use sp_core::H256;
use sp_runtime::{AccountId32, MultiSignature};
use vbank_primitives::verify_signature;

/// The tag of a record's payload.
pub const SERVES_TAG: [u8; 12] = *b"vbank/serves";

/// The longest node identity a record may name (a libp2p peer id is 38 bytes at most).
pub const MAX_NODE_LEN: usize = 64;

/// "Account `account` is served by node `node`", signed by the account at block `at`.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Record {
	pub account: AccountId32,
	pub node: Vec<u8>,
	pub at: u32,
	pub signature: MultiSignature,
}

/// What a record's signature covers.
pub fn payload(genesis_hash: &H256, account: &AccountId32, node: &[u8], at: u32) -> Vec<u8> {
	(SERVES_TAG, genesis_hash, account, node, at).encode()
}

/// Where account `account`'s record is kept in chain `genesis_hash`'s DHT: the BLAKE2-256
/// hash of `(b"vbank/serves", genesis_hash, account)`, SCALE-encoded.
pub fn dht_key(genesis_hash: &H256, account: &AccountId32) -> [u8; 32] {
	sp_crypto_hashing::blake2_256(&(SERVES_TAG, genesis_hash, account).encode())
}

/// The record that `value`, found in or put to the DHT under `key`, holds, if it is a good one:
/// it decodes whole, `key` is its account's, and the account signed it for this chain.
pub fn from_dht(genesis_hash: &H256, key: &[u8], value: &[u8]) -> Option<Record> {
	use codec::DecodeAll;
	let record = Record::decode_all(&mut &value[..]).ok()?;
	let good = key == dht_key(genesis_hash, &record.account).as_slice()
		&& record.proves(genesis_hash, &record.account, &record.node);
	good.then_some(record)
}

impl Record {
	/// The record of `signer`'s account, served by `node`, at block `at`.
	pub fn signed(genesis_hash: &H256, signer: &dyn Signer, node: Vec<u8>, at: u32) -> Self {
		let account = signer.account();
		let signature = signer.sign(&payload(genesis_hash, &account, &node, at));
		Self { account, node, at, signature }
	}

	/// Whether this record says, for chain `genesis_hash`, that `account` is served by `node`,
	/// signed by `account`.
	pub fn proves(&self, genesis_hash: &H256, account: &AccountId32, node: &[u8]) -> bool {
		&self.account == account
			&& self.node == node
			&& self.node.len() <= MAX_NODE_LEN
			&& verify_signature(
				&self.signature,
				&payload(genesis_hash, &self.account, &self.node, self.at),
				&self.account,
			)
	}

	/// Whether this record replaces `known`, a good one for the same account: signed later.
	pub fn newer_than(&self, known: &Record) -> bool {
		self.at > known.at
	}
}

#[cfg(test)]
mod tests {
	use super::*;
	use crate::keys::Sr25519Signer;

	fn signer(suri: &str) -> Sr25519Signer {
		Sr25519Signer::from_suri(suri).unwrap()
	}

	#[test]
	fn a_record_proves_only_what_its_account_signed_for_this_chain() {
		let genesis = H256::repeat_byte(7);
		let alice = signer("//Alice");
		let record = Record::signed(&genesis, &alice, b"node-a".to_vec(), 10);
		assert!(record.proves(&genesis, &alice.account(), b"node-a"));

		// Another node, another account, another chain: no.
		assert!(!record.proves(&genesis, &alice.account(), b"node-b"));
		assert!(!record.proves(&genesis, &signer("//Bob").account(), b"node-a"));
		assert!(!record.proves(&H256::repeat_byte(8), &alice.account(), b"node-a"));

		// A node that rewrites the record to name itself, or to look newer, breaks it.
		let stolen = Record { node: b"node-m".to_vec(), ..record.clone() };
		assert!(!stolen.proves(&genesis, &alice.account(), b"node-m"));
		let later = Record { at: 11, ..record.clone() };
		assert!(!later.proves(&genesis, &alice.account(), b"node-a"));

		// Signed by somebody else for Alice's account: no.
		let forged = Record {
			account: alice.account(),
			..Record::signed(&genesis, &signer("//Mallory"), b"node-m".to_vec(), 10)
		};
		assert!(!forged.proves(&genesis, &alice.account(), b"node-m"));

		// Too long a node identity is refused even when signed.
		let long = Record::signed(&genesis, &alice, vec![1; MAX_NODE_LEN + 1], 10);
		assert!(!long.proves(&genesis, &alice.account(), &[1; MAX_NODE_LEN + 1]));
	}

	#[test]
	fn the_dht_takes_a_record_only_under_its_accounts_key_and_signed() {
		let genesis = H256::repeat_byte(7);
		let (alice, bob) = (signer("//Alice"), signer("//Bob"));
		let record = Record::signed(&genesis, &alice, b"node-a".to_vec(), 10);
		let key = dht_key(&genesis, &alice.account());
		assert_eq!(from_dht(&genesis, &key, &record.encode()), Some(record.clone()));
		// Under Bob's key, or another chain's: no.
		assert_eq!(from_dht(&genesis, &dht_key(&genesis, &bob.account()), &record.encode()), None);
		let other = H256::repeat_byte(8);
		assert_eq!(from_dht(&other, &dht_key(&other, &alice.account()), &record.encode()), None);
		// Rewritten, trailing bytes, or garbage: no.
		let stolen = Record { node: b"node-m".to_vec(), ..record.clone() };
		assert_eq!(from_dht(&genesis, &key, &stolen.encode()), None);
		let mut long = record.encode();
		long.push(0);
		assert_eq!(from_dht(&genesis, &key, &long), None);
		assert_eq!(from_dht(&genesis, &key, &[0xff; 40]), None);
		// Each account and chain has a key of its own.
		assert_ne!(key, dht_key(&genesis, &bob.account()));
		assert_ne!(key, dht_key(&other, &alice.account()));
	}

	#[test]
	fn the_later_record_wins() {
		let genesis = H256::repeat_byte(7);
		let alice = signer("//Alice");
		let old = Record::signed(&genesis, &alice, b"node-a".to_vec(), 10);
		let new = Record::signed(&genesis, &alice, b"node-b".to_vec(), 20);
		assert!(new.newer_than(&old));
		assert!(!old.newer_than(&new));
		assert!(!old.newer_than(&old));
	}
}
