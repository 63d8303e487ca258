//! A watchtower for others (issue 28, part 4; `docs/tower.md`): it holds at most 49 secrets per
//! bank whatever the number of payments, punishes a liquidation with a sheet they revoke and
//! nothing else, takes updates only signed by a client of a bank on chain, bounds what one
//! client makes it store, and keeps what it holds across restarts.

use super::*;
use rsmc::{
	chain::ChainCall,
	secrets::RevealedSecrets,
	tower::{Tower, TowerError, TowerUpdate},
};
use vbank_primitives::{Channel, ChannelState, Liquidation};

/// A bank of Alice and Bob as the chain has it, liquidated by client `master` with sheet
/// `nonce` whose waiver key is `waiver`, if given.
fn on_chain(liquidated: Option<(u8, u64, AccountId32)>) -> Channel<AccountId32, u64> {
	let clients = [account(&signer("Alice")), account(&signer("Bob"))];
	let liquidation = liquidated.map(|(master, nonce, waiver)| Liquidation {
		master,
		nonce,
		waiver,
		liquidated_at: 30,
		unlock_at: 40,
		release_at: 40,
	});
	let state = match liquidation {
		Some(_) => ChannelState::Liquidating,
		None => ChannelState::Running,
	};
	Channel {
		clients,
		balances: [100, 100],
		deposited: [true, true],
		lock_period: 10,
		state,
		liquidation,
		storage_deposit: 0,
	}
}

/// What Bob learned of Alice's sheets on bank `channel`.
fn learned(bob: &Helper<MemoryStore>, channel: ChannelId) -> RevealedSecrets {
	bob.bank(channel).unwrap().ledger().unwrap().peer_secrets.clone()
}

fn update(bob: &Helper<MemoryStore>, channel: ChannelId, signed_by: &str) -> TowerUpdate {
	TowerUpdate::signed(&GENESIS, channel, &learned(bob, channel), &*signer(signed_by))
}

/// A block within the lock of the liquidations above, which ends at block 40.
const NOW: u64 = 35;

fn tower(store: Arc<MemoryStore>) -> Tower<Arc<MemoryStore>> {
	Tower::open(GENESIS, store, 4).unwrap()
}

#[test]
fn a_tower_punishes_a_revoked_sheet_with_at_most_49_secrets_whatever_the_payments() {
	let (mut alice, mut bob) = opened(MemoryStore::default(), MemoryStore::default(), [500, 500]);
	let mut tower = tower(Default::default());
	let running = on_chain(None);
	let mut largest = 0;
	for n in 1..=600u64 {
		if n % 3 == 0 {
			pay(&mut bob, &mut alice, 1);
		} else {
			pay(&mut alice, &mut bob, 1);
		}
		let update = update(&bob, CHANNEL, "Bob");
		largest = largest.max(update.secrets.len());
		assert_eq!(tower.update(&update, Some(&running)).unwrap(), n, "payment {n}");
	}
	assert!(largest <= 10, "log2 of 600 slots at most, got {largest}");
	assert_eq!(tower.revoked(CHANNEL, &account(&signer("Bob"))), Some(600));

	// Alice liquidates with any sheet before her newest: the tower proves it revoked.
	let alice_bank = alice.bank(CHANNEL).unwrap();
	for nonce in [0, 1, 299, 599] {
		let waiver = alice_bank.my_waiver(nonce).unwrap();
		let cheat = on_chain(Some((0, nonce, waiver.clone())));
		let Some(ChainCall::WithdrawByPeer { channel, waiver_signature }) =
			tower.penalty(CHANNEL, &cheat, NOW)
		else {
			panic!("no penalty for sheet {nonce}")
		};
		assert_eq!(channel, CHANNEL);
		let payload = waiver_payload(&GENESIS, CHANNEL, nonce);
		assert!(verify_signature(&waiver_signature, &payload, &waiver), "sheet {nonce}");
		// Once the lock has ended the chain takes no penalty: none is owed.
		assert_eq!(tower.penalty(CHANNEL, &cheat, 40), None);
	}
	// Her newest sheet is hers to liquidate with; and nothing the tower holds touches Bob's.
	let newest = alice_bank.my_waiver(600).unwrap();
	assert_eq!(tower.penalty(CHANNEL, &on_chain(Some((0, 600, newest))), NOW), None);
	let bob_bank = bob.bank(CHANNEL).unwrap();
	for nonce in [0, 599, 600] {
		let waiver = bob_bank.my_waiver(nonce).unwrap();
		assert_eq!(tower.penalty(CHANNEL, &on_chain(Some((1, nonce, waiver))), NOW), None);
	}
	// A waiver key the secrets do not give (another sheet's): the chain would refuse it.
	let other = alice_bank.my_waiver(5).unwrap();
	assert_eq!(tower.penalty(CHANNEL, &on_chain(Some((0, 4, other))), NOW), None);
}

