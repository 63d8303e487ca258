//! A watchtower anyone can run, for anyone (issue 28, part 4; `docs/tower.md`): Bob's node
//! hands the secrets Alice reveals to a tower on a third node, which serves no helper of his.
//! Bob's node is stopped, Alice liquidates with a revoked sheet, and the tower punishes her:
//! feeless, with no account of its own, and Bob's account gets everything.

use crate::{
	chain::Chain,
	helpers::{
		addr, assert_gained, bank_events, on_chain, open, open_deposit, pay, snapshot, wait_until,
		BankEvent, AMOUNT,
	},
	node::Node,
};
use jsonrpsee::rpc_params;
use sp_keyring::Sr25519Keyring::{Alice, Bob, Ferdie};
use std::time::Duration;
use vbank_runtime::UNIT;

/// How many of Alice's sheets the tower on `tower` holds revoked for Bob on bank `channel`
/// (`None` too once the chain removed the bank and the tower forgot it: the method then says
/// there is no such bank).
fn held_for_bob(tower: &Chain, channel: u64) -> Option<u64> {
	let watching = tower.try_rpc("rsmc_towerWatching", rpc_params![channel]).ok()?;
	let watching = watching.as_array().expect("a list of clients");
	watching.iter().find(|w| w["client"] == addr(Bob)).and_then(|w| w["revoked"].as_u64())
}

#[test]
fn a_tower_on_a_third_node_punishes_a_cheat_while_the_victims_node_is_down() {
	// The tower's node authors (and serves only Ferdie, who has no bank); Alice's node, with
	// the test's cheats, and Bob's, which uses the tower, follow it.
	let tower = Node::start(&["--rsmc-account", "//Ferdie", "--rsmc-tower"]);
	let bootnode = tower.bootnode();
	let tower_url = tower.url();
	let follower = |extra: &[&str]| {
		Node::start(
			&[&["--consensus", "none", "--bootnodes", bootnode.as_str()][..], extra].concat(),
		)
	};
	let alice = follower(&["--rsmc-account", "//Alice", "--rsmc-test-cheats"]);
	let mut bob = follower(&["--rsmc-account", "//Bob", "--rsmc-tower-url", &tower_url]);
	let (t, a) = (Chain::connect(&tower.url()), Chain::connect(&alice.url()));
	let b = Chain::connect(&bob.url());
	wait_until("both nodes find the tower's", Duration::from_secs(60), || {
		[&a, &b].iter().all(|c| c.rpc("system_health", rpc_params![])["peers"].as_u64() >= Some(1))
	});
	t.advance(&Ferdie.pair(), 1);
	wait_until("both nodes follow", Duration::from_secs(60), || {
		a.best_number() >= t.best_number() && b.best_number() >= t.best_number()
	});

	// What no client could use is refused, with what is wrong.
	let garbage = t.rpc_error("rsmc_towerUpdate", rpc_params!["0x00"]);
	assert!(garbage.contains("does not decode"), "{garbage}");
	let not_a_tower = b.rpc_error("rsmc_towerWatching", rpc_params![0]);
	assert!(not_a_tower.contains("--rsmc-tower"), "{not_a_tower}");

	// Bob's node hands the tower each secret of Alice's as it learns it.
	let channel = open(&a, 10, Some(bob.url()));
	for paid in 1..=3u64 {
		pay(&a, Alice, channel, 100 * UNIT);
		wait_until("the tower holds the new secret", Duration::from_secs(30), || {
			held_for_bob(&t, channel) == Some(paid)
		});
	}

	// Bob's node stops; Alice liquidates with her first sheet, long revoked.
	bob.kill();
	let (alice_before, bob_before) = (snapshot(&t, Alice), snapshot(&t, Bob));
	let cheat = a.rpc("rsmc_liquidateRevoked", rpc_params![addr(Alice), channel, 0]);
	assert_eq!(cheat["nonce"], 0);

	wait_until("the tower punishes the cheat", Duration::from_secs(60), || {
		on_chain(&t, channel).is_none()
	});
	// The tower's node sent it (it knows so once it sees the block).
	let sent = |line: &String| line.contains("watchtower for others: withdraw_by_peer");
	wait_until("the tower's node logs the penalty in a block", Duration::from_secs(30), || {
		tower.log_lines().iter().any(|l| sent(l) && l.contains("in a block"))
	});
	let events = bank_events(&t, alice_before.block + 1);
	let penalty =
		BankEvent::WithdrawnByPeer { channel, who: Bob.to_account_id(), amount: AMOUNT, nonce: 0 };
	assert!(events.contains(&penalty), "{events:?}");
	// Bob gets both shares of the sheet Alice cheated with; Alice only her storage deposit.
	assert_gained(&t, Bob, &bob_before, 2 * AMOUNT);
	assert_gained(&t, Alice, &alice_before, open_deposit());
	// The tower paid nothing, and forgets the bank the chain removed.
	assert_eq!(t.fees_paid(&Ferdie.to_account_id(), alice_before.block + 1, t.best_number()), 0);
	wait_until("the tower forgets the bank", Duration::from_secs(30), || {
		held_for_bob(&t, channel).is_none()
	});
}
