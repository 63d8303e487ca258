//! The `rsmc_` JSON-RPC methods (SPEC section 5). Every method but `rsmc_message` spends or
//! reveals private state, so it is unsafe: served in `--dev` or with `--rpc-methods unsafe`.
//!
//! The methods are registered one by one rather than through jsonrpsee's `#[rpc]` macro,
//! whose parsing lets extra parameters and unknown names through: here every call's
//! parameters are read strictly ([`params`]), and anything else is refused with what the
//! method takes.

mod params;

use super::{decode_message, Accounts, BankView, Event, Failure};
use codec::Encode;
use jsonrpsee::{
	core::{RegisterMethodError, RpcResult, SubscriptionResult},
	types::{ErrorObjectOwned, Params},
	Extensions, PendingSubscriptionSink, RpcModule, SubscriptionMessage,
};
pub use params::quoted;
use params::{Arguments, Signature};
use serde_json::{json, Value};
use std::{future::Future, sync::Arc};
use vbank_primitives::{Balances, ChannelState, Nonce};
use vbank_runtime::BlockNumber;

/// The `rsmc_` methods of one node.
pub struct Rsmc(pub Arc<Accounts>);

/// Each method's parameters, in SPEC section 5's names and order.
const ACCOUNTS: Signature = Signature { method: "rsmc_accounts", names: &[], optional: 0 };
const BANKS: Signature = Signature { method: "rsmc_banks", names: &["account"], optional: 0 };
const OPEN: Signature = Signature {
	method: "rsmc_open",
	names: &["account", "peer", "my_amount", "peer_amount", "lock_period", "peer_url"],
	optional: 1,
};
const ACCEPT: Signature =
	Signature { method: "rsmc_accept", names: &["account", "channel"], optional: 0 };
const PAY: Signature =
	Signature { method: "rsmc_pay", names: &["account", "channel", "amount"], optional: 0 };
const CLOSE: Signature =
	Signature { method: "rsmc_close", names: &["account", "channel"], optional: 0 };
const TOP_UP: Signature =
	Signature { method: "rsmc_topUp", names: &["account", "channel", "amount"], optional: 0 };
const WITHDRAW: Signature =
	Signature { method: "rsmc_withdraw", names: &["account", "channel", "amount"], optional: 0 };
const LIQUIDATE: Signature =
	Signature { method: "rsmc_liquidate", names: &["account", "channel"], optional: 0 };
const SUBSCRIBE: Signature =
	Signature { method: "rsmc_subscribeEvents", names: &["account"], optional: 0 };
const MESSAGE: Signature =
	Signature { method: "rsmc_message", names: &["message", "sender_url"], optional: 1 };
const INVOICE: Signature =
	Signature { method: "rsmc_invoice", names: &["account", "amount"], optional: 0 };
const SEND: Signature = Signature {
	method: "rsmc_send",
	names: &["account", "payee", "amount", "hashlock"],
	optional: 0,
};
const TOWER_UPDATE: Signature =
	Signature { method: "rsmc_towerUpdate", names: &["update"], optional: 0 };
const TOWER_WATCHING: Signature =
	Signature { method: "rsmc_towerWatching", names: &["channel"], optional: 0 };
const TEST_IGNORE: Signature =
	Signature { method: "rsmc_testIgnore", names: &["account", "channel"], optional: 0 };
const TEST_HOLD: Signature =
	Signature { method: "rsmc_testHold", names: &["account"], optional: 0 };
const TEST_REQUEST: Signature =
	Signature { method: "rsmc_testRequest", names: &["node", "payload", "by"], optional: 1 };
const TEST_STREAMS: Signature = Signature { method: "rsmc_testStreams", names: &[], optional: 0 };
const LIQUIDATE_REVOKED: Signature = Signature {
	method: "rsmc_liquidateRevoked",
	names: &["account", "channel", "nonce"],
	optional: 0,
};

