// The virtual bank through `api.tx.virtualBank`, with sheets signed by @polkadot/keyring,
// exactly as a wallet or dapp written from SPEC.md alone would use the chain.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { u8aToHex, u8aWrapBytes } from '@polkadot/util';
import { bankEvents, connect, funds, generalTransaction, payload, send, submitRaw } from './chain.mjs';
import { closePayload, sheetPayload, waiverPayload } from './encoding.mjs';

const UNIT = 10n ** 12n;
const LOCK = 3;

describe('virtual bank through polkadot.js', { timeout: 300_000 }, () => {
  let chain;
  let api;
  let genesis;

  before(async () => {
    chain = await connect();
    api = chain.api;
    genesis = api.genesisHash.toU8a();
  });
  after(async () => { await chain?.close(); });

  async function sheetSignature(signer, channel, nonce, balances, waiver, { wrapped = false } = {}) {
    const mine = sheetPayload(genesis, channel, nonce, balances, waiver.publicKey);
    const theirs = payload(api, await api.call.virtualBankApi.sheetPayload(channel, nonce, balances, waiver.address));
    assert.equal(u8aToHex(theirs), u8aToHex(mine), 'runtime API bytes = SPEC section 3');
    return { Sr25519: signer.sign(wrapped ? u8aWrapBytes(mine) : mine) };
  }

  async function waiverSignature(waiverKey, channel, nonce) {
    const mine = waiverPayload(genesis, channel, nonce);
    const theirs = payload(api, await api.call.virtualBankApi.waiverPayload(channel, nonce));
    assert.equal(u8aToHex(theirs), u8aToHex(mine));
    return { Sr25519: waiverKey.sign(mine) };
  }

  /** Alice opens a bank with Bob (100 / 50 units) and both deposit; returns its id. */
  async function openAndFund() {
    const { alice, bob } = chain.dev;
    const opened = await send(api, api.tx.virtualBank.open(bob.address, 100n * UNIT, 50n * UNIT, LOCK), alice);
    assert.equal(opened.error, null);
    const [event] = bankEvents(opened.events);
    assert.equal(event.name, 'Opened');
    assert.deepEqual(event.clients, [alice.address, bob.address]);
    assert.deepEqual(event.amounts, [100n * UNIT, 50n * UNIT]);
    const channel = event.channel;

    const bobDeposit = await send(api, api.tx.virtualBank.deposit(channel), bob);
    assert.deepEqual(bankEvents(bobDeposit.events), [{ name: 'Deposited', channel, who: bob.address, amount: 50n * UNIT }]);
    const twice = await send(api, api.tx.virtualBank.deposit(channel), bob);
    assert.equal(twice.error, 'virtualBank.AlreadyDeposited');
    const aliceDeposit = await send(api, api.tx.virtualBank.deposit(channel), alice);
    assert.deepEqual(bankEvents(aliceDeposit.events).map((e) => e.name), ['Deposited', 'Running']);

    const bank = (await api.query.virtualBank.channels(channel)).unwrap();
    assert.equal(bank.state.type, 'Running');
    const mine = await api.call.virtualBankApi.channelsOf(alice.address);
    assert.ok(mine.map((id) => id.toBigInt()).includes(channel));
    return channel;
  }

  test('constants and the three payloads agree with SPEC section 3', async () => {
    assert.ok(api.tx.virtualBank.open && api.tx.virtualBank.withdrawByPeer, 'calls under api.tx.virtualBank');
    const min = api.consts.virtualBank.minLockPeriod.toNumber();
    const max = api.consts.virtualBank.maxLockPeriod.toNumber();
    assert.ok(min <= LOCK && LOCK <= max);
    const waiver = chain.keyring.addFromUri('//Eve//waiver//7');
    const big = [2n ** 128n - 1n, 0n];
    for (const [channel, nonce, balances] of [[0, 0, [1n, 2n]], [2n ** 64n - 1n, 2n ** 63n, big]]) {
      await sheetSignature(chain.dev.bob, channel, nonce, balances, waiver);
      await waiverSignature(waiver, channel, nonce);
      const close = payload(api, await api.call.virtualBankApi.closePayload(channel, nonce, balances));
      assert.equal(u8aToHex(close), u8aToHex(closePayload(genesis, channel, nonce, balances)));
    }
  });

  test('bad requests are refused with the error that names them', async () => {
    const { alice } = chain.dev;
    const self = await send(api, api.tx.virtualBank.open(alice.address, UNIT, UNIT, LOCK), alice);
    assert.equal(self.error, 'virtualBank.OpenWithSelf');
    const tooLong = api.consts.virtualBank.maxLockPeriod.toNumber() + 1;
    const lock = await send(api, api.tx.virtualBank.open(chain.dev.bob.address, UNIT, UNIT, tooLong), alice);
    assert.equal(lock.error, 'virtualBank.LockPeriodOutOfRange');
    const unknown = await send(api, api.tx.virtualBank.deposit(999_999), alice);
    assert.equal(unknown.error, 'virtualBank.UnknownChannel');
  });

  test('a stale liquidation is punished by a third party with the revealed waiver key', async () => {
    const { alice, bob, charlie } = chain.dev;
    const channel = await openAndFund();
    // Two payments from Alice to Bob; Bob signs Alice's sheets as a browser wallet would
    // (`signRaw` wraps the bytes in <Bytes>...</Bytes>).
    const waiver1 = chain.keyring.addFromUri('//Alice//waiver//1');
    const stale = [80n * UNIT, 70n * UNIT];
    const signature = await sheetSignature(bob, channel, 1, stale, waiver1, { wrapped: true });
    const bobBefore = await funds(api, bob.address);
    const aliceBefore = await funds(api, alice.address);

    const liquidated = await send(api, api.tx.virtualBank.liquidate(channel, 1, stale, waiver1.address, signature), alice);
    assert.equal(liquidated.error, null);
    const [event] = bankEvents(liquidated.events);
    assert.equal(event.name, 'Liquidated');
    assert.deepEqual([event.master, event.nonce, event.balances], [alice.address, 1n, stale]);
    assert.equal((await funds(api, bob.address)).free, bobBefore.free + 70n * UNIT);

    // Sheet 2 superseded sheet 1: Alice revealed waiver 1's secret, and Charlie proves it.
    const wrong = await waiverSignature(chain.keyring.addFromUri('//Alice//waiver//2'), channel, 1);
    const refused = await send(api, api.tx.virtualBank.withdrawByPeer(channel, wrong), charlie);
    assert.equal(refused.error, 'virtualBank.BadSignature');
    const punished = await send(api, api.tx.virtualBank.withdrawByPeer(channel, await waiverSignature(waiver1, channel, 1)), charlie);
    assert.equal(punished.error, null);
    assert.deepEqual(bankEvents(punished.events), [
      { name: 'WithdrawnByPeer', channel, who: bob.address, amount: 80n * UNIT, nonce: 1n },
    ]);

    const bobAfter = await funds(api, bob.address);
    const aliceAfter = await funds(api, alice.address);
    assert.equal(bobAfter.free, bobBefore.free + 150n * UNIT);
    assert.equal(aliceAfter.held, 0n);
    const storageDeposit = aliceBefore.held - 100n * UNIT;
    assert.equal(aliceAfter.free, aliceBefore.free - liquidated.fee + storageDeposit);
    assert.ok((await api.query.virtualBank.channels(channel)).isNone);
  });

  test('a penalty needs no signer and no fee; a bad proof is refused before any block', async () => {
    const { alice, bob } = chain.dev;
    // The extensions whose explicit data `generalTransaction` writes, in this order.
    assert.deepEqual(api.registry.signedExtensions, [
      'AuthorizeCall', 'CheckNonZeroSender', 'CheckSpecVersion', 'CheckTxVersion', 'CheckGenesis',
      'CheckMortality', 'CheckNonce', 'CheckWeight', 'ChargeTransactionPayment',
    ]);
    const channel = await openAndFund();
    const waiver1 = chain.keyring.addFromUri('//Alice//waiver//feeless');
    const stale = [120n * UNIT, 30n * UNIT];
    const signature = await sheetSignature(bob, channel, 1, stale, waiver1);
    const liquidated = await send(api, api.tx.virtualBank.liquidate(channel, 1, stale, waiver1.address, signature), alice);
    assert.equal(liquidated.error, null);
    const bobBefore = await funds(api, bob.address);

    // By a watcher with no account: the wrong key's proof never reaches a block.
    const wrong = await waiverSignature(chain.keyring.addFromUri('//Alice//waiver//other'), channel, 1);
    const bad = generalTransaction(api, api.tx.virtualBank.withdrawByPeer(channel, wrong));
    await assert.rejects(submitRaw(api, bad), /bad signature/i);

    const proof = await waiverSignature(waiver1, channel, 1);
    const blockHash = await submitRaw(api, generalTransaction(api, api.tx.virtualBank.withdrawByPeer(channel, proof)));
    const events = (await api.query.system.events.at(blockHash)).map(({ event }) => event);
    assert.deepEqual(bankEvents(events), [
      { name: 'WithdrawnByPeer', channel, who: bob.address, amount: 120n * UNIT, nonce: 1n },
    ]);
    assert.ok(!events.some((e) => api.events.transactionPayment.TransactionFeePaid.is(e)), 'a fee was paid');
    assert.equal((await funds(api, bob.address)).free, bobBefore.free + 120n * UNIT);
    assert.ok((await api.query.virtualBank.channels(channel)).isNone);
  });

  test('a transaction is reported InBlock, then Finalized', async () => {
    const { dave } = chain.dev;
    const sent = await send(api, api.tx.system.remark('0x01'), dave, { finalized: true });
    assert.equal(sent.error, null);
    const inBlock = sent.statuses.indexOf('InBlock');
    assert.ok(inBlock >= 0 && inBlock < sent.statuses.indexOf('Finalized'), sent.statuses.join(' '));
  });

  test('the lock of an honest master ends by itself, with nothing sent', async () => {
    const { alice, bob, dave } = chain.dev;
    const channel = await openAndFund();
    const waiver = chain.keyring.addFromUri('//Alice//waiver//honest');
    const sheet = [70n * UNIT, 80n * UNIT];
    const signature = await sheetSignature(bob, channel, 1, sheet, waiver);
    const before = await funds(api, alice.address);
    const liquidated = await send(api, api.tx.virtualBank.liquidate(channel, 1, sheet, waiver.address, signature), alice);
    assert.equal(liquidated.error, null);
    const [event] = bankEvents(liquidated.events);
    assert.equal(event.releaseAt, event.unlockAt);

    const early = await send(api, api.tx.virtualBank.withdrawByMaster(channel), bob);
    assert.equal(early.error, 'virtualBank.StillLocked');
    // Dave's remarks make blocks (instant seal) until the lock's end.
    while ((await api.rpc.chain.getHeader()).number.toBigInt() < event.releaseAt) {
      assert.equal((await send(api, api.tx.system.remark('0x00'), dave)).error, null);
    }
    const releasedIn = await api.rpc.chain.getBlockHash(event.releaseAt);
    const released = (await api.query.system.events.at(releasedIn))
      .filter(({ phase }) => phase.isInitialization)
      .map(({ event }) => event);
    assert.deepEqual(bankEvents(released), [
      { name: 'WithdrawnByMaster', channel, who: alice.address, amount: 70n * UNIT },
    ]);
    assert.ok((await api.query.virtualBank.channels(channel)).isNone);
    const after = await funds(api, alice.address);
    assert.equal(after.held, 0n);
    assert.equal(after.free, before.free + before.held - 30n * UNIT - liquidated.fee);
  });

  test('a cooperative close pays both at once', async () => {
    const { alice, bob } = chain.dev;
    const channel = await openAndFund();
    const sheet = [30n * UNIT, 120n * UNIT];
    const payload = closePayload(genesis, channel, 5, sheet);
    const signatures = [{ Sr25519: alice.sign(payload) }, { Sr25519: bob.sign(payload) }];
    const bobBefore = await funds(api, bob.address);
    const closed = await send(api, api.tx.virtualBank.close(channel, 5, sheet, signatures), alice);
    assert.equal(closed.error, null);
    assert.deepEqual(bankEvents(closed.events), [{ name: 'Closed', channel, balances: sheet }]);
    assert.equal((await funds(api, bob.address)).free, bobBefore.free + 120n * UNIT);
  });
});
