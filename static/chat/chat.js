// The lobby chat page: wires the socket, the timeline, the outbox and the DOM together.

import { Connection } from "./connection.js";
import { translator } from "./i18n.js";
import { Outbox } from "./outbox.js";
import {
  avatar,
  avatarColor,
  Clock,
  el,
  initial,
  messageItem,
  moderationControls,
  noticeItem,
  regroup,
} from "./render.js";
import { Timeline } from "./timeline.js";

const config = JSON.parse(document.getElementById("chat-config").textContent);
const lang = document.documentElement.lang || "en";
const t = translator(config.strings || {}, lang);
const clock = new Clock(lang);

const GAP_GRACE = 1500; // wait for late messages before fetching a gap
const GAP_TRIES = 2; // then accept what is still missing as holes in the sequence
const TYPING_SHOWN = 4000;
const API_PAGE = 500;
const API_MAX_PAGES = 20;
const NICK_KEY = "chat.nick";
const SESSIONS_KEY = "chat.sessions";
const CLIENT_IDS_KEY = "chat.clientIds";
// What the moderator buttons ask for (the labels in the strings say the same).
const MUTE_SECONDS = 10 * 60;
const BAN_SECONDS = 60 * 60;
const RETRACT_ANNOUNCE_DELAY = 800; // one announcement for a burst of deletions

const $ = (id) => document.getElementById(id);
const ui = {
  status: $("status"),
  statusSr: $("status-sr"),
  statusText: $("status-text"),
  reconnectNow: $("reconnect-now"),
  onlineToggle: $("online-toggle"),
  onlineCount: $("online-count"),
  onlinePanel: $("online-panel"),
  onlineList: $("online-list"),
  nickToggle: $("nick-toggle"),
  nickAvatar: $("nick-avatar"),
  nickCurrent: $("nick-current"),
  nickForm: $("nick-form"),
  nickInput: $("nick-input"),
  nickError: $("nick-error"),
  nickCancel: $("nick-cancel"),
  log: $("log"),
  empty: $("empty"),
  messages: $("messages"),
  outbox: $("outbox"),
  jump: $("jump"),
  jumpText: $("jump-text"),
  typing: $("typing"),
  composer: $("composer"),
  body: $("body"),
  counter: $("counter"),
  notice: $("notice"),
  announce: $("announce"),
};

// --- small persistent sets --------------------------------------------------------------

function loadList(storage, key) {
  try {
    const value = JSON.parse(storage.getItem(key) || "[]");
    return Array.isArray(value) ? value.filter((v) => typeof v === "string") : [];
  } catch {
    return [];
  }
}

function saveList(storage, key, values, keep) {
  try {
    storage.setItem(key, JSON.stringify(values.slice(-keep)));
  } catch {
    // Storage unavailable: fine for this page's lifetime.
  }
}

function storedNick() {
  try {
    return localStorage.getItem(NICK_KEY) || "";
  } catch {
    return "";
  }
}

function storeNick(nick) {
  try {
    localStorage.setItem(NICK_KEY, nick);
  } catch {
    // Not remembered; still used for this page.
  }
}

// --- state --------------------------------------------------------------------------------

const state = {
  nick: storedNick(),
  confirmedNick: "",
  session: null,
  // The signed-in account from `hello` ({name, moderator}), null for a guest.
  user: null,
  // Every session this tab had (reconnects and reloads): their messages are "You".
  ownSessions: new Set(loadList(sessionStorage, SESSIONS_KEY)),
  ownClientIds: new Set(loadList(sessionStorage, CLIENT_IDS_KEY)),
  limits: {
    max_body: config.maxBody ?? 2000,
    max_frame: 0,
    rate: 0,
    rate_period: 0,
    typing_interval: config.typingInterval ?? 2,
  },
  online: null, // Map session -> nick, null before the first hello
  typing: new Map(), // session -> {nick, timer}
  lastTypingSent: 0,
  sendTimes: [],
  flushTimer: null,
  gapTimer: null,
  gapBusy: false,
  gapTries: new Map(), // contiguous id -> fetch attempts
  unseen: 0,
  unreadInTitle: 0, // messages from others while the tab was hidden
  atBottom: true,
};

