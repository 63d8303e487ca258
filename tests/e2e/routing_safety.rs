//! The two runs at the top of issue 26 (the HTLC review's C2 and M3), from outside, as a
//! user's nodes meet them: a payee's node that merely freezes must not cost the honest
//! intermediary its money, and a stranger's banks on chain must not stop a node; and the
//! review's C3 (an HTLC out on a liquidated bank) and C4 (many claims before their expiry).

use crate::{
	chain::Chain,
	helpers::{addr, balances, on_chain, two_nodes_with, view, wait_until, AMOUNT},
	htlc::open,
};
use jsonrpsee::rpc_params;
use sp_keyring::Sr25519Keyring::{self, Alice, Bob, Charlie, Dave};
use std::time::Duration;
use vbank_primitives::{Balance, Balances, ChannelId};
use vbank_runtime::UNIT;

/// `who`'s newest sheet of `channel`: its balances and how many HTLCs are pending.
fn sheet(chain: &Chain, who: Sr25519Keyring, channel: ChannelId) -> (Balances, usize) {
	let bank = view(chain, who, channel).expect("the helper holds the bank");
	(balances(&bank["balances"]), bank["htlcs"].as_array().map_or(0, Vec::len))
}

/// `payer` sends `amount` to `payee` against `lock` through `chain`'s node: the answer, or
/// the error as "code: message".
fn send(
	chain: &Chain,
	payer: Sr25519Keyring,
	payee: Sr25519Keyring,
	amount: Balance,
	lock: &str,
) -> Result<serde_json::Value, String> {
	let params = rpc_params![addr(payer), addr(payee), amount.to_string(), lock];
	chain.try_rpc("rsmc_send", params).map_err(|e| match e {
		jsonrpsee::core::ClientError::Call(e) => format!("{}: {}", e.code(), e.message()),
		e => e.to_string(),
	})
}

/// Alice's and Bob's helpers on an authoring node, Charlie's on a second one following it
/// (both started with `flags`), with banks Alice–Bob and Bob–Charlie of `AMOUNT` each side.
struct Split {
	alice_bob: crate::node::Node,
	charlie: crate::node::Node,
	/// Alice's and Bob's node, and Charlie's.
	a: Chain,
	c: Chain,
	ab: ChannelId,
	bc: ChannelId,
}

impl Split {
	fn start(flags: &[&str]) -> Split {
		let first = [&["--rsmc-account", "//Alice", "--rsmc-account", "//Bob"], flags].concat();
		let second = [&["--rsmc-account", "//Charlie"], flags].concat();
		let (alice_bob, charlie) = two_nodes_with(&first, &second, None);
		let (a, c) = (Chain::connect(&alice_bob.url()), Chain::connect(&charlie.url()));
		let ab = open(&a, Alice, Bob, [AMOUNT, AMOUNT], None);
		let bc = open(&a, Bob, Charlie, [AMOUNT, AMOUNT], Some(charlie.url()));
		wait_until("Charlie's node sees Bob–Charlie running", Duration::from_secs(30), || {
			on_chain(&c, bc).is_some_and(|b| b.deposited == [true, true])
		});
		Split { alice_bob, charlie, a, c, ab, bc }
	}
}

fn invoice(chain: &Chain, payee: Sr25519Keyring, amount: Balance) -> String {
	let invoice = chain.rpc("rsmc_invoice", rpc_params![addr(payee), amount.to_string()]);
	invoice["hashlock"].as_str().expect("a hashlock").to_string()
}

