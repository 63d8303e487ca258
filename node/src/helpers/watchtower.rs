//! The watchtower: follows every block the node imports and hands the virtual bank's events
//! to the helpers, which decide what they owe the chain (SPEC section 4): `withdraw_by_peer`
//! at once when the peer liquidated with a revoked sheet, `withdraw_by_master` when our own
//! lock ends. What is owed is stored with the bank and submitted again at every block and on
//! a timer (an idle instant-seal chain brings no blocks) until it is included or moot.

use super::{account::Account, chain::OnChain, guard, liquidate_call, Accounts, EventKind, LOG};
use futures::StreamExt;
use rsmc::{
	chain::{ChainCall, ChainEvent},
	relay::Happened,
};
use sc_client_api::BlockchainEvents;
use sp_blockchain::HeaderBackend;
use sp_core::H256;
use std::{sync::Arc, time::Duration};
use vbank_primitives::{ChannelId, ChannelState};
use vbank_runtime::{BlockNumber, RuntimeCall, RuntimeEvent};

/// How often owed calls are submitted again when no block comes.
const RETRY_EVERY: Duration = Duration::from_secs(2);

/// Runs for the life of the node: resumes the helpers, follows the chain, and retries what
/// the helpers owe it.
pub async fn run(helpers: Arc<Accounts>) {
	let retry = {
		let helpers = helpers.clone();
		async move {
			loop {
				tokio::time::sleep(RETRY_EVERY).await;
				for party in helpers.parties.values() {
					helpers.submit_owed(party);
					// A settlement that did not become final is made again: on this timer only,
					// not at every block (a dev chain seals one per transaction, a catching-up
					// node imports thousands, and each tick reads every pending HTLC).
					helpers.relay(party, Happened::Tick);
				}
			}
		}
	};
	futures::join!(
		retry,
		follow(helpers.clone()),
		follow_finalized(helpers.clone()),
		helpers.clone().run_towers(),
		helpers.resume_all()
	);
}

/// Every block of the best chain, in order: the gaps filled (a node catching up reports only
/// some), and after a reorg the new branch from where it forks, whatever the height the old
/// one had reached (a liquidation in a block below it is answered too).
async fn follow(helpers: Arc<Accounts>) {
	let client = helpers.chain.client().clone();
	let mut imports = client.import_notification_stream();
	let mut done = client.info().best_hash;
	while let Some(notification) = imports.next().await {
		if !notification.is_new_best {
			continue;
		}
		let route = match sp_blockchain::tree_route(&*client, done, notification.hash) {
			Ok(route) => route,
			Err(e) => {
				log::warn!(target: LOG, "💸 watchtower: no way from block {done} to {}: {e}", notification.hash);
				done = notification.hash;
				continue;
			},
		};
		if let (Some(first), Some(last)) = (route.retracted().last(), route.retracted().first()) {
			log::info!(
				target: LOG,
				"💸 watchtower: blocks #{} to #{} left the best chain, which forks from #{}",
				first.number,
				last.number,
				route.common_block().number
			);
		}
		for block in route.enacted() {
			// A block the watchtower can't make sense of must not stop it for the next.
			let _ =
				guard::caught_now("the watchtower", || helpers.on_block(block.number, block.hash));
		}
		done = notification.hash;
	}
}

/// Every finalized block, in order, on a chain with finality: a bank the chain removed there
/// is forgotten only then (on a fork it could come back).
async fn follow_finalized(helpers: Arc<Accounts>) {
	if !helpers.chain.has_finality() {
		return;
	}
	let client = helpers.chain.client().clone();
	let mut finalized = client.finality_notification_stream();
	while let Some(notification) = finalized.next().await {
		let hashes = notification.tree_route.iter().chain([&notification.hash]);
		for &hash in hashes {
			let _ = guard::caught_now("the watchtower", || helpers.on_final_block(hash));
		}
	}
}

