//! Tests of the RSMC helper: BOLT #3 vectors, payments over a faulty network, byzantine
//! peers, crashes at every write, and the watchtower against a fake chain.

mod bolt3;
mod byzantine;
mod close;
mod crash;
mod driver;
mod fuzz;
mod handshake;
mod htlc;
mod liquidating;
mod payments;
mod recovery;
mod relay;
mod reserve;
mod routing;
mod splice;
mod store;
mod tower;
mod watchtower;

use rsmc::{
	bank::SignedSheet,
	keys::Sr25519Signer,
	store::{MemoryStore, Store},
	Bank, Body, Helper, Message, Policy, Terms,
};
use sp_core::H256;
use sp_runtime::AccountId32;
use std::sync::Arc;
use vbank_primitives::{
	htlc_sheet_payload, sheet_payload, verify_signature, waiver_payload, Balances, ChannelId,
};

pub const GENESIS: H256 = H256([0x47; 32]);
pub const CHANNEL: ChannelId = 7;

pub fn signer(name: &str) -> Arc<Sr25519Signer> {
	Arc::new(Sr25519Signer::from_suri(&format!("//{name}")).unwrap())
}

pub fn account(signer: &Sr25519Signer) -> AccountId32 {
	rsmc::keys::Signer::account(signer)
}

pub fn terms(a: &AccountId32, b: &AccountId32, balances: Balances) -> Terms {
	terms_of(CHANNEL, a, b, balances)
}

pub fn terms_of(channel: ChannelId, a: &AccountId32, b: &AccountId32, balances: Balances) -> Terms {
	Terms {
		channel,
		genesis_hash: GENESIS,
		clients: [a.clone(), b.clone()],
		balances,
		lock_period: 10,
	}
}

/// Deliver `message` to `to`, which must accept it; its reply.
pub fn deliver<S: Store>(to: &mut Helper<S>, message: &Message) -> Option<Message> {
	to.handle(message).unwrap_or_else(|e| panic!("{} refused: {e}", message.body.name())).reply
}

/// `body` in place of `message`'s, signed by `sender` as the real sender would sign it.
pub fn with_body(message: &Message, body: Body, sender: &str) -> Message {
	Message::signed(&GENESIS, message.channel, body, &*signer(sender))
}

/// Alice (client 0) and Bob (client 1) with a bank `CHANNEL` through the handshake.
pub fn opened<S: Store>(
	alice_store: S,
	bob_store: S,
	balances: Balances,
) -> (Helper<S>, Helper<S>) {
	opened_at(CHANNEL, alice_store, bob_store, balances)
}

/// Alice and Bob with a bank `channel` through the handshake.
pub fn opened_at<S: Store, T: Store>(
	channel: ChannelId,
	alice_store: S,
	bob_store: T,
	balances: Balances,
) -> (Helper<S>, Helper<T>) {
	opened_with(channel, Policy::ACCEPT_ALL, alice_store, bob_store, balances)
}

/// Alice and Bob with a bank `CHANNEL` through the handshake and a reserve of 1% of it.
pub fn opened_reserving(balances: Balances) -> (Helper<MemoryStore>, Helper<MemoryStore>) {
	let policy = Policy { reserve_percent: 1, ..Policy::ACCEPT_ALL };
	opened_with(CHANNEL, policy, MemoryStore::default(), MemoryStore::default(), balances)
}

/// Alice and Bob with a bank `channel` through the handshake, both following `policy`.
fn opened_with<S: Store, T: Store>(
	channel: ChannelId,
	policy: Policy,
	alice_store: S,
	bob_store: T,
	balances: Balances,
) -> (Helper<S>, Helper<T>) {
	let alice_signer = signer("Alice");
	let bob_signer = signer("Bob");
	let t = terms_of(channel, &account(&alice_signer), &account(&bob_signer), balances);
	let mut alice = Helper::new(alice_signer, GENESIS, alice_store).unwrap().with_policy(policy);
	let mut bob = Helper::new(bob_signer, GENESIS, bob_store).unwrap().with_policy(policy);
	let open = alice.open(t).unwrap();
	let accept = deliver(&mut bob, &open).unwrap();
	let confirm = deliver(&mut alice, &accept).unwrap();
	assert_eq!(deliver(&mut bob, &confirm), None);
	(alice, bob)
}

/// A payment over a perfect network, from `payer` to `payee`.
pub fn pay<S: Store>(payer: &mut Helper<S>, payee: &mut Helper<S>, amount: u128) {
	pay_on(CHANNEL, payer, payee, amount)
}

/// A payment over a perfect network on bank `channel`.
pub fn pay_on<S: Store, T: Store>(
	channel: ChannelId,
	payer: &mut Helper<S>,
	payee: &mut Helper<T>,
	amount: u128,
) {
	let propose = payer.pay(channel, amount).unwrap();
	let accept = deliver(payee, &propose).unwrap();
	let revoke = deliver(payer, &accept).unwrap();
	assert_eq!(deliver(payee, &revoke), None);
}

/// `bank`'s newest sheet is one it can liquidate with: signed by the peer, over the sheet
/// naming its waiver key; and the peer cannot punish it.
pub fn assert_can_liquidate(bank: &Bank, peer: &Bank) {
	let liquidation = bank.liquidation().expect("an active bank");
	let payload = htlc_sheet_payload(
		&GENESIS,
		liquidation.channel,
		liquidation.nonce,
		&liquidation.balances,
		&liquidation.waiver,
		&liquidation.htlcs,
	);
	assert!(
		verify_signature(&liquidation.peer_signature, &payload, bank.peer()),
		"the newest sheet is not signed by the peer"
	);
	assert!(
		!peer.is_revoked_by_peer(liquidation.nonce),
		"left holding only a revoked sheet (nonce {})",
		liquidation.nonce
	);
}

/// `punisher` can punish `cheat` for every sheet older than its newest.
pub fn assert_can_punish_every_revoked_sheet(punisher: &Bank, cheat: &Bank) {
	let newest = cheat.nonce();
	for nonce in 0..newest {
		let proof = punisher.penalty(nonce).unwrap_or_else(|| panic!("no proof for {nonce}"));
		let payload = waiver_payload(&GENESIS, CHANNEL, nonce);
		assert!(verify_signature(&proof, &payload, &cheat.my_waiver(nonce).unwrap()), "{nonce}");
	}
	assert!(punisher.penalty(newest).is_none(), "the newest sheet is not revoked");
}

/// Both sides hold the same newest sheet and nothing is in flight.
pub fn assert_agree(a: &Bank, b: &Bank) {
	let (la, lb) = (a.ledger().unwrap(), b.ledger().unwrap());
	assert_eq!(la.in_flight, None);
	assert_eq!(lb.in_flight, None);
	let sheet = |s: &SignedSheet| (s.nonce, s.balances, s.htlcs.clone());
	assert_eq!(sheet(&la.sheet), sheet(&lb.sheet));
	assert_eq!((la.peer_nonce, la.peer_balances, la.peer_htlcs.clone()), sheet(&lb.sheet));
}
