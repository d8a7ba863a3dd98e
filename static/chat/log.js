// The message log: messages in id order, notices, scrolling that does not yank a reader who
// scrolled up, the "new messages" button and the unread count in the tab's title.

import { messageItem, noticeItem, regroup } from "./render.js";

const SENT_SHOWN = 5000;

/**
 * @typedef {import("./timeline.js").Message} Message
 */

/**
 * @param {object} deps
 * @param {import("./dom.js").Ui} deps.ui
 * @param {import("./store.js").Store} deps.store
 * @param {import("./timeline.js").Timeline} deps.timeline
 * @param {import("./i18n.js").Translate} deps.t
 * @param {import("./render.js").Clock} deps.clock
 * @param {() => number} deps.outboxSize messages still waiting in the outbox
 * @param {(li: HTMLElement, message: Message) => void} deps.decorate adds what a message's
 *   item needs beyond the message (the moderator's buttons)
 */
export function createLog({ ui, store, timeline, t, clock, outboxSize, decorate }) {
  const baseTitle = document.title;

  function updateEmpty() {
    ui.empty.hidden = timeline.size > 0 || outboxSize() > 0;
  }

  function showUnreadInTitle() {
    const unread = store.unreadInTitle();
    document.title = unread ? `(${unread}) ${baseTitle}` : baseTitle;
  }

  function updateJump() {
    ui.jump.hidden = store.atBottom() || store.unseen() === 0;
    if (!ui.jump.hidden) ui.jumpText.textContent = t("newMessages", { count: store.unseen() });
  }

  function scrollToBottom() {
    ui.log.scrollTop = ui.log.scrollHeight;
    store.setAtBottom(true);
    updateJump();
  }

  function nearBottom() {
    return ui.log.scrollHeight - ui.log.scrollTop - ui.log.clientHeight < 48;
  }

  /**
   * Put a message's item into the log, keeping it sorted by id (almost always an append).
   * @param {Message} message
   */
  function insert(message) {
    const li = messageItem({ message, own: store.isOwn(message), youLabel: t("you"), clock, accountLabel: t("account") });
    decorate(li, message);
    let before = null;
    for (let node = ui.messages.lastElementChild; node instanceof HTMLElement; node = node.previousElementSibling) {
      if (node.dataset.id === undefined) continue;
      if (Number(node.dataset.id) > message.id) before = node;
      else break;
    }
    ui.messages.insertBefore(li, before);
    regroup(li);
    regroup(li.nextElementSibling);
    return li;
  }

  /**
   * The "Sent" tick under an acknowledged message of this tab; it fades after a moment.
   * @param {HTMLElement} li
   */
  function markSent(li) {
    const stateLine = li.querySelector(".state");
    if (!stateLine) return;
    li.dataset.state = "sent";
    stateLine.textContent = t("sent");
    setTimeout(() => {
      if (stateLine.textContent === t("sent")) stateLine.textContent = "";
    }, SENT_SHOWN);
  }

  /**
   * The item of message `id`, if the log shows it.
   * @param {number} id
   * @returns {HTMLElement | null}
   */
  function itemOf(id) {
    return ui.messages.querySelector(`li[data-id="${id}"]`);
  }

  /**
   * Take a message off the log; true if it was shown.
   * @param {number} id
   */
  function remove(id) {
    const li = itemOf(id);
    if (!li) return false;
    const next = li.nextElementSibling;
    const hadFocus = li.contains(document.activeElement);
    li.remove();
    regroup(next);
    if (hadFocus) ui.log.focus();
    updateEmpty();
    return true;
  }

  /**
   * Lines about joins, leaves and renames.
   * @param {string[]} lines
   */
  function appendNotices(lines) {
    if (!lines.length) return;
    const stick = store.atBottom();
    for (const line of lines) ui.messages.append(noticeItem(line));
    if (stick) scrollToBottom();
  }

  /**
   * A batch (history, gap repair) lands as one change for assistive technology.
   * @param {() => void} work
   */
  function asBatch(work) {
    ui.log.setAttribute("aria-busy", "true");
    try {
      work();
    } finally {
      ui.log.setAttribute("aria-busy", "false");
    }
  }

  /** Screen readers should not read the whole backlog aloud when the page opens. */
  function quietWhileLoading() {
    ui.log.setAttribute("aria-live", "off");
    setTimeout(() => ui.log.setAttribute("aria-live", "polite"), 1000);
  }

  /** Every item of the log that shows a message, with its id. */
  function* messageItems() {
    for (const li of ui.messages.querySelectorAll("li[data-id]")) {
      if (li instanceof HTMLElement) yield { li, id: Number(li.dataset.id) };
    }
  }

  ui.log.addEventListener(
    "scroll",
    () => {
      store.setAtBottom(nearBottom());
      updateJump();
    },
    { passive: true },
  );
  ui.jump.addEventListener("click", () => {
    scrollToBottom();
    ui.body.focus();
  });
  document.addEventListener("visibilitychange", () => {
    if (document.hidden) return;
    store.clearUnreadInTitle();
    showUnreadInTitle();
  });
  // Keep the newest message in view when the viewport shrinks (mobile keyboard, resize).
  new ResizeObserver(() => {
    if (store.atBottom()) ui.log.scrollTop = ui.log.scrollHeight;
  }).observe(ui.log);

  return {
    insert,
    markSent,
    remove,
    appendNotices,
    asBatch,
    quietWhileLoading,
    messageItems,
    scrollToBottom,
    updateJump,
    updateEmpty,
    showUnreadInTitle,
  };
}

/** @typedef {ReturnType<typeof createLog>} Log */
