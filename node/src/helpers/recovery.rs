//! A helper whose store is lost (`docs/recovery.md`): started with no store, it looks for banks
//! the chain holds with its account as a client, and takes each back from the chain's terms and
//! the account key ([`rsmc::Bank::lost`]). Such a bank is behind from the start: the `Reestablish` sent at
//! resume asks the peer for its newest sheet, proven with our own signature, and the bank
//! closes at it.

use super::{account::Account, guard, Accounts, LOG};
use rsmc::Terms;
use std::{sync::Arc, time::Duration};
use vbank_primitives::{ChannelId, ChannelState};

/// How soon a helper behind on a bank asks the peer again, the first time; each time after
/// waits twice as long, up to [`ASK_AGAIN_AT_MOST`].
const ASK_AGAIN: Duration = Duration::from_secs(2);
const ASK_AGAIN_AT_MOST: Duration = Duration::from_secs(300);

impl Accounts {
	/// Compare bank `channel` with the peer again until it answers, while we are behind on it
	/// with no close agreed: a peer not reachable at our start (a lost store knows no URL of
	/// it, and the p2p network is still connecting) is asked again, after [`ASK_AGAIN`], then
	/// twice as long each time (a peer that never answers costs little).
	pub(super) fn reestablish_later(&self, party: &Arc<Account>, channel: ChannelId) {
		let Some(me) = self.me.upgrade() else { return };
		let party = party.clone();
		guard::spawn("comparing a bank with the peer again", async move {
			let mut wait = ASK_AGAIN;
			loop {
				let waiting = party.bank(channel).is_some_and(|bank| {
					bank.is_behind()
						&& bank.closing().is_none()
						&& bank.ledger().is_some_and(|l| !l.is_going_on_chain())
				});
				if !waiting {
					return;
				}
				tokio::time::sleep(wait).await;
				wait = (wait * 2).min(ASK_AGAIN_AT_MOST);
				match me.drive(&party, channel, async |d| d.reestablish(channel).await).await {
					Ok(_) => return,
					Err(e) => log::debug!(
						target: LOG,
						"💸 {} bank {channel}: the peer still does not answer: {e}",
						party.account
					),
				}
			}
		});
	}

	/// Take back every running bank of `party`'s the chain holds, when its store was made at
	/// this start. (A store restored from a copy that lacks a newer bank is not looked at: a
	/// bank of ours the store does not hold is then one a stranger opened and we never joined
	/// as often as one we lost.)
	pub(super) fn recover_lost(&self, party: &Account) {
		if !party.new_store {
			return;
		}
		let on_chain = match self.chain.channels_of(&party.account) {
			Ok(channels) => channels,
			Err(e) => return log::warn!(target: LOG, "💸 {}: {e}", party.account),
		};
		let held = party.channels();
		for channel in on_chain.into_iter().filter(|channel| !held.contains(channel)) {
			let bank = match self.chain.final_channel(channel) {
				Ok(Some(bank)) => bank,
				Ok(None) => continue,
				Err(e) => {
					log::warn!(target: LOG, "💸 {} bank {channel}: {e}", party.account);
					continue;
				},
			};
			// A bank still funding has no sheet to recover (`cancel` returns the deposits); a
			// liquidated one is settled by the chain, which releases the master's share.
			let Some(me) =
				bank.client_index(&party.account).filter(|_| bank.state == ChannelState::Running)
			else {
				continue;
			};
			let terms = Terms {
				channel,
				genesis_hash: self.chain.genesis,
				clients: bank.clients.clone(),
				balances: bank.balances,
				lock_period: bank.lock_period.into(),
			};
			let helper = party.helper_or_new(channel);
			let recovered = helper
				.lock()
				.unwrap_or_else(|poisoned| poisoned.into_inner())
				.recover_lost(terms, me as u8);
			match recovered {
				Ok(()) => log::warn!(
					target: LOG,
					"💸 {} bank {channel}: the chain holds it, our store does not (lost, or older \
					 than the bank); taken back from the chain and the account key, behind: \
					 closing at the peer's newest sheet",
					party.account
				),
				Err(e) => {
					if party.bank(channel).is_none() {
						party.drop_bank(channel);
					}
					log::warn!(target: LOG, "💸 {} bank {channel}: cannot take it back: {e}", party.account);
				},
			}
		}
	}
}
