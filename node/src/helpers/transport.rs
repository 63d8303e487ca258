//! How this node's helpers reach their peers: a helper of this node directly; a helper of
//! another node through that node's `rsmc_message` over WebSocket when the bank was opened
//! with its URL, and otherwise over the chain's p2p network, found by its account (`p2p`).
//! Connections are made outside any lock and with a timeout, so one unreachable peer stalls
//! only its own banks.

use super::{decode_message, rpc, Account, Accounts, LOG};
use codec::Encode;
use jsonrpsee::{core::client::ClientT, rpc_params};
use jsonrpsee_ws_client::{WsClient, WsClientBuilder};
use rsmc::{
	transport::{Miss, Transport},
	Message,
};
use std::{collections::HashMap, sync::Arc, time::Duration};
use vbank_runtime::AccountId;

/// How long a step waits before asking a busy peer again.
const PAUSE: Duration = Duration::from_millis(5);

/// Open connections to other nodes, by URL.
#[derive(Default)]
pub struct Remotes(std::sync::Mutex<HashMap<String, Arc<WsClient>>>);

impl Remotes {
	pub(super) async fn client(&self, url: &str, timeout: Duration) -> Result<Arc<WsClient>, Miss> {
		let known = self.0.lock().expect("not poisoned").get(url).cloned();
		if let Some(client) = known.filter(|c| c.is_connected()) {
			return Ok(client);
		}
		let connect = WsClientBuilder::default()
			.request_timeout(timeout)
			.connection_timeout(timeout)
			.build(url);
		let client = tokio::time::timeout(timeout, connect)
			.await
			.map_err(|_| Miss::Unreachable(format!("cannot connect to {url} within {timeout:?}")))?
			.map_err(|e| Miss::Unreachable(format!("cannot connect to {url}: {e}")))?;
		let client = Arc::new(client);
		self.0.lock().expect("not poisoned").insert(url.to_string(), client.clone());
		Ok(client)
	}

	pub(super) fn forget(&self, url: &str) {
		self.0.lock().expect("not poisoned").remove(url);
	}
}

/// The way one party's messages travel.
pub struct NodeTransport<'a> {
	pub helpers: &'a Accounts,
	pub party: &'a Account,
}

impl Transport for NodeTransport<'_> {
	async fn request(
		&self,
		_from: &AccountId,
		to: &AccountId,
		message: &Message,
	) -> Result<Option<Message>, Miss> {
		let Some(url) = self.party.peers.get(&message.channel) else {
			if let Some(party) = self.helpers.parties.get(to) {
				return self.helpers.answer(party, message, None).await;
			}
			let Some(p2p) = &self.helpers.p2p else {
				return Err(Miss::Refused(format!(
					"{to} is not served by this node and its node's URL is unknown"
				)));
			};
			let genesis = self.helpers.chain.genesis;
			let timeout = self.helpers.settings.peer_timeout;
			return tokio::time::timeout(timeout, p2p.send(&genesis, to, message))
				.await
				.unwrap_or_else(|_| {
					Err(Miss::Unreachable(format!("{to}'s node did not answer within {timeout:?}")))
				});
		};
		let timeout = self.helpers.settings.peer_timeout;
		let client = self.helpers.remotes.client(&url, timeout).await?;
		let hex_message = format!("0x{}", hex::encode(message.encode()));
		let own_url = self.helpers.settings.own_url.clone();
		let answer = client
			.request::<Option<String>, _>("rsmc_message", rpc_params![hex_message, own_url])
			.await;
		match answer {
			Ok(None) => Ok(None),
			Ok(Some(reply)) => decode_message(&reply)
				.map(Some)
				.map_err(|e| Miss::Refused(format!("the peer answered nonsense: {e}"))),
			Err(jsonrpsee::core::ClientError::Call(e)) if e.code() == rpc::BUSY => {
				Err(Miss::Busy(e.message().to_string()))
			},
			Err(jsonrpsee::core::ClientError::Call(e)) => {
				Err(Miss::Refused(e.message().to_string()))
			},
			Err(e) => {
				self.helpers.remotes.forget(&url);
				log::debug!(target: LOG, "peer at {url} unreachable: {e}");
				Err(Miss::Unreachable(e.to_string()))
			},
		}
	}

	/// A busy peer is mostly finishing one exchange (its own payment, or the settlement a
	/// routed payment's receipt overtook): a few milliseconds, so ask again soon.
	async fn pause(&self) {
		tokio::time::sleep(PAUSE).await
	}
}
