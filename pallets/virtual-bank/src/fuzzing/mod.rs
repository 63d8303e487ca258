//! The pallet fuzzer's body, shared by the AFL++ target (`pallets/virtual-bank/fuzz`), the
//! random-input test and the replay of the fuzzer's corpus in the test suite.
//!
//! [`calls`] reads arbitrary bytes as a sequence of actions by a handful of accounts on the
//! mock runtime (a real existential deposit, one account that does not exist): opening,
//! depositing, signing sheets for the peer (some carrying HTLCs), revoking them by revealing
//! their waiver keys, liquidating, claiming an HTLC with a preimage or refunding it,
//! withdrawing (by anybody, and the penalty also as a general transaction), cancelling,
//! closing, and blocks passing so that locks end, HTLCs expire and the schedule runs.
//! Signatures are usually valid; sometimes by the wrong key or over the wrong payload, and
//! then the call must be refused. Every byte string is a valid input: each choice takes the
//! next byte modulo the number of options, and the input ends the sequence.
//!
//! After every action: no panic, the total issuance is unchanged, the accounts add up to it,
//! `try_state` holds, a refused call changed nothing, a forged call was refused, a penalty
//! authorizes itself exactly when it succeeds, and **no account holds more than the sheets it
//! signed or was given entitle it to**: its endowment plus, for every bank, the best share
//! any sheet or close of that bank gave it, counting every HTLC of the sheet as its own
//! (everything, once it holds the waiver key of a sheet of the other's) less what it brought.

mod grammar;
mod model;

use crate::{
	mock::{self, *},
	Call, Channels, Event, NextChannelId,
};
use frame_support::{
	pallet_prelude::TransactionSource,
	traits::{fungible::Inspect, Authorize},
};
use grammar::{Action, Forgery, Input};
use model::{Bank, Sheet};
use sp_core::{sr25519, Pair};
use sp_runtime::traits::Dispatchable;
use std::collections::BTreeMap;
use vbank_primitives::{hashlock, Balance, ChannelId, Htlc, Nonce, Preimage};

/// The preimages the fuzzer's HTLCs lock with; the last one locks none.
const PREIMAGES: [Preimage; 5] = [[0xa0; 32], [0xa1; 32], [0xa2; 32], [0xa3; 32], [0xee; 32]];

/// Who acts: four endowed accounts and one that does not exist (so that payouts to it can
/// be dust). Only the endowed ones can afford to open a bank or bring funds.
pub const ACCOUNTS: [&str; 5] = ["Alice", "Bob", "Charlie", "Dave", "Ferdie"];

/// What one run did: how many actions, and how many calls of each kind succeeded.
#[derive(Debug, Default)]
pub struct Outcome {
	pub actions: usize,
	pub succeeded: BTreeMap<&'static str, usize>,
}

impl Outcome {
	/// Adds another run's counts to these.
	pub fn add(&mut self, other: Outcome) {
		self.actions += other.actions;
		for (name, count) in other.succeeded {
			*self.succeeded.entry(name).or_default() += count;
		}
	}
}

/// Runs `data` as a sequence of actions on a fresh mock chain, panicking at the first broken
/// invariant.
pub fn calls(data: &[u8]) -> Outcome {
	let mut outcome = Outcome::default();
	mock::new_test_ext().execute_with(|| {
		let mut world = World { input: Input(data), banks: BTreeMap::new() };
		let issuance = Balances::total_issuance();
		while let Some(action) = world.next_action() {
			outcome.actions += 1;
			if let Some(name) = world.act(action) {
				*outcome.succeeded.entry(name).or_default() += 1;
			}
			world.observe_events();
			check_invariants(issuance);
			world.check_entitlements();
		}
	});
	outcome
}

struct World<'a> {
	input: Input<'a>,
	banks: BTreeMap<ChannelId, Bank>,
}

