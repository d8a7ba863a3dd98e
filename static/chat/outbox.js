// Messages this tab has written but the server has not acknowledged yet. Kept in
// sessionStorage so that a reload does not lose them; each keeps its client_id, so a
// resend after a reconnect or a reload is never stored twice.

const KEY = "chat.outbox";

/** A random UUID; crypto.randomUUID only exists in secure contexts (https, localhost). */
export function newClientId() {
  if (typeof crypto.randomUUID === "function") return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export class Outbox {
  constructor(storage = window.sessionStorage) {
    this.storage = storage;
    /** @type {{client_id: string, body: string, created: number, state: "pending"|"failed", reason: string|null}[]} */
    this.items = [];
    try {
      const saved = JSON.parse(storage.getItem(KEY) || "[]");
      if (Array.isArray(saved)) {
        this.items = saved.filter((i) => i && typeof i.client_id === "string" && typeof i.body === "string");
      }
    } catch {
      this.items = [];
    }
    // Runtime-only fields: sent on the current socket, or waiting until a time.
    for (const item of this.items) {
      item.inflight = false;
      item.retryAt = 0;
      item.attempts = 0;
    }
  }

  save() {
    const plain = this.items.map(({ client_id, body, created, state, reason }) => ({
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

  add(body) {
    const item = {
      client_id: newClientId(),
      body,
      created: Date.now(),
      state: "pending",
      reason: null,
      inflight: false,
      retryAt: 0,
      attempts: 0,
    };
    this.items.push(item);
    this.save();
    return item;
  }

  get(clientId) {
    return this.items.find((i) => i.client_id === clientId);
  }

  remove(clientId) {
    const before = this.items.length;
    this.items = this.items.filter((i) => i.client_id !== clientId);
    if (this.items.length !== before) this.save();
  }

  fail(clientId, reason) {
    const item = this.get(clientId);
    if (!item) return;
    Object.assign(item, { state: "failed", reason, inflight: false, retryAt: 0 });
    this.save();
  }

  retry(clientId) {
    const item = this.get(clientId);
    if (!item) return;
    Object.assign(item, { state: "pending", reason: null, inflight: false, retryAt: 0, attempts: 0 });
    this.save();
  }

  /** After a reconnect everything unacknowledged goes out again. */
  resetInflight() {
    for (const item of this.items) item.inflight = false;
  }
}