const timeline = new Timeline();
const outbox = new Outbox();
const outboxItems = new Map(); // client_id -> <li>

function isOwn(message) {
  return (
    state.ownSessions.has(message.session) ||
    (message.client_id != null && state.ownClientIds.has(message.client_id))
  );
}

// --- connection -----------------------------------------------------------------------------

function socketUrl() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const params = new URLSearchParams();
  if (state.nick) params.set("nick", state.nick);
  if (timeline.maxId > 0) params.set("after", String(timeline.maxId));
  const query = params.toString();
  return `${scheme}//${location.host}${config.wsPath || "/ws/chat/"}${query ? `?${query}` : ""}`;
}

let countdownTimer = null;

function showStatus(name, { until } = {}) {
  clearInterval(countdownTimer);
  countdownTimer = null;
  ui.status.dataset.state = name;
  const label = {
    connecting: t("connecting"),
    online: t("online"),
    reconnecting: t("reconnecting"),
    offline: t("offline"),
  }[name];
  // The screen-reader text changes once per state; the visible countdown ticks silently.
  ui.statusSr.textContent = label;
  ui.statusText.textContent = label;
  ui.reconnectNow.hidden = name !== "reconnecting" && name !== "offline";
  // Without a connection the online list is stale: say so quietly.
  ui.onlineToggle.classList.toggle("opacity-60", name !== "online");
  if (name === "reconnecting" && until) {
    const tick = () => {
      const seconds = Math.max(1, Math.ceil((until - Date.now()) / 1000));
      ui.statusText.textContent = t("reconnectingIn", { seconds });
    };
    tick();
    countdownTimer = setInterval(tick, 250);
  }
  if (name !== "online") clearTyping();
  refreshPendingLabels();
}

const connection = new Connection({
  url: socketUrl,
  onFrame: handleFrame,
  onState: showStatus,
  onOpen: () => {
    outbox.resetInflight();
    flushOutbox();
  },
});

function handleFrame(frame) {
  switch (frame.type) {
    case "hello":
      return onHello(frame);
    case "message":
      return onMessages([frame], { live: true });
    case "retract":
      return onRetract(frame.id);
    case "presence":
      return onPresence(frame.online);
    case "typing":
      return onTyping(frame);
    case "error":
      return onError(frame);
    default:
      return undefined;
  }
}

function onHello(hello) {
  const firstHello = state.session === null;
  state.session = hello.session;
  state.ownSessions.add(hello.session);
  saveList(sessionStorage, SESSIONS_KEY, [...state.ownSessions], 50);
  if (hello.limits && typeof hello.limits === "object") Object.assign(state.limits, hello.limits);
  setUser(hello.user);
  state.confirmedNick = hello.nick;
  if (!state.nick || state.nick === hello.nick) {
    state.nick = hello.nick;
    storeNick(hello.nick);
  }
  showNick();

  const history = Array.isArray(hello.history) ? hello.history : [];
  const freshPage = timeline.maxId === 0 && timeline.byId.size === 0;
  if (firstHello) {
    // Screen readers should not read the whole backlog aloud when the page opens.
    ui.log.setAttribute("aria-live", "off");
    setTimeout(() => ui.log.setAttribute("aria-live", "polite"), 1000);
  }
  onMessages(history, { live: false });
  if (freshPage && history.length && !hello.truncated) {
    // Recent history of a fresh page: older messages are not "missing".
    timeline.acceptUpTo(history[history.length - 1].id);
  }
  if (hello.truncated) repairGap({ now: true });
  onPresence(hello.online || [], { announce: !firstHello });
  if (firstHello || state.atBottom) scrollToBottom();
  updateCounter();
}

// --- messages -------------------------------------------------------------------------------

function findOutboxMatch(message) {
  return message.client_id != null ? outbox.get(message.client_id) : undefined;
}

function onMessages(messages, { live }) {
  // A batch (history, gap repair) lands as one change for assistive technology.
  if (!live) ui.log.setAttribute("aria-busy", "true");
  try {
    addMessages(messages, { live });
  } finally {
    if (!live) ui.log.setAttribute("aria-busy", "false");
  }
}

