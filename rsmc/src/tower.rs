//! A watchtower for others (`docs/tower.md`): it guards banks of accounts its node does not
//! serve, so that a client whose machine is off is still guarded.
//!
//! A client hands the tower, per bank, the waiver secrets its peer revealed, as the slots of
//! their compact store ([`RevealedSecrets::compact`]): at most 49 whatever the number of
//! payments, each update signed by the client's account key ([`TowerUpdate`]). When the peer
//! liquidates with a sheet those secrets revoke, the tower signs the waiver payload with the
//! sheet's waiver key and owes the chain `withdraw_by_peer`, which pays the client alone and
//! authorizes itself: the tower needs no account and no money. A waiver secret signs nothing
//! else, so nothing the tower holds can be spent by it, or cost the client anything.
//!
//! What one client can make a tower store is bounded: banks that exist on chain, of which it
//! is a client, at most [`Tower::limit`] of them, 49 secrets each. An update replayed or older
//! than the tower's changes nothing; one from another chain of secrets is refused.

use crate::{
	chain::ChainCall,
	keys::{waiver_key, waiver_pair, Signer},
	secrets::{self, RevealedSecrets, Secret, SecretError},
	store::{Store, StoreError},
};
use codec::{Decode, DecodeAll, Encode};
use sp_core::{Pair, H256};
use sp_runtime::{AccountId32, MultiSignature};
use std::collections::BTreeMap;
use vbank_primitives::{tower_payload, verify_signature, Channel, ChannelId, Nonce};

/// What a client hands its tower: for bank `channel`, the compact store of the secrets its peer
/// revealed, signed by the client's account key over [`tower_payload`].
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct TowerUpdate {
	pub channel: ChannelId,
	pub client: AccountId32,
	/// `(BOLT #3 index, secret)`: the slots of [`RevealedSecrets::compact`].
	pub secrets: Vec<(u64, Secret)>,
	pub signature: MultiSignature,
}

impl TowerUpdate {
	/// `signer`'s update for bank `channel` on chain `genesis_hash`, from what its peer revealed.
	pub fn signed(
		genesis_hash: &H256,
		channel: ChannelId,
		revealed: &RevealedSecrets,
		signer: &dyn Signer,
	) -> Self {
		Self::sign(genesis_hash, channel, revealed.compact(), signer)
	}

	/// `signer`'s update for bank `channel` on chain `genesis_hash` with `secrets` as they are.
	pub fn sign(
		genesis_hash: &H256,
		channel: ChannelId,
		secrets: Vec<(u64, Secret)>,
		signer: &dyn Signer,
	) -> Self {
		let client = signer.account();
		let signature = signer.sign(&tower_payload(genesis_hash, channel, &client, &secrets));
		Self { channel, client, secrets, signature }
	}

	/// What a tower can take of this update, checked against the bank as the chain has it
	/// but not against what the tower holds, so that a tower checks it before taking its
	/// lock: the client of the bank, at most 49 slots (cheap checks first), the client's
	/// signature for this chain, and a whole compact store.
	pub fn checked<B>(
		&self,
		genesis_hash: &H256,
		on_chain: Option<&Channel<AccountId32, B>>,
	) -> Result<Checked, TowerError> {
		let channel = self.channel;
		let bank = on_chain.ok_or(TowerError::UnknownBank(channel))?;
		if bank.client_index(&self.client).is_none() {
			return Err(TowerError::NotAClient { channel });
		}
		if self.secrets.len() > secrets::SLOTS {
			return Err(TowerError::TooManySecrets { got: self.secrets.len() });
		}
		let payload = tower_payload(genesis_hash, channel, &self.client, &self.secrets);
		if !verify_signature(&self.signature, &payload, &self.client) {
			return Err(TowerError::BadSignature);
		}
		let secrets = RevealedSecrets::from_compact(&self.secrets).map_err(TowerError::Secrets)?;
		Ok(Checked { channel, client: self.client.clone(), secrets })
	}
}

