// One bank's card: what the helper holds for it (the bank view of SPEC section 5), the
// actions on it, and its events. A card is built once and updated in place, so that an
// event never takes away what a person is typing.

import { copyButton, el, perform, preview } from './dom.js';
import { planck, short, vbk } from './units.js';

export class BankCard {
  /** `wallet` gives `rpc`, `account` and `best()` (the best block's number). */
  constructor(wallet, view) {
    this.wallet = wallet;
    this.channel = view.channel;
    this.view = view;
    this.fields = {};
    const field = (name, label, ...extra) => {
      this.fields[name] = el('span', { 'data-field': name });
      return [el('dt', {}, label), el('dd', {}, this.fields[name], ...extra)];
    };
    this.title = el('h3');
    this.htlcs = el('ul', { class: 'htlcs' });
    this.log = el('ol', { class: 'log', reversed: true });

    this.payForm = el('form', { class: 'action pay', novalidate: true },
      el('label', {}, 'Pay ', el('input', { name: 'amount', inputmode: 'decimal', placeholder: 'VBK', required: true })),
      el('p', { class: 'preview', 'aria-live': 'polite' }),
      el('button', { type: 'submit' }, 'Pay'),
      el('p', { class: 'outcome', role: 'status' }));
    this.payForm.addEventListener('submit', (event) => { event.preventDefault(); this.pay(); });
    this.updatePreview = preview(this.payForm, () => this.describePayment());

    this.outcome = el('p', { class: 'outcome', role: 'status' });
    this.confirm = el('div', { class: 'confirm', hidden: true });
    this.accept = el('button', { type: 'button', onclick: () => this.act('accept') }, 'Accept');
    this.close = el('button', { type: 'button', onclick: () => this.ask('close') }, 'Close');
    this.liquidate = el('button', { type: 'button', class: 'danger', onclick: () => this.ask('liquidate') }, 'Liquidate');
    this.buttons = el('div', { class: 'buttons' }, this.accept, this.close, this.liquidate);

    this.element = el('article', { class: 'bank', 'data-channel': String(this.channel) },
      this.title,
      el('dl', {},
        ...field('peer', 'Peer', copyButton(() => this.peer(), 'the peer’s address')),
        ...field('nonce', 'Nonce'),
        ...field('mine', 'Mine'),
        ...field('theirs', 'Theirs'),
        ...field('spendable', 'Spendable'),
        ...field('lock', 'Lock period'),
        ...field('unlock', 'Unlocks at')),
      el('h4', {}, 'Pending HTLCs'), this.htlcs,
      this.payForm, this.buttons, this.confirm, this.outcome,
      el('details', {}, el('summary', {}, 'Events of this bank'), this.log));
    this.update(view);
  }

  peer() { return this.view.clients[1 - this.view.me]; }

  mine() { return BigInt(this.view.balances[this.view.me]); }

  update(view) {
    this.view = view;
    const me = view.me;
    this.element.dataset.state = view.state;
    this.title.textContent = `Bank ${view.channel} · ${view.state}`;
    this.fields.peer.textContent = short(this.peer());
    this.fields.peer.title = this.peer();
    this.fields.nonce.textContent = String(view.nonce);
    this.fields.mine.textContent = vbk(view.balances[me]);
    this.fields.theirs.textContent = vbk(view.balances[1 - me]);
    this.fields.spendable.textContent = `${vbk(view.spendable[me])} (the bank keeps a reserve of ${vbk(view.reserve)} on each side)`;
    this.fields.lock.textContent = `${view.lock_period} blocks`;
    this.fields.unlock.textContent = view.unlock_at === null ? '—' : this.unlockText(view.unlock_at);
    this.htlcs.replaceChildren(...(view.htlcs.length ? view.htlcs.map((htlc) => el('li', {},
      `${htlc.from === me ? 'to the peer' : 'to me'}: ${vbk(htlc.amount)}, hashlock ${htlc.hashlock.slice(0, 10)}…, expires at block ${htlc.expiry}`))
      : [el('li', { class: 'hint' }, 'none')]));
    // What the node would take in this state; a liquidated bank waits for its lock to end.
    this.buttons.hidden = false;
    this.accept.hidden = view.state !== 'Offered';
    this.close.hidden = view.state === 'Liquidating' || view.state === 'Closed';
    this.liquidate.hidden = view.state !== 'Running';
    this.payForm.hidden = view.state !== 'Running';
    this.updatePreview();
  }