/// C2, honest variant: Alice and Bob on one node, Charlie on another that freezes while
/// Alice pays him through Bob. Before the fix Bob failed Alice's HTLC upstream (1001), then
/// sent the same update again on his next step, Charlie settled it: Bob paid 5 VBK he never
/// got. Now Bob keeps the incoming HTLC while his offer is out; Alice hears 1002 (pending),
/// a retry under the same lock is refused, and once Charlie is back the payment completes
/// on both banks, Bob whole.
#[test]
fn a_payee_whose_node_freezes_costs_the_intermediary_nothing() {
	let Split { alice_bob, charlie, a, c, ab, bc } = Split::start(&["--rsmc-peer-timeout", "5"]);
	let amount = 5 * UNIT;
	let lock = invoice(&c, Charlie, amount);

	charlie.pause();
	let answer = send(&a, Alice, Charlie, amount, &lock);
	let error = answer.as_ref().expect_err("Charlie's node is frozen");
	assert!(error.starts_with("1002"), "still pending, not failed: {error}");
	let retry = send(&a, Alice, Charlie, amount, &lock);
	let retry = retry.as_ref().expect_err("the first HTLC is still out");
	assert!(retry.starts_with("1005") && retry.contains("still pending"), "{retry}");
	assert_eq!(sheet(&a, Bob, ab), ([AMOUNT - amount, AMOUNT], 1), "Bob kept Alice's HTLC");
	charlie.resume();

	// Bob's next step on Bob–Charlie sends his update again; Charlie takes and settles it.
	a.rpc("rsmc_pay", rpc_params![addr(Bob), bc, "1"]);
	let paid_ab = [AMOUNT - amount, AMOUNT + amount];
	let paid_bc = [AMOUNT - amount - 1, AMOUNT + amount + 1];
	wait_until("the payment completes on both banks", Duration::from_secs(60), || {
		sheet(&a, Alice, ab) == (paid_ab, 0)
			&& sheet(&a, Bob, ab) == (paid_ab, 0)
			&& sheet(&a, Bob, bc) == (paid_bc, 0)
			&& sheet(&c, Charlie, bc) == (paid_bc, 0)
	});
	let bob = sheet(&a, Bob, ab).0[1] + sheet(&a, Bob, bc).0[0];
	assert_eq!(bob, 2 * AMOUNT - 1, "Bob is whole but for the planck he paid");
	drop((alice_bob, charlie));
}

/// C2's other end: Charlie's node freezes for good. Bob's offer to him never became final,
/// so when it expires Bob goes on chain with his newest sheet, which does not carry it: the
/// outgoing HTLC is gone for good, and only then is Alice's failed back to her, off chain,
/// before its own expiry would force Alice–Bob on chain too. Nobody loses anything.
#[test]
fn an_offer_to_a_payee_frozen_for_good_is_failed_upstream_once_gone_on_chain() {
	let flags = ["--rsmc-peer-timeout", "5", "--rsmc-htlc-delta", "12"];
	let Split { alice_bob, charlie, a, c, ab, bc } = Split::start(&flags);
	let amount = 5 * UNIT;
	let lock = invoice(&c, Charlie, amount);
	charlie.pause();
	let error = send(&a, Alice, Charlie, amount, &lock).expect_err("Charlie's node is frozen");
	assert!(error.starts_with("1002"), "{error}");
	assert_eq!(sheet(&a, Bob, ab), ([AMOUNT - amount, AMOUNT], 1));

	// Blocks pass (one per remark of Dave's) until Bob's offer has expired.
	let mut blocks = 0;
	while sheet(&a, Alice, ab) != ([AMOUNT, AMOUNT], 0) {
		assert!(blocks < 40, "Alice's HTLC was never failed back: {}", alice_bob.log_tail());
		a.advance(&Dave.pair(), 1);
		blocks += 1;
		std::thread::sleep(Duration::from_millis(300));
	}
	wait_until("Bob sees Alice–Bob settled back", Duration::from_secs(30), || {
		sheet(&a, Bob, ab) == ([AMOUNT, AMOUNT], 0)
	});
	let bank = on_chain(&a, bc).expect("Bob–Charlie is held for its lock");
	let liquidation = bank.liquidation.expect("Bob went on chain with Bob–Charlie");
	// Bob (client 0) with his sheet 0, which lacks the HTLC.
	assert_eq!((liquidation.master, liquidation.nonce), (0, 0));
	assert!(on_chain(&a, ab).is_some_and(|b| b.liquidation.is_none()), "Alice–Bob runs on");
	charlie.resume();
	drop((alice_bob, charlie));
}

