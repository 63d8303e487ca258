//! The `rsmc_` JSON-RPC methods (SPEC section 5). Every method but `rsmc_message` spends or
//! reveals private state, so it is unsafe: served in `--dev` or with `--rpc-methods unsafe`.

// `rsmc_open` takes the SPEC's six positional parameters, and the server trait the macro
// generates adds two more.
#![allow(clippy::too_many_arguments)]

use super::{decode_message, BankView, Event, Failure, Helpers};
use codec::Encode;
use jsonrpsee::{
	core::{async_trait, RpcResult, SubscriptionResult},
	proc_macros::rpc,
	types::ErrorObjectOwned,
	Extensions, PendingSubscriptionSink, SubscriptionMessage,
};
use serde_json::{json, Value};
use sp_core::crypto::Ss58Codec;
use std::sync::Arc;
use vbank_primitives::{Balance, Balances, ChannelId, ChannelState, Nonce};
use vbank_runtime::{AccountId, BlockNumber};

#[rpc(server, namespace = "rsmc")]
pub trait RsmcApi {
	/// The addresses this node's helper serves.
	#[method(name = "accounts", with_extensions)]
	fn accounts(&self) -> RpcResult<Vec<String>>;

	/// The bank views of `account`'s banks.
	#[method(name = "banks", with_extensions)]
	fn banks(&self, account: String) -> RpcResult<Vec<Value>>;

	/// Open a bank: on-chain `open`, the nonce-0 handshake, both deposits; the bank view once
	/// it is running.
	#[method(name = "open", with_extensions)]
	async fn open(
		&self,
		account: String,
		peer: String,
		my_amount: Value,
		peer_amount: Value,
		lock_period: BlockNumber,
		peer_url: Option<String>,
	) -> RpcResult<Value>;

	/// Pay `amount` on `channel`: `{ nonce, balances }` once the payment is final.
	#[method(name = "accept", with_extensions)]
	async fn accept(&self, account: String, channel: ChannelId) -> RpcResult<Value>;

	#[method(name = "pay", with_extensions)]
	async fn pay(&self, account: String, channel: ChannelId, amount: Value) -> RpcResult<Value>;

	/// Close cooperatively, or liquidate when the peer does not answer in time.
	#[method(name = "close", with_extensions)]
	async fn close(&self, account: String, channel: ChannelId) -> RpcResult<Value>;

	/// Liquidate with the newest sheet: `{ nonce, unlock_at }`.
	#[method(name = "liquidate", with_extensions)]
	async fn liquidate(&self, account: String, channel: ChannelId) -> RpcResult<Value>;

	/// What `account`'s helper sees and does, as `rsmc_event` notifications.
	#[subscription(
		name = "subscribeEvents" => "event",
		unsubscribe = "unsubscribeEvents",
		item = Value,
		with_extensions
	)]
	async fn subscribe_events(&self, account: String) -> SubscriptionResult;

	/// The peer-facing method: a protocol message (hex SCALE) in, the answer (hex SCALE, or
	/// null) out. `from_url`, where the sender's node is reached, lets the receiver answer
	/// later on its own (this node's extension of SPEC section 5: one optional parameter).
	#[method(name = "message")]
	async fn message(&self, message: String, from_url: Option<String>)
		-> RpcResult<Option<String>>;
}

/// Tests only: served with `--rsmc-test-cheats`, absent otherwise.
#[rpc(server, namespace = "rsmc")]
pub trait RsmcCheatsApi {
	/// Liquidate with an older sheet, revoked or not, to watch the other side punish it.
	#[method(name = "liquidateRevoked", with_extensions)]
	async fn liquidate_revoked(
		&self,
		account: String,
		channel: ChannelId,
		nonce: Nonce,
	) -> RpcResult<Value>;
}

/// The `rsmc_` methods of one node.
pub struct Rsmc(pub Arc<Helpers>);

impl Rsmc {
	/// The module to merge into the node's RPC: the cheat method only when the flag is set.
	pub fn into_module(
		self,
	) -> Result<jsonrpsee::RpcModule<()>, jsonrpsee::core::RegisterMethodError> {
		let mut module = jsonrpsee::RpcModule::new(());
		let cheats = self.0.test_cheats();
		let helpers = self.0.clone();
		module.merge(RsmcApiServer::into_rpc(self))?;
		if cheats {
			module.merge(RsmcCheatsApiServer::into_rpc(Rsmc(helpers)))?;
		}
		Ok(module)
	}
}

fn error(code: i32, message: impl Into<String>) -> ErrorObjectOwned {
	ErrorObjectOwned::owned(code, message.into(), None::<()>)
}

