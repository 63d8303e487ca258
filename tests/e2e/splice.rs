//! Splices through the node (issue 28, part 1): a running bank topped up over RPC and drawn
//! from over the command line, payments before and after, the chain holding the new total,
//! and a sheet from before the splice refused on chain; nothing drawn below the bank's reserve.

use crate::{
	chain::Chain,
	helpers::{
		addr, assert_gained, balances, bank_events, cli, on_chain, open, open_deposit, pay,
		snapshot, view,
	},
	node::Node,
};
use jsonrpsee::rpc_params;
use sp_keyring::Sr25519Keyring::{Alice, Bob};
use vbank_primitives::ChannelState;
use vbank_runtime::UNIT;

#[test]
fn a_running_bank_is_topped_up_and_drawn_from_and_sheets_before_are_void() {
	let node = Node::start(&["--rsmc-test-cheats"]);
	let chain = Chain::connect(&node.url());
	let url = node.url();
	let channel = open(&chain, 5, None);
	let mut events =
		chain.subscribe("rsmc_subscribeEvents", rpc_params![addr(Bob)], "rsmc_unsubscribeEvents");
	pay(&chain, Alice, channel, 100 * UNIT);
	assert_eq!(chain.next(&mut events)["kind"], "Received");

	// Alice adds 500 VBK over RPC: the chain holds it, the bank runs on at sheet 2.
	let alice_before = snapshot(&chain, Alice);
	let spliced =
		chain.rpc("rsmc_topUp", rpc_params![addr(Alice), channel, (500 * UNIT).to_string()]);
	assert_eq!(spliced["nonce"], 2, "{spliced}");
	assert_eq!(balances(&spliced["balances"]), [1_400 * UNIT, 1_100 * UNIT]);
	assert_eq!(spliced["total"], (2_500 * UNIT).to_string());
	let event = chain.next(&mut events);
	assert_eq!((event["kind"].as_str(), event["nonce"].as_u64()), (Some("Spliced"), Some(2)));
	let bank = on_chain(&chain, channel).expect("still open");
	assert_eq!((bank.state, bank.total()), (ChannelState::Running, Some(2_500 * UNIT)));
	let spliced_at: Option<u64> = chain.runtime_api("VirtualBankApi_spliced_at", channel);
	assert_eq!(spliced_at, Some(2));
	let alice_now = chain.account(&Alice.to_account_id());
	let fees = chain.fees_paid(&Alice.to_account_id(), alice_before.block + 1, chain.best_number());
	assert_eq!(alice_now.free + fees + 500 * UNIT, alice_before.free);
	assert!(bank_events(&chain, alice_before.block).iter().any(|e| matches!(
		e,
		pallet_virtual_bank::Event::Spliced { nonce: 2, amounts_in, total, .. }
			if *amounts_in == [500 * UNIT, 0] && *total == 2_500 * UNIT
	)));
	for who in [Alice, Bob] {
		let bank = view(&chain, who, channel).unwrap();
		assert_eq!(
			(bank["nonce"].as_u64(), balances(&bank["balances"])),
			(Some(2), [1_400 * UNIT, 1_100 * UNIT])
		);
		// The reserve agreed at the handshake (1% of the 2,000 VBK opened) stays.
		assert_eq!(bank["reserve"], (20 * UNIT).to_string());
		assert_eq!(balances(&bank["spendable"]), [1_380 * UNIT, 1_080 * UNIT]);
	}

	// Payments go on from the new sheet.
	let paid = pay(&chain, Bob, channel, 50 * UNIT);
	assert_eq!(balances(&paid["balances"]), [1_450 * UNIT, 1_050 * UNIT]);

	// Bob takes 300 VBK out from the command line; not more than his share.
	let refused = chain
		.rpc_error("rsmc_withdraw", rpc_params![addr(Bob), channel, (1_051 * UNIT).to_string()]);
	assert!(refused.contains("only 1050000000000000 is ours"), "{refused}");
	let below = chain
		.rpc_error("rsmc_withdraw", rpc_params![addr(Bob), channel, (1_040 * UNIT).to_string()]);
	assert!(below.contains("below the bank's reserve of 20000000000000"), "{below}");
	let too_much = chain.rpc_error(
		"rsmc_topUp",
		rpc_params![addr(Bob), channel, (u64::MAX as u128 * UNIT).to_string()],
	);
	assert!(too_much.contains("planck free"), "{too_much}");
	let bob_before = snapshot(&chain, Bob);
	let (stdout, _) = cli(&url, &["withdraw", "//Bob", &channel.to_string(), "300"]);
	assert!(stdout.contains("drawn from") && stdout.contains("holds 2200 VBK"), "{stdout}");
	assert!(stdout.contains("1450 VBK / 750 VBK"), "{stdout}");
	let bob_now = chain.account(&Bob.to_account_id());
	let fees = chain.fees_paid(&Bob.to_account_id(), bob_before.block + 1, chain.best_number());
	assert_eq!(bob_now.free + fees, bob_before.free + 300 * UNIT);
	assert_eq!(on_chain(&chain, channel).and_then(|b| b.total()), Some(2_200 * UNIT));

	// A sheet from before the splices, never revoked (the splice voids it), is refused.
	let stale = chain.rpc_error("rsmc_liquidateRevoked", rpc_params![addr(Bob), channel, 1]);
	assert!(stale.contains("SheetBeforeSplice"), "{stale}");

	// Closed at the newest balances: each is paid what the splices and payments left.
	let (alice_before, bob_before) = (snapshot(&chain, Alice), snapshot(&chain, Bob));
	let closed = chain.rpc("rsmc_close", rpc_params![addr(Alice), channel]);
	assert_eq!(closed["how"], "close");
	assert_gained(&chain, Alice, &alice_before, 1_450 * UNIT + open_deposit());
	assert_gained(&chain, Bob, &bob_before, 750 * UNIT);
	assert!(on_chain(&chain, channel).is_none());
}