impl Rsmc {
	/// The module to merge into the node's RPC: the cheat method only when the flag is set.
	pub fn into_module(self) -> Result<RpcModule<Rsmc>, RegisterMethodError> {
		let cheats = self.0.test_cheats();
		let mut module = RpcModule::new(self);
		/// Registers `signature`'s method: unsafe ones are refused unless unsafe RPC is
		/// allowed, then the parameters are read strictly and handed to `call`.
		fn method<F, Fut>(
			module: &mut RpcModule<Rsmc>,
			signature: &'static Signature,
			call: F,
		) -> Result<(), RegisterMethodError>
		where
			F: Fn(Arc<Rsmc>, Arguments) -> Fut + Clone + Send + Sync + 'static,
			Fut: Future<Output = RpcResult<Value>> + Send + 'static,
		{
			module.register_async_method(signature.method, move |params, rsmc, ext| {
				let arguments = checked(signature, &ext, &params);
				let call = call.clone();
				async move {
					let arguments = arguments?;
					super::guard::caught(signature.method, call(rsmc, arguments)).await.map_err(
						|why| error(INTERNAL, format!("{} failed: {why}", signature.method)),
					)?
				}
			})?;
			Ok(())
		}
		method(&mut module, &ACCOUNTS, |rsmc, _| async move { rsmc.accounts() })?;
		method(&mut module, &BANKS, |rsmc, args| async move { rsmc.banks(args) })?;
		method(&mut module, &OPEN, |rsmc, args| async move { rsmc.open(args).await })?;
		method(&mut module, &ACCEPT, |rsmc, args| async move { rsmc.accept(args).await })?;
		method(&mut module, &PAY, |rsmc, args| async move { rsmc.pay(args).await })?;
		method(&mut module, &CLOSE, |rsmc, args| async move { rsmc.close(args).await })?;
		method(&mut module, &TOP_UP, |rsmc, args| async move { rsmc.splice(args, true).await })?;
		method(&mut module, &WITHDRAW, |rsmc, args| async move { rsmc.splice(args, false).await })?;
		method(&mut module, &LIQUIDATE, |rsmc, args| async move { rsmc.liquidate(args).await })?;
		method(&mut module, &MESSAGE, |rsmc, args| async move { rsmc.message(args).await })?;
		method(&mut module, &INVOICE, |rsmc, args| async move { rsmc.invoice(args) })?;
		method(&mut module, &SEND, |rsmc, args| async move { rsmc.send(args).await })?;
		method(&mut module, &TOWER_UPDATE, |rsmc, args| async move { rsmc.tower_update(args) })?;
		method(
			&mut module,
			&TOWER_WATCHING,
			|rsmc, args| async move { rsmc.tower_watching(args) },
		)?;
		module.register_subscription(
			SUBSCRIBE.method,
			"rsmc_event",
			"rsmc_unsubscribeEvents",
			|params, pending, rsmc, ext| async move {
				match checked(&SUBSCRIBE, &ext, &params) {
					Ok(args) => rsmc.subscribe_events(pending, args).await,
					Err(e) => {
						pending.reject(e).await;
						Ok(())
					},
				}
			},
		)?;
		if cheats {
			method(&mut module, &LIQUIDATE_REVOKED, |rsmc, args| async move {
				rsmc.liquidate_revoked(args).await
			})?;
			method(&mut module, &TEST_IGNORE, |rsmc, args| async move { rsmc.test_ignore(args) })?;
			method(&mut module, &TEST_HOLD, |rsmc, args| async move { rsmc.test_hold(args) })?;
			method(&mut module, &TEST_REQUEST, |rsmc, args| async move {
				rsmc.test_request(args).await
			})?;
			method(&mut module, &TEST_STREAMS, |rsmc, _| async move {
				let (open, answered) = rsmc.0.test_streams()?;
				Ok(json!({ "open": open, "answered": answered }))
			})?;
		}
		Ok(module)
	}
}

/// The arguments of a call to `signature`'s method, if the caller may call it and gave them
/// right.
fn checked(signature: &Signature, ext: &Extensions, params: &Params) -> RpcResult<Arguments> {
	// What a peer's helper or a tower's client sends: safe, as it spends and reveals nothing.
	if ![MESSAGE.method, TOWER_UPDATE.method].contains(&signature.method) {
		check_unsafe(ext, signature.method)?;
	}
	Ok(signature.read(params)?)
}

fn error(code: i32, message: impl Into<String>) -> ErrorObjectOwned {
	ErrorObjectOwned::owned(code, message.into(), None::<()>)
}