/// The waiver key pair of client `holder`'s sheet `nonce` in bank `channel`.
fn waiver_pair(channel: ChannelId, holder: usize, nonce: Nonce) -> sr25519::Pair {
	let mut seed = [0x77; 32];
	seed[..8].copy_from_slice(&channel.to_le_bytes());
	seed[8] = holder as u8;
	seed[9..17].copy_from_slice(&nonce.to_le_bytes());
	sr25519::Pair::from_seed(&seed)
}

fn pair_of(who: &AccountId) -> sr25519::Pair {
	let name = ACCOUNTS.into_iter().find(|n| mock::account(n) == *who);
	mock::pair(name.expect("only the fuzzer's accounts sign"))
}

fn origin(who: &AccountId) -> RuntimeOrigin {
	RuntimeOrigin::signed(who.clone())
}

impl World<'_> {
	/// Does `action`; returns the name of the call when one succeeded.
	fn act(&mut self, action: Action) -> Option<&'static str> {
		match action {
			Action::Open { from, to, amounts, lock } => {
				let channel = NextChannelId::<Test>::get();
				let (opener, peer) = (mock::account(ACCOUNTS[from]), mock::account(ACCOUNTS[to]));
				let call = Call::open {
					peer,
					my_amount: amounts[0],
					peer_amount: amounts[1],
					lock_period: lock,
				};
				let ok = self.dispatch(&opener, call, Forgery::None)?;
				let clients = Channels::<Test>::get(channel).expect("just opened").clients;
				let bank = Bank {
					clients,
					brought: amounts,
					taken: [0; 2],
					most: amounts[0].saturating_add(amounts[1]),
					spliced_at: None,
					last_added: 0,
					sheets: vec![],
					closes: vec![],
					trimmed_to: [0; 2],
					liquidated_htlcs: vec![],
				};
				self.banks.insert(channel, bank);
				Some(ok)
			},
			Action::Deposit { who, channel } => {
				self.dispatch(&who, Call::deposit { channel }, Forgery::None)
			},
			Action::Sign { channel, holder, balances, htlcs } => {
				let bank = self.banks.get_mut(&channel)?;
				let nonce = bank.next_nonce();
				bank.sheets.push(Sheet { nonce, balances, htlcs, holder, revealed: false });
				None
			},
			Action::Revoke { channel, holder, sheet } => {
				let bank = self.banks.get_mut(&channel)?;
				let mut held: Vec<_> =
					bank.sheets.iter_mut().filter(|s| s.holder == holder).collect();
				let count = held.len();
				if count > 0 {
					held[sheet % count].revealed = true;
				}
				None
			},
			Action::Liquidate { who, channel, sheet, forgery } => {
				let bank = self.banks.get(&channel);
				let side = bank.and_then(|b| b.clients.iter().position(|c| *c == who)).unwrap_or(0);
				let held: Vec<&Sheet> = bank
					.map(|b| b.sheets.iter().filter(|s| s.holder == side).collect())
					.unwrap_or_default();
				let (nonce, balances, htlcs, signer, forgery) =
					match held.get(sheet % held.len().max(1)) {
						Some(s) => (
							s.nonce,
							s.balances,
							s.htlcs.clone(),
							bank.unwrap().clients[1 - side].clone(),
							forgery,
						),
						// A sheet nobody signed for the caller: it can only sign it itself.
						None => {
							let all = [self.total_of(channel), 0];
							(0, all, vec![], who.clone(), Forgery::WrongKey)
						},
					};
				let waiver: AccountId = waiver_pair(channel, side, nonce).public().into();
				// What the signature covers: the sheet, or (forged) another nonce or waiver key.
				let (signed_nonce, signed_waiver) = match forgery {
					Forgery::WrongNonce => (nonce + 1, waiver.clone()),
					Forgery::WrongContent => {
						(nonce, waiver_pair(channel, side, nonce + 1).public().into())
					},
					_ => (nonce, waiver.clone()),
				};
				let key =
					if forgery == Forgery::WrongKey { pair_of(&who) } else { pair_of(&signer) };
				// A sheet from before the last splice must be refused, whatever it adds up to.
				let forgery = match forgery {
					Forgery::None if bank.is_some_and(|b| b.void(nonce)) => Forgery::WrongNonce,
					forgery => forgery,
				};
				if htlcs.is_empty() {
					let peer_signature =
						mock::sign_sheet(&key, channel, signed_nonce, balances, &signed_waiver);
					let call = Call::liquidate { channel, nonce, balances, waiver, peer_signature };
					return self.dispatch(&who, call, forgery);
				}
				// Forged content: the signature covers another expiry of the first HTLC.
				let mut signed_htlcs = htlcs.clone();
				if forgery == Forgery::WrongContent {
					signed_htlcs[0].expiry += 1;
				}
				let peer_signature = mock::sign_htlc_sheet(
					&key,
					channel,
					signed_nonce,
					balances,
					&waiver,
					&signed_htlcs,
				);
				let htlcs = htlcs.try_into().expect("at most four");
				let call = Call::liquidate_with_htlcs {
					channel,
					nonce,
					balances,
					waiver,
					htlcs,
					peer_signature,
				};
				self.dispatch(&who, call, forgery)
			},
			Action::WithdrawByMaster { who, channel } => {
				self.dispatch(&who, Call::withdraw_by_master { channel }, Forgery::None)
			},
			Action::WithdrawByPeer { who, channel, forgery } => {
				let liquidation = Channels::<Test>::get(channel).and_then(|b| b.liquidation);
				let (nonce, master) = liquidation.map_or((0, 0), |l| (l.nonce, l.master as usize));
				let revealed = self.banks.get(&channel).is_some_and(|b| {
					b.sheets.iter().any(|s| s.holder == master && s.nonce == nonce && s.revealed)
				});
				// Without the revealed key, the only signatures anybody can make are forgeries.
				let forgery = match forgery {
					Forgery::None if !revealed => Forgery::WrongKey,
					forgery => forgery,
				};
				let (key, signed_nonce) = match forgery {
					Forgery::WrongKey => (waiver_pair(channel, 1 - master, nonce), nonce),
					Forgery::WrongNonce => (waiver_pair(channel, master, nonce), nonce + 1),
					Forgery::WrongContent => (waiver_pair(channel, master, nonce + 1), nonce),
					Forgery::None => (waiver_pair(channel, master, nonce), nonce),
				};
				let waiver_signature = mock::sign_waiver(&key, channel, signed_nonce);
				let call = Call::withdraw_by_peer { channel, waiver_signature };
				match who {
					Some(who) => self.dispatch(&who, call, forgery),
					None => self.dispatch_general(call, forgery),
				}
			},
			Action::Cancel { who, channel } => {
				self.dispatch(&who, Call::cancel { channel }, Forgery::None)
			},
			Action::Close { who, channel, balances, forgery } => {
				let clients = self.banks.get(&channel).map_or_else(
					|| [mock::account(ACCOUNTS[0]), mock::account(ACCOUNTS[1])],
					|b| b.clients.clone(),
				);
				// At the last splice's nonce, past which every close counts.
				let nonce = self.banks.get(&channel).and_then(|b| b.spliced_at).unwrap_or(0);
				let mut signatures = clients.clone().map(|c| {
					let key = if forgery == Forgery::WrongKey {
						pair_of(&clients[0])
					} else {
						pair_of(&c)
					};
					let signed = if forgery == Forgery::WrongNonce { nonce + 1 } else { nonce };
					mock::sign_close(&key, channel, signed, balances)
				});
				if forgery == Forgery::WrongContent {
					let other = [balances[0].wrapping_add(1), balances[1]];
					signatures[1] = mock::sign_close(&pair_of(&clients[1]), channel, nonce, other);
				}
				let call = Call::close { channel, nonce, balances, signatures };
				let result = self.dispatch(&who, call, forgery);
				if result.is_some() {
					self.banks.get_mut(&channel).expect("closed a bank").closes.push(balances);
				}
				result
			},
			Action::Splice { who, channel, amounts_in, amounts_out, replay, forgery } => {
				let bank = self.banks.get(&channel);
				let clients = bank.map_or_else(
					|| [mock::account(ACCOUNTS[0]), mock::account(ACCOUNTS[1])],
					|b| b.clients.clone(),
				);
				let next =
					bank.map_or(1, |b| b.next_nonce().max(b.spliced_at.map_or(1, |at| at + 1)));
				let last = bank.and_then(|b| b.spliced_at);
				// Mostly the next nonce; sometimes the last splice's again, which is refused.
				let (nonce, forgery) = match (replay, last) {
					(true, Some(at)) if forgery == Forgery::None => (at, Forgery::WrongNonce),
					_ => (next, forgery),
				};
				let sign = |key: &sr25519::Pair, nonce, amounts_in| {
					mock::sign_splice(key, channel, nonce, amounts_in, amounts_out)
				};
				let signatures = match forgery {
					Forgery::WrongKey => {
						clients.clone().map(|_| sign(&pair_of(&clients[0]), nonce, amounts_in))
					},
					Forgery::WrongNonce if Some(nonce) != last => {
						clients.clone().map(|c| sign(&pair_of(&c), nonce + 1, amounts_in))
					},
					Forgery::WrongContent => {
						let other = [amounts_in[0].wrapping_add(1), amounts_in[1]];
						[
							sign(&pair_of(&clients[0]), nonce, amounts_in),
							sign(&pair_of(&clients[1]), nonce, other),
						]
					},
					_ => clients.clone().map(|c| sign(&pair_of(&c), nonce, amounts_in)),
				};
				let call = Call::splice { channel, nonce, amounts_in, amounts_out, signatures };
				let result = self.dispatch(&who, call, forgery);
				if result.is_some() {
					let bank = self.banks.get_mut(&channel).expect("spliced a bank");
					for i in 0..2 {
						bank.brought[i] += amounts_in[i];
						bank.taken[i] += amounts_out[i];
					}
					bank.spliced_at = Some(nonce);
					bank.most = bank.most.max(bank.total());
					let added = amounts_in[0] + amounts_in[1];
					if added > 0 {
						bank.last_added = added;
					}
				}
				result
			},
			Action::Claim { who, channel, index, preimage } => {
				let (index, htlc) = htlc_at(channel, index);
				let known = htlc.as_ref().and_then(|h| {
					PREIMAGES
						.into_iter()
						.find(|p| hashlock(p) == h.hashlock)
						.filter(|_| preimage < 192)
				});
				let preimage = known.unwrap_or(PREIMAGES[usize::from(preimage) % PREIMAGES.len()]);
				// A preimage that is not the pending HTLC's must be refused.
				let forgery = match htlc {
					Some(h) if h.hashlock != hashlock(&preimage) => Forgery::WrongContent,
					_ => Forgery::None,
				};
				self.dispatch(&who, Call::claim_htlc { channel, index, preimage }, forgery)
			},
			Action::Refund { who, channel, index } => {
				let (index, _) = htlc_at(channel, index);
				self.dispatch(&who, Call::refund_htlc { channel, index }, Forgery::None)
			},
			Action::Advance { blocks } => {
				let banks = Channels::<Test>::iter().count();
				run_to_block(System::block_number() + blocks);
				(Channels::<Test>::iter().count() < banks).then_some("released by the chain")
			},
		}
	}

	/// Dispatches `call` signed by `who`: a refused call must change nothing, and a forged
	/// one must be refused.
	fn dispatch(
		&mut self,
		who: &AccountId,
		call: Call<Test>,
		forgery: Forgery,
	) -> Option<&'static str> {
		let name = call_name(&call);
		self.dispatch_as(origin(who), call, forgery).then_some(name)
	}

	/// Dispatches the penalty as a general transaction: it must authorize itself exactly when
	/// it then succeeds.
	fn dispatch_general(&mut self, call: Call<Test>, forgery: Forgery) -> Option<&'static str> {
		let authorized = match call.authorize(TransactionSource::External) {
			Some(validity) => validity.is_ok(),
			None => panic!("the penalty always authorizes itself"),
		};
		let origin = frame_system::RawOrigin::Authorized.into();
		let succeeded = self.dispatch_as(origin, call, forgery);
		assert_eq!(authorized, succeeded, "authorized is not the same as succeeded");
		succeeded.then_some("withdraw_by_peer, general")
	}

	fn dispatch_as(&mut self, origin: RuntimeOrigin, call: Call<Test>, forgery: Forgery) -> bool {
		let root = sp_io::storage::root(sp_runtime::StateVersion::V1);
		let described = format!("{call:?}");
		let result = RuntimeCall::VirtualBank(call).dispatch(origin);
		if result.is_err() {
			let now = sp_io::storage::root(sp_runtime::StateVersion::V1);
			assert_eq!(now, root, "refused {described} changed storage");
		} else {
			assert_eq!(forgery, Forgery::None, "forged {described} succeeded");
		}
		result.is_ok()
	}

	/// Dust the chain could not pay to one client went to the other.
	/// An HTLC paid out went to its receiver when claimed, to its sender when refunded, in
	/// full (or nothing, as dust), and is the one the liquidated sheet carried at its index.
	fn observe_events(&mut self) {
		for event in mock::bank_events() {
			let (channel, index, who, amount, claimed, hashlock) = match event {
				Event::Trimmed { channel, who, amount } => {
					let bank = self.banks.get_mut(&channel).expect("a bank the fuzzer opened");
					let side = bank.clients.iter().position(|c| *c == who).expect("a client");
					bank.trimmed_to[1 - side] += amount;
					continue;
				},
				Event::Liquidated { channel, master, nonce, .. } => {
					let bank = self.banks.get_mut(&channel).expect("a bank the fuzzer opened");
					let holder = bank.clients.iter().position(|c| *c == master).expect("a client");
					let sheet = bank.sheets.iter().find(|s| s.holder == holder && s.nonce == nonce);
					bank.liquidated_htlcs = sheet.map(|s| s.htlcs.clone()).unwrap_or_default();
					continue;
				},
				Event::HtlcClaimed { channel, index, who, amount, hashlock, .. } => {
					(channel, index, who, amount, true, hashlock)
				},
				Event::HtlcRefunded { channel, index, who, amount, hashlock } => {
					(channel, index, who, amount, false, hashlock)
				},
				_ => continue,
			};
			let bank = &self.banks[&channel];
			let htlc = &bank.liquidated_htlcs[index as usize];
			let from = usize::from(htlc.from);
			let to = if claimed { 1 - from } else { from };
			assert_eq!(
				who, bank.clients[to],
				"HTLC {index} of bank {channel} paid to the wrong side"
			);
			assert!(amount == htlc.amount || amount == 0, "HTLC {index} paid {amount}");
			assert_eq!(hashlock, htlc.hashlock);
		}
	}

	/// No account holds more than its endowment plus what the sheets entitle it to.
	fn check_entitlements(&self) {
		for name in ACCOUNTS {
			let who = mock::account(name);
			let endowment = if ENDOWED.contains(&name) { ENDOWMENT } else { 0 };
			let gains: Balance = self
				.banks
				.values()
				.flat_map(|b| (0..2).filter(|&i| b.clients[i] == who).map(move |i| (b, i)))
				.map(|(b, i)| (b.entitlement(i) + b.taken[i]).saturating_sub(b.brought[i]))
				.fold(0, Balance::saturating_add);
			let has = Balances::total_balance(&who);
			let entitled = endowment.saturating_add(gains);
			assert!(has <= entitled, "{name} has {has}, entitled to {entitled}");
		}
	}
}