impl Accounts {
	/// A liquidation a helper was told of that a reorg dropped for good: the finalized chain,
	/// past the block that held it, runs the bank, and so does the best chain (the pool did
	/// not bring the liquidation back meanwhile). Both helpers, having seen it, sign nothing
	/// more; each liquidates again with its newest sheet (never back to paying: the dropped
	/// liquidation stays valid, and could land later with what would then be a revoked
	/// sheet). Looked at each time a block is final, and when the helpers resume.
	pub fn reconcile_liquidations(&self) {
		let info = self.chain.client().info();
		let (last, last_number) = if self.chain.has_finality() {
			(info.finalized_hash, info.finalized_number)
		} else {
			(info.best_hash, info.best_number)
		};
		let running = |hash, channel| matches!(self.chain.channel_at(hash, channel), Ok(Some(bank)) if bank.liquidation.is_none());
		for party in self.parties.values() {
			for channel in party.channels() {
				let Some(bank) = party.bank(channel) else { continue };
				let Some(seen) = bank.ledger().and_then(|ledger| ledger.liquidated.clone()) else {
					continue;
				};
				// The chain set the unlock block a lock period after the liquidation's.
				let held_at = seen.unlock_at.saturating_sub(bank.terms.lock_period);
				if u64::from(last_number) < held_at
					|| !running(last, channel)
					|| !running(info.best_hash, channel)
				{
					continue;
				}
				log::warn!(
					target: LOG,
					"💸 {} bank {channel}: the liquidation at nonce {} left the chain in a reorg; \
					 liquidating again with the newest sheet",
					party.account,
					seen.nonce
				);
				self.watch(party, &ChainEvent::LiquidationUndone { channel });
			}
		}
	}

	/// A splice both helpers signed that the newest final block holds, though its event was
	/// missed (the node was down when its block was finalized): the helpers go on from it as
	/// from the event. Looked at each time a block is final, and when the helpers resume.
	pub fn reconcile_splices(&self) {
		for party in self.parties.values() {
			for channel in party.channels() {
				let Some(nonce) = party
					.bank(channel)
					.and_then(|b| b.splicing().filter(|s| s.sheet.is_some()).map(|s| s.nonce))
				else {
					continue;
				};
				if matches!(self.chain.final_spliced_at(channel), Ok(Some(at)) if at >= nonce) {
					self.spliced(channel, nonce);
				}
			}
		}
	}

