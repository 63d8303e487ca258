//! `vbank-node rsmc …`: a running node's helpers from the command line, for people who would
//! rather not write JSON. It talks to the node's `rsmc_` RPC methods.

use jsonrpsee::{
	core::client::{ClientT, Subscription, SubscriptionClientT},
	rpc_params,
};
use jsonrpsee_ws_client::{WsClient, WsClientBuilder};
use serde_json::Value;
use sp_core::{crypto::Ss58Codec, sr25519, Pair};
use std::{
	io::Write,
	time::{Duration, Instant},
};

#[derive(Debug, Clone, clap::Parser)]
pub struct RsmcCmd {
	/// The node's RPC URL.
	#[arg(long, default_value = "ws://127.0.0.1:9944")]
	pub url: String,

	#[command(subcommand)]
	pub action: Action,
}

/// Accounts are SS58 addresses, `0x` public keys, or dev names such as `//Alice`; amounts
/// are in VBK, with up to 12 decimals (`20`, `0.5`, `0.5VBK`), or in planck with the suffix
/// `planck` (`500planck`; 1 VBK = 10^12 planck).
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Action {
	/// The accounts the node's helpers serve, with their banks.
	Status,
	/// An account's banks, as a table.
	Banks { account: String },
	/// Open a bank with a peer and fund it, showing each step as it happens.
	Open {
		account: String,
		peer: String,
		my_amount: Amount,
		#[arg(default_value = "0")]
		peer_amount: Amount,
		/// Blocks the liquidator's share stays frozen.
		#[arg(long, default_value_t = 10)]
		lock_period: u32,
		/// The RPC URL of the peer's node, when another node serves the peer.
		#[arg(long)]
		peer_url: Option<String>,
	},
	/// Accept a bank another account opened that waits for us (`Offered`: outside the
	/// helper's `--rsmc-inbound-limit` or `--rsmc-min-lock`): the handshake and our deposit.
	Accept { account: String, channel: u64 },
	/// Pay an amount on a bank; returns once the payment is final.
	Pay { account: String, channel: u64, amount: Amount },
	/// Close a bank cooperatively (or liquidate it if the peer does not answer).
	Close { account: String, channel: u64 },
	/// Add an amount to a running bank (a splice): the bank keeps running, with its HTLCs;
	/// returns once the chain holds the splice final.
	TopUp { account: String, channel: u64, amount: Amount },
	/// Take an amount out of our share of a running bank (a splice), as `top-up` adds.
	Withdraw { account: String, channel: u64, amount: Amount },
	/// Ask to be paid an amount: prints the hashlock to give the payer (the helper keeps the
	/// preimage, and reveals it only when paid in full).
	Invoice { account: String, amount: Amount },
	/// Pay an invoice through the banks on chain (a direct bank, or a route through others);
	/// returns once the payee's preimage has come back.
	Send { account: String, payee: String, amount: Amount, hashlock: String },
	/// Serve the wallet page, a browser's view of the node's accounts and their banks (its
	/// files are in this binary; the page talks to the node at `--url` itself).
	Wallet {
		/// Where the page is served: a loopback address keeps it to this machine.
		#[arg(long, default_value = "127.0.0.1:8080")]
		listen: std::net::SocketAddr,
	},
}

/// An amount as the command line takes it: VBK with up to 12 decimals (`20`, `0.5`,
/// `0.5VBK`), or planck with the suffix `planck` (`500planck`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Amount(pub u128);

impl std::str::FromStr for Amount {
	type Err = String;

	fn from_str(text: &str) -> Result<Self, String> {
		let text = text.trim();
		let bad = || {
			format!(
				"`{text}` is not an amount: VBK with up to 12 decimals (`20`, `0.5`) or planck \
				 with the suffix `planck` (`500planck`)"
			)
		};
		let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
		if let Some(planck) = text.strip_suffix("planck") {
			let planck = planck.trim();
			return digits(planck)
				.then(|| planck.parse().ok())
				.flatten()
				.map(Amount)
				.ok_or_else(bad);
		}
		let vbk = text.strip_suffix("VBK").unwrap_or(text).trim();
		let (whole, fraction) = vbk.split_once('.').unwrap_or((vbk, ""));
		let whole_ok = digits(whole) || (whole.is_empty() && digits(fraction));
		if !whole_ok || (vbk.contains('.') && !digits(fraction)) || fraction.len() > 12 {
			return Err(bad());
		}
		let whole: u128 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| bad())? };
		let fraction: u128 = format!("{fraction:0<12}").parse().map_err(|_| bad())?;
		whole
			.checked_mul(vbank_runtime::UNIT)
			.and_then(|planck| planck.checked_add(fraction))
			.map(Amount)
			.ok_or_else(bad)
	}
}

impl RsmcCmd {
	pub fn run(&self) -> Result<(), String> {
		let runtime = tokio::runtime::Builder::new_current_thread()
			.enable_all()
			.build()
			.map_err(|e| e.to_string())?;
		runtime.block_on(self.run_async())
	}

