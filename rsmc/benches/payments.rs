//! Payments per second between two helpers in one process, in memory and with the durable
//! store, beside the crypto floor measured in the same run; and the bytes stored per bank
//! after many payments.
//!
//! `cargo bench -p rsmc` measures; `cargo test --benches` runs each benchmark once.

use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use rsmc::{
	keys::{Signer, Sr25519Signer},
	store::{MemoryStore, RedbStore, Store},
	Helper, Policy, Terms,
};
use sp_core::{sr25519, Pair, H256};
use std::{hint::black_box, sync::Arc};

const CHANNEL: u64 = 1;
const GENESIS: H256 = H256([1; 32]);

/// Whether criterion measures (`cargo bench`) rather than runs each benchmark once.
fn measuring() -> bool {
	std::env::args().any(|arg| arg == "--bench")
}

fn helpers<S: Store>(alice_store: S, bob_store: S) -> (Helper<S>, Helper<S>) {
	let alice_signer = Arc::new(Sr25519Signer::new(sr25519::Pair::from_seed(&[1; 32])));
	let bob_signer = Arc::new(Sr25519Signer::new(sr25519::Pair::from_seed(&[2; 32])));
	let terms = Terms {
		channel: CHANNEL,
		genesis_hash: GENESIS,
		clients: [alice_signer.account(), bob_signer.account()],
		balances: [u64::MAX as u128, u64::MAX as u128],
		lock_period: 100,
	};
	let mut alice = Helper::new(alice_signer, GENESIS, alice_store).unwrap();
	let mut bob =
		Helper::new(bob_signer, GENESIS, bob_store).unwrap().with_policy(Policy::ACCEPT_ALL);
	let open = alice.open(terms).unwrap();
	let accept = bob.handle(&open).unwrap().reply.unwrap();
	let confirm = alice.handle(&accept).unwrap().reply.unwrap();
	assert!(bob.handle(&confirm).unwrap().reply.is_none());
	(alice, bob)
}

/// One payment of 1, all three messages, from `payer` to `payee`.
fn pay<S: Store>(payer: &mut Helper<S>, payee: &mut Helper<S>) {
	let propose = payer.pay(CHANNEL, 1).unwrap();
	let accept = payee.handle(&propose).unwrap().reply.unwrap();
	let revoke = payer.handle(&accept).unwrap().reply.unwrap();
	assert!(payee.handle(&revoke).unwrap().reply.is_none());
}

fn crypto_floor(c: &mut Criterion) {
	let mut group = c.benchmark_group("crypto_floor");
	let pair = sr25519::Pair::from_seed(&[3; 32]);
	let message = [7u8; 107];
	let signature = pair.sign(&message);
	group.bench_function("sr25519_keygen", |b| {
		b.iter(|| sr25519::Pair::from_seed(black_box(&[4; 32])))
	});
	group.bench_function("sr25519_sign", |b| b.iter(|| pair.sign(black_box(&message))));
	group.bench_function("sr25519_verify", |b| {
		b.iter(|| sr25519::Pair::verify(&signature, black_box(&message), &pair.public()))
	});
	group.finish();
}

fn payments(c: &mut Criterion) {
	let mut group = c.benchmark_group("payments");
	// Each iteration is two payments, one each way.
	group.throughput(Throughput::Elements(2));
	let (mut alice, mut bob) = helpers(MemoryStore::default(), MemoryStore::default());
	group.bench_function(BenchmarkId::new("one_bank", "memory"), |b| {
		b.iter(|| {
			pay(&mut alice, &mut bob);
			pay(&mut bob, &mut alice);
		})
	});
	let dir = tempfile::tempdir().unwrap();
	let (mut alice, mut bob) = helpers(
		RedbStore::open(&dir.path().join("alice.redb")).unwrap(),
		RedbStore::open(&dir.path().join("bob.redb")).unwrap(),
	);
	group.sample_size(20);
	group.bench_function(BenchmarkId::new("one_bank", "redb"), |b| {
		b.iter(|| {
			pay(&mut alice, &mut bob);
			pay(&mut bob, &mut alice);
		})
	});
	group.finish();
}

/// Not a timing: the bytes a bank takes in the store after 10^k payments, printed. The
/// revealed secrets are kept in at most 49 slots, so it stops growing.
fn stored_bytes_per_bank() {
	let payments: u64 = if measuring() { 1_000_000 } else { 1_000 };
	let (mut alice, mut bob) = helpers(MemoryStore::default(), MemoryStore::default());
	let mut checkpoint = 1;
	for n in 1..=payments {
		if n % 2 == 0 {
			pay(&mut alice, &mut bob)
		} else {
			pay(&mut bob, &mut alice)
		}
		if n == checkpoint || n == payments {
			let (a, b) =
				(alice.store().stored_bytes().unwrap(), bob.store().stored_bytes().unwrap());
			println!("stored bytes per bank after {n:>9} payments: payer side {a}, payee side {b}");
			assert!(a.max(b) < 4096, "over 4 KiB per bank");
			checkpoint *= 10;
		}
	}
}

criterion_group!(benches, crypto_floor, payments);

fn main() {
	benches();
	stored_bytes_per_bank();
	criterion::Criterion::default().configure_from_args().final_summary();
}