function addMessages(messages, { live }) {
  const stick = state.atBottom;
  let added = 0;
  let ownAck = false;
  for (const message of messages) {
    if (!message || message.type !== "message" || !Number.isInteger(message.id)) continue;
    const pending = findOutboxMatch(message);
    if (pending) {
      outbox.remove(message.client_id);
      outboxItems.get(message.client_id)?.remove();
      outboxItems.delete(message.client_id);
      ownAck = true;
    }
    if (!timeline.add(message)) continue;
    const li = insertMessage(message);
    if (pending) markSent(li);
    added += 1;
    if (live) stopTyping(message.session);
    if (live && !isOwn(message) && !stick) state.unseen += 1;
    if (live && !isOwn(message) && document.hidden) state.unreadInTitle += 1;
  }
  if (!added && !ownAck) return;
  showUnreadInTitle();
  ui.empty.hidden = timeline.byId.size > 0 || outbox.items.length > 0;
  if (stick || ownAck) scrollToBottom();
  else updateJump();
  scheduleGapRepair();
}

function insertMessage(message) {
  const li = messageItem({ message, own: isOwn(message), youLabel: t("you"), clock, accountLabel: t("account") });
  applyControls(li, message);
  // Keep the log sorted by id; almost always this is an append.
  let before = null;
  for (let node = ui.messages.lastElementChild; node; node = node.previousElementSibling) {
    if (node.dataset.id === undefined) continue;
    if (Number(node.dataset.id) > message.id) before = node;
    else break;
  }
  ui.messages.insertBefore(li, before);
  regroup(li);
  regroup(li.nextElementSibling);
  return li;
}

function markSent(li) {
  const stateLine = li.querySelector(".state");
  li.dataset.state = "sent";
  stateLine.textContent = t("sent");
  // The "Sent" tick fades out of the way after a moment; the message stays.
  setTimeout(() => {
    if (stateLine.textContent === t("sent")) stateLine.textContent = "";
  }, 5000);
}

const baseTitle = document.title;
function showUnreadInTitle() {
  document.title = state.unreadInTitle ? `(${state.unreadInTitle}) ${baseTitle}` : baseTitle;
}
document.addEventListener("visibilitychange", () => {
  if (document.hidden) return;
  state.unreadInTitle = 0;
  showUnreadInTitle();
});

// --- accounts and moderation ----------------------------------------------------------------

function setUser(user) {
  const next =
    user && typeof user === "object" && typeof user.name === "string"
      ? { name: user.name, moderator: user.moderator === true }
      : null;
  const wasModerator = Boolean(state.user?.moderator);
  state.user = next;
  if (Boolean(next?.moderator) !== wasModerator) refreshControls();
}

/** Own for moderation: written from this tab, or by the same signed-in account elsewhere. */
function isOwnForModeration(message) {
  return isOwn(message) || (state.user !== null && message.account === true && message.nick === state.user.name);
}

/** Add (or remove) the moderator's buttons under one message of the log. */
function applyControls(li, message) {
  li.querySelector(".mod")?.remove();
  if (!state.user?.moderator) return;
  const own = isOwnForModeration(message);
  const time = clock.text(message.sent_at);
  const nick = message.nick;
  li.querySelector(".column").append(
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

function refreshControls() {
  for (const li of ui.messages.querySelectorAll("li[data-id]")) {
    const message = timeline.byId.get(Number(li.dataset.id));
    if (message) applyControls(li, message);
  }
}

ui.messages.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-action]");
  if (!button || !state.user?.moderator) return;
  const li = button.closest("li[data-id]");
  const message = li && timeline.byId.get(Number(li.dataset.id));
  if (!message) return;
  const nick = message.nick;
  const time = clock.text(message.sent_at);
  let frame;
  let question;
  let done;
  switch (button.dataset.action) {
    case "delete":
      frame = { type: "delete", id: message.id };
      question = isOwnForModeration(message) ? t("confirmDeleteOwn", { time }) : t("confirmDelete", { nick, time });
      done = t("deleteSent");
      break;
    case "mute":
      frame = { type: "mute", session: message.session, seconds: MUTE_SECONDS };
      question = t("confirmMute", { nick });
      done = t("muteSent", { nick });
      break;
    case "ban":
      frame = { type: "ban", session: message.session, seconds: BAN_SECONDS };
      question = t("confirmBan", { nick });
      done = t("banSent", { nick });
      break;
    default:
      return;
  }
  if (!window.confirm(question)) return;
  if (connection.send(frame)) setNotice(done, { tone: "info" });
  else setNotice(t("modOffline"));
});

