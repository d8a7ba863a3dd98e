// Messages this tab has written but the server has not acknowledged yet. Kept in
// sessionStorage so that a reload does not lose them; each keeps its client_id, so a
// resend after a reconnect or a reload is never stored twice. The items change only
// through the methods below: what they hand out are frozen copies.

const KEY = "chat.outbox";

/**
 * @typedef {object} OutboxItem
 * @property {string} client_id
 * @property {string} body
 * @property {number} created Date.now() when written
 * @property {"pending" | "failed"} state
 * @property {string | null} reason why it failed
 * @property {boolean} inflight sent on the current socket, not acknowledged yet
 * @property {number} retryAt Date.now() before which it must not be sent again (0: now)
 * @property {number} attempts refusals in a row that asked for a later resend
 */

/**
 * @typedef {Pick<Storage, "getItem" | "setItem">} StorageLike
 */

/**
 * A random UUID; crypto.randomUUID only exists in secure contexts (https, localhost).
 * @returns {string}
 */
export function newClientId() {
  if (typeof crypto.randomUUID === "function") return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * @param {unknown} value
 * @returns {value is {client_id: string, body: string, created?: unknown, state?: unknown, reason?: unknown}}
 */
function isSaved(value) {
  if (!value || typeof value !== "object") return false;
  const item = /** @type {{client_id?: unknown, body?: unknown}} */ (value);
  return typeof item.client_id === "string" && typeof item.body === "string";
}

export class Outbox {
  /**
   * @param {StorageLike} storage where the items survive a reload (sessionStorage)
   * @param {{newId?: () => string, now?: () => number}} [options]
   */
  constructor(storage, { newId = newClientId, now = Date.now } = {}) {
    this.storage = storage;
    this.newId = newId;
    this.now = now;
    /** @type {OutboxItem[]} */
    this.list = [];
    try {
      const saved = JSON.parse(storage.getItem(KEY) || "[]");
      if (Array.isArray(saved)) {
        this.list = saved.filter(isSaved).map((i) => ({
          client_id: i.client_id,
          body: i.body,
          created: typeof i.created === "number" ? i.created : 0,
          state: i.state === "failed" ? "failed" : "pending",
          reason: typeof i.reason === "string" ? i.reason : null,
          // Runtime-only fields: sent on the current socket, or waiting until a time.
          inflight: false,
          retryAt: 0,
          attempts: 0,
        }));
      }
    } catch {
      this.list = [];
    }
  }

  /** @private */
  save() {
    const plain = this.list.map(({ client_id, body, created, state, reason }) => ({
      client_id,
      body,
      created,
      state,
      reason,
    }));
    try {
      this.storage.setItem(KEY, JSON.stringify(plain));
    } catch {
      // Storage full or disabled: the outbox still works for this page's lifetime.
    }
  }

  /**
   * @private
   * @param {string} clientId
   */
  find(clientId) {
    return this.list.find((i) => i.client_id === clientId);
  }

  /**
   * Every item, oldest first (copies).
   * @returns {Readonly<OutboxItem>[]}
   */
  get items() {
    return this.list.map((i) => Object.freeze({ ...i }));
  }

  /** How many items wait (pending or failed). */
  get size() {
    return this.list.length;
  }

  /**
   * Keep a new message as pending; returns its item.
   * @param {string} body
   * @returns {Readonly<OutboxItem>}
   */
  add(body) {
    /** @type {OutboxItem} */
    const item = {
      client_id: this.newId(),
      body,
      created: this.now(),
      state: "pending",
      reason: null,
      inflight: false,
      retryAt: 0,
      attempts: 0,
    };
    this.list.push(item);
    this.save();
    return Object.freeze({ ...item });
  }

  /**
   * The item with this client_id (a copy), or undefined.
   * @param {string} clientId
   * @returns {Readonly<OutboxItem> | undefined}
   */
  get(clientId) {
    const item = this.find(clientId);
    return item && Object.freeze({ ...item });
  }

  /**
   * Forget an item (acknowledged, or discarded); true if it was there.
   * @param {string} clientId
   */
  remove(clientId) {
    const before = this.list.length;
    this.list = this.list.filter((i) => i.client_id !== clientId);
    if (this.list.length === before) return false;
    this.save();
    return true;
  }

  /**
   * Refused for what it says: failed with a reason, until retried or discarded.
   * @param {string} clientId
   * @param {string} reason
   */
  fail(clientId, reason) {
    const item = this.find(clientId);
    if (!item) return;
    Object.assign(item, { state: "failed", reason, inflight: false, retryAt: 0 });
    this.save();
  }

  /**
   * The person asked to send a failed item again.
   * @param {string} clientId
   */
  retry(clientId) {
    const item = this.find(clientId);
    if (!item) return;
    Object.assign(item, { state: "pending", reason: null, inflight: false, retryAt: 0, attempts: 0 });
    this.save();
  }

  /**
   * Sent on the current socket: not sent again on it.
   * @param {string} clientId
   */
  markInflight(clientId) {
    const item = this.find(clientId);
    if (item) item.inflight = true;
  }

  /**
   * Refused for now (rate limited, server unavailable): still pending, not before `until`.
   * @param {string} clientId
   * @param {number} until a Date.now() timestamp
   */
  postpone(clientId, until) {
    const item = this.find(clientId);
    if (!item) return;
    item.inflight = false;
    item.attempts += 1;
    item.retryAt = until;
  }

  /** After a reconnect everything unacknowledged goes out again. */
  resetInflight() {
    for (const item of this.list) item.inflight = false;
  }

  /**
   * The items to send now, in order: pending and not in flight, up to the first one that
   * must wait (later ones wait for it, to keep the order). `wait` is how long, or 0.
   * @param {number} now
   * @returns {{ready: Readonly<OutboxItem>[], wait: number}}
   */
  due(now) {
    /** @type {Readonly<OutboxItem>[]} */
    const ready = [];
    for (const item of this.list) {
      if (item.state !== "pending" || item.inflight) continue;
      if (item.retryAt > now) return { ready, wait: item.retryAt - now };
      ready.push(Object.freeze({ ...item }));
    }
    return { ready, wait: 0 };
  }
}