/// JSON-RPC's "invalid params".
const BAD_REQUEST: i32 = -32602;
/// A payment is in flight on the bank: retry once it is final.
pub const BUSY: i32 = 1005;
pub const POLICY: i32 = 1006;

impl From<Failure> for ErrorObjectOwned {
	fn from(failure: Failure) -> Self {
		let code = match failure {
			Failure::BadRequest(_) => BAD_REQUEST,
			Failure::Refused(_) => 1001,
			Failure::Busy(_) => BUSY,
			Failure::PeerSilent(_) => 1002,
			Failure::Chain(_) => 1003,
			Failure::Store(_) => 1004,
			Failure::Policy(_) => POLICY,
		};
		error(code, failure.to_string())
	}
}

fn check_unsafe(ext: &Extensions, method: &str) -> RpcResult<()> {
	sc_rpc_api::check_if_safe(ext).map_err(|_| {
		error(
			-32601,
			format!(
				"rsmc_{method} is an unsafe method (it spends or reveals a helper's private \
				 state): this node serves it only in --dev or with --rpc-methods unsafe"
			),
		)
	})
}

/// An SS58 address or a `0x` hex public key.
pub fn parse_account(text: &str) -> Result<AccountId, Failure> {
	if let Some(hex_key) = text.strip_prefix("0x") {
		let raw = hex::decode(hex_key)
			.map_err(|e| Failure::BadRequest(format!("`{text}` is not a hex public key: {e}")))?;
		let raw: [u8; 32] = raw
			.try_into()
			.map_err(|_| Failure::BadRequest(format!("`{text}` is not a 32-byte public key")))?;
		return Ok(AccountId::from(raw));
	}
	AccountId::from_ss58check(text)
		.map_err(|e| Failure::BadRequest(format!("`{text}` is not an SS58 address: {e:?}")))
}

/// A JSON number or a decimal string (u128 does not fit a JSON number).
pub fn parse_amount(value: &Value) -> Result<Balance, Failure> {
	let bad = || {
		Failure::BadRequest(format!("`{value}` is not an amount: give a whole number of planck, as a number or a decimal string"))
	};
	match value {
		Value::Number(n) => n.as_u64().map(Balance::from).ok_or_else(bad),
		Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
			s.parse().map_err(|_| bad())
		},
		_ => Err(bad()),
	}
}

fn balances_json(balances: &Balances) -> Value {
	json!([balances[0].to_string(), balances[1].to_string()])
}

pub fn state_name(state: Option<ChannelState>) -> &'static str {
	match state {
		Some(ChannelState::Funding) => "Funding",
		Some(ChannelState::Running) => "Running",
		Some(ChannelState::Liquidating) => "Liquidating",
		None => "Closed",
	}
}

fn bank_json(view: &BankView) -> Value {
	json!({
		"channel": view.channel,
		"clients": [view.clients[0].to_string(), view.clients[1].to_string()],
		"me": view.me,
		"state": if view.offered { "Offered" } else { state_name(view.state) },
		"nonce": view.nonce,
		"balances": balances_json(&view.balances),
		"lock_period": view.lock_period,
		"unlock_at": view.unlock_at,
	})
}

fn event_json(event: &Event) -> Value {
	json!({
		"kind": event.kind.name(),
		"channel": event.channel,
		"nonce": event.nonce,
		"balances": balances_json(&event.balances),
	})
}

fn liquidated_json((nonce, unlock_at): (Nonce, BlockNumber)) -> Value {
	json!({ "nonce": nonce, "unlock_at": unlock_at })
}

#[async_trait]
impl RsmcApiServer for Rsmc {
	fn accounts(&self, ext: &Extensions) -> RpcResult<Vec<String>> {
		check_unsafe(ext, "accounts")?;
		Ok(self.0.accounts().iter().map(ToString::to_string).collect())
	}

	fn banks(&self, ext: &Extensions, account: String) -> RpcResult<Vec<Value>> {
		check_unsafe(ext, "banks")?;
		let account = parse_account(&account)?;
		Ok(self.0.banks(&account)?.iter().map(bank_json).collect())
	}

	async fn open(
		&self,
		ext: &Extensions,
		account: String,
		peer: String,
		my_amount: Value,
		peer_amount: Value,
		lock_period: BlockNumber,
		peer_url: Option<String>,
	) -> RpcResult<Value> {
		check_unsafe(ext, "open")?;
		let account = parse_account(&account)?;
		let peer = parse_account(&peer)?;
		let amounts = [parse_amount(&my_amount)?, parse_amount(&peer_amount)?];
		let view = self.0.open(&account, peer, amounts, lock_period, peer_url).await?;
		Ok(bank_json(&view))
	}

	async fn accept(
		&self,
		ext: &Extensions,
		account: String,
		channel: ChannelId,
	) -> RpcResult<Value> {
		check_unsafe(ext, "accept")?;
		let account = parse_account(&account)?;
		Ok(bank_json(&self.0.accept(&account, channel).await?))
	}

