//! The coverage-guided fuzz target's body, shared by the AFL++ binary (`rsmc/fuzz`) and the
//! replay of its corpus in the test suite: arbitrary bytes become messages from a bank's peer,
//! with hostile contents under valid signatures (the fuzzer cannot forge a signature, so the
//! harness signs what it decoded), handed to an honest helper mid-life.

use crate::{
	bank::Terms,
	helper::{Helper, HelperError, Policy},
	keys::{Signer, Sr25519Signer},
	message::{Body, Message},
	store::MemoryStore,
};
use codec::Decode;
use sp_core::{sr25519, Pair, H256};
use std::{collections::BTreeMap, sync::Arc};
use vbank_primitives::{Balances, Nonce};

const GENESIS: H256 = H256([0x47; 32]);
const CHANNEL: u64 = 7;

fn signer(seed: u8) -> Arc<Sr25519Signer> {
	Arc::new(Sr25519Signer::new(sr25519::Pair::from_seed(&[seed; 32])))
}

/// Alice (client 0) and Bob (client 1), a bank between them and two payments made.
fn honest_pair() -> (Helper<MemoryStore>, Helper<MemoryStore>, Arc<Sr25519Signer>) {
	let (a, b) = (signer(1), signer(2));
	let terms = Terms {
		channel: CHANNEL,
		genesis_hash: GENESIS,
		clients: [a.account(), b.account()],
		balances: [1_000, 1_000],
		lock_period: 10,
	};
	let mut alice = Helper::new(a.clone(), GENESIS, MemoryStore::default()).expect("empty store");
	let mut bob = Helper::new(b, GENESIS, MemoryStore::default())
		.expect("empty store")
		.with_policy(Policy::ACCEPT_ALL);
	let open = alice.open(terms).expect("valid terms");
	exchange(&mut alice, &mut bob, open, true, &mut Vec::new());
	let propose = alice.pay(CHANNEL, 10).expect("funds");
	exchange(&mut alice, &mut bob, propose, true, &mut Vec::new());
	let propose = bob.pay(CHANNEL, 3).expect("funds");
	exchange(&mut alice, &mut bob, propose, false, &mut Vec::new());
	(alice, bob, a)
}

/// Carry `first` and every answer between Alice and Bob, keeping the encoded bodies of what
/// Alice sent Bob in `to_bob_bodies`.
fn exchange(
	alice: &mut Helper<MemoryStore>,
	bob: &mut Helper<MemoryStore>,
	first: Message,
	alice_first: bool,
	to_bob_bodies: &mut Vec<Vec<u8>>,
) {
	use codec::Encode;
	let (mut message, mut to_bob) = (Some(first), alice_first);
	while let Some(m) = message.take() {
		if to_bob {
			to_bob_bodies.push(m.body.encode());
		}
		let to = if to_bob { &mut *bob } else { &mut *alice };
		message = to.handle(&m).expect("an honest exchange").reply;
		to_bob = !to_bob;
	}
}

/// Feed `data` to honest Bob as bodies signed by Alice's key; panics if Bob breaks a rule:
/// a refused message changes his bank, or he signs two different sheets of Alice's at one
/// nonce, or he reveals the secret of his newest sheet.
pub fn peer_messages(data: &[u8]) {
	let (mut alice, mut bob, alice_key) = honest_pair();
	let mut signed: BTreeMap<Nonce, Balances> = BTreeMap::new();
	let mut input = data;
	while let Ok(body) = Body::decode(&mut input) {
		let message = Message::signed(&GENESIS, CHANNEL, body, &*alice_key);
		let before = bob.bank(CHANNEL).cloned();
		let step = match bob.handle(&message) {
			Ok(step) => step,
			Err(HelperError::Protocol(_)) => {
				assert_eq!(
					bob.bank(CHANNEL).cloned(),
					before,
					"a refused message changed the bank"
				);
				continue;
			},
			Err(e) => panic!("{e}"),
		};
		let bank = bob.bank(CHANNEL).expect("Bob's bank");
		let sheet = bank.nonce();
		if let Some(reply) = &step.reply {
			match &reply.body {
				Body::Accept { nonce, .. } => {
					let ledger = bank.ledger().expect("active");
					let earlier = signed.insert(*nonce, ledger.peer_balances);
					assert!(earlier.is_none_or(|b| b == ledger.peer_balances), "two sheets");
					assert_eq!(*nonce, sheet, "accepted a sheet Bob does not hold");
				},
				Body::Revoke { nonce, .. } => assert!(*nonce < sheet, "revoked the newest sheet"),
				_ => {},
			}
			// Honest Alice answers where she can, so that the bank moves on.
			if let Some(back) = alice.handle(reply).ok().and_then(|s| s.reply) {
				let _ = bob.handle(&back);
			}
		}
	}
}

/// Inputs to start the fuzzer from: the bodies an honest Alice sends Bob over a payment each
/// way and a close, one by one and all in a row.
pub fn seed_inputs() -> Vec<Vec<u8>> {
	let (mut alice, mut bob, _) = honest_pair();
	let mut sent = Vec::new();
	let propose = alice.pay(CHANNEL, 5).expect("funds");
	exchange(&mut alice, &mut bob, propose, true, &mut sent);
	let propose = bob.pay(CHANNEL, 2).expect("funds");
	exchange(&mut alice, &mut bob, propose, false, &mut sent);
	let close = alice.close(CHANNEL).expect("idle");
	exchange(&mut alice, &mut bob, close, true, &mut sent);
	let all = sent.concat();
	sent.push(all);
	sent
}