	/// What block `number` means for our banks.
	pub fn on_block(&self, number: BlockNumber, hash: H256) {
		let events = match self.chain.events(hash) {
			Ok(events) => events,
			Err(e) => {
				log::warn!(target: LOG, "💸 watchtower: {e}");
				return;
			},
		};
		for (_, event) in events.clone() {
			let RuntimeEvent::VirtualBank(event) = event else { continue };
			use pallet_virtual_bank::Event::*;
			match event {
				Liquidated { channel, master, nonce, balances, unlock_at, release_at } => {
					self.tower_check(channel);
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
							release_at: release_at.into(),
						};
						self.watch(&party, &event);
						// An HTLC left off the sheet is gone only once no fork can bring
						// another sheet (with it) to the chain: on a chain with finality,
						// when the liquidation's block is final.
						if !self.chain.has_finality() {
							self.offers_settled_on_chain(&party, channel);
						}
					}
				},
				HtlcClaimed { channel, hashlock, preimage, .. } => {
					self.htlc_paid_out(channel, hashlock, Some(preimage))
				},
				HtlcRefunded { channel, hashlock, .. } => {
					self.htlc_paid_out(channel, hashlock, None)
				},
				Closed { channel, .. }
				| Cancelled { channel }
				| WithdrawnByPeer { channel, .. }
				| WithdrawnByMaster { channel, .. } => self.tower_check(channel),
				_ => {},
			}
		}
		// Without finality the best block is as final as a block gets.
		if !self.chain.has_finality() {
			self.removals(hash, &events);
			self.reconcile_liquidations();
			self.reconcile_splices();
		}
		let tick = ChainEvent::Block { number: number.into() };
		for party in self.parties.values() {
			self.watch(party, &tick);
		}
	}

	/// Bank `channel` of `party` is liquidated: an HTLC we only offered on it (the peer gone
	/// silent before it was final) is on chain only if the sheet liquidated with carries it.
	/// Where it is not, it is gone for good: the relay fails upstream what was paid to us
	/// under its lock, once nothing under it may still be paid out.
	fn offers_settled_on_chain(&self, party: &Arc<Account>, channel: ChannelId) {
		let Some(bank) = party.bank(channel) else { return };
		let mut locks: Vec<H256> = bank.offered_htlcs().map(|h| h.hashlock).collect();
		locks.sort();
		locks.dedup();
		for lock in locks {
			self.relay(party, Happened::Gone(lock));
		}
	}

	/// An HTLC of liquidated bank `channel` was paid out on chain: claimed with `preimage`, or
	/// refunded. Its holders hear of it; the relay of every account with an HTLC under the
	/// lock sees a preimage shown (it settles, on every bank of ours, the HTLCs locked under it
	/// that are paid to us); a refund is an HTLC gone for its holders. The last one paid out
	/// removes the bank.
	fn htlc_paid_out(&self, channel: ChannelId, lock: H256, preimage: Option<[u8; 32]>) {
		let kind = if preimage.is_some() { EventKind::HtlcSettled } else { EventKind::HtlcFailed };
		let holders = self.holders(channel);
		// Shown first: a waiting `rsmc_send` has its receipt before the event. Only to the
		// accounts with an HTLC under the lock: to any other it is nothing (L4 of the HTLC
		// review: each relay reads all its banks, and a block may hold thousands of claims).
		if let Some(preimage) = preimage {
			for party in self.parties.values().filter(|p| p.holds_htlc_under(lock)) {
				self.relay(party, Happened::Shown(preimage));
			}
		}
		for party in &holders {
			self.emit_htlc(party, kind, channel, lock);
			if preimage.is_none() {
				self.relay(party, Happened::Gone(lock));
			}
		}
	}

	/// Finalized block `hash`: the banks it removed are forgotten.
	fn on_final_block(&self, hash: H256) {
		match self.chain.events(hash) {
			Ok(events) => {
				for (_, event) in &events {
					if let RuntimeEvent::VirtualBank(pallet_virtual_bank::Event::Liquidated {
						channel,
						..
					}) = event
					{
						for party in self.holders(*channel) {
							self.offers_settled_on_chain(&party, *channel);
						}
					}
				}
				self.removals(hash, &events);
			},
			Err(e) => log::warn!(target: LOG, "💸 watchtower: {e}"),
		}
		self.reconcile_liquidations();
		self.reconcile_splices();
	}

	/// The banks that `events`, of block `hash`, removed from the chain: their holders hear of
	/// it, and forget them. A bank with HTLCs still pending stays after its liquidation's
	/// withdrawal until the last is paid out.
	fn removals(&self, hash: H256, events: &super::chain::BlockEvents) {
		let removed = |channel| matches!(self.chain.channel_at(hash, channel), Ok(None));
		for (_, event) in events {
			let RuntimeEvent::VirtualBank(event) = event else { continue };
			use pallet_virtual_bank::Event::*;
			match *event {
				WithdrawnByPeer { channel, nonce, .. } => {
					self.settled(channel, EventKind::Punished, Some(nonce))
				},
				WithdrawnByMaster { channel, .. }
				| HtlcClaimed { channel, .. }
				| HtlcRefunded { channel, .. }
					if removed(channel) =>
				{
					self.settled(channel, EventKind::Withdrawn, None)
				},
				Closed { channel, .. } | Cancelled { channel } => {
					self.settled(channel, EventKind::Closed, None)
				},
				Spliced { channel, nonce, .. } => self.spliced(channel, nonce),
				_ => {},
			}
		}
	}

	/// A splice of bank `channel` at sheet `nonce` is final: its holders go on from their
	/// sheets at `nonce`, and say so.
	fn spliced(&self, channel: ChannelId, nonce: vbank_primitives::Nonce) {
		for party in self.holders(channel) {
			self.watch(&party, &ChainEvent::Spliced { channel, nonce });
			if party.bank(channel).is_some_and(|b| b.nonce() == nonce && b.splicing().is_none()) {
				super::announce(&self.events, &party, EventKind::Spliced, channel);
			}
		}
	}

	/// The chain removed bank `channel`: tell, and forget it.
	fn settled(&self, channel: ChannelId, kind: EventKind, nonce: Option<u64>) {
		for party in self.holders(channel) {
			// A helper behind (its store stale or lost) closed at the peer's newest sheet.
			let newest = |b: rsmc::Bank| match b.closing() {
				Some(closing) => (closing.nonce, closing.balances),
				None => (b.nonce(), b.balances()),
			};
			let (newest, balances) = party.bank(channel).map(newest).unwrap_or_default();
			self.emit_with(&party.account, kind, channel, nonce.unwrap_or(newest), balances);
			self.forget(&party, channel);
		}
	}
}

