//! The parameters of the `rsmc_` methods, read strictly: by position or by name, exactly the
//! method's own (a missing one, an extra one or an unknown name is refused with what the
//! method takes), each of its type and range. A refusal quotes at most the start of what it
//! refuses, so a megabyte of garbage gets a short answer.

use super::super::Failure;
use jsonrpsee::types::Params;
use serde_json::Value;
use sp_core::crypto::Ss58Codec;
use vbank_primitives::{Balance, ChannelId, Nonce};
use vbank_runtime::{AccountId, BlockNumber};

/// A method's parameters: their names in order; the last `optional` ones may be left out.
pub struct Signature {
	/// The method's full name (`rsmc_pay`).
	pub method: &'static str,
	pub names: &'static [&'static str],
	pub optional: usize,
}

/// How much of a refused value an error message quotes.
const QUOTED: usize = 48;

/// `value` as an error message quotes it: whole if short, else its start and its length.
pub fn quoted(value: &Value) -> String {
	let text = value.to_string();
	match text.char_indices().nth(QUOTED) {
		None => text,
		Some((end, _)) => format!("{}… ({} bytes)", &text[..end], text.len()),
	}
}

impl Signature {
	fn takes(&self) -> String {
		format!("{} takes ({})", self.method, self.names.join(", "))
	}

	/// The parameters of one call, in order, `Null` for an optional one left out.
	pub fn read(&self, params: &Params) -> Result<Arguments, Failure> {
		let bad = |why: String| Failure::BadRequest(format!("{}: {why}", self.takes()));
		let given: Value = match params.as_str() {
			None => Value::Array(vec![]),
			Some(text) => serde_json::from_str(text).map_err(|e| bad(format!("{e}")))?,
		};
		let required = self.names.len() - self.optional;
		let values = match given {
			Value::Array(values) => {
				if !(required..=self.names.len()).contains(&values.len()) {
					return Err(bad(format!("{} given", values.len())));
				}
				values
			},
			Value::Object(mut named) => {
				let values: Vec<Value> = self
					.names
					.iter()
					.map(|name| named.remove(*name).unwrap_or(Value::Null))
					.collect();
				if let Some(unknown) = named.keys().next() {
					return Err(bad(format!(
						"no parameter is named {}",
						quoted(&unknown.as_str().into())
					)));
				}
				if let Some(missing) = values[..required].iter().position(Value::is_null) {
					return Err(bad(format!("`{}` is missing", self.names[missing])));
				}
				values
			},
			other => {
				return Err(bad(format!(
					"parameters must be an array or an object, not {}",
					quoted(&other)
				)))
			},
		};
		Ok(Arguments { values: values.into_iter(), names: self.names.iter() })
	}
}

/// The values of one call's parameters, taken in order, each as its type.
pub struct Arguments {
	values: std::vec::IntoIter<Value>,
	names: std::slice::Iter<'static, &'static str>,
}

impl Arguments {
	fn next(&mut self) -> (&'static str, Value) {
		let name = *self.names.next().expect("no more taken than the signature names");
		(name, self.values.next().unwrap_or(Value::Null))
	}

	fn refuse(name: &str, value: &Value, what: &str) -> Failure {
		Failure::BadRequest(format!("`{name}` must be {what}, not {}", quoted(value)))
	}

	/// An SS58 address or a `0x` hex public key.
	pub fn account(&mut self) -> Result<AccountId, Failure> {
		let (name, value) = self.next();
		let text = value.as_str().ok_or_else(|| Self::refuse(name, &value, "an account"))?;
		parse_account(text)
	}

	/// A whole number of planck, as a JSON number or a decimal string.
	pub fn amount(&mut self) -> Result<Balance, Failure> {
		let (_, value) = self.next();
		parse_amount(&value)
	}

	/// A bank id: a JSON number from 0 to 2^64 - 1.
	pub fn channel(&mut self) -> Result<ChannelId, Failure> {
		let (name, value) = self.next();
		value.as_u64().ok_or_else(|| Self::refuse(name, &value, "a bank id (0 to 2^64 - 1)"))
	}

	/// A sheet's nonce.
	pub fn nonce(&mut self) -> Result<Nonce, Failure> {
		let (name, value) = self.next();
		value.as_u64().ok_or_else(|| Self::refuse(name, &value, "a nonce (0 to 2^64 - 1)"))
	}

	/// A number of blocks.
	pub fn blocks(&mut self) -> Result<BlockNumber, Failure> {
		let (name, value) = self.next();
		let blocks = value.as_u64().and_then(|n| BlockNumber::try_from(n).ok());
		blocks.ok_or_else(|| Self::refuse(name, &value, "a number of blocks (0 to 2^32 - 1)"))
	}

	/// A hashlock: `0x` and 64 hex digits.
	pub fn hashlock(&mut self) -> Result<sp_core::H256, Failure> {
		let (name, value) = self.next();
		let bad = || Self::refuse(name, &value, "a hashlock (0x and 64 hex digits)");
		let text = value.as_str().ok_or_else(bad)?;
		let hex_digits = text.strip_prefix("0x").filter(|h| h.len() == 64).ok_or_else(bad)?;
		let raw = hex::decode(hex_digits).map_err(|_| bad())?;
		Ok(sp_core::H256::from_slice(&raw))
	}