let retractCount = 0;
let retractTimer = null;

/** A moderator deleted message `id`: take it off the page, and never show it again. */
function onRetract(id) {
  if (!Number.isInteger(id)) return;
  timeline.retract(id);
  const li = ui.messages.querySelector(`li[data-id="${id}"]`);
  if (li) {
    const next = li.nextElementSibling;
    const hadFocus = li.contains(document.activeElement);
    li.remove();
    regroup(next);
    if (hadFocus) ui.log.focus();
    ui.empty.hidden = timeline.byId.size > 0 || outbox.items.length > 0;
    // A short polite note for screen readers, once per burst (an admin may delete hundreds).
    retractCount += 1;
    clearTimeout(retractTimer);
    retractTimer = setTimeout(() => {
      ui.announce.textContent = t("removed", { count: retractCount });
      retractCount = 0;
      setTimeout(() => {
        ui.announce.textContent = "";
      }, 5000);
    }, RETRACT_ANNOUNCE_DELAY);
  }
  scheduleGapRepair();
}

// --- gap repair -----------------------------------------------------------------------------

function scheduleGapRepair() {
  if (!timeline.hasGap() || state.gapTimer || state.gapBusy) return;
  state.gapTimer = setTimeout(() => {
    state.gapTimer = null;
    repairGap();
  }, GAP_GRACE);
}

// Pages of 500; a server whose cap (CHAT_RESUME_CAP) is lower answers 400, and then the
// page lets the server pick its default page size instead.
let apiLimit = API_PAGE;

async function fetchAfter(after) {
  const base = `${config.apiPath || "/api/messages"}?after=${after}`;
  const get = (url) => fetch(url, { headers: { Accept: "application/json" } });
  let response = await get(apiLimit ? `${base}&limit=${apiLimit}` : base);
  if (response.status === 400 && apiLimit) {
    apiLimit = null;
    response = await get(base);
  }
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  return response.json();
}

async function repairGap({ now = false } = {}) {
  if (state.gapBusy) return;
  if (!timeline.hasGap()) return;
  if (!now && state.gapTimer) return;
  clearTimeout(state.gapTimer);
  state.gapTimer = null;
  const from = timeline.contiguous;
  const tries = state.gapTries.get(from) || 0;
  if (tries >= GAP_TRIES) {
    // Ids that never came back are holes in the sequence (a rolled-back insert).
    timeline.skipHole();
    scheduleGapRepair();
    return;
  }
  state.gapTries.set(from, tries + 1);
  state.gapBusy = true;
  try {
    let after = from;
    for (let page = 0; page < API_MAX_PAGES; page += 1) {
      const data = await fetchAfter(after);
      const rows = Array.isArray(data.messages) ? data.messages : [];
      onMessages(rows, { live: false });
      if (!data.has_more || !rows.length) break;
      after = rows[rows.length - 1].id;
      if (after >= timeline.maxId) break;
    }
  } catch {
    setNotice(t("historyError"));
  } finally {
    state.gapBusy = false;
  }
  scheduleGapRepair();
}

// --- presence -------------------------------------------------------------------------------

function onPresence(online, { announce = true } = {}) {
  if (!Array.isArray(online)) return;
  const next = new Map(online.map((p) => [p.session, p.nick]));
  if (state.online && announce) announcePresence(state.online, next);
  state.online = next;
  // Our own entry shows which name the server accepted (a refused rename keeps the old one).
  if (next.has(state.session)) state.confirmedNick = next.get(state.session);
  ui.onlineCount.textContent = t("onlineCount", { count: next.size });
  renderOnlineList();
}

