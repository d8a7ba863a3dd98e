import assert from "node:assert/strict";
import { afterEach, beforeEach, mock, test } from "node:test";

import { createGapRepair, retryAfterSeconds } from "../../static/chat/gaps.js";
import { Store } from "../../static/chat/store.js";
import { Timeline } from "../../static/chat/timeline.js";
import { MemoryStorage } from "./helpers.js";

/** @param {number} id */
const message = (id) => ({ id, nick: "Ana", body: `m${id}`, sent_at: "2026-11-29T14:02:00Z" });

/**
 * @param {number} status
 * @param {object} body
 * @param {Record<string, string>} [headers]
 */
const reply = (status, body, headers = {}) => new Response(JSON.stringify(body), { status, headers });

const limited = (seconds = "5") => reply(429, { error: "rate_limited" }, { "Retry-After": seconds });

/** A page's gap repair over a timeline holding 1 and 3, answering with `replies` in turn. */
function setUp(/** @type {Response[]} */ ...replies) {
  const store = new Store({ local: new MemoryStorage(), session: new MemoryStorage() });
  const timeline = new Timeline();
  timeline.add(message(1));
  timeline.add(message(3));
  /** @type {string[]} */
  const asked = [];
  const errors = { count: 0 };
  const gaps = createGapRepair({
    store,
    timeline,
    apiPath: "/api/messages",
    onMessages: (messages) => {
      for (const m of messages) timeline.add(m);
    },
    onError: () => {
      errors.count += 1;
    },
    fetchImpl: async (url) => {
      asked.push(String(url));
      const next = replies.shift();
      if (!next) throw new Error("no reply left");
      return next;
    },
  });
  return { store, timeline, gaps, asked, errors };
}

/** Let the awaited fetches and JSON parsing run. */
const settle = async () => {
  for (let i = 0; i < 10; i += 1) await new Promise((resolve) => setImmediate(resolve));
};

beforeEach(() => mock.timers.enable({ apis: ["setTimeout"] }));
afterEach(() => mock.timers.reset());

test("Retry-After is read as seconds or as a date, capped, with the grace as default", () => {
  const now = Date.parse("2026-11-29T14:00:00Z");
  assert.equal(retryAfterSeconds("7", now), 7);
  assert.equal(retryAfterSeconds(" 0 ", now), 0);
  assert.equal(retryAfterSeconds("Sun, 29 Nov 2026 14:00:10 GMT", now), 10);
  assert.equal(retryAfterSeconds("Sun, 29 Nov 2026 13:59:00 GMT", now), 0);
  assert.equal(retryAfterSeconds("86400", now), 120);
  assert.equal(retryAfterSeconds(null, now), 1.5);
  assert.equal(retryAfterSeconds("soon", now), 1.5);
  assert.equal(retryAfterSeconds("-3", now), 1.5);
});

test("a 429 is no try: the page waits for Retry-After, then fetches the gap", async () => {
  const { store, timeline, gaps, asked, errors } = setUp(
    limited("5"),
    reply(200, { messages: [message(2)], has_more: false }),
  );
  await gaps.repair({ now: true });
  assert.deepEqual(asked, ["/api/messages?after=1&limit=500"]);
  assert.equal(errors.count, 0);
  assert.equal(store.gapTry(1), 0);

  mock.timers.tick(4999);
  await settle();
  assert.equal(asked.length, 1, "asked again before Retry-After");
  mock.timers.tick(1);
  await settle();
  assert.equal(asked.length, 2);
  assert.equal(timeline.hasGap(), false);
  assert.equal(timeline.contiguous, 3);
});

test("refusals, however many, never turn a gap into a hole", async () => {
  const { timeline, gaps, asked } = setUp(limited("2"), limited("2"), limited("2"), limited("2"));
  await gaps.repair({ now: true });
  for (let i = 0; i < 3; i += 1) {
    mock.timers.tick(2000);
    await settle();
  }
  assert.equal(asked.length, 4);
  assert.equal(timeline.hasGap(), true);
  assert.equal(timeline.contiguous, 1, "the missing id was skipped as a hole");
});

test("other failures count: after two the missing id is a hole", async () => {
  const { timeline, gaps, asked, errors } = setUp(reply(500, {}), reply(503, {}));
  await gaps.repair({ now: true });
  assert.equal(errors.count, 1);
  mock.timers.tick(1500);
  await settle();
  assert.equal(errors.count, 2);
  mock.timers.tick(1500);
  await settle();
  assert.equal(asked.length, 2);
  assert.equal(timeline.hasGap(), false);
  assert.equal(timeline.contiguous, 3);
});
