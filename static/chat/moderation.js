// The moderator's side of the page: buttons under messages (Delete; Mute and Ban for
// someone else's), asking before acting, and retractions taken off the page.

import { moderationControls } from "./render.js";

// What the moderator buttons ask for (the labels in the strings say the same).
const MUTE_SECONDS = 10 * 60;
const BAN_SECONDS = 60 * 60;
const RETRACT_ANNOUNCE_DELAY = 800; // one announcement for a burst of deletions
const ANNOUNCE_SHOWN = 5000;

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
 * @param {(frame: object) => boolean} deps.send
 * @param {(text: string, options?: {tone?: "error" | "info"}) => void} deps.notify
 */
export function createModeration({ ui, store, timeline, t, clock, send, notify }) {
  let retractCount = 0;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let retractTimer;

  /**
   * Add (or remove) the moderator's buttons under one message of the log.
   * @param {HTMLElement} li
   * @param {Message} message
   */
  function applyControls(li, message) {
    li.querySelector(".mod")?.remove();
    if (!store.isModerator()) return;
    const own = store.isOwnForModeration(message);
    const time = clock.text(message.sent_at);
    const nick = message.nick;
    li.querySelector(".column")?.append(
      moderationControls({
        own,
        labels: {
          delete: t("modDelete"),
          deleteName: own ? t("modDeleteOwnName", { time }) : t("modDeleteName", { nick, time }),
          mute: t("modMute"),
          muteName: t("modMuteName", { nick }),
          ban: t("modBan"),
          banName: t("modBanName", { nick }),
        },
      }),
    );
  }

  /**
   * The frame a button asks to send, the question to confirm it and the note once sent.
   * @param {string | undefined} action
   * @param {Message} message
   * @returns {{frame: object, question: string, done: string} | null}
   */
  function request(action, message) {
    const nick = message.nick;
    const time = clock.text(message.sent_at);
    switch (action) {
      case "delete":
        return {
          frame: { type: "delete", id: message.id },
          question: store.isOwnForModeration(message) ? t("confirmDeleteOwn", { time }) : t("confirmDelete", { nick, time }),
          done: t("deleteSent"),
        };
      case "mute":
        return {
          frame: { type: "mute", session: message.session, seconds: MUTE_SECONDS },
          question: t("confirmMute", { nick }),
          done: t("muteSent", { nick }),
        };
      case "ban":
        return {
          frame: { type: "ban", session: message.session, seconds: BAN_SECONDS },
          question: t("confirmBan", { nick }),
          done: t("banSent", { nick }),
        };
      default:
        return null;
    }
  }

  ui.messages.addEventListener("click", (event) => {
    const target = event.target;
    const button = target instanceof Element ? target.closest("button[data-action]") : null;
    if (!(button instanceof HTMLElement) || !store.isModerator()) return;
    const li = button.closest("li[data-id]");
    const message = li instanceof HTMLElement ? timeline.get(Number(li.dataset.id)) : undefined;
    if (!message) return;
    const asked = request(button.dataset.action, message);
    if (!asked || !window.confirm(asked.question)) return;
    if (send(asked.frame)) notify(asked.done, { tone: "info" });
    else notify(t("modOffline"));
  });

  /** A short polite note for screen readers, once per burst (an admin may delete hundreds). */
  function announceRemoved() {
    retractCount += 1;
    clearTimeout(retractTimer);
    retractTimer = setTimeout(() => {
      ui.announce.textContent = t("removed", { count: retractCount });
      retractCount = 0;
      setTimeout(() => {
        ui.announce.textContent = "";
      }, ANNOUNCE_SHOWN);
    }, RETRACT_ANNOUNCE_DELAY);
  }

  return { applyControls, announceRemoved };
}