/// The watchtower's side of the helpers: resuming after a restart, and the calls owed to the
/// chain.
impl Accounts {
	/// After a restart: finish what each bank was doing (a deposit, a payment in flight),
	/// forget banks the chain has settled, and let the relay look at every HTLC paid to us
	/// again. What the watchtower owes is kept with the banks.
	pub async fn resume_all(self: &Arc<Self>) {
		for party in self.parties.values() {
			self.recover_lost(party);
			let banks = party.channels();
			for channel in banks {
				// Forgotten once its removal is final; until then it is left as it is.
				let on_chain = self.chain.final_channel(channel).and_then(|final_bank| {
					Ok((final_bank.is_some(), self.chain.channel(channel)?))
				});
				match on_chain {
					Ok((false, _)) => self.forget(party, channel),
					Ok((true, None)) => {},
					Ok((true, Some(bank))) => self.resume_bank(party, channel, bank).await,
					Err(e) => log::warn!(target: LOG, "💸 cannot resume bank {channel}: {e}"),
				}
			}
			// Each HTLC paid to us is settled (its preimage known, or shown on chain while
			// we were away), failed (nothing of ours under its lock may be paid out), or left.
			self.relay(party, Happened::Restarted);
		}
		self.reconcile_liquidations();
		self.reconcile_splices();
	}

	async fn resume_bank(&self, party: &Arc<Account>, channel: ChannelId, bank: OnChain) {
		let active = party.bank(channel).is_some_and(|b| b.ledger().is_some());
		match (bank.state, &bank.liquidation) {
			(ChannelState::Funding, _) if active => self.deposit_later(party.clone(), channel),
			(ChannelState::Liquidating, Some(liquidation)) => {
				let event = ChainEvent::Liquidated {
					channel,
					master: bank.clients[usize::from(liquidation.master)].clone(),
					nonce: liquidation.nonce,
					balances: bank.balances,
					unlock_at: liquidation.unlock_at.into(),
					release_at: liquidation.release_at.into(),
				};
				self.watch(party, &event);
			},
			_ => {
				// Where we are against the peer first: a store restored from an older copy
				// must learn it is behind before it acts on the bank (`docs/recovery.md`).
				// What it achieves is reported and acted on as it happens.
				let reestablished =
					self.drive(party, channel, async |d| d.reestablish(channel).await).await;
				if let Err(e) = reestablished {
					log::warn!(
						target: LOG,
						"💸 {} bank {channel}: cannot compare our state with the peer's: {e}",
						party.account
					);
					self.reestablish_later(party, channel);
				}
				if let Err(e) = self.drive(party, channel, async |d| d.resume(channel).await).await
				{
					log::warn!(target: LOG, "💸 {} bank {channel}: cannot resume: {e}", party.account);
				}
			},
		}
	}

	/// The watchtower's look at one chain event for one party: what it owes the chain now
	/// goes out.
	pub(super) fn watch(&self, party: &Arc<Account>, event: &ChainEvent) {
		let channels = match event {
			ChainEvent::Liquidated { channel, .. }
			| ChainEvent::LiquidationUndone { channel }
			| ChainEvent::Spliced { channel, .. } => vec![*channel],
			ChainEvent::Block { .. } => self.on_chain_channels(party),
		};
		let mut calls = Vec::new();
		for channel in channels {
			match party.with(channel, |h| h.on_chain_event(event)) {
				Some(Ok(owed)) => calls.extend(owed),
				Some(Err(e)) => log::warn!(target: LOG, "💸 {} watchtower: {e}", party.account),
				None => {},
			}
			if let ChainEvent::Block { number } = event {
				let now = u32::try_from(*number).unwrap_or(u32::MAX);
				calls.extend(self.htlc_calls(party, channel, now));
			}
		}
		if let ChainEvent::Block { .. } = event {
			calls.extend(self.owed_deposits(party));
		}
		self.submit_calls(party, calls);
	}

