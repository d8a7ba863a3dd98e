// The outbox on the page: pending and failed messages under the log, and sending them in
// order, paced under the server's rate limit, again after a reconnect or a refusal for now.

import { rateWindowWait, retryDelay } from "./pacing.js";
import { el, messageItem, regroup } from "./render.js";

const FAILED_BUBBLE = [
  "bg-red-50",
  "text-red-950",
  "ring-1",
  "ring-red-300",
  "dark:bg-red-500/10",
  "dark:text-red-100",
  "dark:ring-red-500/40",
];
const FAILED_LINE = ["text-red-700", "dark:text-red-300", "flex", "flex-wrap", "items-center", "justify-end", "gap-x-2"];
const BUTTON =
  "rounded-lg px-2 py-0.5 font-semibold text-indigo-700 hover:bg-indigo-50 focus-visible:outline-2 focus-visible:outline-offset-1 focus-visible:outline-indigo-500 dark:text-indigo-300 dark:hover:bg-indigo-400/10";

/**
 * @typedef {import("./outbox.js").OutboxItem} OutboxItem
 */

/**
 * @param {object} deps
 * @param {import("./dom.js").Ui} deps.ui
 * @param {import("./store.js").Store} deps.store
 * @param {import("./outbox.js").Outbox} deps.outbox
 * @param {{readonly ready: boolean, send: (frame: object) => boolean}} deps.connection
 * @param {import("./i18n.js").Translate} deps.t
 * @param {import("./render.js").Clock} deps.clock
 * @param {() => void} deps.onChange after an item was shown or taken away
 */
export function createSending({ ui, store, outbox, connection, t, clock, onChange }) {
  /** @type {Map<string, HTMLElement>} client_id -> its item in the outbox list */
  const shown = new Map();
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let flushTimer;

  /** @param {Readonly<OutboxItem>} item */
  function pendingLabel(item) {
    return connection.ready && !(item.retryAt > Date.now()) ? t("pending") : t("retrying");
  }

  /** Update "Sending…" / "Waiting to send…" in place (no re-announcement of the message). */
  function refreshPendingLabels() {
    for (const item of outbox.items) {
      if (item.state !== "pending") continue;
      const line = shown.get(item.client_id)?.querySelector(".state");
      if (line) line.textContent = pendingLabel(item);
    }
  }

  /**
   * Draw (or take away) the item with this client_id as the outbox has it now.
   * @param {string} clientId
   */
  function render(clientId) {
    const li = shown.get(clientId);
    const item = outbox.get(clientId);
    if (!item) {
      li?.remove();
      shown.delete(clientId);
      return;
    }
    const fresh = messageItem({
      message: { nick: store.nick(), body: item.body, sent_at: null, client_id: item.client_id },
      own: true,
      youLabel: t("you"),
      clock,
    });
    fresh.dataset.state = item.state;
    const bubble = fresh.querySelector(".body")?.parentElement;
    const line = fresh.querySelector(".state");
    if (!bubble || !line) return;
    if (item.state === "pending") {
      bubble.classList.add("opacity-60");
      line.textContent = pendingLabel(item);
    } else {
      bubble.classList.remove("bg-indigo-600", "text-white");
      bubble.classList.add(...FAILED_BUBBLE);
      line.classList.remove("text-slate-500", "dark:text-slate-400");
      line.classList.add(...FAILED_LINE);
      line.append(
        el("span", { text: t("failed", { reason: item.reason || t("errors.unknown") }) }),
        el("button", {
          cls: `retry ${BUTTON}`,
          text: t("retry"),
          attrs: { type: "button" },
          props: {
            onclick: () => {
              outbox.retry(clientId);
              render(clientId);
              flush();
              ui.body.focus();
            },
          },
        }),
        el("button", {
          cls: `discard ${BUTTON}`,
          text: t("discard"),
          attrs: { type: "button" },
          props: {
            onclick: () => {
              outbox.remove(clientId);
              render(clientId);
              onChange();
              ui.body.focus();
            },
          },
        }),
      );
    }
    if (li) li.replaceWith(fresh);
    else ui.outbox.append(fresh);
    shown.set(clientId, fresh);
    regroup(fresh);
  }

  /** @param {number} delay */
  function scheduleFlush(delay) {
    clearTimeout(flushTimer);
    flushTimer = setTimeout(() => {
      flushTimer = undefined;
      flush();
    }, Math.max(0, delay));
  }

  function sendDue() {
    const { ready, wait } = outbox.due(Date.now());
    for (const item of ready) {
      const limits = store.limits();
      const pace = rateWindowWait([...store.sendTimes()], { rate: limits.rate, period: limits.rate_period, now: Date.now() });
      store.keepSendTimes(pace.recent);
      if (pace.wait > 0) {
        scheduleFlush(pace.wait);
        return;
      }
      if (!connection.send({ type: "message", body: item.body, client_id: item.client_id })) return;
      outbox.markInflight(item.client_id);
      store.recordSend(Date.now());
    }
    // Keep the order: later messages wait for this one.
    if (wait > 0) scheduleFlush(wait);
  }

  /** Send pending messages in order, pacing them under the server's rate limit. */
  function flush() {
    if (!connection.ready) return;
    try {
      sendDue();
    } finally {
      refreshPendingLabels();
    }
  }

  /**
   * A new message from the composer: kept, shown as pending, sent when it can be.
   * @param {string} body
   */
  function add(body) {
    const item = outbox.add(body);
    store.addOwnClientId(item.client_id);
    render(item.client_id);
    flush();
  }

  /**
   * The server stored it (its echo arrived): off the outbox list. True if it was here.
   * @param {string | null | undefined} clientId
   */
  function acknowledge(clientId) {
    if (clientId == null || !outbox.remove(clientId)) return false;
    render(clientId);
    return true;
  }

  /**
   * Refused for what it says: failed, with the reason, until retried or discarded.
   * @param {string} clientId
   * @param {string} reason
   */
  function fail(clientId, reason) {
    outbox.fail(clientId, reason);
    render(clientId);
  }

  /**
   * Refused for now (rate limited, the server could not store it): still pending, sent
   * again later; `retryAfter` (seconds) when the server said how long.
   * @param {string} clientId
   * @param {unknown} [retryAfter]
   */
  function postpone(clientId, retryAfter) {
    const item = outbox.get(clientId);
    if (!item) return;
    const wait = retryDelay({ retryAfter, attempts: item.attempts + 1 });
    outbox.postpone(clientId, Date.now() + wait);
    refreshPendingLabels();
    scheduleFlush(wait);
  }

  /** A new socket: everything unacknowledged goes out again. */
  function reopen() {
    outbox.resetInflight();
    flush();
  }

  /** Show what a reload kept. */
  function restore() {
    for (const item of outbox.items) render(item.client_id);
  }

  return { add, acknowledge, fail, postpone, reopen, restore, refreshPendingLabels };
}
