//! Forks on demand (`--consensus manual`: a block only when `engine_createBlock` asks, on the
//! parent it names; final only when it or `engine_finalizeBlock` says so). What the helpers
//! believe follows the best chain through a reorg, and what no fork can undo waits for
//! finality: a liquidation on a branch that overtakes the old one below its height is
//! answered; a bank closed in a best block is forgotten only once that block is final.

use crate::{
	chain::Chain,
	helpers::{addr, assert_gained, bank_events, on_chain, snapshot, view, wait_until, AMOUNT},
	htlc::open,
	node::Node,
};
use jsonrpsee::rpc_params;
use sp_core::H256;
use sp_keyring::Sr25519Keyring::{Alice, Bob};
use std::{
	sync::{
		atomic::{AtomicU8, Ordering},
		Arc,
	},
	thread::JoinHandle,
	time::Duration,
};
use vbank_primitives::ChannelId;
use vbank_runtime::UNIT;

type BankEvent = pallet_virtual_bank::Event<vbank_runtime::Runtime>;

const HELPERS: [&str; 5] =
	["--rsmc-account", "//Alice", "--rsmc-account", "//Bob", "--rsmc-test-cheats"];

/// What the [`Sealer`] does with the transactions the pool holds.
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Sealing {
	/// Nothing: the test makes its blocks itself.
	Off,
	/// A block on the best one, left unfinalized.
	Best,
	/// A block on the best one, finalized at once.
	Final,
	/// The thread ends.
	Stop,
}

/// Seals the pool's transactions every 100 ms, as its mode says: what instant-seal does for a
/// development chain, driven over `engine_createBlock`.
struct Sealer {
	mode: Arc<AtomicU8>,
	thread: Option<JoinHandle<()>>,
}

impl Sealer {
	fn start(url: &str, mode: Sealing) -> Sealer {
		let shared = Arc::new(AtomicU8::new(mode as u8));
		let (url, mode) = (url.to_string(), shared.clone());
		let thread = std::thread::spawn(move || {
			let chain = Chain::connect(&url);
			loop {
				let finalize = match mode.load(Ordering::SeqCst) {
					m if m == Sealing::Stop as u8 => return,
					m if m == Sealing::Final as u8 => true,
					m if m == Sealing::Best as u8 => false,
					_ => {
						std::thread::sleep(Duration::from_millis(20));
						continue;
					},
				};
				// Refused when the pool is empty: nothing to seal.
				let _ =
					chain.try_rpc("engine_createBlock", rpc_params![false, finalize, None::<H256>]);
				std::thread::sleep(Duration::from_millis(100));
			}
		});
		Sealer { mode: shared, thread: Some(thread) }
	}

	fn set(&self, mode: Sealing) {
		self.mode.store(mode as u8, Ordering::SeqCst);
		// A block being sealed in the old mode is done once the thread has slept.
		std::thread::sleep(Duration::from_millis(300));
	}
}

impl Drop for Sealer {
	fn drop(&mut self) {
		self.mode.store(Sealing::Stop as u8, Ordering::SeqCst);
		if let Some(thread) = self.thread.take() {
			let _ = thread.join();
		}
	}
}

fn hash(value: &serde_json::Value) -> H256 {
	let text = value.as_str().unwrap_or_else(|| panic!("a block hash: {value}"));
	let bytes = hex::decode(text.trim_start_matches("0x")).expect("hex");
	H256::from_slice(&bytes)
}

/// A block on `parent`, with what the pool holds, not finalized.
fn block_on(chain: &Chain, parent: H256) -> H256 {
	let made = chain.rpc("engine_createBlock", rpc_params![true, false, Some(parent)]);
	hash(&made["hash"])
}

/// Whether block `block` liquidates a bank with the sheet of nonce `nonce`.
fn liquidated_in(chain: &Chain, block: H256, nonce: u64) -> bool {
	chain.events(block).into_iter().any(|record| {
		matches!(
			record.event,
			vbank_runtime::RuntimeEvent::VirtualBank(BankEvent::Liquidated { nonce: n, .. })
				if n == nonce
		)
	})
}

fn best(chain: &Chain) -> H256 {
	hash(&chain.rpc("chain_getBlockHash", rpc_params![]))
}