/// An update checked ([`TowerUpdate::checked`]), for the tower to take.
pub struct Checked {
	channel: ChannelId,
	client: AccountId32,
	secrets: RevealedSecrets,
}

/// Why a tower refused an update. It holds what it held before.
#[derive(Debug)]
pub enum TowerError {
	/// Not signed by the account it names, for this chain.
	BadSignature,
	/// No such bank on chain (any more).
	UnknownBank(ChannelId),
	/// The account that signed is not a client of the bank.
	NotAClient {
		channel: ChannelId,
	},
	/// The client already has the tower watch as many banks as it takes.
	TooManyBanks {
		limit: usize,
	},
	/// More slots than a compact store has.
	TooManySecrets {
		got: usize,
	},
	/// Not a compact store, or not of the same secrets as the one held.
	Secrets(SecretError),
	Store(StoreError),
}

impl core::fmt::Display for TowerError {
	fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
		match self {
			Self::BadSignature => {
				f.write_str("the update is not signed by the client it names, for this chain")
			},
			Self::UnknownBank(channel) => write!(f, "there is no bank {channel} on chain"),
			Self::NotAClient { channel } => {
				write!(f, "the update's signer is not a client of bank {channel}")
			},
			Self::TooManyBanks { limit } => {
				write!(f, "this tower watches at most {limit} banks of one client")
			},
			Self::TooManySecrets { got } => {
				write!(f, "{got} secrets: a compact store has at most {}", secrets::SLOTS)
			},
			Self::Secrets(e) => write!(f, "the secrets are refused: {e}"),
			Self::Store(e) => e.fmt(f),
		}
	}
}

impl std::error::Error for TowerError {}

/// What a tower holds for a client's bank, and what it owes the chain when the peer cheats.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Watched {
	secrets: RevealedSecrets,
}

/// The key of a watched bank's entry in the store: `b't' ++ channel LE ++ client`.
fn key(channel: ChannelId, client: &AccountId32) -> Vec<u8> {
	(b't', channel, client).encode()
}

/// A tower's state: what it watches, by bank and client, kept in `store`.
pub struct Tower<S> {
	genesis_hash: H256,
	store: S,
	/// How many banks of one client it watches at most.
	pub limit: usize,
	watched: BTreeMap<(ChannelId, AccountId32), Watched>,
}

impl<S: Store> Tower<S> {
	/// The tower of chain `genesis_hash` kept in `store`, with what it watched before.
	pub fn open(genesis_hash: H256, store: S, limit: usize) -> Result<Self, StoreError> {
		let mut watched = BTreeMap::new();
		for (key, value) in store.load_entries()? {
			let Ok((b't', channel, client)) =
				<(u8, ChannelId, AccountId32)>::decode_all(&mut &key[..])
			else {
				continue;
			};
			let secrets = RevealedSecrets::decode_all(&mut &value[..])
				.map_err(|e| StoreError(format!("the tower's entry for bank {channel}: {e}")))?;
			watched.insert((channel, client), Watched { secrets });
		}
		Ok(Self { genesis_hash, store, limit, watched })
	}

	/// Take `update`, given the bank as the chain has it: how many of the peer's sheets the
	/// tower now holds revoked (at least what it held; an older update changes nothing).
	/// Durable once this returns `Ok`.
	pub fn update<B>(
		&mut self,
		update: &TowerUpdate,
		on_chain: Option<&Channel<AccountId32, B>>,
	) -> Result<Nonce, TowerError> {
		let checked = update.checked(&self.genesis_hash, on_chain)?;
		self.take(checked)
	}

