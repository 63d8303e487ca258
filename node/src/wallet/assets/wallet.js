// The wallet page: one account's banks, live from the node's `rsmc_subscribeEvents`, the
// chain's best and finalized blocks, and the actions a person takes (SPEC section 5's
// `rsmc_` methods). Everything goes to the node over one WebSocket (rpc.js).

import { BankCard } from './bank.js';
import { copyButton, el, perform, preview } from './dom.js';
import { Rpc } from './rpc.js';
import { invoiceText, parseInvoice, planck, short, vbk } from './units.js';

const $ = (selector) => document.querySelector(selector);

class Wallet {
  constructor(url) {
    this.cards = new Map(); // channel -> BankCard
    this.lines = new Map(); // channel -> its event lines, oldest first, before its card exists
    this.heads = { best: null, finalized: null };
    this.rpc = new Rpc(url, (status) => this.connection(status));
    this.refreshing = null;
    this.refreshAgain = false;
    this.followChain();
    this.wireForms();
  }

  best() { return this.heads.best; }

  connection(status) {
    const text = { connecting: 'connecting to the node…', connected: 'connected', disconnected: 'the node is unreachable; retrying…' }[status];
    $('#connection').textContent = text;
    $('#connection').dataset.state = status;
    if (status !== 'connected') return;
    if (this.account) this.refresh();
    else this.loadAccounts();
  }

  /** Asks the node which accounts it serves, once connected (again, after a failure). */
  async loadAccounts() {
    if (this.loading) return;
    this.loading = true;
    try {
      this.problem(null);
      await this.choose(await this.rpc.call('rsmc_accounts'));
    } catch (error) {
      this.problem(`The node refused to list its accounts: ${error.message}`);
    } finally {
      this.loading = false;
    }
  }

  followChain() {
    for (const [which, method] of [['best', 'NewHeads'], ['finalized', 'FinalizedHeads']]) {
      this.rpc.subscribe(`chain_subscribe${method}`, [], `chain_unsubscribe${method}`, (header) => {
        if (!header) return;
        this.heads[which] = Number.parseInt(header.number, 16);
        $(`#${which}`).textContent = `#${this.heads[which]}`;
        // A bank's state and unlock block are the finalized chain's: read them anew.
        if (which === 'finalized') this.refresh();
      });
    }
  }

  /** Shows `account`'s banks and follows its events. */
  async choose(accounts) {
    if (this.account) return;
    const select = $('#account');
    const wanted = new URLSearchParams(location.search).get('account');
    select.replaceChildren(...accounts.map((account) => el('option', { value: account }, short(account))));
    if (!accounts.length) {
      this.problem('The node serves no account: start it with --rsmc-account (or --dev).');
      return;
    }
    select.value = accounts.includes(wanted) ? wanted : accounts[0];
    select.addEventListener('change', () => {
      const url = new URL(location.href);
      url.searchParams.set('account', select.value);
      location.assign(url);
    });
    this.account = select.value;
    document.title = `vbank wallet · ${short(this.account)}`;
    this.rpc.subscribe('rsmc_subscribeEvents', [this.account], 'rsmc_unsubscribeEvents',
      (event, error) => (error ? this.problem(error.message) : this.heard(event)));
    await this.refresh();
  }

  /** Shows what stops the page (null: nothing). */
  problem(message) {
    $('#problem').textContent = message ?? '';
    $('#problem').hidden = !message;
  }

  heard(event) {
    const balances = event.balances.map(vbk).join(' / ');
    const hashlock = event.hashlock ? `, hashlock ${event.hashlock.slice(0, 10)}…` : '';
    const line = `${new Date().toLocaleTimeString()} bank ${event.channel}: ${event.kind} at nonce ${event.nonce} (${balances}${hashlock})`;
    $('#log').prepend(el('li', { 'data-kind': event.kind }, line));
    const card = this.cards.get(event.channel);
    if (card) card.logged(line);
    else this.lines.set(event.channel, [...(this.lines.get(event.channel) ?? []), line]);
    this.refresh();
  }

  /** Reads the account's banks anew; one read at a time, and one more if asked meanwhile. */
  async refresh() {
    if (!this.account) return;
    if (this.refreshing) {
      this.refreshAgain = true;
      return;
    }
    this.refreshing = this.rpc.call('rsmc_banks', [this.account]).then((views) => this.show(views));
    try {
      await this.refreshing;
    } catch (error) {
      this.problem(`Cannot read the banks: ${error.message}`);
    } finally {
      this.refreshing = null;
    }
    if (this.refreshAgain) {
      this.refreshAgain = false;
      await this.refresh();
    }
  }