/// A `--consensus manual` node serving Alice and Bob, a bank between them in which Alice paid
/// 100 VBK three times (nonce 3), every block so far final, and the sealer off: the test makes
/// the next blocks itself.
fn paid_three_times() -> (Node, Chain, Sealer, ChannelId) {
	let node = Node::start(&[&["--consensus", "manual"][..], &HELPERS].concat());
	let chain = Chain::connect(&node.url());
	let sealer = Sealer::start(&node.url(), Sealing::Final);
	let channel = open(&chain, Alice, Bob, [AMOUNT, AMOUNT], None);
	for _ in 0..3 {
		chain.rpc("rsmc_pay", rpc_params![addr(Alice), channel, (100 * UNIT).to_string()]);
	}
	sealer.set(Sealing::Off);
	(node, chain, sealer, channel)
}

/// A node that follows the chain by height saw only the block at the new height after a
/// reorg: a cheat's liquidation in a block of the new branch below the height the old branch
/// had reached went unseen, and the victim's watchtower never answered it. Alice's revoked
/// sheet goes into block B1 on a branch forked from P, while the best chain is P–A1–A2; B2
/// and B3 make the branch the best chain. Bob's watchtower punishes.
#[test]
fn a_liquidation_on_a_branch_that_overtakes_the_best_chain_below_its_height_is_punished() {
	let (node, chain, sealer, channel) = paid_three_times();
	let (alice_before, bob_before) = (snapshot(&chain, Alice), snapshot(&chain, Bob));

	let fork = best(&chain);
	let a1 = block_on(&chain, fork);
	let a2 = block_on(&chain, a1);
	assert_eq!(best(&chain), a2);
	let url = node.url();
	let _cheat = std::thread::spawn(move || {
		let chain = Chain::connect(&url);
		chain.try_rpc("rsmc_liquidateRevoked", rpc_params![addr(Alice), channel, 0])
	});
	wait_until("the cheat's liquidation is in the pool", Duration::from_secs(30), || {
		let pending = chain.rpc("author_pendingExtrinsics", rpc_params![]);
		pending.as_array().is_some_and(|p| !p.is_empty())
	});
	let b1 = block_on(&chain, fork);
	assert!(liquidated_in(&chain, b1, 0), "the revoked sheet is liquidated with in B1");
	assert_eq!(best(&chain), a2, "B1 is below the best block");
	let b2 = block_on(&chain, b1);
	let b3 = block_on(&chain, b2);
	assert_eq!(best(&chain), b3, "the branch of B1 is the best chain");

	sealer.set(Sealing::Final);
	wait_until("Bob's watchtower punishes the cheat", Duration::from_secs(60), || {
		on_chain(&chain, channel).is_none()
	});
	let events = bank_events(&chain, alice_before.block + 1);
	let penalty =
		BankEvent::WithdrawnByPeer { channel, who: Bob.to_account_id(), amount: AMOUNT, nonce: 0 };
	assert!(events.contains(&penalty), "{events:?}");
	assert_gained(&chain, Bob, &bob_before, 2 * AMOUNT);
	assert_gained(&chain, Alice, &alice_before, crate::helpers::open_deposit());
	wait_until("both helpers forget the bank", Duration::from_secs(30), || {
		view(&chain, Alice, channel).is_none() && view(&chain, Bob, channel).is_none()
	});
}

/// A bank the best block removed could come back on a fork: its helpers keep it, and what it
/// owes, until that block is final. Closed in an unfinalized block, the bank is still in both
/// helpers' views; once the block is finalized, both forget it.
#[test]
fn a_bank_closed_in_a_best_block_is_forgotten_once_that_block_is_final() {
	let node = Node::start(&[&["--consensus", "manual"][..], &HELPERS].concat());
	let chain = Chain::connect(&node.url());
	let sealer = Sealer::start(&node.url(), Sealing::Final);
	let channel = open(&chain, Alice, Bob, [AMOUNT, AMOUNT], None);
	chain.rpc("rsmc_pay", rpc_params![addr(Alice), channel, (100 * UNIT).to_string()]);

	sealer.set(Sealing::Best);
	chain.rpc("rsmc_close", rpc_params![addr(Alice), channel]);
	assert!(on_chain(&chain, channel).is_none(), "the best block removed the bank");
	let closed_in = best(&chain);
	sealer.set(Sealing::Off);
	// The watchtower has seen the block (and a second more to act on it).
	std::thread::sleep(Duration::from_secs(2));
	for who in [Alice, Bob] {
		assert!(view(&chain, who, channel).is_some(), "{who:?} keeps the bank until it is final");
	}
	chain.rpc("engine_finalizeBlock", rpc_params![closed_in]);
	wait_until("both helpers forget the bank once it is final", Duration::from_secs(30), || {
		view(&chain, Alice, channel).is_none() && view(&chain, Bob, channel).is_none()
	});
	drop(sealer);
}