function announcePresence(prev, next) {
  const mine = (session) => state.ownSessions.has(session);
  const joined = [];
  const left = [];
  const renamed = [];
  for (const [session, nick] of next) {
    if (mine(session)) continue;
    if (!prev.has(session)) joined.push(nick);
    else if (prev.get(session) !== nick) renamed.push([prev.get(session), nick]);
  }
  for (const [session, nick] of prev) {
    if (!mine(session) && !next.has(session)) left.push(nick);
  }
  // A reconnect is a leave and a join under the same name: not worth a line.
  const prevNicks = new Set([...prev].filter(([s]) => !mine(s)).map(([, n]) => n));
  const nextNicks = new Set([...next].filter(([s]) => !mine(s)).map(([, n]) => n));
  const reallyJoined = [...new Set(joined)].filter((n) => !prevNicks.has(n));
  const reallyLeft = [...new Set(left)].filter((n) => !nextNicks.has(n));
  const lines = [];
  if (reallyJoined.length > 3) lines.push(t("manyJoined", { count: reallyJoined.length }));
  else for (const nick of reallyJoined) lines.push(t("joined", { nick }));
  if (reallyLeft.length > 3) lines.push(t("manyLeft", { count: reallyLeft.length }));
  else for (const nick of reallyLeft) lines.push(t("left", { nick }));
  for (const [old, nick] of renamed.slice(0, 3)) lines.push(t("renamed", { old, new: nick }));
  if (!lines.length) return;
  const stick = state.atBottom;
  for (const line of lines) ui.messages.append(noticeItem(line));
  if (stick) scrollToBottom();
}

function renderOnlineList() {
  const people = [...state.online].map(([session, nick]) => ({
    session,
    nick,
    own: session === state.session,
  }));
  people.sort((a, b) => Number(b.own) - Number(a.own) || a.nick.localeCompare(b.nick, lang));
  ui.onlineList.replaceChildren(
    ...people.map((p) =>
      el("li", { cls: "flex items-center gap-2 rounded-lg px-1.5 py-1 text-sm" }, [
        avatar(p.nick, "size-6 text-xs"),
        el("span", { cls: "min-w-0 truncate", text: p.nick }),
        p.own ? el("span", { cls: "shrink-0 text-xs text-slate-500 dark:text-slate-400", text: t("youSuffix") }) : null,
      ]),
    ),
  );
}

// --- typing ---------------------------------------------------------------------------------

function onTyping(frame) {
  if (!frame.session || state.ownSessions.has(frame.session)) return;
  const current = state.typing.get(frame.session);
  if (current) clearTimeout(current.timer);
  const timer = setTimeout(() => stopTyping(frame.session), TYPING_SHOWN);
  state.typing.set(frame.session, { nick: String(frame.nick ?? ""), timer });
  renderTyping();
}

function stopTyping(session) {
  const current = state.typing.get(session);
  if (!current) return;
  clearTimeout(current.timer);
  state.typing.delete(session);
  renderTyping();
}

function clearTyping() {
  for (const { timer } of state.typing.values()) clearTimeout(timer);
  state.typing.clear();
  renderTyping();
}

function renderTyping() {
  const nicks = [...state.typing.values()].map((v) => v.nick);
  if (!nicks.length) {
    ui.typing.replaceChildren();
    return;
  }
  let text;
  if (nicks.length === 1) text = t("typingOne", { nick: nicks[0] });
  else if (nicks.length === 2) text = t("typingTwo", { first: nicks[0], second: nicks[1] });
  else text = t("typingMany");
  const dots = el("span", { cls: "inline-flex gap-0.5", attrs: { "aria-hidden": "true" } }, [
    el("span", { cls: "size-1 animate-bounce rounded-full bg-current" }),
    el("span", { cls: "size-1 animate-bounce rounded-full bg-current [animation-delay:150ms]" }),
    el("span", { cls: "size-1 animate-bounce rounded-full bg-current [animation-delay:300ms]" }),
  ]);
  ui.typing.replaceChildren(dots, el("span", { cls: "truncate", text }));
}

function noteTyping() {
  const interval = (state.limits.typing_interval || 2) * 1000;
  const now = Date.now();
  if (!ui.body.value.trim() || now - state.lastTypingSent < interval) return;
  if (connection.send({ type: "typing" })) state.lastTypingSent = now;
}

// --- errors ---------------------------------------------------------------------------------

function reasonFor(frame) {
  const key = `errors.${frame.code}`;
  const text = t(key);
  return text === key ? frame.detail || t("errors.unknown") : text;
}