/// JSON-RPC's "invalid params".
const BAD_REQUEST: i32 = -32602;
/// JSON-RPC's "internal error": the method panicked (a bug; the node goes on).
const INTERNAL: i32 = -32603;
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
				"{method} is an unsafe method (it spends or reveals a helper's private \
				 state): this node serves it only in --dev or with --rpc-methods unsafe"
			),
		)
	})
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
		"reserve": view.reserve.to_string(),
		"spendable": balances_json(&view.spendable),
		"lock_period": view.lock_period,
		"unlock_at": view.unlock_at,
		"htlcs": view.htlcs.iter().map(|h| json!({
			"from": h.from,
			"amount": h.amount.to_string(),
			"hashlock": format!("{:?}", h.hashlock),
			"expiry": h.expiry,
		})).collect::<Vec<_>>(),
	})
}

fn event_json(event: &Event) -> Value {
	let mut json = json!({
		"kind": event.kind.name(),
		"channel": event.channel,
		"nonce": event.nonce,
		"balances": balances_json(&event.balances),
	});
	if let Some(hashlock) = event.hashlock {
		json["hashlock"] = format!("{hashlock:?}").into();
	}
	json
}

fn liquidated_json((nonce, unlock_at): (Nonce, BlockNumber)) -> Value {
	json!({ "nonce": nonce, "unlock_at": unlock_at })
}

impl Rsmc {
	fn accounts(&self) -> RpcResult<Value> {
		Ok(self.0.accounts().iter().map(|a| Value::from(a.to_string())).collect())
	}

	fn banks(&self, mut args: Arguments) -> RpcResult<Value> {
		let account = args.account()?;
		Ok(self.0.banks(&account)?.iter().map(bank_json).collect())
	}

	async fn open(&self, mut args: Arguments) -> RpcResult<Value> {
		let (account, peer) = (args.account()?, args.account()?);
		let amounts = [args.amount()?, args.amount()?];
		let (lock_period, peer_url) = (args.blocks()?, args.optional_text()?);
		let view = self.0.open(&account, peer, amounts, lock_period, peer_url).await?;
		Ok(bank_json(&view))
	}

	async fn accept(&self, mut args: Arguments) -> RpcResult<Value> {
		let (account, channel) = (args.account()?, args.channel()?);
		Ok(bank_json(&self.0.accept(&account, channel).await?))
	}

	async fn pay(&self, mut args: Arguments) -> RpcResult<Value> {
		let (account, channel, amount) = (args.account()?, args.channel()?, args.amount()?);
		let (nonce, balances) = self.0.pay(&account, channel, amount).await?;
		Ok(json!({ "nonce": nonce, "balances": balances_json(&balances) }))
	}

	async fn close(&self, mut args: Arguments) -> RpcResult<Value> {
		let (account, channel) = (args.account()?, args.channel()?);
		let (how, balances) = self.0.close(&account, channel).await?;
		Ok(json!({ "how": how, "balances": balances_json(&balances) }))
	}

	/// `rsmc_topUp` (`adding`) or `rsmc_withdraw`.
	async fn splice(&self, mut args: Arguments, adding: bool) -> RpcResult<Value> {
		let (account, channel, amount) = (args.account()?, args.channel()?, args.amount()?);
		let (amount_in, amount_out) = if adding { (amount, 0) } else { (0, amount) };
		let spliced = self.0.splice(&account, channel, amount_in, amount_out).await?;
		Ok(json!({
			"nonce": spliced.nonce,
			"balances": balances_json(&spliced.balances),
			"total": spliced.total.to_string(),
		}))
	}

	async fn liquidate(&self, mut args: Arguments) -> RpcResult<Value> {
		let (account, channel) = (args.account()?, args.channel()?);
		Ok(liquidated_json(self.0.liquidate(&account, channel).await?))
	}

	async fn liquidate_revoked(&self, mut args: Arguments) -> RpcResult<Value> {
		let (account, channel, nonce) = (args.account()?, args.channel()?, args.nonce()?);
		Ok(liquidated_json(self.0.liquidate_revoked(&account, channel, nonce).await?))
	}

	fn invoice(&self, mut args: Arguments) -> RpcResult<Value> {
		let (account, amount) = (args.account()?, args.amount()?);
		let lock = self.0.invoice(&account, amount)?;
		Ok(json!({ "hashlock": format!("{lock:?}"), "amount": amount.to_string() }))
	}

