import assert from "node:assert/strict";
import { test } from "node:test";

import { codePoints, rateWindowWait, retryDelay } from "../../static/chat/pacing.js";

test("no rate limit: no wait", () => {
  assert.deepEqual(rateWindowWait([1, 2, 3], { rate: 0, period: 10, now: 5 }), { wait: 0, recent: [1, 2, 3] });
});

test("under the rate: no wait, old sends forgotten", () => {
  const { wait, recent } = rateWindowWait([0, 9_000], { rate: 2, period: 10, now: 10_500 });
  assert.equal(wait, 0);
  assert.deepEqual(recent, [9_000]);
});

test("at the rate: wait until the oldest send leaves the window", () => {
  const { wait } = rateWindowWait([1_000, 2_000], { rate: 2, period: 10, now: 5_000 });
  assert.equal(wait, 1_000 + 10_000 - 5_000 + 50);
});

test("retryDelay follows the server's retry_after", () => {
  assert.equal(retryDelay({ retryAfter: 1.5, attempts: 1 }), 1_600);
});

test("retryDelay backs off exponentially with jitter, capped", () => {
  assert.equal(retryDelay({ attempts: 1, random: () => 1 }), 2_000);
  assert.equal(retryDelay({ attempts: 1, random: () => 0 }), 1_000);
  assert.equal(retryDelay({ attempts: 9, random: () => 1 }), 30_000);
});

test("codePoints counts characters as the server does", () => {
  assert.equal(codePoints("a😀b"), 3);
  assert.equal("a😀b".length, 4);
});