	async fn run_async(&self) -> Result<(), String> {
		if let Action::Wallet { listen } = &self.action {
			// The page reaches the node itself, and says so while it cannot.
			return crate::wallet::serve(*listen, self.url.clone()).await;
		}
		let client = WsClientBuilder::default()
			.request_timeout(Duration::from_secs(3600))
			.build(&self.url)
			.await
			.map_err(|e| format!("cannot reach the node at {}: {e}", self.url))?;
		let call = |method: &'static str, params| request(&client, method, params);
		match &self.action {
			Action::Status => {
				let accounts = call("rsmc_accounts", rpc_params![]).await?;
				let accounts: Vec<String> =
					serde_json::from_value(accounts).map_err(|e| e.to_string())?;
				if accounts.is_empty() {
					println!("{} serves no helper (start it with --rsmc-account)", self.url);
				}
				for account in accounts {
					let banks = call("rsmc_banks", rpc_params![account.clone()]).await?;
					println!("{account}");
					print_banks(&banks);
				}
			},
			Action::Banks { account } => {
				let banks = call("rsmc_banks", rpc_params![address(account)?]).await?;
				print_banks(&banks);
			},
			Action::Open { account, peer, my_amount, peer_amount, lock_period, peer_url } => {
				let account = address(account)?;
				let events: Subscription<Value> = client
					.subscribe(
						"rsmc_subscribeEvents",
						rpc_params![account.clone()],
						"rsmc_unsubscribeEvents",
					)
					.await
					.map_err(|e| e.to_string())?;
				let open = call(
					"rsmc_open",
					rpc_params![
						account,
						address(peer)?,
						my_amount.0.to_string(),
						peer_amount.0.to_string(),
						lock_period,
						peer_url
					],
				);
				let bank = with_progress(open, events).await?;
				print_banks(&Value::Array(vec![bank]));
			},
			Action::Accept { account, channel } => {
				let bank = call("rsmc_accept", rpc_params![address(account)?, channel]).await?;
				print_banks(&Value::Array(vec![bank]));
			},
			Action::Pay { account, channel, amount } => {
				let paid =
					call("rsmc_pay", rpc_params![address(account)?, channel, amount.0.to_string()])
						.await?;
				println!(
					"paid: bank {channel} is at nonce {}, balances {} / {}",
					paid["nonce"],
					units(&paid["balances"][0]),
					units(&paid["balances"][1])
				);
			},
			Action::Close { account, channel } => {
				let closed = call("rsmc_close", rpc_params![address(account)?, channel]).await?;
				let how = match closed["how"].as_str() {
					Some("close") => "closed cooperatively",
					_ => "the peer did not answer: liquidated with the newest sheet",
				};
				println!(
					"bank {channel} {how}: {} / {}",
					units(&closed["balances"][0]),
					units(&closed["balances"][1])
				);
			},
			Action::TopUp { account, channel, amount }
			| Action::Withdraw { account, channel, amount } => {
				let (method, done) = match self.action {
					Action::TopUp { .. } => ("rsmc_topUp", "topped up"),
					_ => ("rsmc_withdraw", "drawn from"),
				};
				let params = rpc_params![address(account)?, channel, amount.0.to_string()];
				let spliced = call(method, params).await?;
				println!(
					"bank {channel} {done} by {}: it holds {} from sheet {}, balances {} / {}",
					units(&amount.0.to_string().into()),
					units(&spliced["total"]),
					spliced["nonce"],
					units(&spliced["balances"][0]),
					units(&spliced["balances"][1])
				);
			},
			Action::Invoice { account, amount } => {
				let params = rpc_params![address(account)?, amount.0.to_string()];
				let invoice = call("rsmc_invoice", params).await?;
				println!(
					"invoice of {}: hashlock {}",
					units(&invoice["amount"]),
					invoice["hashlock"].as_str().unwrap_or_default()
				);
			},
			Action::Wallet { .. } => unreachable!("served above, without a client"),
			Action::Send { account, payee, amount, hashlock } => {
				let amount = amount.0.to_string();
				let params = rpc_params![address(account)?, address(payee)?, amount, hashlock];
				let sent = call("rsmc_send", params).await?;
				println!(
					"sent {} through banks {} (fees {}): preimage {}",
					units(&sent["amount"]),
					sent["route"],
					units(&sent["fees"]),
					sent["preimage"].as_str().unwrap_or_default()
				);
			},
		}
		Ok(())
	}
}

async fn request(
	client: &WsClient,
	method: &str,
	params: jsonrpsee::core::params::ArrayParams,
) -> Result<Value, String> {
	client.request(method, params).await.map_err(|e| match e {
		jsonrpsee::core::ClientError::Call(e) => e.message().to_string(),
		e => format!("{method}: {e}"),
	})
}

