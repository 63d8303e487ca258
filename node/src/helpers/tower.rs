//! Watchtowers for others (`docs/tower.md`), both ends of them.
//!
//! - Serving (`--rsmc-tower`): the node takes the secrets clients it does not serve hand it
//!   with `rsmc_towerUpdate` ([`rsmc::tower::Tower`] decides what it keeps and owes), and
//!   when a bank it watches is liquidated with a sheet they revoke, it submits the penalty as
//!   a general transaction: feeless, with no account of its own. It looks at a bank when an
//!   update comes, when a block names it, and at every tick until the chain removes it.
//! - Using one (`--rsmc-tower-url`): each time a helper of this node learns a secret of its
//!   peer's, the bank's compact store goes to the tower, again until the tower holds it.

use super::{
	account::{Account, NodeStore},
	guard,
	transport::Remotes,
	watchtower::{chain_call, describe_call},
	Accounts, Failure, LOG,
};
use jsonrpsee::{core::client::ClientT, rpc_params};
use rsmc::tower::{Tower, TowerUpdate};
use std::{
	collections::{BTreeMap, BTreeSet},
	path::Path,
	sync::{Arc, Mutex},
	time::Duration,
};
use vbank_primitives::{ChannelId, Nonce};
use vbank_runtime::AccountId;

/// The node's tower: what it watches, and the penalties on their way.
pub struct Serving {
	tower: Mutex<Tower<NodeStore>>,
	submitting: Arc<Mutex<BTreeSet<ChannelId>>>,
}

impl Serving {
	/// The tower kept in `dir`, watching at most `limit` banks of one client.
	pub fn open(dir: &Path, genesis: sp_core::H256, limit: usize) -> Result<Self, String> {
		std::fs::create_dir_all(dir)
			.map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
		let store = NodeStore::open(&dir.join("tower.redb"))?;
		let tower = Tower::open(genesis, store, limit).map_err(|e| e.to_string())?;
		log::info!(
			target: LOG,
			"💸 watchtower for others: {} banks watched, at most {limit} per client",
			tower.channels().len()
		);
		Ok(Self { tower: Mutex::new(tower), submitting: Default::default() })
	}

	fn tower(&self) -> std::sync::MutexGuard<'_, Tower<NodeStore>> {
		self.tower.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
	}
}

/// A tower this node's helpers hand their secrets to, and what it holds of each bank.
pub struct Using {
	url: String,
	/// The banks whose secrets the tower may lack, by account.
	pending: Mutex<BTreeSet<(AccountId, ChannelId)>>,
	/// How many of the peer's sheets the tower said it holds revoked, per bank.
	held: Mutex<BTreeMap<(AccountId, ChannelId), Nonce>>,
	wake: tokio::sync::Notify,
	remotes: Remotes,
}

impl Using {
	pub fn new(url: String) -> Self {
		Self {
			url,
			pending: Default::default(),
			held: Default::default(),
			wake: Default::default(),
			remotes: Default::default(),
		}
	}
}

/// What became of sending a bank's secrets to the tower we use.
enum Sent {
	/// Taken, refused, or nothing to send: nothing more until the bank moves again.
	Done,
	/// The tower did not answer: this bank and the rest are sent at the next tick.
	Unreachable,
}

/// How often what a tower still lacks is sent again, and the penalties owed are looked at.
const TICK: Duration = Duration::from_secs(2);

impl Accounts {
	/// `rsmc_towerUpdate`: take a client's update; how many of its peer's sheets the tower
	/// holds revoked.
	pub fn tower_update(&self, update: &TowerUpdate) -> Result<Nonce, Failure> {
		let serving = self.serving()?;
		let on_chain = self.chain.channel(update.channel).map_err(Failure::Chain)?;
		let refused = |e: rsmc::tower::TowerError| Failure::Refused(e.to_string());
		// The signature and the secrets are checked before the tower's lock, which the block
		// follower takes too.
		let checked = update.checked(&self.chain.genesis, on_chain.as_ref()).map_err(refused)?;
		let revoked = serving.tower().take(checked).map_err(refused)?;
		log::debug!(
			target: LOG,
			"💸 watchtower for others: bank {} of {}: {revoked} sheets of its peer revoked",
			update.channel,
			update.client
		);
		self.tower_check(update.channel);
		Ok(revoked)
	}

	/// `rsmc_towerWatching`: the clients of bank `channel` the tower watches it for, with how
	/// many of their peer's sheets it holds revoked.
	pub fn tower_watching(&self, channel: ChannelId) -> Result<Vec<(AccountId, Nonce)>, Failure> {
		let watching = self.serving()?.tower().watching(channel);
		if watching.is_empty() && self.chain.channel(channel).map_err(Failure::Chain)?.is_none() {
			return Err(Failure::BadRequest(format!("there is no bank {channel} on chain")));
		}
		Ok(watching)
	}

	fn serving(&self) -> Result<&Serving, Failure> {
		self.tower.as_ref().ok_or_else(|| {
			Failure::BadRequest(
				"this node is not a watchtower for others: start it with --rsmc-tower".into(),
			)
		})
	}

