//! The pallet fuzzer's body, shared by the AFL++ target (`pallets/virtual-bank/fuzz`), the
//! random-input test and the replay of the fuzzer's corpus in the test suite.
//!
//! [`calls`] reads arbitrary bytes as a sequence of actions by a handful of accounts on the
//! mock runtime (a real existential deposit, one account that does not exist): opening,
//! depositing, signing sheets for the peer, revoking them by revealing their waiver keys,
//! liquidating, withdrawing (by anybody, and the penalty also as a general transaction),
//! cancelling, closing, and blocks passing so that locks end and the release schedule runs.
//! Signatures are usually valid; sometimes by the wrong key or over the wrong payload, and
//! then the call must be refused. Every byte string is a valid input: each choice takes the
//! next byte modulo the number of options, and the input ends the sequence.
//!
//! After every action: no panic, the total issuance is unchanged, the accounts add up to it,
//! `try_state` holds, a refused call changed nothing, a forged call was refused, a penalty
//! authorizes itself exactly when it succeeds, and **no account holds more than the sheets it
//! signed or was given entitle it to**: its endowment plus, for every bank, the best share
//! any sheet or close of that bank gave it (everything, once it holds the waiver key of a
//! sheet of the other's) less what it brought.

use crate::{
	mock::{self, *},
	Call, Channels, Event, NextChannelId,
};
use frame_support::{
	pallet_prelude::TransactionSource,
	traits::{fungible::Inspect, Authorize},
};
use sp_core::{sr25519, Pair};
use sp_runtime::traits::Dispatchable;
use std::collections::BTreeMap;
use vbank_primitives::{Balance, ChannelId, Nonce};

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

/// The bytes still to be read; every read takes one byte, `None` once they run out.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
	fn byte(&mut self) -> Option<u8> {
		let (&first, rest) = self.0.split_first()?;
		self.0 = rest;
		Some(first)
	}

	/// One of `n` choices.
	fn pick(&mut self, n: usize) -> Option<usize> {
		Some(usize::from(self.byte()?) % n)
	}

	/// An amount: mostly small, sometimes zero, more than anybody has, or past the largest.
	fn amount(&mut self) -> Option<Balance> {
		let [class, low] = [self.byte()?, self.byte()?];
		Some(match class {
			0..=39 => 0,
			40..=249 => Balance::from(class) * 37 + Balance::from(low),
			250..=253 => ENDOWMENT + Balance::from(low),
			_ => Balance::MAX - Balance::from(low),
		})
	}

	/// A share of `total` in percent, exactly adding up or (`off`) by one too many.
	fn split(&mut self, total: Balance) -> Option<Shares> {
		let percent = Balance::from(self.byte()? % 101);
		let first = total / 100 * percent + total % 100 * percent / 100;
		Some([first, total - first])
	}
}

/// One thing somebody does.
#[derive(Debug)]
enum Action {
	Open {
		from: usize,
		to: usize,
		amounts: Shares,
		lock: u64,
	},
	Deposit {
		who: AccountId,
		channel: ChannelId,
	},
	/// Client `1 - holder` signs sheet `next nonce` with `balances` for client `holder`.
	Sign {
		channel: ChannelId,
		holder: usize,
		balances: Shares,
	},
	/// Client `holder` reveals the waiver key of its sheet number `sheet` to the other.
	Revoke {
		channel: ChannelId,
		holder: usize,
		sheet: usize,
	},
	Liquidate {
		who: AccountId,
		channel: ChannelId,
		sheet: usize,
		forgery: Forgery,
	},
	WithdrawByMaster {
		who: AccountId,
		channel: ChannelId,
	},
	/// The penalty with the liquidation's waiver key, if revealed, else with `forgery`; sent
	/// by `who`, or as a general transaction when `None`.
	WithdrawByPeer {
		who: Option<AccountId>,
		channel: ChannelId,
		forgery: Forgery,
	},
	Cancel {
		who: AccountId,
		channel: ChannelId,
	},
	Close {
		who: AccountId,
		channel: ChannelId,
		balances: Shares,
		forgery: Forgery,
	},
	Advance {
		blocks: u64,
	},
}

