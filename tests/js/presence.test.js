import assert from "node:assert/strict";
import { test } from "node:test";

import {
  applyPresence,
  isComplete,
  parseOnline,
  presenceChanges,
  presenceLines,
  sortedPeople,
} from "../../static/chat/presence.js";
import { t } from "./helpers.js";

/** @param {Record<string, string>} people session -> nick */
const list = (people) => new Map(Object.entries(people));
const online = (/** @type {Record<string, string>} */ people) =>
  Object.entries(people).map(([session, nick]) => ({ session, nick }));
const nobody = () => false;

test("parseOnline keeps well-formed entries", () => {
  assert.deepEqual(parseOnline([{ session: "s1", nick: "Ana" }, { session: 2, nick: "x" }, null]), list({ s1: "Ana" }));
});

test("parseOnline says null for a frame without a list", () => {
  assert.equal(parseOnline(undefined), null);
  assert.equal(parseOnline("nope"), null);
});

test("hello with a list and a count sets both", () => {
  const next = applyPresence({ list: null, count: null }, { online: online({ s1: "Ana", s2: "Bia" }), count: 2 });
  assert.deepEqual(next, { list: list({ s1: "Ana", s2: "Bia" }), count: 2, listChanged: true });
});

test("a frame without online keeps the list and updates only the count", () => {
  const current = { list: list({ s1: "Ana" }), count: 1 };
  const next = applyPresence(current, { count: 7 });
  assert.equal(next?.list, current.list);
  assert.equal(next?.count, 7);
  assert.equal(next?.listChanged, false);
});

test("the count comes from count, not from the list's length", () => {
  // The list is only the first page: 2 names shown, 250 people online.
  const next = applyPresence({ list: null, count: null }, { online: online({ s1: "Ana", s2: "Bia" }), count: 250 });
  assert.equal(next?.count, 250);
  assert.equal(next?.list?.size, 2);
});

test("a list without a count falls back to the list's size", () => {
  const next = applyPresence({ list: null, count: null }, { online: online({ s1: "Ana" }) });
  assert.equal(next?.count, 1);
});

test("a frame with neither a list nor a valid count changes nothing", () => {
  assert.equal(applyPresence({ list: null, count: 3 }, { count: -1 }), null);
  assert.equal(applyPresence({ list: null, count: 3 }, { count: "4" }), null);
  assert.equal(applyPresence({ list: null, count: 3 }, {}), null);
});

test("a count before any list leaves the list unknown", () => {
  assert.deepEqual(applyPresence({ list: null, count: null }, { count: 4 }), { list: null, count: 4, listChanged: false });
});

test("isComplete when the first page holds everyone", () => {
  assert.equal(isComplete({ list: list({ s1: "Ana" }), count: 1 }), true);
  assert.equal(isComplete({ list: list({ s1: "Ana" }), count: 2 }), false);
  assert.equal(isComplete({ list: null, count: 0 }), false);
});

test("presenceChanges finds joins, leaves and renames", () => {
  const changes = presenceChanges(list({ s1: "Ana", s2: "Bia" }), list({ s1: "Ana Clara", s3: "Caio" }), nobody);
  assert.deepEqual(changes, { joined: ["Caio"], left: ["Bia"], renamed: [["Ana", "Ana Clara"]] });
});

test("presenceChanges leaves out this tab's own sessions", () => {
  const mine = (/** @type {string} */ s) => s.startsWith("me");
  const changes = presenceChanges(list({ me: "Ana" }), list({ me: "Ana 2", me2: "Ana" }), mine);
  assert.deepEqual(changes, { joined: [], left: [], renamed: [] });
});

test("a reconnect under the same name is neither a join nor a leave", () => {
  const changes = presenceChanges(list({ old: "Bia" }), list({ new: "Bia" }), nobody);
  assert.deepEqual(changes, { joined: [], left: [], renamed: [] });
});

test("two tabs of one name joining count once", () => {
  const changes = presenceChanges(list({}), list({ a: "Bia", b: "Bia" }), nobody);
  assert.deepEqual(changes.joined, ["Bia"]);
});

test("presenceLines names up to three people", () => {
  const lines = presenceLines({ joined: ["A", "B"], left: ["C"], renamed: [["D", "E"]] }, t);
  assert.deepEqual(lines, ["A joined", "B joined", "C left", "D is now E"]);
});

test("presenceLines sums up more than three", () => {
  const lines = presenceLines({ joined: ["A", "B", "C", "D"], left: ["E", "F", "G", "H", "I"], renamed: [] }, t);
  assert.deepEqual(lines, ["4 people joined", "5 people left"]);
});

test("presenceLines shows at most three renames", () => {
  const renamed = /** @type {[string, string][]} */ ([["a", "b"], ["c", "d"], ["e", "f"], ["g", "h"]]);
  assert.equal(presenceLines({ joined: [], left: [], renamed }, t).length, 3);
});

test("sortedPeople puts this tab first, then by name", () => {
  const people = sortedPeople(list({ s1: "Zoe", s2: "ana", s3: "Bia" }), "s1", "en");
  assert.deepEqual(
    people.map((p) => [p.nick, p.own]),
    [
      ["Zoe", true],
      ["ana", false],
      ["Bia", false],
    ],
  );
});
