//! The seed contract's story played on a live chain through the Rust client: open, deposit,
//! off-chain payments, a stale liquidation punished by a third party, and the honest exit.

use crate::{chain::Chain, node::Node};
use pallet_virtual_bank::{Call as BankCall, Error as BankError, Event as BankEvent};
use sp_core::{crypto::Pair as _, sr25519};
use sp_keyring::Sr25519Keyring;
use sp_runtime::{DispatchError, MultiSignature};
use vbank_primitives::{Balances, Channel, ChannelId, ChannelState, Nonce};
use vbank_runtime::{AccountId, Balance, BlockNumber, Runtime, UNIT};

type Bank = Channel<AccountId, BlockNumber>;

const LOCK: BlockNumber = 3;
const ALICE_BRINGS: Balance = 100 * UNIT;
const BOB_BRINGS: Balance = 50 * UNIT;

fn error(e: BankError<Runtime>) -> DispatchError {
	e.into()
}

/// The pair whose public key is the `waiver` of `owner`'s sheet `nonce` (in the helper these
/// come from BOLT #3 secrets; any fresh key pair plays the part here).
fn waiver_pair(owner: Sr25519Keyring, nonce: Nonce) -> sr25519::Pair {
	sr25519::Pair::from_string(&format!("{}//waiver//{nonce}", owner.to_seed()), None)
		.expect("a valid derivation path")
}

fn bank(chain: &Chain, channel: ChannelId) -> Option<Bank> {
	chain.runtime_api("VirtualBankApi_channel", channel)
}

/// `signer`'s signature on the liquidation payload of a sheet, fetched from the runtime API
/// and checked against the shared primitives' own encoding.
fn sign_sheet(
	chain: &Chain,
	signer: &sr25519::Pair,
	channel: ChannelId,
	nonce: Nonce,
	balances: Balances,
	waiver: &AccountId,
) -> MultiSignature {
	let payload: Vec<u8> =
		chain.runtime_api("VirtualBankApi_sheet_payload", (channel, nonce, balances, waiver));
	assert_eq!(
		payload,
		vbank_primitives::sheet_payload(&chain.genesis, channel, nonce, &balances, waiver),
		"the runtime API and the shared primitives encode the sheet alike"
	);
	MultiSignature::Sr25519(signer.sign(&payload))
}

fn sign_waiver(
	chain: &Chain,
	waiver: &sr25519::Pair,
	channel: ChannelId,
	nonce: Nonce,
) -> MultiSignature {
	let payload: Vec<u8> = chain.runtime_api("VirtualBankApi_waiver_payload", (channel, nonce));
	assert_eq!(payload, vbank_primitives::waiver_payload(&chain.genesis, channel, nonce));
	MultiSignature::Sr25519(waiver.sign(&payload))
}

/// Alice opens a bank with Bob and both fund it; returns its id.
fn open_and_fund(chain: &Chain) -> ChannelId {
	let (alice, bob) = (Sr25519Keyring::Alice, Sr25519Keyring::Bob);
	let open = chain.submit(
		&alice.pair(),
		BankCall::<Runtime>::open {
			peer: bob.to_account_id(),
			my_amount: ALICE_BRINGS,
			peer_amount: BOB_BRINGS,
			lock_period: LOCK,
		},
	);
	open.result.expect("open succeeds");
	let channel = match open.bank_events().as_slice() {
		[BankEvent::Opened { channel, clients, amounts, lock_period }] => {
			assert_eq!(clients, &[alice.to_account_id(), bob.to_account_id()]);
			assert_eq!(amounts, &[ALICE_BRINGS, BOB_BRINGS]);
			assert_eq!(*lock_period, LOCK);
			*channel
		},
		other => panic!("open emitted {other:?}"),
	};
	assert!(chain
		.runtime_api::<Vec<ChannelId>>("VirtualBankApi_channels_of", alice.to_account_id())
		.contains(&channel));

	let held_before = chain.account(&bob.to_account_id()).reserved;
	let deposit = chain.submit(&bob.pair(), BankCall::<Runtime>::deposit { channel });
	deposit.result.expect("Bob's deposit succeeds");
	assert_eq!(
		deposit.bank_events(),
		vec![BankEvent::Deposited { channel, who: bob.to_account_id(), amount: BOB_BRINGS }]
	);
	assert_eq!(chain.account(&bob.to_account_id()).reserved, held_before + BOB_BRINGS);

	let again = chain.submit(&bob.pair(), BankCall::<Runtime>::deposit { channel });
	assert_eq!(again.result, Err(error(BankError::AlreadyDeposited)));

	let deposit = chain.submit(&alice.pair(), BankCall::<Runtime>::deposit { channel });
	deposit.result.expect("Alice's deposit succeeds");
	assert_eq!(
		deposit.bank_events(),
		vec![
			BankEvent::Deposited { channel, who: alice.to_account_id(), amount: ALICE_BRINGS },
			BankEvent::Running { channel },
		]
	);
	assert_eq!(bank(chain, channel).expect("the bank exists").state, ChannelState::Running);
	channel
}

