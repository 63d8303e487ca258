// A JSON-RPC 2.0 client over one WebSocket, as the node serves it: calls, and
// subscriptions whose notifications carry `{ subscription, result }`. It reconnects by
// itself (after 1, 2, 4 … up to 10 s) and subscribes again; `onStatus` hears `connecting`,
// `connected` and `disconnected`.

export class Rpc {
  constructor(url, onStatus = () => {}) {
    this.url = url;
    this.onStatus = onStatus;
    this.nextId = 1;
    this.pending = new Map(); // id -> { resolve, reject }
    this.subscriptions = new Set(); // { method, params, unsubscribe, notify, id }
    this.delay = 1000;
    this.waitForOpen();
    this.open();
  }

  open() {
    this.onStatus('connecting');
    const socket = new WebSocket(this.url);
    this.socket = socket;
    socket.addEventListener('open', () => {
      this.delay = 1000;
      this.onStatus('connected');
      this.opened();
      for (const subscription of this.subscriptions) this.start(subscription);
    });
    socket.addEventListener('message', (message) => this.receive(JSON.parse(message.data)));
    socket.addEventListener('close', () => {
      this.onStatus('disconnected');
      for (const { reject } of this.pending.values()) {
        reject(new Error('the connection to the node was lost before it answered: this may or '
          + 'may not have happened; look at the bank once the page is connected again'));
      }
      this.pending.clear();
      for (const subscription of this.subscriptions) subscription.id = null;
      this.waitForOpen();
      setTimeout(() => this.open(), this.delay);
      this.delay = Math.min(this.delay * 2, 10_000);
    });
  }

  /**
   * `this.whenOpen` resolves when the next connection opens: one promise for every call that
   * waits, however many attempts fail meanwhile.
   */
  waitForOpen() {
    if (this.whenOpen && !this.isOpen) return;
    this.isOpen = false;
    this.whenOpen = new Promise((resolve) => {
      this.opened = () => { this.isOpen = true; resolve(); };
    });
  }

  receive(message) {
    if (message.id !== undefined && this.pending.has(message.id)) {
      const { resolve, reject } = this.pending.get(message.id);
      this.pending.delete(message.id);
      if (message.error) reject(new Error(message.error.message));
      else resolve(message.result);
      return;
    }
    const params = message.params;
    if (!params) return;
    for (const subscription of this.subscriptions) {
      if (subscription.id === params.subscription) subscription.notify(params.result);
    }
  }

  /** Calls `method` with `params`; rejects with the node's own error message. */
  async call(method, params = []) {
    while (this.socket.readyState !== WebSocket.OPEN) await this.whenOpen;
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.socket.send(JSON.stringify({ jsonrpc: '2.0', id, method, params }));
    });
  }

  /** Subscribes until the returned function is called, again after each reconnection. */
  subscribe(method, params, unsubscribe, notify) {
    const subscription = { method, params, unsubscribe, notify, id: null };
    this.subscriptions.add(subscription);
    if (this.socket.readyState === WebSocket.OPEN) this.start(subscription);
    return () => {
      this.subscriptions.delete(subscription);
      if (subscription.id !== null) {
        this.call(unsubscribe, [subscription.id]).catch(() => {});
      }
    };
  }

  start(subscription) {
    this.call(subscription.method, subscription.params).then(
      (id) => {
        if (this.subscriptions.has(subscription)) subscription.id = id;
        else this.call(subscription.unsubscribe, [id]).catch(() => {});
      },
      (error) => subscription.notify(null, error),
    );
  }
}