	async fn pay(
		&self,
		ext: &Extensions,
		account: String,
		channel: ChannelId,
		amount: Value,
	) -> RpcResult<Value> {
		check_unsafe(ext, "pay")?;
		let account = parse_account(&account)?;
		let amount = parse_amount(&amount)?;
		let (nonce, balances) = self.0.pay(&account, channel, amount).await?;
		Ok(json!({ "nonce": nonce, "balances": balances_json(&balances) }))
	}

	async fn close(
		&self,
		ext: &Extensions,
		account: String,
		channel: ChannelId,
	) -> RpcResult<Value> {
		check_unsafe(ext, "close")?;
		let account = parse_account(&account)?;
		let (how, balances) = self.0.close(&account, channel).await?;
		Ok(json!({ "how": how, "balances": balances_json(&balances) }))
	}

	async fn liquidate(
		&self,
		ext: &Extensions,
		account: String,
		channel: ChannelId,
	) -> RpcResult<Value> {
		check_unsafe(ext, "liquidate")?;
		let account = parse_account(&account)?;
		Ok(liquidated_json(self.0.liquidate(&account, channel).await?))
	}

	async fn subscribe_events(
		&self,
		pending: PendingSubscriptionSink,
		ext: &Extensions,
		account: String,
	) -> SubscriptionResult {
		if let Err(e) = check_unsafe(ext, "subscribeEvents") {
			pending.reject(e).await;
			return Ok(());
		}
		let account = match parse_account(&account) {
			Ok(account) if self.0.accounts().contains(&account) => account,
			Ok(account) => {
				pending
					.reject(ErrorObjectOwned::from(Failure::BadRequest(format!(
						"this node serves no helper for {account}"
					))))
					.await;
				return Ok(());
			},
			Err(e) => {
				pending.reject(ErrorObjectOwned::from(e)).await;
				return Ok(());
			},
		};
		let mut events = self.0.subscribe();
		let sink = pending.accept().await?;
		loop {
			tokio::select! {
				_ = sink.closed() => return Ok(()),
				event = events.recv() => match event {
					Ok(event) if event.account == account => {
						let message = SubscriptionMessage::from_json(&event_json(&event))?;
						if sink.send(message).await.is_err() {
							return Ok(());
						}
					},
					Ok(_) => {},
					Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
						log::warn!(target: super::LOG, "an event subscriber missed {missed} events");
					},
					Err(tokio::sync::broadcast::error::RecvError::Closed) => return Ok(()),
				},
			}
		}
	}

	async fn message(
		&self,
		message: String,
		from_url: Option<String>,
	) -> RpcResult<Option<String>> {
		let message = decode_message(&message).map_err(|e| error(BAD_REQUEST, e))?;
		let reply = self.0.receive(&message, from_url).await?;
		Ok(reply.map(|reply| format!("0x{}", hex::encode(reply.encode()))))
	}
}

#[async_trait]
impl RsmcCheatsApiServer for Rsmc {
	async fn liquidate_revoked(
		&self,
		ext: &Extensions,
		account: String,
		channel: ChannelId,
		nonce: Nonce,
	) -> RpcResult<Value> {
		check_unsafe(ext, "liquidateRevoked")?;
		let account = parse_account(&account)?;
		Ok(liquidated_json(self.0.liquidate_revoked(&account, channel, nonce).await?))
	}
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn amounts_are_numbers_or_decimal_strings_and_nothing_else() {
		assert_eq!(parse_amount(&json!(5)), Ok(5));
		assert_eq!(parse_amount(&json!(u128::MAX.to_string())), Ok(u128::MAX));
		for bad in [
			json!(-1),
			json!(1.5),
			json!("1e3"),
			json!(""),
			json!("0x10"),
			json!(null),
			json!((u128::MAX).to_string() + "0"),
		] {
			let Err(Failure::BadRequest(why)) = parse_amount(&bad) else {
				panic!("{bad} accepted")
			};
			assert!(why.contains(&bad.to_string()), "{why}");
		}
	}

	#[test]
	fn accounts_are_ss58_or_hex_public_keys() {
		let alice = sp_keyring::Sr25519Keyring::Alice.to_account_id();
		assert_eq!(parse_account(&alice.to_string()), Ok(alice.clone()));
		assert_eq!(
			parse_account(&format!("0x{}", hex::encode(alice.as_ref() as &[u8]))),
			Ok(alice)
		);
		for bad in ["", "5Grw", "0x1234", "0xzz"] {
			assert!(matches!(parse_account(bad), Err(Failure::BadRequest(_))), "{bad}");
		}
	}
}
