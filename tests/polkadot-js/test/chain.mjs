// Starting a dev node for a test, and the few helpers every test needs: submit and wait
// until the transaction is in a block (`status.isInBlock`, the usual idiom), read the events
// and dispatch error it produced, and send a general transaction (no signer, no fee).

import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { ApiPromise, WsProvider } from '@polkadot/api';
import { Keyring } from '@polkadot/keyring';
import { compactAddLength, u8aConcat, u8aToHex } from '@polkadot/util';
import { cryptoWaitReady } from '@polkadot/util-crypto';

const START_TIMEOUT_MS = 60_000;

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/**
 * Starts `vbank-node --dev --tmp` on free loopback ports (or JSON-RPC on `rpcPort`), with
 * `args` after the usual ones; `stop()` ends it.
 */
export async function startNode(args = [], { rpcPort = null } = {}) {
  const binary = process.env.VBANK_NODE;
  if (!binary) throw new Error('set VBANK_NODE to the vbank-node binary (cargo test sets it)');
  rpcPort ??= await freePort();
  const p2pPort = await freePort();
  const child = spawn(binary, [
    '--dev', '--tmp', '--no-telemetry', '--no-prometheus', '--no-mdns',
    '--rpc-port', String(rpcPort), '--listen-addr', `/ip4/127.0.0.1/tcp/${p2pPort}`, ...args,
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  // The node may have found the port taken (another test raced for it) and bound another:
  // use the one it says.
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`node did not start:\n${log}`)), START_TIMEOUT_MS);
    child.stderr.on('data', (chunk) => {
      log += chunk;
      const listening = log.match(/Running JSON-RPC server: addr=127\.0\.0\.1:(\d+)/);
      if (listening) { clearTimeout(timer); resolve(Number(listening[1])); }
    });
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`node exited with ${code}:\n${log}`)); });
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  // Leave no node behind if this process ends without stop(): a failed hook, a time-out.
  const reap = () => child.kill('SIGKILL');
  process.once('exit', reap);
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.once(signal, () => { reap(); process.exit(1); });
  }
  return {
    url: `ws://127.0.0.1:${port}`,
    async stop() {
      process.removeListener('exit', reap);
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** A node, an API connected to it, and the dev accounts. */
export async function connect() {
  const node = await startNode();
  const api = await ApiPromise.create({ provider: new WsProvider(node.url), noInitWarn: true });
  await cryptoWaitReady();
  const keyring = new Keyring({ type: 'sr25519' });
  const dev = Object.fromEntries(
    ['Alice', 'Bob', 'Charlie', 'Dave'].map((name) => [name.toLowerCase(), keyring.addFromUri(`//${name}`)]),
  );
  return {
    api,
    keyring,
    dev,
    async close() { await api.disconnect(); await node.stop(); },
  };
}

/**
 * Signs and sends `tx` from `signer`; resolves once it is in a block (`status.isInBlock`)
 * with `{ events, error, fee, blockHash }`: `error` is `section.name` of the dispatch error,
 * or null. With `{ finalized: true }` it waits for `isFinalized` instead, and `statuses`
 * lists every status seen.
 */
export function send(api, tx, signer, { finalized = false } = {}) {
  const statuses = [];
  return new Promise((resolve, reject) => {
    let unsubscribe = () => {};
    tx.signAndSend(signer, ({ status, events, dispatchError }) => {
      statuses.push(status.type);
      if (status.isInvalid || status.isDropped || status.isUsurped) {
        unsubscribe();
        reject(new Error(`transaction ${status.type}`));
        return;
      }
      if (!(finalized ? status.isFinalized : status.isInBlock)) return;
      unsubscribe();
      let error = null;
      if (dispatchError) {
        if (dispatchError.isModule) {
          const { section, name } = api.registry.findMetaError(dispatchError.asModule);
          error = `${section}.${name}`;
        } else {
          error = dispatchError.toString();
        }
      }
      const fee = events
        .filter(({ event }) => api.events.transactionPayment.TransactionFeePaid.is(event))
        .map(({ event }) => event.data.actualFee.toBigInt())[0];
      const blockHash = status.isInBlock ? status.asInBlock : status.asFinalized;
      resolve({ events: events.map(({ event }) => event), error, fee, blockHash, statuses });
    }).then((u) => { unsubscribe = u; }, reject);
  });
}

function plain(codec) {
  if (typeof codec.toBigInt === 'function') return codec.toBigInt();
  if (Array.isArray(codec)) return codec.map(plain);
  return codec.toJSON();
}

const camel = (name) => name.replace(/_([a-z])/g, (_, c) => c.toUpperCase());

/** The virtual bank's events among `events`, as `{ name, ...fields }` with bigint numbers. */
export function bankEvents(events) {
  return events
    .filter((event) => event.section === 'virtualBank')
    .map((event) => Object.fromEntries([
      ['name', event.method],
      ...event.data.map((value, i) => [camel(event.data.names[i]), plain(value)]),
    ]));
}

/**
 * The bytes a `Vec<u8>` runtime API returned. polkadot.js hands back a runtime call's
 * `Vec<u8>` answer with its SCALE length prefix still on (a `Bytes` built from the raw
 * answer), so the prefix is decoded here.
 */
export function payload(api, answer) {
  return api.createType('Bytes', answer.toU8a(true)).toU8a(true);
}

/** `who`'s free and held funds, as bigints. */
export async function funds(api, who) {
  const { data } = await api.query.system.account(who);
  return { free: data.free.toBigInt(), held: data.reserved.toBigInt() };
}

/**
 * `call` as a general transaction (extrinsic format 5, no signer): polkadot.js 16 builds
 * only signed and bare ones, so the bytes are put together here, as SPEC section 2 tells:
 *
 *   compact length ++ 0x45 (format 5, general) ++ 0x00 (extension version)
 *   ++ each transaction extension's explicit data, in the metadata's order
 *   ++ the call
 *
 * The runtime's extensions carry explicit data in three places: `CheckMortality` (an
 * immortal era, 0x00), `CheckNonce` (compact 0) and `ChargeTransactionPayment` (a compact
 * tip of 0); the others have none. A general transaction is valid only for a call that
 * authorizes itself (`virtualBank.withdrawByPeer`): it pays no fee and needs no nonce.
 */
export function generalTransaction(api, call) {
  const explicit = new Uint8Array([0x00, 0x00, 0x00]);
  return u8aToHex(compactAddLength(u8aConcat(new Uint8Array([0x45, 0x00]), explicit, call.method.toU8a())));
}

/**
 * Sends the hex-encoded extrinsic `xt` with `author_submitExtrinsic`; resolves with the
 * hash of the block that has it, or rejects with the node's error (the pool's refusal).
 */
export async function submitRaw(api, xt) {
  const { provider } = api._rpcCore;
  const found = new Promise((resolve) => {
    const unsubscribe = api.rpc.chain.subscribeNewHeads(async (header) => {
      // Raw JSON: the block's extrinsics as hex, whatever their format.
      const { block } = await provider.send('chain_getBlock', [header.hash.toHex()]);
      if (block.extrinsics.includes(xt)) {
        (await unsubscribe)();
        resolve(header.hash);
      }
    });
  });
  await provider.send('author_submitExtrinsic', [xt]);
  return found;
}