/// How a signature is made: honestly, or wrong in one way.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Forgery {
	None,
	/// By a key that is not the one the call checks.
	WrongKey,
	/// By the right key, over another nonce.
	WrongNonce,
	/// By the right key, over other balances (or another waiver key).
	WrongContent,
}

/// A sheet the fuzzer's accounts signed, as the model knows it.
#[derive(Debug)]
struct Sheet {
	nonce: Nonce,
	balances: Shares,
	/// The client who can liquidate with it (the other signed it); its waiver key is this
	/// client's.
	holder: usize,
	revealed: bool,
}

/// What the model remembers of a bank, also after the chain removed it.
#[derive(Debug)]
struct Bank {
	clients: [AccountId; 2],
	brought: Shares,
	sheets: Vec<Sheet>,
	/// Balances both clients signed a close over.
	closes: Vec<Shares>,
	/// Dust each client got because the other's share could not be paid.
	trimmed_to: Shares,
}

impl Bank {
	fn total(&self) -> Balance {
		self.brought[0].saturating_add(self.brought[1])
	}

	/// The most client `side` can rightly end with out of this bank.
	fn entitlement(&self, side: usize) -> Balance {
		let other_revoked = self.sheets.iter().any(|s| s.holder != side && s.revealed);
		let best = if other_revoked {
			self.total()
		} else {
			self.sheets
				.iter()
				.map(|s| s.balances[side])
				.chain(self.closes.iter().map(|c| c[side]))
				.fold(self.brought[side], Balance::max)
		};
		best.saturating_add(self.trimmed_to[side])
	}
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
	/// A bank id: mostly one of the newest, sometimes any up to the next (which has none).
	fn channel(&mut self) -> Option<ChannelId> {
		let next = NextChannelId::<Test>::get();
		let byte = self.input.byte()?;
		Some(if byte < 224 {
			next.saturating_sub(1 + u64::from(byte % 3))
		} else if byte < 252 {
			u64::from(byte) % (next + 1)
		} else {
			u64::MAX
		})
	}

	/// Who calls about `channel`: mostly one of its clients, sometimes anybody.
	fn caller(&mut self, channel: ChannelId) -> Option<AccountId> {
		let byte = self.input.byte()?;
		let clients = self.banks.get(&channel).map(|b| b.clients.clone());
		Some(match clients {
			Some(clients) if byte < 200 => clients[usize::from(byte % 2)].clone(),
			_ => mock::account(ACCOUNTS[usize::from(byte) % ACCOUNTS.len()]),
		})
	}

	fn forgery(&mut self) -> Option<Forgery> {
		Some(match self.input.byte()? {
			0..=15 => Forgery::WrongKey,
			16..=23 => Forgery::WrongNonce,
			24..=31 => Forgery::WrongContent,
			_ => Forgery::None,
		})
	}

	fn total_of(&self, channel: ChannelId) -> Balance {
		self.banks.get(&channel).map_or(100, Bank::total)
	}

