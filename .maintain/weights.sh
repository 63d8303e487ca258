#!/usr/bin/env bash
# Regenerates the virtual bank's weights on this machine, and prints the weights of
# `balances.transfer_keep_alive` measured the same way for comparison. Needs the node built
# with `cargo build -p vbank-node --features runtime-benchmarks`.
set -euo pipefail
cd "$(dirname "$0")/.."
PATH="${CARGO_TARGET_DIR:-$HOME/.cache/vbank/target}/debug:$PATH"

vbank-node benchmark pallet --chain dev --pallet pallet_virtual_bank --extrinsic '*' \
	--steps 50 --repeat 20 --wasm-execution compiled \
	--template .maintain/frame-weight-template.hbs --header .maintain/HEADER \
	--output pallets/virtual-bank/src/weights.rs
vbank-node benchmark pallet --chain dev --pallet pallet_balances --extrinsic transfer_keep_alive \
	--steps 50 --repeat 20 --wasm-execution compiled
