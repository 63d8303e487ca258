#!/usr/bin/env bash
# Regenerates the virtual bank's weights on this machine, and prints the weights of
# `balances.transfer_keep_alive` measured by the same node in the same run, for comparison.
# Needs a release node built with the benchmarks:
#
#   cargo build --release -p vbank-node --features runtime-benchmarks
#
# (or set VBANK_NODE to such a binary). A test-profile node measures several times too high.
set -euo pipefail
cd "$(dirname "$0")/.."
node="${VBANK_NODE:-${CARGO_TARGET_DIR:-$HOME/.cache/vbank/target}/release/vbank-node}"

"$node" benchmark pallet --chain dev --pallet pallet_virtual_bank --extrinsic '*' \
	--steps 50 --repeat 20 --wasm-execution compiled \
	--template .maintain/frame-weight-template.hbs --header .maintain/HEADER \
	--output pallets/virtual-bank/src/weights.rs
"$node" benchmark pallet --chain dev --pallet pallet_balances --extrinsic transfer_keep_alive \
	--steps 50 --repeat 20 --wasm-execution compiled