/// A liquidation in a block a reorg drops, never included again, left both helpers believing
/// the bank liquidated (they sign nothing more) while the chain ran it: nobody could pay, and
/// the liquidation, still valid, could come back any time. Alice liquidates in A1 on P; her
/// transaction is taken out of the pool (`author_removeExtrinsic`) before the branch P–B1–B2
/// overtakes A1, and again once the reorg has put it back, so that the best chain never holds
/// it. Once the branch is final the helpers liquidate again with the newest sheet, the chain
/// ends liquidated at it, and both accounts' next transactions go through (none waits on the
/// nonce the dropped block had taken).
#[test]
fn a_liquidation_a_reorg_drops_for_good_is_made_again_with_the_newest_sheet() {
	let (node, chain, sealer, channel) = paid_three_times();

	let fork = best(&chain);
	let url = node.url();
	let _liquidation = std::thread::spawn(move || {
		let chain = Chain::connect(&url);
		chain.try_rpc("rsmc_liquidate", rpc_params![addr(Alice), channel])
	});
	let pending = || chain.rpc("author_pendingExtrinsics", rpc_params![]);
	wait_until("Alice's liquidation is in the pool", Duration::from_secs(30), || {
		pending().as_array().is_some_and(|p| !p.is_empty())
	});
	let liquidation = pending()[0].clone();
	let a1 = block_on(&chain, fork);
	assert!(liquidated_in(&chain, a1, 3), "Alice liquidates with the newest sheet in A1");
	// Both watchtowers have read A1: neither helper pays on the bank any more.
	wait_until("both helpers see the liquidation", Duration::from_secs(30), || {
		[Alice, Bob].iter().all(|who| {
			chain
				.try_rpc("rsmc_pay", rpc_params![addr(*who), channel, UNIT.to_string()])
				.is_err_and(|e| e.to_string().contains("liquidat"))
		})
	});

	let remove = || {
		let removing = serde_json::json!({ "extrinsic": liquidation.clone() });
		chain.rpc("author_removeExtrinsic", rpc_params![[removing]]);
	};
	remove();
	let b1 = block_on(&chain, fork);
	let b2 = block_on(&chain, b1);
	assert_eq!(best(&chain), b2, "the branch without the liquidation is the best chain");
	// The pool takes back what the dropped block held; out of it again, nothing brings the
	// liquidation back (as when another transaction of Alice's takes its nonce on the branch).
	wait_until("the pool takes the dropped liquidation back", Duration::from_secs(30), || {
		pending().as_array().is_some_and(|p| p.contains(&liquidation))
	});
	remove();
	assert!(!pending().as_array().is_some_and(|p| p.contains(&liquidation)));
	assert!(
		on_chain(&chain, channel).is_some_and(|bank| bank.liquidation.is_none()),
		"the chain runs the bank again"
	);
	// Until the branch is final the helpers wait: the pool may still bring it back.
	std::thread::sleep(Duration::from_secs(2));
	assert!(pending().as_array().is_some_and(|p| p.is_empty()), "nothing submitted yet");

	sealer.set(Sealing::Final);
	chain.rpc("engine_finalizeBlock", rpc_params![b2]);
	wait_until(
		"the bank is liquidated again, at the newest sheet",
		Duration::from_secs(60),
		|| {
			on_chain(&chain, channel)
				.and_then(|bank| bank.liquidation)
				.is_some_and(|liquidation| liquidation.nonce == 3)
		},
	);
	for who in [Alice, Bob] {
		let bank = view(&chain, who, channel).expect("the helpers keep the bank");
		assert_eq!(bank["state"], "Liquidating", "{who:?}: {bank}");
		assert_eq!(bank["nonce"], 3, "{who:?}");
	}
	// Both accounts sign again: neither waits on a nonce the dropped block took.
	let another = open(&chain, Alice, Bob, [AMOUNT, AMOUNT], None);
	assert_ne!(another, channel);
	drop(sealer);
}