/// The index an HTLC action names with `byte`, and the HTLC pending there: mostly one of the
/// bank's pending HTLCs, sometimes any index up to one past the most a test sheet carries.
fn htlc_at(channel: ChannelId, byte: u8) -> (u32, Option<Htlc<u64>>) {
	let book = VirtualBank::htlcs(channel);
	let pending: Vec<usize> = (0..book.len()).filter(|&i| book[i].is_some()).collect();
	let index = match pending.len() {
		n if n > 0 && byte < 200 => pending[usize::from(byte) % n],
		_ => usize::from(byte % 5),
	};
	(index as u32, book.get(index).cloned().flatten())
}

fn call_name(call: &Call<Test>) -> &'static str {
	match call {
		Call::open { .. } => "open",
		Call::deposit { .. } => "deposit",
		Call::liquidate { .. } => "liquidate",
		Call::withdraw_by_master { .. } => "withdraw_by_master",
		Call::withdraw_by_peer { .. } => "withdraw_by_peer",
		Call::cancel { .. } => "cancel",
		Call::close { .. } => "close",
		Call::liquidate_with_htlcs { .. } => "liquidate_with_htlcs",
		Call::claim_htlc { .. } => "claim_htlc",
		Call::refund_htlc { .. } => "refund_htlc",
		Call::splice { .. } => "splice",
		_ => "other",
	}
}