	/// A string.
	pub fn text(&mut self) -> Result<String, Failure> {
		let (name, value) = self.next();
		match value {
			Value::String(text) => Ok(text),
			other => Err(Self::refuse(name, &other, "a string")),
		}
	}

	/// A string, or nothing (`null`, or left out).
	pub fn optional_text(&mut self) -> Result<Option<String>, Failure> {
		let (name, value) = self.next();
		match value {
			Value::Null => Ok(None),
			Value::String(text) => Ok(Some(text)),
			other => Err(Self::refuse(name, &other, "a string or null")),
		}
	}
}

/// The longest account text there is: a `0x` hex public key. SS58 addresses are shorter.
const ACCOUNT_TEXT: usize = 2 + 64;

/// An SS58 address or a `0x` hex public key.
///
/// Anything longer than a hex public key is refused before it is decoded: base58 decoding
/// takes time quadratic in the length, and a megabyte "address" kept a node's RPC thread
/// busy for minutes.
pub fn parse_account(text: &str) -> Result<AccountId, Failure> {
	let shown = || quoted(&text.into());
	if text.len() > ACCOUNT_TEXT {
		return Err(Failure::BadRequest(format!("{} is too long for an account", shown())));
	}
	if let Some(hex_key) = text.strip_prefix("0x") {
		let raw = hex::decode(hex_key).map_err(|e| {
			Failure::BadRequest(format!("{} is not a hex public key: {e}", shown()))
		})?;
		let raw: [u8; 32] = raw
			.try_into()
			.map_err(|_| Failure::BadRequest(format!("{} is not a 32-byte public key", shown())))?;
		return Ok(AccountId::from(raw));
	}
	AccountId::from_ss58check(text)
		.map_err(|e| Failure::BadRequest(format!("{} is not an SS58 address: {e:?}", shown())))
}

/// A JSON number or a decimal string (u128 does not fit a JSON number).
pub fn parse_amount(value: &Value) -> Result<Balance, Failure> {
	let bad = || {
		Failure::BadRequest(format!(
			"{} is not an amount: give a whole number of planck, as a number or a decimal string",
			quoted(value)
		))
	};
	match value {
		Value::Number(n) => n.as_u64().map(Balance::from).ok_or_else(bad),
		Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
			s.parse().map_err(|_| bad())
		},
		_ => Err(bad()),
	}
}

#[cfg(test)]
mod tests {
	use super::*;
	use serde_json::json;

	const PAY: Signature =
		Signature { method: "rsmc_pay", names: &["account", "channel", "amount"], optional: 0 };
	const MESSAGE: Signature =
		Signature { method: "rsmc_message", names: &["message", "sender_url"], optional: 1 };

	fn read(signature: &Signature, params: &str) -> Result<Vec<Value>, String> {
		let params = Params::new(Some(params));
		match signature.read(&params) {
			Ok(arguments) => Ok(arguments.values.collect()),
			Err(Failure::BadRequest(why)) => Err(why),
			Err(other) => panic!("not a bad request: {other}"),
		}
	}

	#[test]
	fn parameters_by_position_or_by_name_and_no_others() {
		assert_eq!(read(&PAY, r#"["a", 1, "2"]"#), Ok(vec![json!("a"), json!(1), json!("2")]));
		assert_eq!(
			read(&PAY, r#"{"amount": "2", "account": "a", "channel": 1}"#),
			Ok(vec![json!("a"), json!(1), json!("2")])
		);
		assert_eq!(read(&MESSAGE, r#"["0x00"]"#), Ok(vec![json!("0x00")]));
		assert_eq!(read(&MESSAGE, r#"{"message": "0x00"}"#), Ok(vec![json!("0x00"), Value::Null]));
		for (params, why) in [
			(r#"["a", 1]"#, "2 given"),
			(r#"["a", 1, "2", 3]"#, "4 given"),
			(r#"{"account": "a", "channel": 1}"#, "`amount` is missing"),
			(
				r#"{"account": "a", "channel": 1, "amount": 2, "tip": 1}"#,
				"no parameter is named \"tip\"",
			),
			(r#""a""#, "must be an array or an object"),
			(r#"[1, 2"#, "EOF"),
		] {
			let refused = read(&PAY, params).expect_err(params);
			assert!(
				refused.starts_with("rsmc_pay takes (account, channel, amount): "),
				"{refused}"
			);
			assert!(refused.contains(why), "{refused}");
		}
	}

	#[test]
	fn a_refusal_quotes_only_the_start_of_a_long_value_and_decodes_none_of_it() {
		let long = "7".repeat(1 << 20);
		let Err(Failure::BadRequest(why)) = parse_account(&long) else { panic!("accepted") };
		// Refused for its length: decoding it as base58 would take minutes.
		assert!(why.contains("too long for an account"), "{why}");
		assert!(why.len() < 200, "{} bytes", why.len());
		assert!(why.contains("(1048578 bytes)"), "{why}");
		let Err(Failure::BadRequest(why)) = parse_amount(&Value::String(long)) else {
			panic!("accepted")
		};
		assert!(why.len() < 200, "{} bytes", why.len());
	}

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