	/// Submit again what `party` owes the chain at the best block: the bank's owed calls, the
	/// deposits, and the HTLCs' claims and refunds (an idle instant-seal chain brings no block
	/// to look again at them: after a restart, the first block may even have been sealed
	/// before the watchtower followed the chain).
	pub(super) fn submit_owed(&self, party: &Arc<Account>) {
		let (_, best) = self.chain.best();
		let mut calls: Vec<ChainCall> = Vec::new();
		for channel in self.on_chain_channels(party) {
			calls.extend(party.with(channel, |h| h.owed_calls(best.into())).unwrap_or_default());
			calls.extend(self.htlc_calls(party, channel, best));
		}
		calls.extend(self.owed_deposits(party));
		self.submit_calls(party, calls);
	}

	/// `party`'s banks but those the best block removed and that wait for finality to be
	/// forgotten: nothing is owed on them unless a fork brings them back.
	fn on_chain_channels(&self, party: &Account) -> Vec<ChannelId> {
		let mut channels = party.channels();
		if self.chain.has_finality() {
			let removing = |channel: &ChannelId| {
				matches!(self.chain.channel(*channel), Ok(None))
					&& matches!(self.chain.final_channel(*channel), Ok(Some(_)))
			};
			channels.retain(|channel| !removing(channel));
		}
		channels
	}

	/// The deposits `party` owes: on its banks still at their first sheet (a bank the chain
	/// holds as funding has had no payment), those the chain waits for
	/// ([`rsmc::chain::deposit_owed`]).
	fn owed_deposits(&self, party: &Account) -> Vec<ChainCall> {
		let fresh = party.all_banks().into_iter().filter(|b| b.nonce() == 0 && b.is_live());
		fresh
			.filter_map(|bank| match self.chain.channel(bank.channel()) {
				Ok(Some(on_chain)) => rsmc::chain::deposit_owed(&bank, &on_chain),
				Ok(None) => None,
				Err(e) => {
					log::warn!(target: LOG, "💸 {} watchtower: {e}", party.account);
					None
				},
			})
			.collect()
	}

	/// Submit each of `calls` not already on its way, penalties first; a call that fails is
	/// owed again at the next block or tick. A splice the best block holds already is left
	/// out: it is owed only until final, and sent again it would fail; so is a close of a
	/// sheet before a splice.
	fn submit_calls(&self, party: &Arc<Account>, mut calls: Vec<ChainCall>) {
		calls.sort_by_key(|call| !call.is_penalty());
		calls.retain(|call| match call {
			ChainCall::Splice { channel, nonce, .. } => {
				!matches!(self.chain.spliced_at(*channel), Ok(Some(at)) if at >= *nonce)
			},
			// A close below a splice the chain holds would fail at every block, for a fee.
			ChainCall::Close { channel, nonce, .. } => {
				!matches!(self.chain.spliced_at(*channel), Ok(Some(at)) if at > *nonce)
			},
			_ => true,
		});
		for call in calls {
			// One at a time per bank and kind, but for claims and refunds of different HTLCs,
			// which authorize themselves and go at once (C4 of the HTLC review).
			let key = (party.account.clone(), call.channel(), call.is_penalty(), call.htlc());
			if !self.submitting.lock().expect("not poisoned").insert(key.clone()) {
				continue;
			}
			log::info!(target: LOG, "💸 {} watchtower: {}", party.account, describe_call(&call));
			let (chain, party) = (self.chain.clone(), party.clone());
			let (submitting, events, me) =
				(self.submitting.clone(), self.events.clone(), self.me.clone());
			guard::spawn("a watchtower call", async move {
				let what = describe_call(&call);
				let deposit = matches!(call, ChainCall::Deposit { .. });
				let done = match chain.submit(&party.pair, chain_call(call)).await {
					Ok(_) => {
						log::info!(target: LOG, "💸 {} watchtower: {what}: in a block", party.account);
						if deposit {
							super::announce(&events, &party, EventKind::Deposited, key.1);
						}
						true
					},
					Err(e) => {
						log::warn!(
							target: LOG,
							"💸 {} watchtower: {what}: {e}; owed again at the next block",
							party.account
						);
						false
					},
				};
				submitting.lock().expect("not poisoned").remove(&key);
				// Each side reports the bank `Running` once both deposits are final, after its
				// own `Deposited` (the peer of an opener has no `rsmc_open` that would).
				if let Some(me) = me.upgrade().filter(|_| done && deposit) {
					let _ = me.await_running(&party, key.1).await;
				}
			});
		}
	}