/// M3: Dave, with no helper, opens banks on chain naming Alice and Charlie (a zero share
/// counts as deposited, so each is Running at once) and never speaks to their helpers.
/// Before the fix Alice's next `rsmc_send` panicked on "our own bank" and the node exited.
/// Now a bank that names us but that our helper does not hold is no route of ours; and once
/// both banks close, each account on chain holds to the planck what it started with, less its
/// fees, plus what the payments say (Bob his forwarding fees).
#[test]
fn a_strangers_banks_on_chain_naming_us_neither_stop_the_node_nor_draw_routes() {
	const FEE: Balance = 1_000;
	let accounts = ["--rsmc-account", "//Alice", "--rsmc-account", "//Bob"];
	let node = crate::node::Node::start(
		&[&accounts[..], &["--rsmc-account", "//Charlie", "--rsmc-forward-fee", "1000"]].concat(),
	);
	let chain = Chain::connect(&node.url());
	let clients = [Alice, Bob, Charlie];
	let free = |who: Sr25519Keyring| chain.account(&who.to_account_id()).free;
	let from = chain.best_number() + 1;
	let started = clients.map(free);
	let ab = open(&chain, Alice, Bob, [AMOUNT, AMOUNT], None);
	let bc = open(&chain, Bob, Charlie, [AMOUNT, AMOUNT], None);
	for victim in [Alice, Charlie] {
		let call = pallet_virtual_bank::Call::open {
			peer: victim.to_account_id(),
			my_amount: 50 * UNIT,
			peer_amount: 0,
			lock_period: 10,
		};
		let opened = chain.submit(&Dave.pair(), call);
		assert!(opened.result.is_ok(), "{:?}", opened.result);
		let channel = opened
			.events
			.iter()
			.find_map(|e| match e {
				vbank_runtime::RuntimeEvent::VirtualBank(pallet_virtual_bank::Event::Opened {
					channel,
					..
				}) => Some(*channel),
				_ => None,
			})
			.expect("an Opened event");
		let deposited = chain.submit(&Dave.pair(), pallet_virtual_bank::Call::deposit { channel });
		assert!(deposited.result.is_ok(), "{:?}", deposited.result);
		assert_eq!(
			on_chain(&chain, channel).map(|b| b.state),
			Some(vbank_primitives::ChannelState::Running)
		);
	}
	let mut paid = 0;
	for i in 0..3 {
		let amount = UNIT + i;
		let lock = invoice(&chain, Charlie, amount);
		let sent = send(&chain, Alice, Charlie, amount, &lock)
			.unwrap_or_else(|e| panic!("payment {i}: {e}"));
		assert_eq!(sent["route"], serde_json::json!([ab, bc]), "payment {i}");
		paid += amount;
	}
	// The node is still there: chain, helpers and all.
	assert!(chain.best_number() > 0);
	assert_eq!(sheet(&chain, Alice, ab).1, 0);

	// Both banks close; the money is counted on chain.
	for (who, channel) in [(Alice, ab), (Charlie, bc)] {
		let closed = chain.rpc("rsmc_close", rpc_params![addr(who), channel]);
		assert_eq!(closed["how"], "close", "{closed}");
	}
	wait_until("both banks are gone from the chain", Duration::from_secs(30), || {
		on_chain(&chain, ab).is_none() && on_chain(&chain, bc).is_none()
	});
	let to = chain.best_number();
	let fees = 3 * FEE;
	let moved = [-((paid + fees) as i128), fees as i128, paid as i128];
	for (i, who) in clients.into_iter().enumerate() {
		let fees_paid = chain.fees_paid(&who.to_account_id(), from, to);
		let expected = (started[i] as i128 - fees_paid as i128 + moved[i]) as Balance;
		assert_eq!(free(who), expected, "{who:?} on chain, to the planck");
	}
}

/// The HTLCs bank `channel` had claimed on chain in blocks `from..=to`: the block of each
/// claim, and its amount.
fn claims(chain: &Chain, channel: ChannelId, from: u32, to: u32) -> Vec<(u32, Balance)> {
	(from..=to)
		.flat_map(|number| {
			chain.events_between(number, number).into_iter().filter_map(move |e| match e {
				vbank_runtime::RuntimeEvent::VirtualBank(
					pallet_virtual_bank::Event::HtlcClaimed { channel: c, amount, .. },
				) if c == channel => Some((number, amount)),
				_ => None,
			})
		})
		.collect()
}

/// The shares of the sheet bank `channel` was liquidated with, from block `from` on.
fn liquidated(chain: &Chain, channel: ChannelId, from: u32) -> Balances {
	chain
		.events_between(from, chain.best_number())
		.into_iter()
		.find_map(|e| match e {
			vbank_runtime::RuntimeEvent::VirtualBank(pallet_virtual_bank::Event::Liquidated {
				channel: c,
				balances,
				..
			}) if c == channel => Some(balances),
			_ => None,
		})
		.unwrap_or_else(|| panic!("bank {channel} was not liquidated"))
}

