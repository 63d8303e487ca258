//! BOLT #3's published per-commitment secret vectors, for generation and for the compact
//! store (including the secrets it must refuse).

use rsmc::secrets::{generate, RevealedSecrets};
use serde_json::Value;

fn vectors() -> Value {
	// Embedded, not read by path: the target directory is shared between clones, and a test
	// binary built in one clone must not look for its data in another.
	serde_json::from_str(include_str!("../data/bolt3-per-commitment-vectors.json")).unwrap()
}

fn bytes32(value: &Value) -> [u8; 32] {
	hex::decode(value.as_str().unwrap()).unwrap().try_into().unwrap()
}

#[test]
fn generation_vectors() {
	let vectors = vectors();
	let cases = vectors["generation"].as_array().unwrap();
	assert_eq!(cases.len(), 5);
	for case in cases {
		let index = case["index"].as_u64().unwrap();
		assert_eq!(
			generate(&bytes32(&case["seed"]), index),
			bytes32(&case["output"]),
			"{}",
			case["name"]
		);
	}
}

#[test]
fn storage_vectors() {
	let vectors = vectors();
	let cases = vectors["storage"].as_array().unwrap();
	let mut refusals = 0;
	for case in cases {
		let name = case["name"].as_str().unwrap();
		let mut store = RevealedSecrets::default();
		for insert in case["inserts"].as_array().unwrap() {
			let index = insert["index"].as_u64().unwrap();
			let secret = bytes32(&insert["secret"]);
			let ok = insert["ok"].as_bool().unwrap();
			let result = store.insert(index, secret);
			assert_eq!(result.is_ok(), ok, "{name}: index {index}: {result:?}");
			if ok {
				assert_eq!(store.get(index), Some(secret), "{name}: stored {index}");
			} else {
				refusals += 1;
				break;
			}
		}
	}
	assert!(refusals >= 8, "the vectors include the refusals ({refusals})");
	// The correct sequence, read back in full from the compact store.
	let seed = bytes32(&vectors["storage_seed"]);
	let mut store = RevealedSecrets::default();
	let correct = cases[0]["inserts"].as_array().unwrap();
	for insert in correct {
		store.insert(insert["index"].as_u64().unwrap(), bytes32(&insert["secret"])).unwrap();
	}
	for insert in correct {
		let index = insert["index"].as_u64().unwrap();
		assert_eq!(store.get(index), Some(generate(&seed, index)));
	}
}