#[test]
fn stale_liquidation_is_punished_by_a_third_party() {
	let node = Node::start(&[]);
	let chain = Chain::connect(&node.url());
	let (alice, bob, charlie) =
		(Sr25519Keyring::Alice, Sr25519Keyring::Bob, Sr25519Keyring::Charlie);
	let channel = open_and_fund(&chain);

	// Two payments off-chain, Alice to Bob: sheets 1 and 2, each signed by Bob for Alice.
	let sheets = [(1, [80 * UNIT, 70 * UNIT]), (2, [60 * UNIT, 90 * UNIT])];
	let signed: Vec<_> = sheets
		.iter()
		.map(|&(nonce, balances)| {
			let waiver = AccountId::from(waiver_pair(alice, nonce).public());
			let signature = sign_sheet(&chain, &bob.pair(), channel, nonce, balances, &waiver);
			(nonce, balances, waiver, signature)
		})
		.collect();
	// Paying the second time, Alice revoked sheet 1 by handing Bob its waiver secret.
	let revealed = waiver_pair(alice, 1);

	let bob_free = chain.account(&bob.to_account_id()).free;
	let alice_before = chain.account(&alice.to_account_id());

	// A sheet Bob never signed is refused and moves nothing.
	let (nonce, balances, waiver, _) = signed[0].clone();
	let forged = MultiSignature::Sr25519(alice.pair().sign(b"not Bob's signature"));
	let refused = chain.submit(
		&alice.pair(),
		BankCall::<Runtime>::liquidate {
			channel,
			nonce,
			balances,
			waiver: waiver.clone(),
			peer_signature: forged,
		},
	);
	assert_eq!(refused.result, Err(error(BankError::BadSignature)));

	// Alice cheats: she liquidates with the stale sheet 1, which pays her more.
	let (nonce, balances, waiver, signature) = signed[0].clone();
	let liquidation = chain.submit(
		&alice.pair(),
		BankCall::<Runtime>::liquidate {
			channel,
			nonce,
			balances,
			waiver,
			peer_signature: signature,
		},
	);
	liquidation.result.expect("a stale but signed sheet liquidates");
	let unlock_at = match liquidation.bank_events().as_slice() {
		[BankEvent::Liquidated {
			channel: c,
			master,
			nonce: 1,
			balances: b,
			unlock_at,
			release_at,
		}] => {
			assert_eq!((*c, master, *b), (channel, &alice.to_account_id(), balances));
			assert_eq!(release_at, unlock_at, "the schedule had room at the lock's end");
			*unlock_at
		},
		other => panic!("liquidate emitted {other:?}"),
	};
	assert_eq!(unlock_at, chain.best_number() + LOCK);
	// Bob's share is released at once; Alice's stays frozen.
	assert_eq!(chain.account(&bob.to_account_id()).free, bob_free + 70 * UNIT);
	let alice_mid = chain.account(&alice.to_account_id());
	assert_eq!(alice_mid.reserved, alice_before.reserved - 20 * UNIT);
	assert_eq!(alice_mid.free, alice_before.free - refused.fee() - liquidation.fee());

	// A watchtower (Charlie) proves sheet 1 revoked; a wrong key is refused first.
	let wrong = sign_waiver(&chain, &waiver_pair(alice, 2), channel, 1);
	let refused = chain.submit(
		&charlie.pair(),
		BankCall::<Runtime>::withdraw_by_peer { channel, waiver_signature: wrong },
	);
	assert_eq!(refused.result, Err(error(BankError::BadSignature)));
	let proof = sign_waiver(&chain, &revealed, channel, 1);
	let punished = chain.submit(
		&charlie.pair(),
		BankCall::<Runtime>::withdraw_by_peer { channel, waiver_signature: proof },
	);
	punished.result.expect("the revealed waiver key takes the frozen share");
	assert_eq!(
		punished.bank_events(),
		vec![BankEvent::WithdrawnByPeer {
			channel,
			who: bob.to_account_id(),
			amount: 80 * UNIT,
			nonce: 1
		}]
	);

	// Bob has everything the bank held; Alice lost her share and got the storage deposit back.
	assert_eq!(chain.account(&bob.to_account_id()).free, bob_free + 150 * UNIT);
	let alice_after = chain.account(&alice.to_account_id());
	let storage_deposit = alice_before.reserved - ALICE_BRINGS;
	assert_eq!(alice_after.reserved, 0);
	assert_eq!(alice_after.free, alice_mid.free + storage_deposit);
	assert_eq!(bank(&chain, channel), None);
	assert!(!chain
		.runtime_api::<Vec<ChannelId>>("VirtualBankApi_channels_of", alice.to_account_id())
		.contains(&channel));
}

