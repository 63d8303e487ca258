//! The watchtower: follows every block the node imports and hands the virtual bank's events
//! to the helpers, which decide what they owe the chain (SPEC section 4): `withdraw_by_peer`
//! at once when the peer liquidated with a revoked sheet, `withdraw_by_master` when our own
//! lock ends. What is owed is stored with the bank and submitted again at every block and on
//! a timer (an idle instant-seal chain brings no blocks) until it is included or moot.

use super::{EventKind, Helpers, LOG};
use futures::StreamExt;
use rsmc::chain::ChainEvent;
use sc_client_api::BlockchainEvents;
use sp_blockchain::HeaderBackend;
use sp_core::H256;
use sp_runtime::traits::Header as _;
use std::{sync::Arc, time::Duration};
use vbank_runtime::{BlockNumber, RuntimeEvent};

/// How often owed calls are submitted again when no block comes.
const RETRY_EVERY: Duration = Duration::from_secs(2);

/// Runs for the life of the node: resumes the helpers, follows the chain, and retries what
/// the helpers owe it.
pub async fn run(helpers: Arc<Helpers>) {
	let retry = {
		let helpers = helpers.clone();
		async move {
			loop {
				tokio::time::sleep(RETRY_EVERY).await;
				for party in helpers.parties.values() {
					helpers.submit_owed(party);
				}
			}
		}
	};
	futures::join!(retry, follow(helpers.clone()), helpers.resume_all());
}

/// Every new best block, in order, gaps filled (a node catching up reports only some).
async fn follow(helpers: Arc<Helpers>) {
	let client = helpers.chain.client().clone();
	let mut imports = client.import_notification_stream();
	let mut done = client.info().best_number;
	while let Some(notification) = imports.next().await {
		if !notification.is_new_best {
			continue;
		}
		let best = *notification.header.number();
		for number in done.saturating_add(1)..=best {
			match client.hash(number) {
				Ok(Some(hash)) => helpers.on_block(number, hash),
				other => log::warn!(target: LOG, "💸 watchtower: no block {number}: {other:?}"),
			}
		}
		done = done.max(best);
	}
}

impl Helpers {
	/// What block `number` means for our banks.
	pub fn on_block(&self, number: BlockNumber, hash: H256) {
		let events = match self.chain.events(hash) {
			Ok(events) => events,
			Err(e) => {
				log::warn!(target: LOG, "💸 watchtower: {e}");
				return;
			},
		};
		for (_, event) in events {
			let RuntimeEvent::VirtualBank(event) = event else { continue };
			use pallet_virtual_bank::Event::*;
			match event {
				Liquidated { channel, master, nonce, balances, unlock_at } => {
					for party in self.holders(channel) {
						self.emit_with(
							&party.account,
							EventKind::Liquidated,
							channel,
							nonce,
							balances,
						);
						let event = ChainEvent::Liquidated {
							channel,
							master: master.clone(),
							nonce,
							balances,
							unlock_at: unlock_at.into(),
						};
						self.watch(&party, &event);
					}
				},
				WithdrawnByPeer { channel, nonce, .. } => {
					self.settled(channel, EventKind::Punished, Some(nonce))
				},
				WithdrawnByMaster { channel, .. } => {
					self.settled(channel, EventKind::Withdrawn, None)
				},
				Closed { channel, .. } => self.settled(channel, EventKind::Closed, None),
				Cancelled { channel } => self.settled(channel, EventKind::Closed, None),
				_ => {},
			}
		}
		let tick = ChainEvent::Block { number: number.into() };
		for party in self.parties.values() {
			self.watch(party, &tick);
		}
	}

	/// The chain removed bank `channel`: tell, and forget it.
	fn settled(&self, channel: super::ChannelId, kind: EventKind, nonce: Option<u64>) {
		for party in self.holders(channel) {
			let (newest, balances) =
				party.bank(channel).map(|b| (b.nonce(), b.balances())).unwrap_or_default();
			self.emit_with(&party.account, kind, channel, nonce.unwrap_or(newest), balances);
			self.forget(&party, channel);
		}
	}
}
