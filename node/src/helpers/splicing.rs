//! Splices (`docs/splice.md`): `rsmc_topUp` and `rsmc_withdraw`. The helpers agree off chain
//! (the protocol core's `Splice`, `SpliceAccept`, `SpliceSigned`), the watchtower sends the
//! pallet's `splice` as a call owed to the chain, and the request returns once a final block
//! holds it.

use super::{Accounts, Failure, FEE_RESERVE};
use std::time::{Duration, Instant};
use vbank_primitives::{Balance, Balances, ChannelId, ChannelState, Nonce};
use vbank_runtime::AccountId;

/// The least time a request waits for its splice to be final on chain, whatever the peer
/// timeout: a network of validators takes a few blocks and a round of finality.
const FINAL_WITHIN: Duration = Duration::from_secs(60);

/// A splice made final: the sheet it took effect at, the shares of that sheet, and what the
/// bank holds now (with its HTLCs).
pub struct Spliced {
	pub nonce: Nonce,
	pub balances: Balances,
	pub total: Balance,
}

impl Accounts {
	/// Splice `channel`: `account` adds `amount_in` to the bank, or takes `amount_out` out of
	/// its own share (the other zero). Refused while the bank is not running; a top-up needs
	/// the amount free, with what the fees take.
	pub async fn splice(
		&self,
		account: &AccountId,
		channel: ChannelId,
		amount_in: Balance,
		amount_out: Balance,
	) -> Result<Spliced, Failure> {
		let party = self.party(account)?;
		if party.bank(channel).is_none() {
			return Err(Failure::BadRequest(format!("{account} has no bank {channel}")));
		}
		if amount_in == 0 && amount_out == 0 {
			return Err(Failure::BadRequest("the amount must be positive".into()));
		}
		match self.chain.channel(channel).map_err(Failure::Chain)?.map(|c| c.state) {
			Some(ChannelState::Running) => {},
			Some(ChannelState::Liquidating) => {
				return Err(Failure::Refused(rsmc::Error::Liquidated.to_string()))
			},
			_ => {
				return Err(Failure::Refused(format!(
					"bank {channel} is not running on chain: only a running bank is spliced"
				)))
			},
		}
		if amount_in > 0 {
			let free = self.chain.free_balance(account).map_err(Failure::Chain)?;
			let needed = amount_in.saturating_add(FEE_RESERVE);
			if free < needed {
				return Err(Failure::Policy(format!(
					"{account} has {free} planck free; adding {amount_in} needs {needed}, with \
					 {FEE_RESERVE} kept for the fees"
				)));
			}
		}
		self.await_deposits_final(channel).await?;
		let splicing = self
			.drive(party, channel, async |d| d.splice(channel, amount_in, amount_out).await)
			.await?;
		self.submit_owed(party);
		let deadline = Instant::now() + self.settings.peer_timeout.max(FINAL_WITHIN);
		loop {
			let Some(bank) = party.bank(channel) else {
				return Err(Failure::Refused(format!(
					"bank {channel} was settled before its splice was final"
				)));
			};
			if bank.splicing().is_none() && bank.nonce() >= splicing.nonce {
				let balances = bank.balances();
				let htlcs = bank.htlcs().iter().map(|h| h.amount);
				let total = balances.into_iter().chain(htlcs).fold(0, Balance::saturating_add);
				return Ok(Spliced { nonce: bank.nonce(), balances, total });
			}
			if bank.ledger().is_some_and(|l| l.is_going_on_chain()) {
				return Err(Failure::Refused(format!(
					"bank {channel} went on chain before its splice was final"
				)));
			}
			if Instant::now() >= deadline {
				return Err(Failure::Chain(format!(
					"the splice of bank {channel} at sheet {} is signed by both but not final \
					 on chain yet; the watchtower sends it until it is",
					splicing.nonce
				)));
			}
			tokio::time::sleep(Duration::from_millis(100)).await;
		}
	}
}