function mutedReason(frame) {
  const seconds = Number(frame.retry_after);
  if (!Number.isFinite(seconds) || seconds <= 0) return t("errors.muted");
  return t("mutedFor", { count: Math.max(1, Math.ceil(seconds / 60)) });
}

function onError(frame) {
  const item = frame.client_id ? outbox.get(frame.client_id) : undefined;
  if (frame.code === "muted") {
    // Refused until the mute ends: shown as failed with a Retry button, never retried alone.
    if (item) {
      outbox.fail(item.client_id, mutedReason(frame));
      renderOutboxItem(item);
    } else {
      setNotice(mutedReason(frame));
    }
    return;
  }
  if (frame.code === "forbidden" && !item) {
    setNotice(frame.detail || t("errors.forbidden"));
    return;
  }
  if (item) {
    if (frame.code === "rate_limited" || frame.code === "unavailable") {
      // Not refused for what it says: keep it pending and send it again later.
      item.inflight = false;
      item.attempts += 1;
      const wait =
        frame.code === "rate_limited" && Number.isFinite(frame.retry_after)
          ? frame.retry_after * 1000 + 100
          : Math.min(30_000, 1000 * 2 ** Math.min(item.attempts, 5)) * (0.5 + Math.random() / 2);
      item.retryAt = Date.now() + wait;
      refreshPendingLabels();
      scheduleFlush(wait);
    } else {
      outbox.fail(item.client_id, reasonFor(frame));
      renderOutboxItem(item);
    }
    return;
  }
  if (frame.code === "invalid_nick") {
    state.nick = state.confirmedNick;
    storeNick(state.nick);
    showNick();
    setNotice(t("nickInvalid", { reason: frame.detail || "" }));
    return;
  }
  if (frame.detail) setNotice(frame.detail);
}

let noticeTimer = null;
/** A short line under the composer: a problem (red), or `tone: "info"` for plain news. */
function setNotice(text, { tone = "error" } = {}) {
  clearTimeout(noticeTimer);
  ui.notice.dataset.tone = tone;
  ui.notice.textContent = text;
  noticeTimer = setTimeout(() => {
    ui.notice.textContent = "";
  }, 8000);
}

// --- outbox ---------------------------------------------------------------------------------

function pendingLabel(item) {
  return connection.ready && !(item.retryAt > Date.now()) ? t("pending") : t("retrying");
}

/** Update "Sending…" / "Waiting to send…" in place (no re-announcement of the message). */
function refreshPendingLabels() {
  for (const item of outbox.items) {
    if (item.state !== "pending") continue;
    const line = outboxItems.get(item.client_id)?.querySelector(".state");
    if (line) line.textContent = pendingLabel(item);
  }
}

function renderOutboxItem(item) {
  let li = outboxItems.get(item.client_id);
  if (!outbox.get(item.client_id)) {
    li?.remove();
    outboxItems.delete(item.client_id);
    return;
  }
  const fresh = messageItem({
    message: { nick: state.nick, body: item.body, sent_at: null, client_id: item.client_id },
    own: true,
    youLabel: t("you"),
    clock,
  });
  fresh.dataset.state = item.state;
  const bubble = fresh.querySelector(".body").parentElement;
  const line = fresh.querySelector(".state");
  if (item.state === "pending") {
    bubble.classList.add("opacity-60");
    line.textContent = pendingLabel(item);
  } else {
    bubble.classList.remove("bg-indigo-600", "text-white");
    bubble.classList.add(
      "bg-red-50",
      "text-red-950",
      "ring-1",
      "ring-red-300",
      "dark:bg-red-500/10",
      "dark:text-red-100",
      "dark:ring-red-500/40",
    );
    line.classList.remove("text-slate-500", "dark:text-slate-400");
    line.classList.add("text-red-700", "dark:text-red-300", "flex", "flex-wrap", "items-center", "justify-end", "gap-x-2");
    const buttonCls =
      "rounded-lg px-2 py-0.5 font-semibold text-indigo-700 hover:bg-indigo-50 focus-visible:outline-2 focus-visible:outline-offset-1 focus-visible:outline-indigo-500 dark:text-indigo-300 dark:hover:bg-indigo-400/10";
    line.append(
      el("span", { text: t("failed", { reason: item.reason || t("errors.unknown") }) }),
      el("button", {
        cls: `retry ${buttonCls}`,
        text: t("retry"),
        attrs: { type: "button" },
        props: {
          onclick: () => {
            outbox.retry(item.client_id);
            renderOutboxItem(outbox.get(item.client_id));
            flushOutbox();
            ui.body.focus();
          },
        },
      }),
      el("button", {
        cls: `discard ${buttonCls}`,
        text: t("discard"),
        attrs: { type: "button" },
        props: {
          onclick: () => {
            outbox.remove(item.client_id);
            renderOutboxItem(item);
            ui.empty.hidden = timeline.byId.size > 0 || outbox.items.length > 0;
            ui.body.focus();
          },
        },
      }),
    );
  }
  if (li) li.replaceWith(fresh);
  else ui.outbox.append(fresh);
  outboxItems.set(item.client_id, fresh);
  regroup(fresh);
}