#[test]
fn the_lock_of_an_honest_master_ends_by_itself() {
	let node = Node::start(&[]);
	let chain = Chain::connect(&node.url());
	let (alice, bob) = (Sr25519Keyring::Alice, Sr25519Keyring::Bob);
	let channel = open_and_fund(&chain);

	let balances = [70 * UNIT, 80 * UNIT];
	let waiver = AccountId::from(waiver_pair(alice, 1).public());
	let signature = sign_sheet(&chain, &bob.pair(), channel, 1, balances, &waiver);
	let alice_before = chain.account(&alice.to_account_id());
	let liquidation = chain.submit(
		&alice.pair(),
		BankCall::<Runtime>::liquidate {
			channel,
			nonce: 1,
			balances,
			waiver,
			peer_signature: signature,
		},
	);
	liquidation.result.expect("the newest sheet liquidates");
	let unlock_at =
		bank(&chain, channel).and_then(|b| b.liquidation).expect("liquidating").unlock_at;

	let early = chain.submit(&bob.pair(), BankCall::<Runtime>::withdraw_by_master { channel });
	assert_eq!(early.result, Err(error(BankError::StillLocked)));

	// Blocks pass (instant seal makes one per transaction, here Dave's) until the lock is
	// over: nobody sends anything, the chain releases Alice's share in block `unlock_at`.
	let ticks = unlock_at.saturating_sub(chain.best_number());
	chain.advance(&Sr25519Keyring::Dave.pair(), ticks);
	assert_eq!(bank(&chain, channel), None);
	let hash = chain.rpc("chain_getBlockHash", jsonrpsee::rpc_params![unlock_at]);
	let hash = sp_core::H256::from_slice(
		&hex::decode(hash.as_str().expect("a hash").trim_start_matches("0x")).expect("hex"),
	);
	let released: Vec<_> = chain
		.events(hash)
		.into_iter()
		.filter(|record| record.phase == frame_system::Phase::Initialization)
		.map(|record| record.event)
		.collect();
	assert!(
		released.contains(&vbank_runtime::RuntimeEvent::VirtualBank(
			BankEvent::WithdrawnByMaster { channel, who: alice.to_account_id(), amount: 70 * UNIT }
		)),
		"block {unlock_at} released nothing: {released:?}"
	);

	let alice_after = chain.account(&alice.to_account_id());
	assert_eq!(alice_after.reserved, 0);
	assert_eq!(
		alice_after.free,
		alice_before.free + alice_before.reserved - 30 * UNIT - liquidation.fee()
	);

	// The lock being over, the sheet can no longer be disputed.
	let late = chain.submit(
		&bob.pair(),
		BankCall::<Runtime>::withdraw_by_peer {
			channel,
			waiver_signature: sign_waiver(&chain, &waiver_pair(alice, 1), channel, 1),
		},
	);
	assert_eq!(late.result, Err(error(BankError::UnknownChannel)));
}

#[test]
fn a_penalty_needs_no_signer_and_no_fee_and_a_bad_proof_never_reaches_a_block() {
	let node = Node::start(&[]);
	let chain = Chain::connect(&node.url());
	let (alice, bob) = (Sr25519Keyring::Alice, Sr25519Keyring::Bob);
	let channel = open_and_fund(&chain);
	// Alice liquidates with sheet 1, whose waiver secret she had revealed to Bob.
	let (balances, revoked) = ([120 * UNIT, 30 * UNIT], waiver_pair(alice, 1));
	let waiver = AccountId::from(revoked.public());
	let peer_signature = sign_sheet(&chain, &bob.pair(), channel, 1, balances, &waiver);
	chain
		.submit(
			&alice.pair(),
			BankCall::<Runtime>::liquidate { channel, nonce: 1, balances, waiver, peer_signature },
		)
		.result
		.expect("a signed sheet liquidates");
	let bob_before = chain.account(&bob.to_account_id()).free;

	// Anybody, with no account and no money: a proof by the wrong key is refused by the pool.
	let wrong = sign_waiver(&chain, &waiver_pair(alice, 2), channel, 1);
	let refused = chain
		.submit_general(BankCall::<Runtime>::withdraw_by_peer { channel, waiver_signature: wrong });
	let Err(reason) = refused else { panic!("a bad proof was put in a block") };
	assert!(reason.contains("bad signature"), "{reason}");
	assert!(bank(&chain, channel).is_some());

	let proof = sign_waiver(&chain, &revoked, channel, 1);
	let punished = chain
		.submit_general(BankCall::<Runtime>::withdraw_by_peer { channel, waiver_signature: proof })
		.expect("the pool takes a valid penalty");
	punished.result.expect("the penalty succeeds");
	assert_eq!(punished.paid_fee(), None, "somebody paid for the penalty");
	assert_eq!(chain.account(&bob.to_account_id()).free, bob_before + 120 * UNIT);
	assert_eq!(bank(&chain, channel), None);
}
