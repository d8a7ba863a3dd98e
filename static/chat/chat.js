// The lobby chat page: reads the configuration, builds each part and routes the server's
// frames to them. State lives in the store (store.js); each part has a module of its own:
// connection.js (the socket), sending.js and outbox.js (the outbox), log.js and timeline.js
// (the messages), gaps.js (missing ids), online.js and presence.js (who is online),
// typing.js, composer.js, nick.js (the nickname editor and the header's popovers),
// moderation.js, status.js, notice.js, refusals.js (what an error frame means for the page),
// render.js (DOM builders), i18n.js, config.js and dom.js (what the server and the template
// hand over).

import { createComposer } from "./composer.js";
import { readConfig } from "./config.js";
import { Connection } from "./connection.js";
import { findUi } from "./dom.js";
import { createGapRepair } from "./gaps.js";
import { translator } from "./i18n.js";
import { createLog } from "./log.js";
import { createModeration } from "./moderation.js";
import { createNickEditor } from "./nick.js";
import { createNotice } from "./notice.js";
import { createOnline } from "./online.js";
import { Outbox } from "./outbox.js";
import { refusal } from "./refusals.js";
import { Clock } from "./render.js";
import { createSending } from "./sending.js";
import { createStatus } from "./status.js";
import { Store } from "./store.js";
import { Timeline } from "./timeline.js";
import { createTyping } from "./typing.js";

/**
 * @typedef {import("./timeline.js").Message} Message
 * @typedef {Record<string, unknown>} Frame a decoded frame, not checked yet
 * @typedef {import("./refusals.js").ErrorFrame} ErrorFrame
 */

const config = readConfig(document);
const codes = config.protocol.errors;
const lang = document.documentElement.lang || "en";
const t = translator(config.strings, lang);
const clock = new Clock(lang);
const ui = findUi();

const store = new Store({
  local: localStorage,
  session: sessionStorage,
  limits: { max_body: config.maxBody, typing_interval: config.typingInterval },
});
const timeline = new Timeline();
const outbox = new Outbox(sessionStorage);
const notice = createNotice(ui);
const typing = createTyping({ ui, store, t });

function socketUrl() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const params = new URLSearchParams();
  if (store.nick()) params.set("nick", store.nick());
  if (timeline.maxId > 0) params.set("after", String(timeline.maxId));
  const query = params.toString();
  return `${scheme}//${location.host}${config.wsPath}${query ? `?${query}` : ""}`;
}

const connection = new Connection({
  url: socketUrl,
  closeCodes: config.protocol.close,
  onFrame: handleFrame,
  onState: (state, detail) => status.show(state, detail),
  onOpen: () => sending.reopen(),
});
const send = (/** @type {object} */ frame) => connection.send(frame);

const moderation = createModeration({ ui, store, timeline, t, clock, send, notify: notice.set });
const log = createLog({
  ui,
  store,
  timeline,
  t,
  clock,
  outboxSize: () => outbox.size,
  decorate: moderation.applyControls,
});
const sending = createSending({ ui, store, outbox, connection, t, clock, onChange: log.updateEmpty });
const status = createStatus({
  ui,
  store,
  t,
  onChange: (name) => {
    if (name !== "online") typing.clear();
    sending.refreshPendingLabels();
  },
});
const gaps = createGapRepair({
  store,
  timeline,
  apiPath: config.apiPath,
  onMessages: (messages) => onMessages(messages, { live: false }),
  onError: () => notice.set(t("historyError")),
});
const online = createOnline({ ui, store, t, lang, appendNotices: log.appendNotices });
const nickEditor = createNickEditor({
  ui,
  store,
  t,
  maxNick: config.maxNick,
  rename: (nick) => send({ type: "nick", nick }),
});
const composer = createComposer({
  ui,
  store,
  t,
  tooLongCode: codes.tooLong,
  submit: (body) => {
    ui.empty.hidden = true;
    sending.add(body);
    log.scrollToBottom();
  },
  notify: notice.set,
  sendTyping: () => send({ type: "typing" }),
});

// --- frames from the server ---------------------------------------------------------------

/** @param {Frame} frame */
function handleFrame(frame) {
  switch (frame.type) {
    case "hello":
      return onHello(/** @type {Hello} */ (frame));
    case "message":
      return onMessages([/** @type {Message} */ (/** @type {unknown} */ (frame))], { live: true });
    case "retract":
      return onRetract(frame.id);
    case "presence":
      return online.onPresence(frame);
    case "typing":
      return typing.onTyping(frame);
    case "error":
      return onError(/** @type {ErrorFrame} */ (frame));
    default:
      return undefined;
  }
}