	async fn send(&self, mut args: Arguments) -> RpcResult<Value> {
		let (account, payee) = (args.account()?, args.account()?);
		let (amount, lock) = (args.amount()?, args.hashlock()?);
		let sent = self.0.send(&account, &payee, amount, lock).await?;
		Ok(json!({
			"preimage": format!("0x{}", hex::encode(sent.preimage)),
			"route": sent.route,
			"amount": sent.amount.to_string(),
			"fees": sent.fees.to_string(),
		}))
	}

	/// A client's update for this node's watchtower (hex SCALE of
	/// [`rsmc::tower::TowerUpdate`]): how many of its peer's sheets the tower holds revoked.
	fn tower_update(&self, mut args: Arguments) -> RpcResult<Value> {
		let update = args.text()?;
		let update = hex::decode(update.trim_start_matches("0x"))
			.map_err(|e| Failure::BadRequest(format!("the update is not hex: {e}")))
			.and_then(|raw| {
				codec::DecodeAll::decode_all(&mut &raw[..])
					.map_err(|e| Failure::BadRequest(format!("the update does not decode: {e}")))
			})?;
		let update: rsmc::tower::TowerUpdate = update;
		let revoked = self.0.tower_update(&update)?;
		Ok(
			json!({ "channel": update.channel, "client": update.client.to_string(), "revoked": revoked }),
		)
	}

	/// The clients this node's watchtower watches bank `channel` for.
	fn tower_watching(&self, mut args: Arguments) -> RpcResult<Value> {
		let channel = args.channel()?;
		let watching = self.0.tower_watching(channel)?;
		Ok(watching
			.iter()
			.map(|(client, revoked)| json!({ "client": client.to_string(), "revoked": revoked }))
			.collect())
	}

	fn test_ignore(&self, mut args: Arguments) -> RpcResult<Value> {
		let (account, channel) = (args.account()?, args.channel()?);
		self.0.test_ignore(&account, channel)?;
		Ok(Value::Null)
	}

	/// Tests only: send `payload` (hex), whatever it is, to node `node` (a peer id) over the
	/// helpers' p2p protocol, as a stranger's node could; its answer (hex), or why none.
	async fn test_request(&self, mut args: Arguments) -> RpcResult<Value> {
		let (node, payload) = (args.text()?, args.text()?);
		let payload = hex::decode(payload.trim_start_matches("0x"))
			.map_err(|e| Failure::BadRequest(format!("the payload is not hex: {e}")))?;
		let by_stream = match args.optional_text()?.as_deref() {
			None | Some("request") => false,
			Some("stream") => true,
			Some(other) => {
				let why = format!("`by` is \"request\" or \"stream\", not {other:?}");
				return Err(Failure::BadRequest(why).into());
			},
		};
		Ok(match self.0.test_request(&node, payload, by_stream).await? {
			Ok(Some(answer)) => json!({ "answer": format!("0x{}", hex::encode(answer)) }),
			Ok(None) => json!({ "sent": true }),
			Err(why) => json!({ "failed": why }),
		})
	}

	fn test_hold(&self, mut args: Arguments) -> RpcResult<Value> {
		self.0.test_hold(&args.account()?)?;
		Ok(Value::Null)
	}

	/// The peer-facing method: a protocol message (hex SCALE) in, the answer (hex SCALE, or
	/// null) out. `sender_url`, where the sender's node is reached, lets the receiver answer
	/// later on its own.
	async fn message(&self, mut args: Arguments) -> RpcResult<Value> {
		let (message, sender_url) = (args.text()?, args.optional_text()?);
		let message = decode_message(&message).map_err(Failure::BadRequest)?;
		let reply = self.0.receive(&message, sender_url).await?;
		Ok(reply.map_or(Value::Null, |reply| format!("0x{}", hex::encode(reply.encode())).into()))
	}

	/// What an account's helper sees and does, as `rsmc_event` notifications.
	async fn subscribe_events(
		&self,
		pending: PendingSubscriptionSink,
		mut args: Arguments,
	) -> SubscriptionResult {
		let account = match args.account() {
			Ok(account) if self.0.accounts().contains(&account) => account,
			Ok(account) => {
				let why = format!("this node serves no helper for {account}");
				pending.reject(ErrorObjectOwned::from(Failure::BadRequest(why))).await;
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
}