#[test]
fn a_tower_takes_only_a_clients_signed_updates_of_one_chain_and_bounds_them() {
	let (mut alice, mut bob) = opened(MemoryStore::default(), MemoryStore::default(), [500, 500]);
	for _ in 0..5 {
		pay(&mut alice, &mut bob, 1);
	}
	let running = on_chain(None);
	let mut tower = tower(Default::default());
	let good = update(&bob, CHANNEL, "Bob");
	let held = |tower: &Tower<_>| tower.revoked(CHANNEL, &account(&signer("Bob")));

	// Charlie names Bob, or signs as himself; a bank the chain has not; another chain's.
	let mut forged = update(&bob, CHANNEL, "Charlie");
	forged.client = account(&signer("Bob"));
	assert!(matches!(tower.update(&forged, Some(&running)), Err(TowerError::BadSignature)));
	let charlie = update(&bob, CHANNEL, "Charlie");
	assert!(matches!(
		tower.update(&charlie, Some(&running)),
		Err(TowerError::NotAClient { channel: CHANNEL })
	));
	assert!(matches!(
		tower.update(&good, None::<&Channel<AccountId32, u64>>),
		Err(TowerError::UnknownBank(CHANNEL))
	));
	let elsewhere =
		TowerUpdate::signed(&H256([1; 32]), CHANNEL, &learned(&bob, CHANNEL), &*signer("Bob"));
	assert!(matches!(tower.update(&elsewhere, Some(&running)), Err(TowerError::BadSignature)));
	assert_eq!(held(&tower), None);

	// A slot left out is not the whole store; then the good one.
	let mut partial = good.clone();
	partial.secrets.pop();
	let partial = TowerUpdate::sign(&GENESIS, CHANNEL, partial.secrets, &*signer("Bob"));
	assert!(matches!(tower.update(&partial, Some(&running)), Err(TowerError::Secrets(_))));
	assert_eq!(tower.update(&good, Some(&running)).unwrap(), 5);

	// Replayed or older: nothing changes.
	let older = good.clone();
	pay(&mut alice, &mut bob, 1);
	let newer = update(&bob, CHANNEL, "Bob");
	assert_eq!(tower.update(&newer, Some(&running)).unwrap(), 6);
	assert_eq!(tower.update(&older, Some(&running)).unwrap(), 6);
	assert_eq!(held(&tower), Some(6));

	// Secrets of another chain of the same length: refused, the held ones kept.
	let (mut alice8, mut bob8) =
		opened_at(8, MemoryStore::default(), MemoryStore::default(), [500, 500]);
	for _ in 0..7 {
		pay_on(8, &mut alice8, &mut bob8, 1);
	}
	let other_chain = TowerUpdate::signed(&GENESIS, CHANNEL, &learned(&bob8, 8), &*signer("Bob"));
	assert!(matches!(tower.update(&other_chain, Some(&running)), Err(TowerError::Secrets(_))));
	assert_eq!(held(&tower), Some(6));

	// More slots than a store has: refused before anything else is looked at.
	let mut long = good.clone();
	long.secrets = vec![(1, [0; 32]); 50];
	assert!(matches!(
		tower.update(&long, Some(&running)),
		Err(TowerError::TooManySecrets { got: 50 })
	));

	// Nothing revoked yet: answered, and not kept.
	let empty = TowerUpdate::signed(&GENESIS, 99, &RevealedSecrets::default(), &*signer("Bob"));
	assert_eq!(tower.update(&empty, Some(&running)).unwrap(), 0);
	assert_eq!(tower.revoked(99, &account(&signer("Bob"))), None);

	// At most `limit` banks of one client: the fifth of Bob's is refused.
	let some = learned(&bob, CHANNEL);
	for channel in 100..103 {
		let update = TowerUpdate::signed(&GENESIS, channel, &some, &*signer("Bob"));
		assert_eq!(tower.update(&update, Some(&running)).unwrap(), 6);
	}
	let fifth = TowerUpdate::signed(&GENESIS, 103, &some, &*signer("Bob"));
	assert!(matches!(
		tower.update(&fifth, Some(&running)),
		Err(TowerError::TooManyBanks { limit: 4 })
	));
	let alices = TowerUpdate::signed(&GENESIS, 103, &some, &*signer("Alice"));
	assert_eq!(tower.update(&alices, Some(&running)).unwrap(), 6, "another client's");
	let _ = alice;
}

#[test]
fn a_tower_keeps_what_it_holds_across_restarts_and_forgets_removed_banks() {
	let (mut alice, mut bob) = opened(MemoryStore::default(), MemoryStore::default(), [500, 500]);
	for _ in 0..9 {
		pay(&mut alice, &mut bob, 1);
	}
	let store = Arc::new(MemoryStore::default());
	let mut first = tower(store.clone());
	first.update(&update(&bob, CHANNEL, "Bob"), Some(&on_chain(None))).unwrap();
	drop(first);

	let mut again = tower(store.clone());
	assert_eq!(again.channels(), vec![CHANNEL]);
	assert_eq!(again.revoked(CHANNEL, &account(&signer("Bob"))), Some(9));
	let waiver = alice.bank(CHANNEL).unwrap().my_waiver(3).unwrap();
	let cheat = on_chain(Some((0, 3, waiver)));
	assert!(matches!(again.penalty(CHANNEL, &cheat, NOW), Some(ChainCall::WithdrawByPeer { .. })));

	again.forget(CHANNEL).unwrap();
	assert_eq!(again.penalty(CHANNEL, &cheat, NOW), None);
	let after = tower(store);
	assert_eq!(after.channels(), Vec::<ChannelId>::new());
}
