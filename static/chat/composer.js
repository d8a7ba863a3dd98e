// The message box: Enter sends, Shift+Enter breaks the line, a counter near the length
// limit, and "typing" notices to the others.

import { codePoints } from "./pacing.js";

/**
 * The counter's state for a body of `length` characters under a limit of `max` (0: none):
 * hidden below 80 % of the limit, then characters left, then characters over.
 * @param {number} length
 * @param {number} max
 * @returns {{kind: "hidden"} | {kind: "left" | "over", count: number}}
 */
export function counterState(length, max) {
  if (!max || length < max * 0.8) return { kind: "hidden" };
  if (length > max) return { kind: "over", count: length - max };
  return { kind: "left", count: max - length };
}

/**
 * The size in bytes of the frame that would carry `body` (with a client id of 36).
 * @param {string} body
 */
export function frameBytes(body) {
  return new TextEncoder().encode(JSON.stringify({ type: "message", body, client_id: "x".repeat(36) })).length;
}

/**
 * @param {object} deps
 * @param {import("./dom.js").Ui} deps.ui
 * @param {import("./store.js").Store} deps.store
 * @param {import("./i18n.js").Translate} deps.t
 * @param {string} deps.tooLongCode the protocol's error code for a message too long
 * @param {(body: string) => void} deps.submit a message to send
 * @param {(text: string) => void} deps.notify
 * @param {() => boolean} deps.sendTyping tell the others; false when not connected
 */
export function createComposer({ ui, store, t, tooLongCode, submit, notify, sendTyping }) {
  function updateCounter() {
    const state = counterState(codePoints(ui.body.value.trim()), store.limits().max_body);
    ui.counter.hidden = state.kind === "hidden";
    if (state.kind === "over") {
      ui.counter.textContent = t("charsOver", { count: state.count });
      ui.counter.dataset.over = "";
      ui.body.setAttribute("aria-invalid", "true");
    } else {
      if (state.kind === "left") ui.counter.textContent = t("charsLeft", { count: state.count });
      delete ui.counter.dataset.over;
      ui.body.removeAttribute("aria-invalid");
    }
  }

  function submitMessage() {
    const body = ui.body.value.trim();
    if (!body) return;
    const { max_body: max, max_frame: maxFrame } = store.limits();
    if (max && codePoints(body) > max) {
      updateCounter();
      notify(t("charsOver", { count: codePoints(body) - max }));
      return;
    }
    if (maxFrame && frameBytes(body) > maxFrame) {
      notify(t(`errors.${tooLongCode}`));
      return;
    }
    ui.body.value = "";
    updateCounter();
    submit(body);
  }

  function noteTyping() {
    const now = Date.now();
    if (!ui.body.value.trim() || !store.typingNoticeDue(now)) return;
    if (sendTyping()) store.typingNoticeSent(now);
  }

  ui.body.addEventListener("keydown", (event) => {
    if (event.key !== "Enter" || event.shiftKey || event.isComposing || event.keyCode === 229) return;
    event.preventDefault();
    submitMessage();
  });
  ui.body.addEventListener("input", () => {
    updateCounter();
    noteTyping();
  });
  ui.composer.addEventListener("submit", (event) => {
    event.preventDefault();
    submitMessage();
    ui.body.focus();
  });

  return { updateCounter };
}