	/// Take an update already checked ([`TowerUpdate::checked`]): as [`Self::update`]. An
	/// update that revokes nothing, for a bank not watched yet, is answered and not kept: it
	/// would take a place among the client's banks for nothing to watch.
	pub fn take(&mut self, update: Checked) -> Result<Nonce, TowerError> {
		let Checked { channel, client, secrets } = update;
		let id = (channel, client);
		match self.watched.get(&id) {
			// The same chain of secrets: the new store derives the newest secret held.
			Some(held) => {
				if let Some(newest) = held.secrets.newest_index() {
					let derived = secrets.get(newest);
					if derived.is_some() && derived != held.secrets.get(newest) {
						let inconsistent = SecretError::Inconsistent { index: newest };
						return Err(TowerError::Secrets(inconsistent));
					}
				}
				if secrets.revoked_count() <= held.secrets.revoked_count() {
					return Ok(held.secrets.revoked_count());
				}
			},
			None if secrets.revoked_count() == 0 => return Ok(0),
			None => {
				let banks = self.watched.keys().filter(|(_, c)| *c == id.1).count();
				if banks >= self.limit {
					return Err(TowerError::TooManyBanks { limit: self.limit });
				}
			},
		}
		self.store
			.save_entry(&key(channel, &id.1), Some(&secrets.encode()))
			.map_err(TowerError::Store)?;
		let revoked = secrets.revoked_count();
		self.watched.insert(id, Watched { secrets });
		Ok(revoked)
	}

	/// How many sheets of `client`'s peer on bank `channel` the tower holds revoked.
	pub fn revoked(&self, channel: ChannelId, client: &AccountId32) -> Option<Nonce> {
		self.watched.get(&(channel, client.clone())).map(|w| w.secrets.revoked_count())
	}

	/// The clients the tower watches bank `channel` for, with how many of their peer's
	/// sheets it holds revoked.
	pub fn watching(&self, channel: ChannelId) -> Vec<(AccountId32, Nonce)> {
		let from = (channel, AccountId32::new([0; 32]));
		let watched = self.watched.range(from..).take_while(|((c, _), _)| *c == channel);
		watched.map(|((_, client), w)| (client.clone(), w.secrets.revoked_count())).collect()
	}

	/// Whether the tower watches bank `channel` for a client.
	pub fn watches(&self, channel: ChannelId) -> bool {
		!self.watching(channel).is_empty()
	}

	/// The banks watched, each once.
	pub fn channels(&self) -> Vec<ChannelId> {
		let mut channels: Vec<_> = self.watched.keys().map(|(channel, _)| *channel).collect();
		channels.dedup();
		channels
	}

	/// What the tower owes the chain for bank `channel` as the chain has it at block `now`: a
	/// penalty when a client liquidated with a sheet its watched peer holds revoked, and the
	/// lock has not ended; `None` otherwise.
	pub fn penalty<B: Copy + Into<u64>>(
		&self,
		channel: ChannelId,
		on_chain: &Channel<AccountId32, B>,
		now: u64,
	) -> Option<ChainCall> {
		let liquidation = on_chain.liquidation.as_ref()?;
		if now >= liquidation.unlock_at.into() {
			return None;
		}
		let victim = on_chain.clients.get(1 - usize::from(liquidation.master.min(1)))?;
		let watched = self.watched.get(&(channel, victim.clone()))?;
		let secret = watched.secrets.get(secrets::index_of(liquidation.nonce)?)?;
		// Secrets of another sheet prove nothing: the chain would refuse the call.
		if waiver_key(&secret) != liquidation.waiver {
			return None;
		}
		let payload =
			vbank_primitives::waiver_payload(&self.genesis_hash, channel, liquidation.nonce);
		Some(ChainCall::WithdrawByPeer {
			channel,
			waiver_signature: waiver_pair(&secret).sign(&payload).into(),
		})
	}

	/// Forget bank `channel`, which the chain removed for good.
	pub fn forget(&mut self, channel: ChannelId) -> Result<(), StoreError> {
		let clients: Vec<_> = self.watched.keys().filter(|(c, _)| *c == channel).cloned().collect();
		for (channel, client) in clients {
			self.store.save_entry(&key(channel, &client), None)?;
			self.watched.remove(&(channel, client));
		}
		Ok(())
	}
}