	fn next_action(&mut self) -> Option<Action> {
		// Weights: open 2, deposit 4, sign 6, revoke 3, liquidate 3, withdraw by master 2,
		// withdraw by peer 3, cancel 1, close 2, advance 3.
		const KINDS: [u8; 29] =
			[0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 6, 6, 6, 7, 8, 8, 9, 9, 9];
		Some(match KINDS[self.input.pick(KINDS.len())?] {
			0 => {
				let from = self.input.pick(ACCOUNTS.len())?;
				let to = self.input.pick(ACCOUNTS.len())?;
				let amounts = [self.input.amount()?, self.input.amount()?];
				let lock = match self.input.byte()? {
					0..=239 => MIN_LOCK + u64::from(self.input.byte()? % 24),
					240..=247 => MIN_LOCK - 1,
					_ => MAX_LOCK + 1,
				};
				Action::Open { from, to, amounts, lock }
			},
			1 => {
				let channel = self.channel()?;
				Action::Deposit { who: self.caller(channel)?, channel }
			},
			2 => {
				let channel = self.channel()?;
				let holder = self.input.pick(2)?;
				let balances = self.input.split(self.total_of(channel))?;
				Action::Sign { channel, holder, balances }
			},
			3 => Action::Revoke {
				channel: self.channel()?,
				holder: self.input.pick(2)?,
				sheet: usize::from(self.input.byte()?),
			},
			4 => {
				let channel = self.channel()?;
				let who = self.caller(channel)?;
				let sheet = usize::from(self.input.byte()?);
				Action::Liquidate { who, channel, sheet, forgery: self.forgery()? }
			},
			5 => {
				let channel = self.channel()?;
				Action::WithdrawByMaster { who: self.caller(channel)?, channel }
			},
			6 => {
				let channel = self.channel()?;
				let who = if self.input.byte()? < 128 { None } else { Some(self.caller(channel)?) };
				Action::WithdrawByPeer { who, channel, forgery: self.forgery()? }
			},
			7 => {
				let channel = self.channel()?;
				Action::Cancel { who: self.caller(channel)?, channel }
			},
			8 => {
				let channel = self.channel()?;
				let who = self.caller(channel)?;
				let balances = self.input.split(self.total_of(channel))?;
				Action::Close { who, channel, balances, forgery: self.forgery()? }
			},
			_ => Action::Advance { blocks: u64::from(self.input.byte()? % 32) },
		})
	}

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
					sheets: vec![],
					closes: vec![],
					trimmed_to: [0; 2],
				};
				self.banks.insert(channel, bank);
				Some(ok)
			},
			Action::Deposit { who, channel } => {
				self.dispatch(&who, Call::deposit { channel }, Forgery::None)
			},
			Action::Sign { channel, holder, balances } => {
				let bank = self.banks.get_mut(&channel)?;
				let nonce = bank.sheets.iter().map(|s| s.nonce + 1).max().unwrap_or(0);
				bank.sheets.push(Sheet { nonce, balances, holder, revealed: false });
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
				let (nonce, balances, signer, forgery) = match held.get(sheet % held.len().max(1)) {
					Some(s) => {
						(s.nonce, s.balances, bank.unwrap().clients[1 - side].clone(), forgery)
					},
					// A sheet nobody signed for the caller: it can only sign it itself.
					None => (0, [self.total_of(channel), 0], who.clone(), Forgery::WrongKey),
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
				let peer_signature =
					mock::sign_sheet(&key, channel, signed_nonce, balances, &signed_waiver);
				let call = Call::liquidate { channel, nonce, balances, waiver, peer_signature };
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
				let mut signatures = clients.clone().map(|c| {
					let key = if forgery == Forgery::WrongKey {
						pair_of(&clients[0])
					} else {
						pair_of(&c)
					};
					let nonce = if forgery == Forgery::WrongNonce { 1 } else { 0 };
					mock::sign_close(&key, channel, nonce, balances)
				});
				if forgery == Forgery::WrongContent {
					let other = [balances[0].wrapping_add(1), balances[1]];
					signatures[1] = mock::sign_close(&pair_of(&clients[1]), channel, 0, other);
				}
				let call = Call::close { channel, nonce: 0, balances, signatures };
				let result = self.dispatch(&who, call, forgery);
				if result.is_some() {
					self.banks.get_mut(&channel).expect("closed a bank").closes.push(balances);
				}
				result
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
	fn observe_events(&mut self) {
		for event in mock::bank_events() {
			if let Event::Trimmed { channel, who, amount } = event {
				let bank = self.banks.get_mut(&channel).expect("a bank the fuzzer opened");
				let side = bank.clients.iter().position(|c| *c == who).expect("a client");
				bank.trimmed_to[1 - side] += amount;
			}
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
				.map(|(b, i)| b.entitlement(i) - b.brought[i])
				.fold(0, Balance::saturating_add);
			let has = Balances::total_balance(&who);
			let entitled = endowment.saturating_add(gains);
			assert!(has <= entitled, "{name} has {has}, entitled to {entitled}");
		}
	}
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
	]
}