/// C4: claims went one per bank and one transaction per account per block, so an
/// intermediary owed many HTLCs on a bank could claim only some before they expired. Alice
/// pays Charlie 15 times through Bob while Charlie's node holds the HTLCs, and Alice's helper
/// answers Bob no more. Charlie's node restarts (the hold is a test's, forgotten) and settles
/// all 15 with Bob; Bob's settlements upstream go unanswered, so he liquidates Alice–Bob and
/// claims there: all 15 claims authorize themselves (no signer, no nonce) and land in the
/// block after the liquidation (or the next, if a seal falls among their submissions), on a
/// chain sealing every 400 ms. Bob is whole to the planck: what he paid Charlie he claimed
/// from Alice.
#[test]
fn an_intermediary_claims_fifteen_htlcs_upstream_at_once() {
	const COUNT: u128 = 15;
	let flags = ["--rsmc-test-cheats", "--rsmc-peer-timeout", "5", "--rsmc-htlc-delta", "200"];
	let accounts = ["--rsmc-account", "//Alice", "--rsmc-account", "//Bob"];
	let first = [&accounts[..], &["--consensus", "manual-seal-400"], &flags].concat();
	let second = [&["--rsmc-account", "//Charlie"][..], &flags].concat();
	let charlie_dir = tempfile::tempdir().expect("a temporary directory");
	let (alice_bob, mut charlie) = two_nodes_with(&first, &second, Some(charlie_dir.path()));
	let a = Chain::connect(&alice_bob.url());
	let ab = open(&a, Alice, Bob, [AMOUNT, AMOUNT], None);
	let bc = open(&a, Bob, Charlie, [AMOUNT, AMOUNT], Some(charlie.url()));
	let c = Chain::connect(&charlie.url());
	wait_until("Charlie's node sees Bob–Charlie running", Duration::from_secs(30), || {
		on_chain(&c, bc).is_some_and(|b| b.deposited == [true, true])
	});
	c.rpc("rsmc_testHold", rpc_params![addr(Charlie)]);
	a.rpc("rsmc_testIgnore", rpc_params![addr(Alice), ab]);

	let amounts: Vec<Balance> = (0..COUNT).map(|i| UNIT + i).collect();
	let locks: Vec<String> = amounts.iter().map(|amount| invoice(&c, Charlie, *amount)).collect();
	std::thread::scope(|threads| {
		for (amount, lock) in amounts.iter().zip(&locks) {
			let url = alice_bob.url();
			threads.spawn(move || {
				let error = send(&Chain::connect(&url), Alice, Charlie, *amount, lock)
					.expect_err("Charlie's node holds the HTLC");
				assert!(error.starts_with("1002"), "pending, not failed: {error}");
			});
		}
	});
	let total: Balance = amounts.iter().sum();
	assert_eq!(sheet(&a, Bob, ab), ([AMOUNT - total, AMOUNT], COUNT as usize));
	assert_eq!(sheet(&a, Bob, bc), ([AMOUNT - total, AMOUNT], COUNT as usize));

	let from = a.best_number() + 1;
	charlie.kill();
	charlie.restart();
	let c = Chain::connect(&charlie.url());
	wait_until("Charlie settles all 15 with Bob", Duration::from_secs(60), || {
		sheet(&c, Charlie, bc) == ([AMOUNT - total, AMOUNT + total], 0)
	});
	wait_until("Bob claims all 15 from Alice on chain", Duration::from_secs(90), || {
		claims(&a, ab, from, a.best_number()).len() == COUNT as usize
	});
	let claimed = claims(&a, ab, from, a.best_number());
	let blocks: std::collections::BTreeSet<u32> = claimed.iter().map(|(block, _)| *block).collect();
	assert!(blocks.len() <= 2, "the claims took blocks {blocks:?}");
	let mut paid: Vec<Balance> = claimed.iter().map(|(_, amount)| *amount).collect();
	paid.sort();
	assert_eq!(paid, amounts, "each HTLC claimed once, in full, before it expired");
	// Bob: his share of the sheet Alice–Bob was liquidated with, the claims, and his share of
	// Bob–Charlie.
	let liquidated = liquidated(&a, ab, from);
	assert_eq!(liquidated, [AMOUNT - total, AMOUNT], "the newest sheet, HTLCs aside");
	let bob = liquidated[1] + paid.iter().sum::<Balance>() + sheet(&a, Bob, bc).0[0];
	assert_eq!(bob, 2 * AMOUNT, "Bob paid Charlie exactly what he claimed from Alice");
	drop((alice_bob, charlie, charlie_dir));
}

