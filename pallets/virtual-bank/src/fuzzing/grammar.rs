//! The fuzzer's grammar: how bytes become actions. Every byte string is a valid input: each
//! choice takes the next byte modulo the number of options, and the input ends the sequence.

use super::{model::Bank, World, ACCOUNTS, PREIMAGES};
use crate::mock::{self, *};
use crate::NextChannelId;
use vbank_primitives::{hashlock, Balance, ChannelId, Htlc};

/// The bytes still to be read; every read takes one byte, `None` once they run out.
pub(super) struct Input<'a>(pub(super) &'a [u8]);

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
pub(super) enum Action {
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
	/// Client `1 - holder` signs sheet `next nonce` with `balances` and `htlcs` pending for
	/// client `holder`.
	Sign {
		channel: ChannelId,
		holder: usize,
		balances: Shares,
		htlcs: Vec<Htlc<u64>>,
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
	/// Claim an HTLC of a liquidated bank (mostly a pending one) with one of [`PREIMAGES`]
	/// (mostly its own).
	Claim {
		who: AccountId,
		channel: ChannelId,
		index: u8,
		preimage: u8,
	},
	/// Refund an HTLC of a liquidated bank, mostly a pending one.
	Refund {
		who: AccountId,
		channel: ChannelId,
		index: u8,
	},
	/// A splice both clients sign (wrong in one way with `forgery`): one client adds or
	/// takes; at the next nonce, or (`replay`) the last splice's again.
	Splice {
		who: AccountId,
		channel: ChannelId,
		amounts_in: Shares,
		amounts_out: Shares,
		replay: bool,
		forgery: Forgery,
	},
}

/// How a signature is made: honestly, or wrong in one way.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Forgery {
	None,
	/// By a key that is not the one the call checks.
	WrongKey,
	/// By the right key, over another nonce.
	WrongNonce,
	/// By the right key, over other balances (or another waiver key).
	WrongContent,
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

	pub(super) fn total_of(&self, channel: ChannelId) -> Balance {
		self.banks.get(&channel).map_or(100, Bank::total)
	}

	/// Up to four HTLCs carved out of `balances`, each from either side, locked with one of
	/// the first four [`PREIMAGES`], expiring in up to 47 blocks (or now).
	fn htlcs(&mut self, balances: &mut Shares) -> Option<Vec<Htlc<u64>>> {
		let count = 1 + self.input.pick(4)?;
		let mut htlcs = Vec::with_capacity(count);
		for _ in 0..count {
			let from = self.input.pick(2)?;
			let percent = Balance::from(self.input.byte()? % 101);
			let amount = balances[from] / 100 * percent;
			balances[from] -= amount;
			let preimage = PREIMAGES[self.input.pick(4)?];
			let expiry = System::block_number() + u64::from(self.input.byte()? % 48);
			htlcs.push(Htlc { from: from as u8, amount, hashlock: hashlock(&preimage), expiry });
		}
		Some(htlcs)
	}

	pub(super) fn next_action(&mut self) -> Option<Action> {
		// Weights: open 2, deposit 4, sign 6, revoke 3, liquidate 3, withdraw by master 2,
		// withdraw by peer 3, cancel 1, close 2, advance 3, then (appended, so that the
		// seeds keep their meaning) sign with HTLCs 3, claim 3, refund 2, splice 3.
		const KINDS: [u8; 40] = [
			0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 6, 6, 6, 7, 8, 8, 9, 9, 9,
			10, 10, 10, 11, 11, 11, 12, 12, 13, 13, 13,
		];
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
				Action::Sign { channel, holder, balances, htlcs: vec![] }
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
			9 => Action::Advance { blocks: u64::from(self.input.byte()? % 32) },
			10 => {
				let channel = self.channel()?;
				let holder = self.input.pick(2)?;
				let mut balances = self.input.split(self.total_of(channel))?;
				let htlcs = self.htlcs(&mut balances)?;
				Action::Sign { channel, holder, balances, htlcs }
			},
			11 => {
				let channel = self.channel()?;
				let who = self.caller(channel)?;
				Action::Claim {
					who,
					channel,
					index: self.input.byte()?,
					preimage: self.input.byte()?,
				}
			},
			12 => {
				let channel = self.channel()?;
				let who = self.caller(channel)?;
				Action::Refund { who, channel, index: self.input.byte()? }
			},
			_ => {
				let channel = self.channel()?;
				let who = self.caller(channel)?;
				let side = self.input.pick(2)?;
				let (mut amounts_in, mut amounts_out) = ([0; 2], [0; 2]);
				match self.input.byte()? {
					0..=127 => amounts_in[side] = self.input.amount()?,
					// A share of what the bank holds, sometimes all of it or more.
					128..=223 => {
						amounts_out[side] = self.input.split(self.total_of(channel))?[0]
							+ Balance::from(self.input.byte()? >= 250)
					},
					// What the last splice added: the bank holds what it held before it, so
					// that only the nonce tells a sheet from before the splices.
					_ => amounts_out[side] = self.banks.get(&channel).map_or(1, |b| b.last_added),
				}
				let replay = self.input.byte()? >= 224;
				Action::Splice {
					who,
					channel,
					amounts_in,
					amounts_out,
					replay,
					forgery: self.forgery()?,
				}
			},
		})
	}
}
