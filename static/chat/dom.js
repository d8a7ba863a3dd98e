// The page's elements, found once by id. The template (templates/chat/index.html) is their
// source; a missing or mistyped element fails here, loudly, at start.

/**
 * The element with this id, checked to be of `type`.
 * @template {Element} T
 * @param {string} id
 * @param {new (...args: any[]) => T} type
 * @returns {T}
 */
export function byId(id, type) {
  const node = document.getElementById(id);
  if (!(node instanceof type)) throw new Error(`#${id} is missing or not a ${type.name}`);
  return node;
}

/** Every element of the page that the script works with. */
export function findUi() {
  const E = HTMLElement;
  return {
    status: byId("status", E),
    statusSr: byId("status-sr", E),
    statusText: byId("status-text", E),
    reconnectNow: byId("reconnect-now", HTMLButtonElement),
    onlineToggle: byId("online-toggle", HTMLButtonElement),
    onlineCount: byId("online-count", E),
    onlinePanel: byId("online-panel", E),
    onlineList: byId("online-list", E),
    nickToggle: byId("nick-toggle", HTMLButtonElement),
    nickAvatar: byId("nick-avatar", E),
    nickCurrent: byId("nick-current", E),
    nickForm: byId("nick-form", HTMLFormElement),
    nickInput: byId("nick-input", HTMLInputElement),
    nickError: byId("nick-error", E),
    nickCancel: byId("nick-cancel", HTMLButtonElement),
    log: byId("log", E),
    empty: byId("empty", E),
    messages: byId("messages", E),
    outbox: byId("outbox", E),
    jump: byId("jump", HTMLButtonElement),
    jumpText: byId("jump-text", E),
    typing: byId("typing", E),
    composer: byId("composer", HTMLFormElement),
    body: byId("body", HTMLTextAreaElement),
    counter: byId("counter", E),
    notice: byId("notice", E),
    announce: byId("announce", E),
  };
}

/** @typedef {ReturnType<typeof findUi>} Ui */