/**
 * @typedef {object} Hello
 * @property {string} session
 * @property {string} nick
 * @property {unknown} [history]
 * @property {boolean} [truncated]
 * @property {unknown} [last_id]
 * @property {unknown} [online]
 * @property {unknown} [count]
 * @property {unknown} [limits]
 * @property {unknown} [user]
 */

/** @param {Hello} hello */
function onHello(hello) {
  const firstHello = store.isFirstHello();
  if (store.greet(hello)) refreshControls();
  nickEditor.show();

  const history = /** @type {Message[]} */ (Array.isArray(hello.history) ? hello.history : []);
  const freshPage = timeline.maxId === 0 && timeline.size === 0;
  if (firstHello) log.quietWhileLoading();
  onMessages(history, { live: false });
  if (freshPage && !hello.truncated) {
    // Recent history of a fresh page (or none, with the newest id as `last_id`): older
    // messages are not "missing".
    const lastId = typeof hello.last_id === "number" && Number.isInteger(hello.last_id) ? hello.last_id : 0;
    timeline.acceptUpTo(Math.max(history.length ? history[history.length - 1].id : 0, lastId));
  }
  if (hello.truncated) gaps.repair({ now: true });
  online.onPresence({ online: hello.online || [], count: hello.count }, { announce: !firstHello });
  if (firstHello || store.atBottom()) log.scrollToBottom();
  composer.updateCounter();
}

/**
 * Messages from the server: live, in `hello`, or fetched to fill a gap.
 * @param {Message[]} messages
 * @param {{live: boolean}} options
 */
function onMessages(messages, { live }) {
  if (live) addMessages(messages, { live });
  else log.asBatch(() => addMessages(messages, { live }));
}

/**
 * @param {Message[]} messages
 * @param {{live: boolean}} options
 */
function addMessages(messages, { live }) {
  const stick = store.atBottom();
  let added = 0;
  let ownAck = false;
  for (const message of messages) {
    if (!message || message.type !== "message" || !Number.isInteger(message.id)) continue;
    const acknowledged = sending.acknowledge(message.client_id);
    if (acknowledged) ownAck = true;
    if (!timeline.add(message)) continue;
    const li = log.insert(message);
    if (acknowledged) log.markSent(li);
    added += 1;
    if (live) typing.stop(message.session);
    if (live && !store.isOwn(message) && !stick) store.addUnseen();
    if (live && !store.isOwn(message) && document.hidden) store.addUnreadInTitle();
  }
  if (!added && !ownAck) return;
  log.showUnreadInTitle();
  log.updateEmpty();
  if (stick || ownAck) log.scrollToBottom();
  else log.updateJump();
  gaps.schedule();
}

/** The moderator role changed: redraw the buttons under every message. */
function refreshControls() {
  for (const { li, id } of log.messageItems()) {
    const message = timeline.get(id);
    if (message) moderation.applyControls(li, message);
  }
}

/**
 * A moderator deleted message `id`: take it off the page, and never show it again.
 * @param {unknown} id
 */
function onRetract(id) {
  if (typeof id !== "number" || !Number.isInteger(id)) return;
  timeline.retract(id);
  if (log.remove(id)) moderation.announceRemoved();
  gaps.schedule();
}

/**
 * The reason shown for a refused message: the page's words for the code, else the detail.
 * @param {ErrorFrame} frame
 */
function reasonFor(frame) {
  const key = `errors.${frame.code}`;
  const text = t(key);
  return text === key ? frame.detail || t("errors.unknown") : text;
}

/** @param {ErrorFrame} frame */
function mutedReason(frame) {
  const seconds = Number(frame.retry_after);
  if (!Number.isFinite(seconds) || seconds <= 0) return t(`errors.${codes.muted}`);
  return t("mutedFor", { count: Math.max(1, Math.ceil(seconds / 60)) });
}

/** @param {ErrorFrame} frame */
function onError(frame) {
  const item = frame.client_id ? outbox.get(frame.client_id) : undefined;
  const action = refusal(frame, item !== undefined, codes);
  switch (action.do) {
    case "fail":
      if (item) sending.fail(item.client_id, action.muted ? mutedReason(frame) : reasonFor(frame));
      return;
    case "postpone":
      if (item) sending.postpone(item.client_id, action.retryAfter);
      return;
    case "revertNick":
      store.revertNick();
      nickEditor.show();
      notice.set(t("nickInvalid", { reason: frame.detail || "" }));
      return;
    case "notice":
      if (action.muted) notice.set(mutedReason(frame));
      else if (frame.code === codes.forbidden) notice.set(frame.detail || t(`errors.${codes.forbidden}`));
      else if (frame.detail) notice.set(frame.detail);
      return;
  }
}

// --- start ----------------------------------------------------------------------------------

ui.reconnectNow.addEventListener("click", () => connection.retryNow());
nickEditor.show();
sending.restore();
ui.empty.hidden = outbox.size > 0;
connection.start();