  show(views) {
    const held = new Set();
    for (const view of views) {
      held.add(view.channel);
      let card = this.cards.get(view.channel);
      if (card) card.update(view);
      else {
        card = new BankCard(this, view);
        for (const line of this.lines.get(view.channel) ?? []) card.logged(line);
        this.lines.delete(view.channel);
        this.cards.set(view.channel, card);
        $('#banks').prepend(card.element);
      }
    }
    for (const [channel, card] of this.cards) if (!held.has(channel)) card.gone();
    $('#no-banks').hidden = this.cards.size > 0;
  }

  wireForms() {
    const open = $('#open');
    const amounts = () => [planck(open.elements.mine.value || '0'), planck(open.elements.theirs.value || '0')];
    const lock = () => {
      const text = open.elements.lock.value.trim();
      if (!/^\d{1,10}$/.test(text) || Number(text) > 2 ** 32 - 1) throw new Error(`"${text}" is not a number of blocks`);
      return Number(text);
    };
    const describeOpen = preview(open, () => {
      const peer = open.elements.peer.value.trim();
      if (!peer) return 'Opens a bank with a peer: give its account.';
      const [mine, theirs] = amounts();
      return `Opens a bank between you and ${short(peer)}: you lock ${vbk(mine)}, the peer locks ${vbk(theirs)}; `
        + `a liquidation freezes the liquidator's share for ${lock()} blocks.`;
    });
    this.submit(open, 'opening: on chain, then the handshake and both deposits…', async () => {
      const [mine, theirs] = amounts();
      const url = open.elements.url.value.trim();
      const params = [this.account, open.elements.peer.value.trim(), mine.toString(), theirs.toString(),
        lock(), ...(url ? [url] : [])];
      const bank = await this.rpc.call('rsmc_open', params);
      open.reset();
      describeOpen();
      return `Bank ${bank.channel} is ${bank.state}.`;
    });

    const invoice = $('#invoice');
    preview(invoice, () => {
      const text = invoice.elements.amount.value;
      return text.trim()
        ? `Asks to be paid ${vbk(planck(text))}: the node keeps a secret and reveals it only once paid in full.`
        : 'Asks to be paid an amount, through any bank of the network.';
    });
    const invoiceCode = invoice.querySelector('.invoice-text');
    invoiceCode.after(copyButton(() => invoiceCode.textContent, 'the invoice'));
    this.submit(invoice, 'making the invoice…', async () => {
      const amount = planck(invoice.elements.amount.value);
      const made = await this.rpc.call('rsmc_invoice', [this.account, amount.toString()]);
      const text = invoiceText({ payee: this.account, amount: made.amount, hashlock: made.hashlock });
      const shown = invoice.querySelector('.invoice');
      shown.querySelector('.invoice-text').textContent = text;
      shown.querySelector('.qr').src = `/qr.svg?text=${encodeURIComponent(text)}`;
      shown.hidden = false;
      return `Invoice for ${vbk(made.amount)} made.`;
    });

    const send = $('#send');
    const parsed = () => {
      const found = parseInvoice(send.elements.invoice.value);
      if (!found) throw new Error('An invoice looks like vbank:<payee>?amount=<planck>&hashlock=0x<64 hex digits>.');
      return found;
    };
    preview(send, () => {
      if (!send.elements.invoice.value.trim()) return 'Pays an invoice through the banks on chain, directly or through others.';
      const { payee, amount, hashlock } = parsed();
      return `Pays ${vbk(amount)} to ${short(payee)} (hashlock ${hashlock.slice(0, 10)}…) through the banks on chain; `
        + 'the route and its fees show once the payee has been paid.';
    });
    this.submit(send, 'paying: the HTLCs go out hop by hop…', async () => {
      const { payee, amount, hashlock } = parsed();
      const sent = await this.rpc.call('rsmc_send', [this.account, payee, amount.toString(), hashlock]);
      return `Paid ${vbk(sent.amount)} to ${short(payee)} through banks ${sent.route.join(' → ')}, `
        + `fees ${vbk(sent.fees)}; the payee's secret ${sent.preimage.slice(0, 10)}… proves it.`;
    });
  }

  submit(form, doing, action) {
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      perform(form, form.querySelector('.outcome'), doing, action);
    });
  }
}

async function start() {
  const config = await (await fetch('/config.json')).json();
  // It lists the node's accounts once connected.
  return new Wallet(config.url);
}

start();