function rateWindowWait() {
  const { rate, rate_period: period } = state.limits;
  if (!rate || !period) return 0;
  const now = Date.now();
  state.sendTimes = state.sendTimes.filter((at) => now - at < period * 1000);
  if (state.sendTimes.length < rate) return 0;
  return state.sendTimes[0] + period * 1000 - now + 50;
}

function scheduleFlush(delay) {
  if (state.flushTimer) clearTimeout(state.flushTimer);
  state.flushTimer = setTimeout(() => {
    state.flushTimer = null;
    flushOutbox();
  }, Math.max(0, delay));
}

/** Send pending messages in order, pacing them under the server's rate limit. */
function flushOutbox() {
  if (!connection.ready) return;
  try {
    sendPending();
  } finally {
    refreshPendingLabels();
  }
}

function sendPending() {
  const now = Date.now();
  for (const item of outbox.items) {
    if (item.state !== "pending" || item.inflight) continue;
    if (item.retryAt > now) {
      scheduleFlush(item.retryAt - now);
      return; // keep the order: later messages wait for this one
    }
    const wait = rateWindowWait();
    if (wait > 0) {
      scheduleFlush(wait);
      return;
    }
    if (!connection.send({ type: "message", body: item.body, client_id: item.client_id })) return;
    item.inflight = true;
    state.sendTimes.push(Date.now());
  }
}

// --- composer -------------------------------------------------------------------------------

function codePoints(text) {
  return [...text].length;
}

function updateCounter() {
  const max = state.limits.max_body;
  const length = codePoints(ui.body.value.trim());
  if (!max || length < max * 0.8) {
    ui.counter.hidden = true;
    ui.body.removeAttribute("aria-invalid");
    delete ui.counter.dataset.over;
    return;
  }
  ui.counter.hidden = false;
  if (length > max) {
    ui.counter.textContent = t("charsOver", { count: length - max });
    ui.counter.dataset.over = "";
    ui.body.setAttribute("aria-invalid", "true");
  } else {
    ui.counter.textContent = t("charsLeft", { count: max - length });
    delete ui.counter.dataset.over;
    ui.body.removeAttribute("aria-invalid");
  }
}

