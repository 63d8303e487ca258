// `rsmc_pay` latency through polkadot.js's WsProvider, as a wallet sees it, on one dev node
// serving both helpers: without an `rsmc_subscribeEvents` subscriber, with one on the same
// connection, and with one on a second connection.
//
//   cargo build --release -p vbank-node
//   VBANK_NODE=$CARGO_TARGET_DIR/release/vbank-node node tests/polkadot-js/bench/subscriber.mjs
//
// Prints milliseconds per payment for each case (300 payments each, after a warm-up).

import { WsProvider } from '@polkadot/api';
import { Keyring } from '@polkadot/keyring';
import { cryptoWaitReady } from '@polkadot/util-crypto';
import { startNode } from '../test/chain.mjs';

const PAYMENTS = 300;

await cryptoWaitReady();
const keyring = new Keyring({ type: 'sr25519' });
const [alice, bob] = ['//Alice', '//Bob'].map((uri) => keyring.addFromUri(uri).address);
const node = await startNode();
const wallet = new WsProvider(node.url, false);
await wallet.connect();
await wallet.isReady;
const bank = await wallet.send('rsmc_open', [alice, bob, '1000000000000000', '1000000000000000', 10, null]);

async function perPayment(count) {
  const started = performance.now();
  for (let i = 0; i < count; i++) await wallet.send('rsmc_pay', [alice, bank.channel, '1']);
  return (performance.now() - started) / count;
}

await perPayment(20);
const results = { 'no subscriber': await perPayment(PAYMENTS) };
let seen = 0;
const other = new WsProvider(node.url, false);
await other.connect();
await other.isReady;
await other.subscribe('rsmc_event', 'rsmc_subscribeEvents', [alice], () => { seen++; });
results['a subscriber on another connection'] = await perPayment(PAYMENTS);
await wallet.subscribe('rsmc_event', 'rsmc_subscribeEvents', [alice], () => { seen++; });
results['a subscriber on the same connection'] = await perPayment(PAYMENTS);
for (const [name, ms] of Object.entries(results)) console.log(`${name}: ${ms.toFixed(2)} ms a payment`);
if (seen === 0) throw new Error('the subscribers saw no event');
await wallet.disconnect();
await other.disconnect();
await node.stop();
process.exit(0);