	/// What the tower owes the chain for bank `channel` now: a penalty when it was liquidated
	/// with a sheet the tower holds revoked; nothing, and the bank forgotten, once the chain
	/// removed it for good.
	pub(super) fn tower_check(&self, channel: ChannelId) {
		let Some(serving) = self.tower.as_ref().filter(|s| s.tower().watches(channel)) else {
			return;
		};
		let on_chain = match self.chain.channel(channel) {
			Ok(on_chain) => on_chain,
			Err(e) => return log::warn!(target: LOG, "💸 watchtower for others: {e}"),
		};
		let Some(bank) = on_chain else {
			if matches!(self.chain.final_channel(channel), Ok(None)) {
				if let Err(e) = serving.tower().forget(channel) {
					log::warn!(target: LOG, "💸 watchtower for others: bank {channel}: {e}");
				}
			}
			return;
		};
		let now = u64::from(self.chain.best().1);
		let Some(call) = serving.tower().penalty(channel, &bank, now) else { return };
		if !serving.submitting.lock().expect("not poisoned").insert(channel) {
			return;
		}
		let what = describe_call(&call);
		log::info!(target: LOG, "💸 watchtower for others: {what}");
		let (chain, submitting) = (self.chain.clone(), serving.submitting.clone());
		guard::spawn("a penalty of the watchtower for others", async move {
			match chain.submit_general(chain_call(call)).await {
				Ok(_) => log::info!(target: LOG, "💸 watchtower for others: {what}: in a block"),
				Err(e) => log::warn!(
					target: LOG,
					"💸 watchtower for others: {what}: {e}; owed again at the next tick"
				),
			}
			submitting.lock().expect("not poisoned").remove(&channel);
		});
	}

	/// Every bank the tower watches, looked at again.
	fn tower_tick(&self) {
		let Some(serving) = &self.tower else { return };
		let channels = serving.tower().channels();
		for channel in channels {
			self.tower_check(channel);
		}
	}

	/// A helper of `party` may have learned a secret of bank `channel`: the tower we use gets
	/// it.
	pub(super) fn to_tower(&self, party: &Account, channel: ChannelId) {
		let Some(using) = &self.using_tower else { return };
		using.pending.lock().expect("not poisoned").insert((party.account.clone(), channel));
		using.wake.notify_one();
	}

	/// Send the tower we use what it lacks, as it comes and again at every tick, from the
	/// node's start (when it gets every bank's). A tower out of reach is tried again at the
	/// next tick, with every bank still to send.
	async fn tower_client(&self) {
		let Some(using) = &self.using_tower else { return };
		for party in self.parties.values() {
			for channel in party.channels() {
				self.to_tower(party, channel);
			}
		}
		loop {
			let _ = tokio::time::timeout(TICK, using.wake.notified()).await;
			let pending = std::mem::take(&mut *using.pending.lock().expect("not poisoned"));
			let mut pending = pending.into_iter();
			while let Some((account, channel)) = pending.next() {
				let sent = guard::caught("the watchtower's client", async {
					self.send_to_tower(using, &account, channel).await
				});
				if let Ok(Sent::Unreachable) | Err(_) = sent.await {
					let mut again = using.pending.lock().expect("not poisoned");
					again.insert((account, channel));
					again.extend(pending);
					break;
				}
			}
		}
	}

	/// Hand `using`'s tower what `account`'s helper learned on bank `channel`, unless it holds
	/// it already or there is nothing to guard.
	async fn send_to_tower(&self, using: &Using, account: &AccountId, channel: ChannelId) -> Sent {
		let Some(party) = self.parties.get(account) else { return Sent::Done };
		let key = (account.clone(), channel);
		let learned = party.bank(channel).and_then(|b| Some(b.ledger()?.peer_revoked()));
		let Some(learned) = learned.filter(|learned| *learned > 0) else {
			using.held.lock().expect("not poisoned").remove(&key);
			return Sent::Done;
		};
		if using.held.lock().expect("not poisoned").get(&key).is_some_and(|held| *held >= learned) {
			return Sent::Done;
		}
		let Some(update) = party.tower_update(channel) else { return Sent::Done };
		let client = match using.remotes.client(&using.url, self.settings.peer_timeout).await {
			Ok(client) => client,
			Err(miss) => {
				log::warn!(target: LOG, "💸 the watchtower {}: {miss}; trying again", using.url);
				return Sent::Unreachable;
			},
		};
		let update = format!("0x{}", hex::encode(codec::Encode::encode(&update)));
		let answer =
			client.request::<serde_json::Value, _>("rsmc_towerUpdate", rpc_params![update]).await;
		match answer {
			Ok(answer) => match answer["revoked"].as_u64() {
				Some(revoked) if revoked >= learned => {
					using.held.lock().expect("not poisoned").insert(key, revoked);
					Sent::Done
				},
				_ => {
					log::warn!(target: LOG, "💸 {account} bank {channel}: the watchtower {} holds less than we sent ({answer}); sending again", using.url);
					using.pending.lock().expect("not poisoned").insert(key);
					Sent::Done
				},
			},
			// The tower refused: sent again only with the bank's next progress.
			Err(jsonrpsee::core::ClientError::Call(refusal)) => {
				log::warn!(target: LOG, "💸 {account} bank {channel}: the watchtower {} refused our secrets: {}", using.url, refusal.message());
				Sent::Done
			},
			Err(e) => {
				log::warn!(target: LOG, "💸 the watchtower {}: {e}; trying again", using.url);
				using.remotes.forget(&using.url);
				Sent::Unreachable
			},
		}
	}

	/// Runs for the life of the node: the tower's ticks, and the client of the tower we use.
	pub async fn run_towers(self: Arc<Self>) {
		let ticks = async {
			if self.tower.is_none() {
				return;
			}
			loop {
				tokio::time::sleep(TICK).await;
				let _ = guard::caught_now("the watchtower for others", || self.tower_tick());
			}
		};
		futures::join!(ticks, self.tower_client());
	}
}