/// Inputs to start a coverage-guided run from: one bank through each of its endings.
pub fn seed_inputs() -> Vec<Vec<u8>> {
	// Open: Alice with Bob, 1,480 each, the shortest lock; then both deposit.
	let open: &[u8] = &[0, 0, 1, 40, 0, 40, 0, 0, 0, 2, 0, 0, 2, 0, 1];
	let sign = |holder: u8, percent: u8| [6, 0, holder, percent];
	let revoke_first = |holder: u8| [12, 0, holder, 0];
	let liquidate = |side: u8, sheet: u8| [15, 0, side, sheet, 255];
	let penalty_general = [20, 0, 0, 255];
	let close = [24, 0, 0, 30, 255];
	let cancel = [23, 0, 0];
	let advance = [26, 31];
	// Bob signs Alice a sheet with two HTLCs: 10 % of hers to him (the first preimage, 40
	// blocks) and 10 % of his to her (the second, 3 blocks).
	let sign_with_htlcs = [29, 0, 0, 70, 1, 0, 10, 0, 40, 1, 10, 1, 3];
	let claim_first = [32, 0, 1, 0, 0];
	let refund_second = [35, 0, 0, 1];
	// Alice adds 1,480; Bob takes 30 % of what the bank holds; Alice takes the 1,480 out again.
	let top_up = [37, 0, 0, 0, 0, 40, 0, 0, 255];
	let withdraw = [37, 0, 1, 1, 200, 30, 0, 0, 255];
	let take_back = [37, 0, 0, 0, 255, 0, 255];
	vec![
		open.to_vec(),
		[open, &close].concat(),
		// Liquidated by Alice with her newest sheet; the lock ends and the chain releases it.
		[open, &sign(0, 70), &sign(0, 60), &revoke_first(0), &liquidate(0, 1), &advance].concat(),
		// Liquidated by Alice with her revoked sheet 0, punished by a general transaction.
		[open, &sign(0, 70), &sign(0, 60), &liquidate(0, 0), &revoke_first(0), &penalty_general]
			.concat(),
		// Cancelled before Bob deposits.
		[&open[..12], &cancel].concat(),
		// Liquidated by Alice with HTLCs: Bob claims the first; the lock ends, the second
		// expires and is refunded to Bob, which removes the bank.
		[open, &sign_with_htlcs, &liquidate(0, 0), &claim_first, &advance, &refund_second].concat(),
		// Spliced twice while running; Alice liquidates with her sheet from after, and her
		// sheet from before is refused.
		[open, &sign(0, 70), &top_up, &withdraw, &sign(0, 60), &liquidate(0, 0), &liquidate(0, 1)]
			.concat(),
		// Spliced, then closed at the splice's nonce.
		[open, &top_up, &close].concat(),
		// Topped up and drawn from by the same amount: the bank holds what it held, and
		// Alice's sheet from before, which adds up again, is refused; her sheet after is not.
		[open, &sign(0, 70), &top_up, &take_back, &liquidate(0, 0), &sign(0, 60), &liquidate(0, 1)]
			.concat(),
	]
}