  unlockText(block) {
    const best = this.wallet.best();
    return best === null || block <= best ? `block ${block}` : `block ${block} (in ${block - best} blocks)`;
  }

  describePayment() {
    const text = this.payForm.elements.amount.value;
    if (!text.trim()) return `Pays the peer ${short(this.peer())} on bank ${this.channel}.`;
    const amount = planck(text);
    const after = this.mine() - amount;
    const refused = after < 0n ? 'below zero, which the node refuses'
      : after < BigInt(this.view.reserve) ? `${vbk(after)}, below the bank's reserve of ${vbk(this.view.reserve)}, which the node refuses`
      : vbk(after);
    return `Pays ${vbk(amount)} to ${short(this.peer())} on bank ${this.channel}: your share goes from `
      + `${vbk(this.mine())} to ${refused}.`;
  }

  pay() {
    const outcome = this.payForm.querySelector('.outcome');
    perform(this.payForm, outcome, 'paying…', async () => {
      const amount = planck(this.payForm.elements.amount.value);
      const paid = await this.wallet.rpc.call('rsmc_pay', [this.wallet.account, this.channel, amount.toString()]);
      this.payForm.elements.amount.value = '';
      return `Paid ${vbk(amount)}: bank ${this.channel} is at nonce ${paid.nonce}, `
        + `your share ${vbk(paid.balances[this.view.me])}.`;
    });
  }

  /** Asks before a close or a liquidation, saying what it will do. */
  ask(what) {
    const me = this.view.me;
    const balances = `${vbk(this.view.balances[me])} to you, ${vbk(this.view.balances[1 - me])} to the peer`;
    const text = what === 'close'
      ? `Close bank ${this.channel} with the peer's signature at the newest balances (${balances}); if the peer does not sign in time, the node liquidates with the newest sheet instead.`
      : `Liquidate bank ${this.channel} on chain with the newest sheet (${balances}): your share stays frozen for ${this.view.lock_period} blocks, then is yours.`;
    const yes = el('button', { type: 'button', class: what === 'liquidate' ? 'danger' : '' }, what === 'close' ? 'Yes, close it' : 'Yes, liquidate it');
    const no = el('button', { type: 'button' }, 'Cancel');
    this.confirm.replaceChildren(el('p', {}, text), yes, no);
    this.confirm.hidden = false;
    no.addEventListener('click', () => { this.confirm.hidden = true; });
    yes.addEventListener('click', () => { this.confirm.hidden = true; this.act(what); });
    yes.focus();
  }

  act(what) {
    const doing = { accept: 'accepting: handshake and our deposit…', close: 'closing…', liquidate: 'liquidating…' }[what];
    perform(this.element, this.outcome, doing, async () => {
      const answer = await this.wallet.rpc.call(`rsmc_${what}`, [this.wallet.account, this.channel]);
      if (what === 'accept') return `Accepted: bank ${this.channel} is ${answer.state}.`;
      if (what === 'liquidate') return `Liquidated at nonce ${answer.nonce}; your share unlocks at block ${answer.unlock_at}.`;
      const how = answer.how === 'close' ? 'closed cooperatively' : 'liquidated (the peer did not sign in time)';
      return `Bank ${this.channel} ${how}: ${vbk(answer.balances[this.view.me])} to you.`;
    });
  }

  /** The bank is no longer the helper's (closed, withdrawn, punished): the card stays, read-only. */
  gone() {
    this.element.dataset.state = 'Gone';
    this.title.textContent = `Bank ${this.channel} · closed`;
    this.payForm.hidden = true;
    this.buttons.hidden = true;
    this.confirm.hidden = true;
  }

  /** Adds an event's line to this bank's log. */
  logged(line) {
    this.log.prepend(el('li', {}, line));
  }
}