/// Wait for `open` while printing, on one line, the step the bank has reached.
async fn with_progress(
	open: impl std::future::Future<Output = Result<Value, String>>,
	mut events: Subscription<Value>,
) -> Result<Value, String> {
	let started = Instant::now();
	let mut step = "submitting `open`".to_string();
	let mut ticker = tokio::time::interval(Duration::from_millis(200));
	let mut open = std::pin::pin!(open);
	let mut stderr = std::io::stderr();
	loop {
		tokio::select! {
			done = &mut open => {
				let _ = writeln!(stderr, "\r[{:5.1}s] opening: {:<60}", started.elapsed().as_secs_f32(), match &done {
					Ok(_) => "running".to_string(),
					Err(e) => format!("failed: {e}"),
				});
				return done;
			},
			Some(Ok(event)) = events.next() => {
				step = match event["kind"].as_str() {
					Some("Opened") => format!("bank {} open on chain; handshake", event["channel"]),
					Some("Handshake") => "sheet 0 signed by both; depositing".into(),
					Some("Deposited") => "deposited; waiting for the peer's deposit".into(),
					Some("Running") => "running".into(),
					_ => step,
				};
			},
			_ = ticker.tick() => {},
		}
		let _ = write!(stderr, "\r[{:5.1}s] opening: {step:<60}", started.elapsed().as_secs_f32());
		let _ = stderr.flush();
	}
}

/// An account as the node takes it: `//Name` dev accounts become their address.
fn address(text: &str) -> Result<String, String> {
	if text.starts_with("//") {
		let pair = sr25519::Pair::from_string(text, None)
			.map_err(|e| format!("`{text}` is not a secret URI: {e:?}"))?;
		return Ok(pair.public().to_ss58check());
	}
	Ok(text.to_string())
}

/// Planck as VBK (12 decimals), e.g. `"80500000000000"` → `80.5 VBK`.
fn units(planck: &Value) -> String {
	let Some(planck) = planck.as_str().and_then(|s| s.parse::<u128>().ok()) else {
		return planck.to_string();
	};
	let unit = vbank_runtime::UNIT;
	let (whole, fraction) = (planck / unit, planck % unit);
	if fraction == 0 {
		return format!("{whole} VBK");
	}
	let fraction = format!("{fraction:012}");
	format!("{whole}.{} VBK", fraction.trim_end_matches('0'))
}

fn short(address: &str) -> String {
	match address.len() {
		0..=12 => address.to_string(),
		n => format!("{}…{}", &address[..6], &address[n - 4..]),
	}
}

/// Banks as a table.
fn print_banks(banks: &Value) {
	let banks = banks.as_array().cloned().unwrap_or_default();
	if banks.is_empty() {
		println!("  no banks");
		return;
	}
	println!(
		"  {:>7}  {:<11}  {:<13}  {:>6}  {:>22}  {:>22}  {:>9}",
		"bank", "state", "peer", "nonce", "mine", "theirs", "unlock at"
	);
	for bank in banks {
		let me = bank["me"].as_u64().unwrap_or(0) as usize;
		let peer = bank["clients"][1 - me].as_str().unwrap_or_default();
		let unlock = bank["unlock_at"].as_u64().map_or("-".to_string(), |n| n.to_string());
		println!(
			"  {:>7}  {:<11}  {:<13}  {:>6}  {:>22}  {:>22}  {:>9}",
			bank["channel"],
			bank["state"].as_str().unwrap_or_default(),
			short(peer),
			bank["nonce"],
			units(&bank["balances"][me]),
			units(&bank["balances"][1 - me]),
			unlock
		);
	}
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn amounts_show_in_units_without_trailing_zeros() {
		assert_eq!(units(&Value::from("80500000000000")), "80.5 VBK");
		assert_eq!(units(&Value::from("1000000000000")), "1 VBK");
		assert_eq!(units(&Value::from("1")), "0.000000000001 VBK");
		assert_eq!(units(&Value::from("0")), "0 VBK");
	}

	#[test]
	fn amounts_are_vbk_with_decimals_or_planck_with_a_suffix() {
		let unit = vbank_runtime::UNIT;
		let parse = |text: &str| text.parse::<Amount>().map(|a| a.0);
		assert_eq!(parse("20"), Ok(20 * unit));
		assert_eq!(parse("0.5"), Ok(unit / 2));
		assert_eq!(parse(".5"), Ok(unit / 2));
		assert_eq!(parse("0.5VBK"), Ok(unit / 2));
		assert_eq!(parse("1.000000000001"), Ok(unit + 1));
		assert_eq!(parse("500planck"), Ok(500));
		assert_eq!(parse("0"), Ok(0));
		for bad in ["", "1.2.3", "1.", "abc", "-1", "1.0000000000001", "1e3", "0.5planck", "planck"]
		{
			let error = parse(bad).unwrap_err();
			assert!(error.contains(&format!("`{}`", bad.trim())), "{bad}: {error}");
		}
		assert!(parse(&format!("{}", u128::MAX)).is_err(), "too large for planck");
	}

	#[test]
	fn dev_names_become_addresses() {
		let alice = sp_keyring::Sr25519Keyring::Alice.to_account_id().to_ss58check();
		assert_eq!(address("//Alice"), Ok(alice.clone()));
		assert_eq!(address(&alice), Ok(alice));
	}
}
