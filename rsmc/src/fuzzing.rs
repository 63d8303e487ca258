//! The coverage-guided fuzz target's body, shared by the AFL++ binary (`rsmc/fuzz`) and the
//! replay of its corpus in the test suite: arbitrary bytes become messages from a bank's peer,
//! with hostile contents under valid signatures (the fuzzer cannot forge a signature, so the
//! harness signs what it decoded), handed to an honest helper mid-life, with an HTLC pending
//! each way.

use crate::{
	bank::{Htlc, HtlcUpdate, Terms},
	helper::{Helper, HelperError, Policy},
	keys::{Signer, Sr25519Signer},
	message::{Body, Message},
	store::MemoryStore,
};
use codec::Decode;
use sp_core::{sr25519, Pair, H256};
use std::{collections::BTreeMap, sync::Arc};
use vbank_primitives::{hashlock, Balances, Nonce};

const GENESIS: H256 = H256([0x47; 32]);
const CHANNEL: u64 = 7;

fn signer(seed: u8) -> Arc<Sr25519Signer> {
	Arc::new(Sr25519Signer::new(sr25519::Pair::from_seed(&[seed; 32])))
}

/// The preimage of the HTLCs the honest pair locks: the fuzzer may find and settle with it.
const PREIMAGE: [u8; 32] = [0x50; 32];

/// Alice (client 0) and Bob (client 1), a bank between them, two payments made and an HTLC
/// pending each way.
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
	assert_eq!(bob.bank(CHANNEL).map(|b| b.reserve), Some(20), "Alice's default reserve");
	let propose = alice.pay(CHANNEL, 10).expect("funds");
	exchange(&mut alice, &mut bob, propose, true, &mut Vec::new());
	let propose = bob.pay(CHANNEL, 3).expect("funds");
	exchange(&mut alice, &mut bob, propose, false, &mut Vec::new());
	for (from, alice_first) in [(0, true), (1, false)] {
		let htlc = Htlc { from, amount: 20, hashlock: hashlock(&PREIMAGE), expiry: 500 };
		let payer = if alice_first { &mut alice } else { &mut bob };
		let update = payer.update(CHANNEL, HtlcUpdate::Add(htlc)).expect("funds");
		exchange(&mut alice, &mut bob, update, alice_first, &mut Vec::new());
	}
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
/// nonce, or one that takes her share below the bank's reserve, or he reveals the secret of
/// his newest sheet.
pub fn peer_messages(data: &[u8]) {
	let (mut alice, mut bob, alice_key) = honest_pair();
	let mut signed: BTreeMap<Nonce, (Balances, Vec<Htlc>)> = BTreeMap::new();
	let mut input = data;
	while let Ok(body) = Body::decode(&mut input) {
		let message = Message::signed(&GENESIS, CHANNEL, body, &*alice_key);
		let before = bob.bank(CHANNEL).cloned();
		let alice_had = before.as_ref().map_or(0, |b| b.ledger().map_or(0, |l| l.peer_balances[0]));
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
					let peer_sheet = (ledger.peer_balances, ledger.peer_htlcs.clone());
					let earlier = signed.insert(*nonce, peer_sheet.clone());
					assert!(earlier.is_none_or(|s| s == peer_sheet), "two sheets");
					let alice_has = ledger.peer_balances[0];
					assert!(
						alice_has >= bank.reserve || alice_has >= alice_had,
						"Alice paid below the reserve"
					);
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
/// way, settling and failing the pending HTLCs, a close, a top-up, a withdrawal and a
/// comparison after a start, one by one and all in a row.
pub fn seed_inputs() -> Vec<Vec<u8>> {
	let (mut alice, mut bob, _) = honest_pair();
	let mut sent = Vec::new();
	let propose = alice.pay(CHANNEL, 5).expect("funds");
	exchange(&mut alice, &mut bob, propose, true, &mut sent);
	let propose = bob.pay(CHANNEL, 2).expect("funds");
	exchange(&mut alice, &mut bob, propose, false, &mut sent);
	// Alice settles Bob's HTLC to her; Bob fails Alice's to him.
	let settle = HtlcUpdate::Settle { index: 1, preimage: PREIMAGE };
	let update = alice.update(CHANNEL, settle).expect("the preimage");
	exchange(&mut alice, &mut bob, update, true, &mut sent);
	let fail = HtlcUpdate::Fail { index: 0, hashlock: hashlock(&PREIMAGE) };
	let update = bob.update(CHANNEL, fail).expect("pending");
	exchange(&mut alice, &mut bob, update, false, &mut sent);
	let close = alice.close(CHANNEL).expect("idle");
	exchange(&mut alice, &mut bob, close, true, &mut sent);
	// A top-up and a withdrawal of Alice's (`docs/splice.md`), and a comparison after a
	// start (`docs/recovery.md`), each from the pair as it was.
	for (amount_in, amount_out) in [(50, 0), (0, 30)] {
		let (mut alice, mut bob, _) = honest_pair();
		let splice = alice.splice(CHANNEL, amount_in, amount_out).expect("funds");
		exchange(&mut alice, &mut bob, splice, true, &mut sent);
	}
	let (mut alice, mut bob, _) = honest_pair();
	let hello = alice.reestablish(CHANNEL).expect("active");
	exchange(&mut alice, &mut bob, hello, true, &mut sent);
	let all = sent.concat();
	sent.push(all);
	sent
}