	/// The chain removed bank `channel`: `party` forgets it, and what its relay kept for it.
	pub(super) fn forget(&self, party: &Arc<Account>, channel: ChannelId) {
		if let Some(Err(e)) = party.with(channel, |h| h.forget(channel)) {
			log::warn!(target: LOG, "💸 {} bank {channel}: cannot forget: {e}", party.account);
		}
		party.drop_bank(channel);
		let _ = party.peers.set(channel, None);
		self.relay(party, Happened::Removed(channel));
	}

	/// The parties holding bank `channel`.
	pub(super) fn holders(&self, channel: ChannelId) -> Vec<Arc<Account>> {
		self.parties.values().filter(|p| p.bank(channel).is_some()).cloned().collect()
	}
}

pub(super) fn chain_call(call: ChainCall) -> RuntimeCall {
	match call {
		ChainCall::Liquidate(sheet) => liquidate_call(sheet),
		ChainCall::WithdrawByMaster { channel } => {
			pallet_virtual_bank::Call::withdraw_by_master { channel }.into()
		},
		ChainCall::WithdrawByPeer { channel, waiver_signature } => {
			pallet_virtual_bank::Call::withdraw_by_peer { channel, waiver_signature }.into()
		},
		ChainCall::ClaimHtlc { channel, index, preimage } => {
			pallet_virtual_bank::Call::claim_htlc { channel, index, preimage }.into()
		},
		ChainCall::RefundHtlc { channel, index } => {
			pallet_virtual_bank::Call::refund_htlc { channel, index }.into()
		},
		ChainCall::Deposit { channel } => pallet_virtual_bank::Call::deposit { channel }.into(),
		ChainCall::Splice { channel, nonce, amounts_in, amounts_out, signatures } => {
			pallet_virtual_bank::Call::splice {
				channel,
				nonce,
				amounts_in,
				amounts_out,
				signatures,
			}
			.into()
		},
		ChainCall::Close { channel, nonce, balances, signatures } => {
			pallet_virtual_bank::Call::close { channel, nonce, balances, signatures }.into()
		},
	}
}

pub(super) fn describe_call(call: &ChainCall) -> String {
	match call {
		ChainCall::Liquidate(sheet) => {
			format!("liquidate bank {} with sheet {}", sheet.channel, sheet.nonce)
		},
		ChainCall::WithdrawByMaster { channel } => format!("withdraw_by_master on bank {channel}"),
		ChainCall::WithdrawByPeer { channel, .. } => {
			format!("withdraw_by_peer on bank {channel}: the peer liquidated with a revoked sheet")
		},
		ChainCall::ClaimHtlc { channel, index, .. } => {
			format!("claim_htlc {index} of bank {channel} with its preimage")
		},
		ChainCall::RefundHtlc { channel, index } => {
			format!("refund_htlc {index} of bank {channel}: it expired")
		},
		ChainCall::Deposit { channel } => format!("deposit our share of bank {channel}"),
		ChainCall::Splice { channel, nonce, amounts_in, amounts_out, .. } => format!(
			"splice bank {channel} at sheet {nonce}: in {} / {}, out {} / {}",
			amounts_in[0], amounts_in[1], amounts_out[0], amounts_out[1]
		),
		ChainCall::Close { channel, nonce, balances, .. } => format!(
			"close bank {channel} at the peer's newest sheet {nonce} ({} / {}): our store was behind",
			balances[0], balances[1]
		),
	}
}