/// C3: with a second HTLC under one lock (a reused hashlock, or a loop in a route), Bob
/// counted an outgoing HTLC on a liquidated bank as gone, though the payee could still claim it
/// on chain, and failed the incoming one. Charlie's node holds Alice's payment through Bob;
/// Dave pays Charlie through Bob under the same lock, and Bob refuses to pass on a lock he
/// already has an HTLC out under (Dave's HTLC comes back at once). Charlie liquidates
/// Bob–Charlie with the sheet carrying Bob's HTLC. The node restarts (Bob looks at every HTLC
/// paid to him again; Charlie's hold is forgotten): Bob keeps Alice's HTLC, since his own can
/// still be claimed on chain; Charlie claims it there, and Bob settles with Alice off chain
/// with the preimage the claim showed. Bob is whole to the planck.
#[test]
fn an_htlc_out_on_a_liquidated_bank_keeps_the_one_it_was_paid_for() {
	let dir = tempfile::tempdir().expect("a temporary directory");
	let flags = [
		"--rsmc-account",
		"//Alice",
		"--rsmc-account",
		"//Bob",
		"--rsmc-account",
		"//Charlie",
		"--rsmc-account",
		"//Dave",
		"--rsmc-test-cheats",
		"--rsmc-peer-timeout",
		"3",
	];
	let mut node = crate::node::Node::start_at(dir.path(), &flags);
	let chain = Chain::connect(&node.url());
	let ab = open(&chain, Alice, Bob, [AMOUNT, AMOUNT], None);
	let bc = open(&chain, Bob, Charlie, [AMOUNT, AMOUNT], None);
	let db = open(&chain, Dave, Bob, [AMOUNT, AMOUNT], None);
	let amount = 5 * UNIT;
	let lock = invoice(&chain, Charlie, amount);
	chain.rpc("rsmc_testHold", rpc_params![addr(Charlie)]);
	let error = send(&chain, Alice, Charlie, amount, &lock).expect_err("Charlie holds it");
	assert!(error.starts_with("1002"), "{error}");
	let error = send(&chain, Dave, Charlie, amount, &lock).expect_err("Bob refuses the lock");
	assert!(error.starts_with("1001") && error.contains("failed"), "{error}");
	wait_until("Dave's HTLC is back", Duration::from_secs(30), || {
		sheet(&chain, Dave, db) == ([AMOUNT, AMOUNT], 0) && sheet(&chain, Bob, db).1 == 0
	});
	assert_eq!(sheet(&chain, Bob, ab), ([AMOUNT - amount, AMOUNT], 1));
	assert_eq!(sheet(&chain, Bob, bc), ([AMOUNT - amount, AMOUNT], 1));
	let from = chain.best_number() + 1;
	chain.rpc("rsmc_liquidate", rpc_params![addr(Charlie), bc]);

	node.kill();
	node.restart();
	let chain = Chain::connect(&node.url());
	let paid = [AMOUNT - amount, AMOUNT + amount];
	wait_until("Charlie claims on chain, Bob settles with Alice", Duration::from_secs(60), || {
		sheet(&chain, Alice, ab) == (paid, 0) && sheet(&chain, Bob, ab) == (paid, 0)
	});
	let claimed = claims(&chain, bc, from, chain.best_number());
	assert_eq!(claimed.iter().map(|(_, a)| *a).collect::<Vec<_>>(), [amount], "Charlie's claim");
	let shares = liquidated(&chain, bc, from);
	assert_eq!(shares, [AMOUNT - amount, AMOUNT], "liquidated with the HTLC aside");
	let bob = sheet(&chain, Bob, ab).0[1] + shares[0];
	assert_eq!(bob, 2 * AMOUNT, "Bob paid on chain exactly what Alice paid him");
	assert!(on_chain(&chain, ab).is_some_and(|b| b.liquidation.is_none()), "Alice–Bob runs on");
}
