//! Payments through other banks (SPEC section 6): invoices, routes from the chain's banks,
//! forwarding, and settling or failing each HTLC upstream as soon as its fate is known
//! downstream. The decisions are the pure crate's ([`rsmc::route`], [`rsmc::chain`]); this
//! wires them to the helpers, the chain and the RPC.

use super::{account::Account, guard, Accounts, EventKind, Failure, LOG};
use rsmc::{
	chain::{htlc_deadline, owed_htlcs, ChainCall},
	driver::DriveError,
	relay::{Command, Happened, Links},
	route::{find_route, Edge, Expiries},
	Bank, Error, Htlc, HtlcUpdate,
};
use sp_core::H256;
use std::{sync::Arc, time::Duration};
use tokio::sync::broadcast::error::RecvError;
use vbank_primitives::{hashlock, Balance, ChannelId, ChannelState, Preimage};
use vbank_runtime::AccountId;

/// A payment made through `rsmc_send`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sent {
	pub preimage: Preimage,
	pub route: Vec<ChannelId>,
	pub amount: Balance,
	pub fees: Balance,
}

/// Why an HTLC we offered did not become final.
enum Offer {
	/// Our signed offer left: it may yet be taken, or liquidated with.
	Out(DriveError),
	/// Nothing left: the HTLC is not pending anywhere.
	NotMade(DriveError),
}

impl Accounts {
	/// A fresh preimage for `account` to be paid `amount` against: its hashlock.
	pub fn invoice(&self, account: &AccountId, amount: Balance) -> Result<H256, Failure> {
		let party = self.party(account)?;
		if amount == 0 {
			return Err(Failure::BadRequest("an invoice asks for a positive amount".into()));
		}
		// Paid through one bank of ours: no more than a peer of ours can send us, above the
		// bank's reserve.
		let inbound = party
			.channels()
			.into_iter()
			.filter_map(|c| party.bank(c))
			.filter(|b| b.is_live())
			.map(|b| b.spendable(1 - b.me()))
			.max()
			.unwrap_or(0);
		if amount > inbound {
			return Err(Failure::BadRequest(format!(
				"an invoice of {amount} can't be paid: the most a bank of {account} can bring it \
				 is {inbound}"
			)));
		}
		let preimage: Preimage = rand::random();
		party.relay().invoice(preimage, amount).map_err(|e| Failure::Store(e.to_string()))
	}

	/// The banks on chain as `party` can route through them: running ones, what each client
	/// can send (exact for ours, above the reserve; the bank's total for others'). A bank that names us but that
	/// our helper does not hold is a stranger's (anyone can open one on chain): no route of
	/// ours goes through it.
	fn edges(&self, party: &Account) -> Result<Vec<Edge>, Failure> {
		let next = self.chain.next_channel_id().map_err(Failure::Chain)?;
		let mut edges = Vec::new();
		for channel in 0..next {
			let Some(bank) = self.chain.channel(channel).map_err(Failure::Chain)? else {
				continue;
			};
			if bank.state != ChannelState::Running {
				continue;
			}
			let can_send = match party.bank(channel) {
				Some(ours) if ours.is_live() => [ours.spendable(0), ours.spendable(1)],
				Some(_) => continue,
				None if bank.clients.contains(&party.account) => continue,
				None => [bank.total().unwrap_or_default(); 2],
			};
			edges.push(Edge { channel, clients: bank.clients.clone(), can_send });
		}
		Ok(edges)
	}

