// The page's state, in one place. Every other module reads it through these methods and
// changes it only through them; none keeps page state in module variables or reads it back
// from DOM attributes. What stays with a module is only how it schedules its own work (timer
// handles) and which element draws what (e.g. the outbox's items by client_id). The
// messages themselves are in the Timeline, the unsent ones in the Outbox. No DOM here:
// storages are handed in, so the store runs under Node too.

import { applyPresence, isComplete } from "./presence.js";

const NICK_KEY = "chat.nick";
const SESSIONS_KEY = "chat.sessions";
const CLIENT_IDS_KEY = "chat.clientIds";

/**
 * @typedef {Pick<Storage, "getItem" | "setItem">} StorageLike
 * @typedef {{name: string, moderator: boolean}} User
 * @typedef {{max_body: number, max_frame: number, rate: number, rate_period: number, typing_interval: number}} Limits
 * @typedef {"connecting" | "online" | "reconnecting" | "offline"} Status
 * @typedef {"online" | "nick"} Panel
 * @typedef {import("./presence.js").Presence} Presence
 */

/**
 * @param {StorageLike} storage
 * @param {string} key
 * @returns {string[]}
 */
function loadList(storage, key) {
  try {
    const value = JSON.parse(storage.getItem(key) || "[]");
    return Array.isArray(value) ? value.filter((v) => typeof v === "string") : [];
  } catch {
    return [];
  }
}

/**
 * @param {StorageLike} storage
 * @param {string} key
 * @param {Iterable<string>} values
 * @param {number} keep the newest this many
 */
function saveList(storage, key, values, keep) {
  try {
    storage.setItem(key, JSON.stringify([...values].slice(-keep)));
  } catch {
    // Storage unavailable: fine for this page's lifetime.
  }
}

/**
 * @param {unknown} user
 * @returns {User | null}
 */
function parseUser(user) {
  if (!user || typeof user !== "object") return null;
  const { name, moderator } = /** @type {{name?: unknown, moderator?: unknown}} */ (user);
  return typeof name === "string" ? { name, moderator: moderator === true } : null;
}

export class Store {
  /**
   * @param {{local: StorageLike, session: StorageLike, limits?: Partial<Limits>}} options
   *   `local` keeps the nickname, `session` this tab's sessions and client ids.
   */
  constructor({ local, session, limits = {} }) {
    /** @private */
    this.local = local;
    /** @private */
    this.tab = session;
    let nick = "";
    try {
      nick = local.getItem(NICK_KEY) || "";
    } catch {
      // No storage: a fresh name from the server.
    }
    /** @private */
    this.s = {
      /** The nickname this page asks for. */
      nick,
      /** The nickname the server last confirmed. */
      confirmedNick: "",
      /** @type {string | null} this socket's session, null before the first hello */
      session: null,
      /** @type {User | null} the signed-in account, null for a guest */
      user: null,
      // Every session this tab had (reconnects and reloads): their messages are "You".
      ownSessions: new Set(loadList(session, SESSIONS_KEY)),
      ownClientIds: new Set(loadList(session, CLIENT_IDS_KEY)),
      /** @type {Limits} */
      limits: { max_body: 2000, max_frame: 0, rate: 0, rate_period: 0, typing_interval: 2, ...limits },
      /** @type {Presence} */
      presence: { list: null, count: null },
      /** @type {Status} */
      status: "connecting",
      /** @type {Map<string, string>} session -> nick of who is typing */
      typing: new Map(),
      lastTypingSent: 0,
      /** @type {number[]} */
      sendTimes: [],
      atBottom: true,
      unseen: 0, // new messages below while the reader is scrolled up
      unreadInTitle: 0, // messages from others while the tab was hidden
      /** @type {Panel | null} */
      openPanel: null,
      // Gap repair: a fetch is running; fetches per contiguous id; the API's page size
      // (null: the server's default, after it refused ours).
      gapBusy: false,
      /** @type {Map<number, number>} */
      gapTries: new Map(),
      /** @type {number | null} */
      apiPage: 500,
    };
  }

  // --- who this page is ------------------------------------------------------------------

  nick() {
    return this.s.nick;
  }

  confirmedNick() {
    return this.s.confirmedNick;
  }

  /**
   * The nickname to ask for (remembered for the next visit).
   * @param {string} nick
   */
  setNick(nick) {
    this.s.nick = nick;
    try {
      this.local.setItem(NICK_KEY, nick);
    } catch {
      // Not remembered; still used for this page.
    }
  }

  /** A refused rename: back to the last name the server confirmed. */
  revertNick() {
    this.setNick(this.s.confirmedNick);
  }

  session() {
    return this.s.session;
  }

  isFirstHello() {
    return this.s.session === null;
  }

  user() {
    return this.s.user;
  }

  isModerator() {
    return this.s.user?.moderator === true;
  }

  limits() {
    return /** @type {Readonly<Limits>} */ (this.s.limits);
  }

  /**
   * Take in a `hello`: the session, limits, account and confirmed name. Returns whether the
   * moderator role changed (the buttons under messages then need redrawing).
   * @param {{session: string, nick: string, limits?: unknown, user?: unknown}} hello
   */
  greet(hello) {
    this.s.session = hello.session;
    this.s.ownSessions.add(hello.session);
    saveList(this.tab, SESSIONS_KEY, this.s.ownSessions, 50);
    if (hello.limits && typeof hello.limits === "object") Object.assign(this.s.limits, hello.limits);
    const wasModerator = this.isModerator();
    this.s.user = parseUser(hello.user);
    this.s.confirmedNick = hello.nick;
    if (!this.s.nick || this.s.nick === hello.nick) this.setNick(hello.nick);
    return this.isModerator() !== wasModerator;
  }

