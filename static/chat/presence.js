// Who is online, as `hello` and `presence` frames tell it. Pure: no DOM, no socket.
//
// `count` is everyone online; `online` is only the first page of the list, and a `presence`
// frame carries it only when that page changed. So the count shown comes from `count`, and
// a frame without `online` keeps the list the page has.

/**
 * The online list's first page: session -> nickname.
 * @typedef {Map<string, string>} OnlineList
 * @typedef {{list: OnlineList | null, count: number | null}} Presence null: not known yet
 * @typedef {{joined: string[], left: string[], renamed: [string, string][]}} PresenceChanges
 */

/**
 * The list in a frame, or null when the frame has none (or a malformed one).
 * @param {unknown} online
 * @returns {OnlineList | null}
 */
export function parseOnline(online) {
  if (!Array.isArray(online)) return null;
  /** @type {OnlineList} */
  const list = new Map();
  for (const person of online) {
    if (!person || typeof person !== "object") continue;
    const { session, nick } = /** @type {{session?: unknown, nick?: unknown}} */ (person);
    if (typeof session === "string" && typeof nick === "string") list.set(session, nick);
  }
  return list;
}

/**
 * What the page knows after a `hello` or `presence` frame: a new list only when the frame
 * has one, the count from `count` (from the list's size only when a frame has a list and
 * no valid count). `listChanged` says whether the list was replaced; null: nothing usable.
 * @param {Presence} current
 * @param {{online?: unknown, count?: unknown}} frame
 * @returns {(Presence & {listChanged: boolean}) | null}
 */
export function applyPresence(current, frame) {
  const list = parseOnline(frame.online);
  const count = Number.isInteger(frame.count) && /** @type {number} */ (frame.count) >= 0 ? /** @type {number} */ (frame.count) : null;
  if (list === null && count === null) return null;
  return {
    list: list ?? current.list,
    count: count ?? (list ? list.size : current.count),
    listChanged: list !== null,
  };
}

/**
 * True when the list holds everyone (the first page is the whole list).
 * @param {Presence} presence
 */
export function isComplete(presence) {
  return presence.list !== null && presence.count !== null && presence.list.size >= presence.count;
}

/**
 * Who joined, left or was renamed between two lists, leaving out this tab's own sessions.
 * A reconnect is a leave and a join under the same name: neither is reported.
 * @param {OnlineList} prev
 * @param {OnlineList} next
 * @param {(session: string) => boolean} mine
 * @returns {PresenceChanges}
 */
export function presenceChanges(prev, next, mine) {
  /** @type {string[]} */
  const joined = [];
  /** @type {string[]} */
  const left = [];
  /** @type {[string, string][]} */
  const renamed = [];
  for (const [session, nick] of next) {
    if (mine(session)) continue;
    const before = prev.get(session);
    if (before === undefined) joined.push(nick);
    else if (before !== nick) renamed.push([before, nick]);
  }
  for (const [session, nick] of prev) {
    if (!mine(session) && !next.has(session)) left.push(nick);
  }
  const prevNicks = new Set([...prev].filter(([s]) => !mine(s)).map(([, n]) => n));
  const nextNicks = new Set([...next].filter(([s]) => !mine(s)).map(([, n]) => n));
  return {
    joined: [...new Set(joined)].filter((n) => !prevNicks.has(n)),
    left: [...new Set(left)].filter((n) => !nextNicks.has(n)),
    renamed,
  };
}

/**
 * The discreet lines for the log: a line per person, or one line for more than three.
 * @param {PresenceChanges} changes
 * @param {import("./i18n.js").Translate} t
 * @returns {string[]}
 */
export function presenceLines({ joined, left, renamed }, t) {
  const lines = [];
  if (joined.length > 3) lines.push(t("manyJoined", { count: joined.length }));
  else for (const nick of joined) lines.push(t("joined", { nick }));
  if (left.length > 3) lines.push(t("manyLeft", { count: left.length }));
  else for (const nick of left) lines.push(t("left", { nick }));
  for (const [old, nick] of renamed.slice(0, 3)) lines.push(t("renamed", { old, new: nick }));
  return lines;
}

/**
 * The list as shown: this tab's own entry first, then by name in the page's language.
 * @param {OnlineList} list
 * @param {string | null} ownSession
 * @param {string} lang
 * @returns {{session: string, nick: string, own: boolean}[]}
 */
export function sortedPeople(list, ownSession, lang) {
  const people = [...list].map(([session, nick]) => ({ session, nick, own: session === ownSession }));
  people.sort((a, b) => Number(b.own) - Number(a.own) || a.nick.localeCompare(b.nick, lang));
  return people;
}