	/// Pay `amount` to `payee` against `lock` through the route with the fewest hops, then
	/// the lowest fees; returns once the payee's preimage has come back. Refused before
	/// anything is locked when no route has the capacity, or while an HTLC of ours under
	/// `lock` may still be paid out (a retry would pay twice).
	pub async fn send(
		&self,
		account: &AccountId,
		payee: &AccountId,
		amount: Balance,
		lock: H256,
	) -> Result<Sent, Failure> {
		let party = self.party(account)?;
		if amount == 0 {
			return Err(Failure::BadRequest("a payment of nothing".into()));
		}
		if self.offering(party, lock) {
			return Err(Failure::Busy(format!(
				"an HTLC of {account} under hashlock {lock:?} is still pending: it is settled, or \
				 given back by its expiry; retry after"
			)));
		}
		let edges = self.edges(party)?;
		let (_, now) = self.chain.best();
		let fee = self.settings.forwarding.fee;
		let delta = self.settings.forwarding.delta;
		let expiries = Expiries { delta, final_delta: delta };
		let route = find_route(&edges, account, payee, amount, |_| fee, expiries, now).ok_or_else(
			|| {
				Failure::Refused(format!(
					"no route from {account} to {payee} with the capacity for {amount}"
				))
			},
		)?;
		let no_hop = || Failure::Refused(format!("no route from {account} to {payee}"));
		let (first, onward) = route.hops.split_first().ok_or_else(no_hop)?;
		let channel = first.channel;
		let me = party.bank(channel).map(|b| b.me).ok_or_else(no_hop)?;
		let update = first.update(me, lock, onward);
		self.await_deposits_final(channel).await?;
		let mut events = self.subscribe();
		let mut receipts = self.receipts.subscribe();
		match self.offer(party, channel, update).await {
			Ok(()) => {},
			// Not failed until it is irrevocably gone (M2 of the review).
			Err(Offer::Out(e)) => {
				return Err(Failure::PeerSilent(format!(
					"{e}; the HTLC may still be locked on bank {channel}: it is settled, or given \
					 back by block {} at the latest",
					first.expiry
				)))
			},
			Err(Offer::NotMade(e)) => return Err(e.into()),
		}
		log::info!(target: LOG, "💸 {account} sends {amount} to {payee} through {:?}", route.hops);
		// Settled or failed by the next hop, off chain or on.
		let wait = send_wait(self.settings.peer_timeout, route.hops.len());
		// The preimage, once seen in the next hop's settlement (the receipt, at once) or
		// learned from a claim on chain (kept then, as a bank still holds its HTLC); `None`
		// if the payment failed.
		let resolved = tokio::time::timeout(wait, async {
			loop {
				let event = tokio::select! {
					// The receipt is sent before the settlement's event: look at it first.
					biased;
					receipt = receipts.recv() => match receipt {
						Ok((who, seen, preimage)) if who == *account && seen == lock => {
							return Some(Some(preimage))
						},
						_ => continue,
					},
					event = events.recv() => event,
				};
				match event {
					Ok(e)
						if e.account == *account
							&& e.channel == channel
							&& e.hashlock == Some(lock) =>
					{
						match e.kind {
							EventKind::HtlcSettled => return Some(party.preimage(&lock)),
							EventKind::HtlcFailed => return None,
							_ => {},
						}
					},
					Ok(_) | Err(RecvError::Lagged(_)) => {},
					Err(RecvError::Closed) => return None,
				}
			}
		})
		.await;
		match resolved {
			Ok(Some(preimage)) => {
				let preimage = preimage
					.ok_or_else(|| Failure::Store("the preimage learned was not kept".into()))?;
				let channels = route.hops.iter().map(|h| h.channel).collect();
				Ok(Sent { preimage, route: channels, amount, fees: route.fees })
			},
			Ok(None) => Err(Failure::Refused(format!(
				"the payment failed on the route {:?}; its HTLC went back to us",
				route.hops.iter().map(|h| h.channel).collect::<Vec<_>>()
			))),
			Err(_) => Err(Failure::PeerSilent(format!(
				"the payment is still pending after {wait:?}: it is settled, or given back by \
				 block {} at the latest",
				first.expiry
			))),
		}
	}

	/// Add the HTLC of `update` (an `Add` or `AddRouted`) on `party`'s bank `channel`: done once
	/// final. When it is not, whether our signed offer left ([`Offer::Out`]: the peer may take
	/// it later, or liquidate with it and claim) or never did.
	async fn offer(
		&self,
		party: &Arc<Account>,
		channel: ChannelId,
		update: HtlcUpdate,
	) -> Result<(), Offer> {
		let lock = update.hashlock();
		let added =
			self.drive(party, channel, async |d| d.update(channel, |_| Ok(update.clone())).await);
		match added.await {
			Ok(_) => Ok(()),
			Err(e) if party.bank(channel).is_some_and(|b| b.offers(lock)) => Err(Offer::Out(e)),
			Err(e) => Err(Offer::NotMade(e)),
		}
	}

	/// Whether an HTLC `party` sent under `lock` may still be paid out, off chain or on
	/// ([`rsmc::relay::offering`]).
	pub(super) fn offering(&self, party: &Account, lock: H256) -> bool {
		party.relay().offering(lock, &self.links(party))
	}

	/// What `party`'s relay reads of its banks and of the chain.
	fn links<'a>(&'a self, party: &'a Account) -> NodeLinks<'a> {
		NodeLinks { helpers: self, party }
	}

	/// Tell `party`'s relay what happened, and carry out what it asks: updates proposed in
	/// tasks of their own, whose outcome it is told in turn.
	pub(super) fn relay(&self, party: &Arc<Account>, happened: Happened) {
		let commands = {
			let links = self.links(party);
			party.relay().on(happened, &links)
		};
		for command in commands {
			self.carry_out(party, command);
		}
	}