  /**
   * A message this tab wrote: its client id marks it "You" even from another session.
   * @param {string} clientId
   */
  addOwnClientId(clientId) {
    this.s.ownClientIds.add(clientId);
    saveList(this.tab, CLIENT_IDS_KEY, this.s.ownClientIds, 500);
  }

  /**
   * A session of this tab (this socket's or an earlier one).
   * @param {string | undefined} session
   */
  isOwnSession(session) {
    return session !== undefined && this.s.ownSessions.has(session);
  }

  /**
   * Written from this tab: by one of its sessions, or with one of its client ids.
   * @param {{session?: string, client_id?: string | null}} message
   */
  isOwn(message) {
    return (
      this.isOwnSession(message.session) || (message.client_id != null && this.s.ownClientIds.has(message.client_id))
    );
  }

  /**
   * Own for moderation: written from this tab, or by the same signed-in account elsewhere.
   * @param {{session?: string, client_id?: string | null, account?: boolean, nick: string}} message
   */
  isOwnForModeration(message) {
    const user = this.s.user;
    return this.isOwn(message) || (user !== null && message.account === true && message.nick === user.name);
  }

  // --- who is online ------------------------------------------------------------------------

  presence() {
    return /** @type {Readonly<Presence>} */ (this.s.presence);
  }

  /**
   * Take in a `presence` frame (or the presence part of `hello`). Returns the previous
   * presence and whether the list was replaced, or null if the frame said nothing usable.
   * @param {{online?: unknown, count?: unknown}} frame
   */
  updatePresence(frame) {
    const previous = this.s.presence;
    const next = applyPresence(previous, frame);
    if (!next) return null;
    this.s.presence = { list: next.list, count: next.count };
    // Our own entry shows which name the server accepted (a refused rename keeps the old one).
    const own = this.s.session !== null ? next.list?.get(this.s.session) : undefined;
    if (next.listChanged && own !== undefined) this.s.confirmedNick = own;
    return { previous, listChanged: next.listChanged, complete: isComplete(previous) && isComplete(this.s.presence) };
  }

  // --- the connection ----------------------------------------------------------------------

  status() {
    return this.s.status;
  }

  /** @param {Status} status */
  setStatus(status) {
    this.s.status = status;
  }

  // --- typing -------------------------------------------------------------------------------

  /** Nicknames of who is typing, in the order they started. */
  typingNicks() {
    return [...this.s.typing.values()];
  }

  /**
   * @param {string} session
   * @param {string} nick
   */
  startTyping(session, nick) {
    this.s.typing.set(session, nick);
  }

  /**
   * @param {string} session
   * @returns {boolean} whether that session was typing
   */
  stopTyping(session) {
    return this.s.typing.delete(session);
  }

  /** @returns {string[]} the sessions that were typing */
  clearTyping() {
    const sessions = [...this.s.typing.keys()];
    this.s.typing.clear();
    return sessions;
  }

  /**
   * Whether to tell the others "typing" now (at most once per interval); records it.
   * @param {number} now
   */
  typingNoticeDue(now) {
    const interval = (this.s.limits.typing_interval || 2) * 1000;
    return now - this.s.lastTypingSent >= interval;
  }

  /** @param {number} now */
  typingNoticeSent(now) {
    this.s.lastTypingSent = now;
  }

  // --- sending ------------------------------------------------------------------------------

  sendTimes() {
    return /** @type {readonly number[]} */ (this.s.sendTimes);
  }

  /** @param {number[]} times the send times still inside the rate window */
  keepSendTimes(times) {
    this.s.sendTimes = times;
  }

  /** @param {number} at */
  recordSend(at) {
    this.s.sendTimes.push(at);
  }

  // --- reading position ---------------------------------------------------------------------

  atBottom() {
    return this.s.atBottom;
  }

  /** @param {boolean} atBottom */
  setAtBottom(atBottom) {
    this.s.atBottom = atBottom;
    if (atBottom) this.s.unseen = 0;
  }

  unseen() {
    return this.s.unseen;
  }

  addUnseen() {
    this.s.unseen += 1;
  }

  unreadInTitle() {
    return this.s.unreadInTitle;
  }

  addUnreadInTitle() {
    this.s.unreadInTitle += 1;
  }

  clearUnreadInTitle() {
    this.s.unreadInTitle = 0;
  }

  // --- gap repair -----------------------------------------------------------------------------

  gapBusy() {
    return this.s.gapBusy;
  }

  /** @param {boolean} busy */
  setGapBusy(busy) {
    this.s.gapBusy = busy;
  }

  /**
   * How often the ids after `contiguous` were fetched.
   * @param {number} contiguous
   */
  gapTry(contiguous) {
    const tries = this.s.gapTries.get(contiguous) || 0;
    return tries;
  }

  /** @param {number} contiguous */
  noteGapTry(contiguous) {
    this.s.gapTries.set(contiguous, this.gapTry(contiguous) + 1);
  }

  /** A fetch that the server refused for now (429) was no try. @param {number} contiguous */
  forgetGapTry(contiguous) {
    const tries = this.gapTry(contiguous) - 1;
    if (tries > 0) this.s.gapTries.set(contiguous, tries);
    else this.s.gapTries.delete(contiguous);
  }

  /** The history API's page size to ask for, or null for the server's default. */
  apiPage() {
    return this.s.apiPage;
  }

  /** The server refused our page size (its cap is lower): let it pick. */
  dropApiPage() {
    this.s.apiPage = null;
  }

  // --- header popovers ----------------------------------------------------------------------

  openPanel() {
    return this.s.openPanel;
  }

  /** @param {Panel | null} panel at most one is open */
  setOpenPanel(panel) {
    this.s.openPanel = panel;
  }
}