function submitMessage() {
  const body = ui.body.value.trim();
  if (!body) return;
  const max = state.limits.max_body;
  if (max && codePoints(body) > max) {
    updateCounter();
    setNotice(t("charsOver", { count: codePoints(body) - max }));
    return;
  }
  const frameBytes = new TextEncoder().encode(JSON.stringify({ type: "message", body, client_id: "x".repeat(36) })).length;
  if (state.limits.max_frame && frameBytes > state.limits.max_frame) {
    setNotice(t("errors.too_long"));
    return;
  }
  const item = outbox.add(body);
  state.ownClientIds.add(item.client_id);
  saveList(sessionStorage, CLIENT_IDS_KEY, [...state.ownClientIds], 500);
  ui.body.value = "";
  updateCounter();
  ui.empty.hidden = true;
  renderOutboxItem(item);
  scrollToBottom();
  flushOutbox();
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

// --- nickname -------------------------------------------------------------------------------

function showNick() {
  const nick = state.nick || "…";
  ui.nickCurrent.textContent = nick;
  ui.nickAvatar.textContent = state.nick ? initial(state.nick) : "?";
  ui.nickAvatar.className = ui.nickAvatar.className.replace(/\bbg-\w+-\d+\b/g, "").trim();
  ui.nickAvatar.classList.add(state.nick ? avatarColor(state.nick) : "bg-indigo-600");
}

function nickProblem(nick) {
  const max = config.maxNick || 32;
  if (!nick) return t("nickEmpty");
  if (codePoints(nick) > max) return t("nickTooLong", { max });
  if (/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u.test(nick)) return t("nickControl");
  return "";
}

function setPopover(toggle, panel, open) {
  panel.hidden = !open;
  toggle.setAttribute("aria-expanded", String(open));
}

function openNickForm(open) {
  setPopover(ui.nickToggle, ui.nickForm, open);
  if (open) {
    setPopover(ui.onlineToggle, ui.onlinePanel, false);
    ui.nickInput.value = state.nick;
    ui.nickError.textContent = "";
    ui.nickInput.removeAttribute("aria-invalid");
    ui.nickInput.focus();
    ui.nickInput.select();
  }
}

ui.nickToggle.addEventListener("click", () => openNickForm(ui.nickForm.hidden));
ui.nickCancel.addEventListener("click", () => {
  openNickForm(false);
  ui.nickToggle.focus();
});
ui.nickForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const nick = ui.nickInput.value.trim();
  const problem = nickProblem(nick);
  if (problem) {
    ui.nickError.textContent = problem;
    ui.nickInput.setAttribute("aria-invalid", "true");
    ui.nickInput.focus();
    return;
  }
  if (nick !== state.nick) {
    state.nick = nick;
    storeNick(nick);
    showNick();
    // Offline, the new name goes out as ?nick= on the next connect.
    connection.send({ type: "nick", nick });
  }
  openNickForm(false);
  ui.nickToggle.focus();
});

// --- online list ----------------------------------------------------------------------------

ui.onlineToggle.addEventListener("click", () => {
  const open = ui.onlinePanel.hidden;
  setPopover(ui.onlineToggle, ui.onlinePanel, open);
  if (open) setPopover(ui.nickToggle, ui.nickForm, false);
});

document.addEventListener("keydown", (event) => {
  if (event.key !== "Escape") return;
  if (!ui.nickForm.hidden) {
    openNickForm(false);
    ui.nickToggle.focus();
  } else if (!ui.onlinePanel.hidden) {
    setPopover(ui.onlineToggle, ui.onlinePanel, false);
    ui.onlineToggle.focus();
  }
});

document.addEventListener("click", (event) => {
  for (const [toggle, panel] of [
    [ui.onlineToggle, ui.onlinePanel],
    [ui.nickToggle, ui.nickForm],
  ]) {
    if (!panel.hidden && !panel.contains(event.target) && !toggle.contains(event.target)) {
      setPopover(toggle, panel, false);
    }
  }
});

ui.reconnectNow.addEventListener("click", () => connection.retryNow());

// --- scrolling ------------------------------------------------------------------------------

function nearBottom() {
  return ui.log.scrollHeight - ui.log.scrollTop - ui.log.clientHeight < 48;
}

function scrollToBottom() {
  ui.log.scrollTop = ui.log.scrollHeight;
  state.atBottom = true;
  state.unseen = 0;
  updateJump();
}

function updateJump() {
  ui.jump.hidden = state.atBottom || state.unseen === 0;
  if (!ui.jump.hidden) ui.jumpText.textContent = t("newMessages", { count: state.unseen });
}

ui.log.addEventListener(
  "scroll",
  () => {
    state.atBottom = nearBottom();
    if (state.atBottom) state.unseen = 0;
    updateJump();
  },
  { passive: true },
);
ui.jump.addEventListener("click", () => {
  scrollToBottom();
  ui.body.focus();
});
// Keep the newest message in view when the viewport shrinks (mobile keyboard, resize).
new ResizeObserver(() => {
  if (state.atBottom) ui.log.scrollTop = ui.log.scrollHeight;
}).observe(ui.log);

// --- start ----------------------------------------------------------------------------------

showNick();
for (const item of outbox.items) renderOutboxItem(item);
ui.empty.hidden = outbox.items.length > 0;
connection.start();
