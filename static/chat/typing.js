// "Bia is typing…": who is typing (kept in the store), shown under the log for a moment.

import { el } from "./render.js";

const TYPING_SHOWN = 4000;

/**
 * The line for these nicknames, or "" for nobody.
 * @param {string[]} nicks
 * @param {import("./i18n.js").Translate} t
 */
export function typingText(nicks, t) {
  if (!nicks.length) return "";
  if (nicks.length === 1) return t("typingOne", { nick: nicks[0] });
  if (nicks.length === 2) return t("typingTwo", { first: nicks[0], second: nicks[1] });
  return t("typingMany");
}

/**
 * @param {object} deps
 * @param {import("./dom.js").Ui} deps.ui
 * @param {import("./store.js").Store} deps.store
 * @param {import("./i18n.js").Translate} deps.t
 */
export function createTyping({ ui, store, t }) {
  /** @type {Map<string, ReturnType<typeof setTimeout>>} when each notice expires */
  const timers = new Map();

  function render() {
    const text = typingText(store.typingNicks(), t);
    if (!text) {
      ui.typing.replaceChildren();
      return;
    }
    const dots = el("span", { cls: "inline-flex gap-0.5", attrs: { "aria-hidden": "true" } }, [
      el("span", { cls: "size-1 animate-bounce rounded-full bg-current" }),
      el("span", { cls: "size-1 animate-bounce rounded-full bg-current [animation-delay:150ms]" }),
      el("span", { cls: "size-1 animate-bounce rounded-full bg-current [animation-delay:300ms]" }),
    ]);
    ui.typing.replaceChildren(dots, el("span", { cls: "truncate", text }));
  }

  /**
   * A `typing` frame from someone else.
   * @param {{session?: unknown, nick?: unknown}} frame
   */
  function onTyping(frame) {
    const session = frame.session;
    if (typeof session !== "string" || !session || store.isOwnSession(session)) return;
    clearTimeout(timers.get(session));
    timers.set(
      session,
      setTimeout(() => stop(session), TYPING_SHOWN),
    );
    store.startTyping(session, String(frame.nick ?? ""));
    render();
  }

  /**
   * Their message arrived (or the notice expired).
   * @param {string | undefined} session
   */
  function stop(session) {
    if (session === undefined) return;
    clearTimeout(timers.get(session));
    timers.delete(session);
    if (store.stopTyping(session)) render();
  }

  /** Offline: nobody is known to be typing. */
  function clear() {
    for (const timer of timers.values()) clearTimeout(timer);
    timers.clear();
    store.clearTyping();
    render();
  }

  return { onTyping, stop, clear };
}