	fn carry_out(&self, party: &Arc<Account>, command: Command) {
		let account = &party.account;
		match command {
			Command::Propose { channel, proposal } => {
				let Some(me) = self.me.upgrade() else { return };
				let party = party.clone();
				guard::spawn("an update of the relay", async move {
					let make = |bank: &Bank| {
						proposal.update(bank).ok_or(Error::BadHtlc("no such HTLC pending to us"))
					};
					let made =
						me.drive(&party, channel, async |d| d.update(channel, make).await).await;
					// Made final, the relay hears of it from the step's progress.
					if let Err(error) = made {
						log::info!(target: LOG, "💸 {} bank {channel}: {proposal:?} not made: {error}", party.account);
						me.relay(&party, Happened::NotFinal { channel, proposal, error });
					}
				});
			},
			Command::Liquidate(channel) => {
				log::warn!(target: LOG, "💸 {account} bank {channel}: a settlement the peer does not take goes on chain; liquidating");
				let Some(me) = self.me.upgrade() else { return };
				let account = account.clone();
				guard::spawn("a liquidation of the relay", async move {
					if let Err(e) = me.liquidate(&account, channel).await {
						log::warn!(target: LOG, "💸 {account} bank {channel}: cannot liquidate: {e}; the watchtower tries again");
					}
				});
			},
			Command::Forwarded { from, to, lock } => {
				log::info!(target: LOG, "💸 {account} forwarded {lock:?} from bank {from} to bank {to}");
				self.emit_htlc(party, EventKind::Forwarded, to, lock);
			},
			Command::Receipt(preimage) => {
				let _ = self.receipts.send((account.clone(), hashlock(&preimage), preimage));
			},
			Command::Warn(warning) => log::warn!(target: LOG, "💸 {account}: {warning}"),
		}
	}

	pub(super) fn emit_htlc(
		&self,
		party: &Account,
		kind: EventKind,
		channel: ChannelId,
		lock: H256,
	) {
		let (nonce, balances) =
			party.bank(channel).map(|b| (b.nonce(), b.balances())).unwrap_or_default();
		let event = super::Event {
			account: party.account.clone(),
			kind,
			channel,
			nonce,
			balances,
			hashlock: Some(lock),
		};
		super::events::announce_event(&self.events, event);
	}

	/// What the watchtower owes the chain for the HTLCs of `party`'s bank `channel` at block
	/// `now`: claims and refunds on a liquidated bank; the liquidation of a running one whose
	/// HTLCs can be saved only on chain.
	pub(super) fn htlc_calls(
		&self,
		party: &Account,
		channel: ChannelId,
		now: u32,
	) -> Vec<ChainCall> {
		let Some(bank) = party.bank(channel) else { return Vec::new() };
		let Some(ledger) = bank.ledger() else { return Vec::new() };
		// A payee holding its HTLCs (a test's cheat) shows no preimage on chain either.
		let holds = party.holds.load(std::sync::atomic::Ordering::Relaxed);
		let known = |lock: &H256| party.preimage(lock).filter(|_| !holds);
		if ledger.liquidated.is_some() {
			return match self.chain.htlcs(channel) {
				Ok(htlcs) => owed_htlcs(channel, bank.me(), &htlcs, known, now.into()),
				Err(e) => {
					log::warn!(target: LOG, "💸 watchtower: {e}");
					Vec::new()
				},
			};
		}
		let Some(why) = htlc_deadline(&bank, known, now.into(), self.settings.forwarding) else {
			return Vec::new();
		};
		log::warn!(target: LOG, "💸 {} bank {channel}: {why}; liquidating", party.account);
		// Marked before it leaves: nothing more is signed on the bank (C1 of the review).
		match party.with(channel, |h| h.liquidate(channel)) {
			Some(Ok(sheet)) => vec![ChainCall::Liquidate(sheet)],
			Some(Err(e)) => {
				log::warn!(target: LOG, "💸 {} bank {channel}: cannot liquidate: {e}", party.account);
				Vec::new()
			},
			None => Vec::new(),
		}
	}
}

/// How long a routed payment may wait for its preimage before `rsmc_send` answers that it is
/// still pending.
pub(super) fn send_wait(peer_timeout: Duration, hops: usize) -> Duration {
	peer_timeout * (hops as u32 + 2)
}

/// What a party's relay reads: its banks as its helpers hold them, and the chain.
struct NodeLinks<'a> {
	helpers: &'a Accounts,
	party: &'a Account,
}

impl Links for NodeLinks<'_> {
	fn now(&self) -> u32 {
		self.helpers.chain.best().1
	}

	fn banks(&self) -> Vec<Bank> {
		self.party.all_banks()
	}

	fn on_chain(&self, channel: ChannelId) -> Option<Vec<Option<Htlc>>> {
		// A bank the chain does not show liquidated may still be, with a sheet carrying any
		// HTLC either side signed: pending. (After a restart, the block with a liquidation the
		// helper saw may not have been kept; a reorg may have dropped it.)
		let liquidated = self
			.helpers
			.chain
			.channel(channel)
			.map(|bank| bank.is_none_or(|bank| bank.liquidation.is_some()));
		if let Ok(false) = liquidated {
			return None;
		}
		match liquidated.and_then(|_| self.helpers.chain.htlcs(channel)) {
			Ok(htlcs) => Some(htlcs),
			Err(e) => {
				log::warn!(target: LOG, "💸 {}: {e}; counting bank {channel} as pending", self.party.account);
				None
			},
		}
	}

	fn shown_on_chain(&self, lock: &H256) -> Option<Preimage> {
		self.helpers.chain.preimage(*lock).ok().flatten()
	}
}
