// The wallet page (`vbank-node rsmc wallet`) in a real headless Chromium (Debian's `chromium`,
// driven by playwright-core, which downloads no browser), against a dev node serving Alice,
// Bob and Charlie: what a person sees and does, one view per account, each in its own
// browser context. Screenshots of each step go to `screenshots/` (or $VBANK_SCREENSHOTS).

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { WsProvider } from '@polkadot/api';
import { Keyring } from '@polkadot/keyring';
import { cryptoWaitReady } from '@polkadot/util-crypto';
import { chromium } from 'playwright-core';
import { freePort, startNode } from './chain.mjs';

const SEEN_MS = 60_000;
const SCREENSHOTS = process.env.VBANK_SCREENSHOTS || 'screenshots';

function browserPath() {
  const candidates = [process.env.CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'];
  const found = candidates.find((path) => path && existsSync(path));
  if (!found) throw new Error('no Chromium: install Debian\'s `chromium` (scripts/setup does) or set CHROMIUM');
  return found;
}

/** Starts `vbank-node rsmc wallet` on a free loopback port; resolves with its URL and `stop`. */
async function startWallet(nodeUrl) {
  const child = spawn(process.env.VBANK_NODE, ['rsmc', '--url', nodeUrl, 'wallet', '--listen', '127.0.0.1:0'],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the wallet did not start:\n${output}`)), 20_000);
    const read = (chunk) => {
      output += chunk;
      const serving = output.match(/wallet: (http:\/\/127\.0\.0\.1:\d+\/)/);
      if (serving) { clearTimeout(timer); resolve(serving[1]); }
    };
    child.stdout.on('data', read);
    child.stderr.on('data', read);
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`the wallet exited with ${code}:\n${output}`)); });
  });
  const reap = () => child.kill('SIGKILL');
  process.once('exit', reap);
  return { url, stop() { process.removeListener('exit', reap); child.kill('SIGTERM'); } };
}

describe('the wallet page in headless Chromium', { timeout: 600_000 }, () => {
  let node;
  let rpc;
  let wallet;
  let browser;
  const view = {};
  const dev = {};

  before(async () => {
    await cryptoWaitReady();
    const keyring = new Keyring({ type: 'sr25519' });
    for (const name of ['Alice', 'Bob', 'Charlie']) dev[name.toLowerCase()] = keyring.addFromUri(`//${name}`).address;
    node = await startNode(['--rsmc-account', '//Alice', '--rsmc-account', '//Bob', '--rsmc-account', '//Charlie']);
    rpc = new WsProvider(node.url);
    await rpc.isReady;
    wallet = await startWallet(node.url);
    browser = await chromium.launch({ executablePath: browserPath() });
    mkdirSync(SCREENSHOTS, { recursive: true });
    for (const name of ['alice', 'bob', 'charlie']) {
      const context = await browser.newContext({ viewport: { width: 1100, height: 1000 } });
      const page = await context.newPage();
      const problems = [];
      page.on('pageerror', (error) => problems.push(error.message));
      page.on('console', (message) => { if (message.type() === 'error') problems.push(message.text()); });
      await page.goto(`${wallet.url}?account=${dev[name]}`);
      view[name] = Object.assign(page, { problems });
      await seen(page, '#connection', 'connected');
      await page.locator(`#account option[value="${dev[name]}"]`).waitFor({ state: 'attached', timeout: SEEN_MS });
      assert.equal(await page.locator('#account').inputValue(), dev[name], `${name}'s view is ${name}'s`);
    }
  });

  after(async () => {
    await browser?.close();
    await rpc?.disconnect();
    wallet?.stop();
    await node?.stop();
  });

  /** Waits until `selector` in `page` shows `text` (a string it contains, or a RegExp). */
  async function seen(page, selector, text) {
    const locator = page.locator(selector).filter({ hasText: text });
    await locator.first().waitFor({ timeout: SEEN_MS });
    return locator.first();
  }

  const card = (page, channel) => page.locator(`article.bank[data-channel="${channel}"]`);
  const field = (page, channel, name) => card(page, channel).locator(`[data-field="${name}"]`);
  const shot = (page, name) => page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });

  /** The bank as the node holds it for `who`, not as a page shows it. */
  async function held(who, channel) {
    const banks = await rpc.send('rsmc_banks', [dev[who]]);
    return banks.find((bank) => bank.channel === channel);
  }

  /** Waits until `page` shows `channel`'s shares as `[mine, theirs]`. */
  async function showsShares(page, channel, [mine, theirs]) {
    await field(page, channel, 'mine').filter({ hasText: new RegExp(`^${mine}$`) }).waitFor({ timeout: SEEN_MS });
    await field(page, channel, 'theirs').filter({ hasText: new RegExp(`^${theirs}$`) }).waitFor({ timeout: SEEN_MS });
  }

  /**
   * Fills `page`'s open form (the peer, both amounts, the lock), checks its preview, submits
   * it, and waits until the form says the bank is `state`; resolves with the bank's id.
   */
  async function openFrom(page, { peer, mine, theirs, lock = '10' }, state) {
    const form = page.locator('#open');
    await form.locator('[name=peer]').fill(peer);
    await form.locator('[name=mine]').fill(mine);
    await form.locator('[name=theirs]').fill(theirs);
    await form.locator('[name=lock]').fill(lock);
    const said = new RegExp(`you lock ${mine} VBK, the peer locks ${theirs} VBK; .* for ${lock} blocks`);
    assert.match(await form.locator('.preview').textContent(), said);
    await form.getByRole('button', { name: 'Open the bank' }).click();
    const outcome = await seen(page, '#open .outcome', new RegExp(`Bank \\d+ is ${state}`));
    return Number((await outcome.textContent()).match(/Bank (\d+)/)[1]);
  }

  async function shares(page, channel) {
    return [await field(page, channel, 'mine').textContent(), await field(page, channel, 'theirs').textContent()];
  }

  let aliceBob;
  let bobCharlie;

  test('shows the chain and an account with no banks', async () => {
    const alice = view.alice;
    await alice.locator('#best').filter({ hasText: /^#\d+$/ }).waitFor({ timeout: SEEN_MS });
    await alice.locator('#finalized').filter({ hasText: /^#\d+$/ }).waitFor({ timeout: SEEN_MS });
    assert.ok(await alice.locator('#no-banks').isVisible());
    const options = await alice.locator('#account option').evaluateAll((all) => all.map((o) => o.value));
    assert.deepEqual(new Set(options), new Set(Object.values(dev)));
  });

  test('reads and shows amounts as the command line does', async () => {
    const read = await view.alice.evaluate(async () => {
      const { planck, vbk, parseInvoice } = await import('/units.js');
      const attempt = (text) => { try { return planck(text).toString(); } catch (error) { return error.message; } };
      return {
        good: ['20', '0.5', '.5', '0.5 VBK', '1.000000000001', '500planck', '0'].map(attempt),
        bad: ['', '1.', '1.2.3', '-1', '1e3', '1.0000000000001', '0.5planck', '5 vbk', '340282366920938463463.374607431768211456', `${2n ** 128n}planck`].map(attempt),
        shown: ['80500000000000', '1000000000000', '1', '0'].map(vbk),
        invoice: parseInvoice(`vbank:5FLSigC9HGRKVhB9FiEo4Y3koPsNmBmLJbpXg2mp1hXcS59Y?amount=5&hashlock=0x${'ab'.repeat(32)}`),
        notInvoice: parseInvoice('vbank:5FLS?amount=5&hashlock=0x12'),
      };
    });
    const unit = 10n ** 12n;
    assert.deepEqual(read.good, [20n * unit, unit / 2n, unit / 2n, unit / 2n, unit + 1n, 500n, 0n].map(String));
    for (const message of read.bad) assert.match(message, /is not an amount/);
    assert.deepEqual(read.shown, ['80.5 VBK', '1 VBK', '0.000000000001 VBK', '0 VBK']);
    assert.equal(read.invoice.payee, '5FLSigC9HGRKVhB9FiEo4Y3koPsNmBmLJbpXg2mp1hXcS59Y');
    assert.equal(read.invoice.hashlock, `0x${'ab'.repeat(32)}`);
    assert.equal(read.notInvoice, null);
  });

  test('opens a bank from the form, and the peer\'s view shows it by itself', async () => {
    const { alice, bob } = view;
    aliceBob = await openFrom(alice, { peer: dev.bob, mine: '100', theirs: '50' }, 'Running');
    await card(alice, aliceBob).and(alice.locator('[data-state=Running]')).waitFor({ timeout: SEEN_MS });
    await showsShares(alice, aliceBob, ['100 VBK', '50 VBK']);
    // Bob did nothing: his page heard the events.
    await card(bob, aliceBob).and(bob.locator('[data-state=Running]')).waitFor({ timeout: SEEN_MS });
    assert.deepEqual(await shares(bob, aliceBob), ['50 VBK', '100 VBK']);
    assert.equal(await field(bob, aliceBob, 'peer').getAttribute('title'), dev.alice);
    await seen(bob, '#log li', `bank ${aliceBob}: Running`);
    await shot(alice, '1-alice-opened');
    await shot(bob, '2-bob-sees-the-bank');
  });

  test('pays with the keyboard, and the payee\'s view updates by itself', async () => {
    const { alice, bob } = view;
    const amount = card(alice, aliceBob).locator('form.pay [name=amount]');
    await amount.focus();
    await alice.keyboard.type('10');
    assert.match(await card(alice, aliceBob).locator('form.pay .preview').textContent(), /your share goes from 100 VBK to 90 VBK/);
    await alice.keyboard.press('Enter');
    await seen(alice, `article.bank[data-channel="${aliceBob}"] form.pay .outcome`, 'Paid 10 VBK');
    await showsShares(bob, aliceBob, ['60 VBK', '90 VBK']);
    await showsShares(alice, aliceBob, ['90 VBK', '60 VBK']);
    await seen(bob, '#log li', `bank ${aliceBob}: Received`);
    await shot(bob, '3-bob-received');
  });

  test('a refused payment shows the node\'s message and changes nothing', async () => {
    const { alice, bob } = view;
    const nonce = await field(alice, aliceBob, 'nonce').textContent();
    const before = await held('alice', aliceBob);
    const pay = card(alice, aliceBob).locator('form.pay');
    // The bank keeps a reserve of 1% of its 150 VBK on each side: Alice can spend 88.5 VBK.
    assert.match(await field(alice, aliceBob, 'spendable').textContent(), /^88\.5 VBK \(the bank keeps a reserve of 1\.5 VBK on each side\)$/);
    await pay.locator('[name=amount]').fill('89');
    assert.match(await pay.locator('.preview').textContent(), /to 1 VBK, below the bank's reserve of 1\.5 VBK, which the node refuses/);
    await pay.locator('[name=amount]').fill('1000');
    assert.match(await pay.locator('.preview').textContent(), /below zero/);
    await pay.getByRole('button', { name: 'Pay' }).click();
    const error = await seen(alice, `article.bank[data-channel="${aliceBob}"] form.pay .outcome.error`, /cannot pay/);
    assert.match(await error.textContent(), /^cannot pay 1000000000000000: only 90000000000000 is ours in this bank/);
    assert.equal(await field(alice, aliceBob, 'nonce').textContent(), nonce);
    assert.deepEqual(await shares(alice, aliceBob), ['90 VBK', '60 VBK']);
    assert.deepEqual(await shares(bob, aliceBob), ['60 VBK', '90 VBK']);
    assert.deepEqual(await held('alice', aliceBob), before, 'the node changed nothing');
    await shot(alice, '4-alice-refused');
  });

  test('an invoice made as Charlie is paid from Alice\'s view through Bob', async () => {
    const { alice, bob, charlie } = view;
    bobCharlie = await openFrom(bob, { peer: dev.charlie, mine: '50', theirs: '0' }, 'Running');
    await card(charlie, bobCharlie).and(charlie.locator('[data-state=Running]')).waitFor({ timeout: SEEN_MS });

    // Two invoices, one after the other: the second replaces the first everywhere.
    const invoice = charlie.locator('#invoice');
    const shown = [];
    for (const amount of ['4', '5']) {
      await invoice.locator('[name=amount]').fill(amount);
      await invoice.getByRole('button', { name: 'Make an invoice' }).click();
      await seen(charlie, '#invoice .outcome', `Invoice for ${amount} VBK made`);
      const text = await invoice.locator('.invoice-text').textContent();
      assert.match(text, new RegExp(`^vbank:${dev.charlie}\\?amount=${amount}000000000000&hashlock=0x[0-9a-f]{64}$`));
      const qr = await invoice.locator('img.qr').getAttribute('src');
      assert.equal(qr, `/qr.svg?text=${encodeURIComponent(text)}`);
      shown.push(text);
    }
    assert.notEqual(shown[0].split('hashlock=')[1], shown[1].split('hashlock=')[1], 'a fresh hashlock each');
    const text = shown[1];
    await charlie.waitForFunction(() => {
      const image = document.querySelector('#invoice img.qr');
      return image.complete && image.naturalWidth > 0;
    }, null, { timeout: SEEN_MS });
    await shot(charlie, '5-charlie-invoice');

    const send = alice.locator('#send');
    await send.locator('[name=invoice]').fill(text);
    assert.match(await send.locator('.preview').textContent(), /Pays 5 VBK to /);
    await send.getByRole('button', { name: 'Pay through the network' }).click();
    const sent = await seen(alice, '#send .outcome', /Paid 5 VBK/);
    assert.match(await sent.textContent(), new RegExp(`through banks ${aliceBob} → ${bobCharlie}, fees 0 VBK`));
    await showsShares(charlie, bobCharlie, ['5 VBK', '45 VBK']);
    await showsShares(alice, aliceBob, ['85 VBK', '65 VBK']);
    await seen(alice, `article.bank[data-channel="${aliceBob}"] .htlcs li`, 'none');
    await shot(alice, '6-alice-sent');
    await shot(charlie, '7-charlie-paid');
  });

  test('closes a bank after saying what it will do', async () => {
    const { alice, bob } = view;
    await card(alice, aliceBob).getByRole('button', { name: 'Close' }).click();
    assert.match(await card(alice, aliceBob).locator('.confirm').textContent(), /newest balances \(85 VBK to you, 65 VBK to the peer\)/);
    // The confirmation has the focus: Enter confirms.
    await alice.keyboard.press('Enter');
    await seen(alice, `article.bank[data-channel="${aliceBob}"] > .outcome`, /closed cooperatively: 85 VBK to you/);
    await card(alice, aliceBob).and(alice.locator('[data-state=Gone]')).waitFor({ timeout: SEEN_MS });
    await card(bob, aliceBob).and(bob.locator('[data-state=Gone]')).waitFor({ timeout: SEEN_MS });
    await seen(bob, '#log li', `bank ${aliceBob}: Closed`);
    await shot(alice, '8-alice-closed');
  });

  test('a bank outside the peer\'s policy is accepted from its view, then liquidated', async () => {
    const { alice, bob } = view;
    // Above the dev node's inbound limit (1,000 VBK): Bob's helper waits for him.
    const offered = await openFrom(alice, { peer: dev.bob, mine: '10', theirs: '1500' }, 'Offered');
    await card(bob, offered).and(bob.locator('[data-state=Offered]')).waitFor({ timeout: SEEN_MS });
    assert.ok(await card(bob, offered).getByRole('button', { name: 'Liquidate' }).isHidden());
    await card(bob, offered).getByRole('button', { name: 'Accept' }).click();
    await seen(bob, `article.bank[data-channel="${offered}"] > .outcome`, `Accepted: bank ${offered} is Running`);
    await card(alice, offered).and(alice.locator('[data-state=Running]')).waitFor({ timeout: SEEN_MS });
    await showsShares(alice, offered, ['10 VBK', '1500 VBK']);

    await card(bob, offered).getByRole('button', { name: 'Liquidate' }).click();
    assert.match(await card(bob, offered).locator('.confirm').textContent(), /your share stays frozen for 10 blocks/);
    await card(bob, offered).getByRole('button', { name: 'Yes, liquidate it' }).click();
    const liquidated = await seen(bob, `article.bank[data-channel="${offered}"] > .outcome`, /Liquidated at nonce 0; your share unlocks at block \d+/);
    const unlock = (await liquidated.textContent()).match(/block (\d+)/)[1];
    // Both views show it liquidated once the chain's view of it is final, by themselves.
    for (const page of [alice, bob]) {
      await card(page, offered).and(page.locator('[data-state=Liquidating]')).waitFor({ timeout: SEEN_MS });
      await field(page, offered, 'unlock').filter({ hasText: `block ${unlock}` }).waitFor({ timeout: SEEN_MS });
      assert.ok(await card(page, offered).locator('form.pay').isHidden(), 'no payment on a liquidated bank');
    }
    await shot(bob, '9-bob-liquidated');
  });

  test('fits a phone\'s screen and logged no script error', async () => {
    const { alice } = view;
    await alice.setViewportSize({ width: 375, height: 800 });
    const fits = await alice.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);
    assert.ok(fits, 'no sideways scrolling at 375 px');
    await shot(alice, '10-alice-on-a-phone');
    for (const [name, page] of Object.entries(view)) assert.deepEqual(page.problems, [], `${name}'s page`);
  });
});

describe('the wallet page before its node is up', { timeout: 300_000 }, () => {
  test('waits, retrying, and shows the accounts once the node answers', async () => {
    const port = await freePort();
    const wallet = await startWallet(`ws://127.0.0.1:${port}`);
    const browser = await chromium.launch({ executablePath: browserPath() });
    let node;
    try {
      const page = await browser.newPage();
      await page.goto(wallet.url);
      await page.locator('#connection[data-state=disconnected]').waitFor({ timeout: SEEN_MS });
      // Several attempts fail (after 1, 2 and 4 s) before the node comes.
      await new Promise((resolve) => { setTimeout(resolve, 4_000); });
      node = await startNode([], { rpcPort: port });
      assert.equal(node.url, `ws://127.0.0.1:${port}`, 'the node took the port the wallet names');
      await page.locator('#connection[data-state=connected]').waitFor({ timeout: SEEN_MS });
      await page.locator('#account option').nth(1).waitFor({ state: 'attached', timeout: SEEN_MS });
      assert.equal(await page.locator('#account option').count(), 2, '--dev serves Alice and Bob');
      assert.ok(await page.locator('#problem').isHidden());
    } finally {
      await browser.close();
      wallet.stop();
      await node?.stop();
    }
  });
});
