import assert from "node:assert/strict";
import { test } from "node:test";

import { attemptAfterClose, backoffDelay, rfcCode } from "../../static/chat/connection.js";

// As chat/views.py hands them to the page (from chat/protocol.py).
const codes = { policyViolation: 4008, tooBig: 4009, tryAgainLater: 4013, serviceRestart: 1012 };

test("rfcCode folds the application's 4000+ codes back", () => {
  assert.equal(rfcCode(4008), 1008);
  assert.equal(rfcCode(1006), 1006);
  assert.equal(rfcCode(null), null);
});

test("backoffDelay is full jitter under a capped ceiling", () => {
  assert.equal(backoffDelay(0, () => 1), 500);
  assert.equal(backoffDelay(3, () => 0.5), 2_000);
  assert.equal(backoffDelay(20, () => 1), 30_000);
});

test("a close for cause waits the longest", () => {
  assert.equal(attemptAfterClose(0, codes.policyViolation, codes), 6);
  assert.equal(attemptAfterClose(0, codes.tooBig, codes), 6);
  assert.equal(attemptAfterClose(8, codes.tooBig, codes), 8);
});

test("the RFC form of a code means the same", () => {
  assert.equal(attemptAfterClose(0, 1008, codes), 6);
});

test("try again later waits a while", () => {
  assert.equal(attemptAfterClose(0, codes.tryAgainLater, codes), 2);
});

test("a worker going away lets the page come back soon", () => {
  assert.equal(attemptAfterClose(5, codes.serviceRestart, codes), 1);
  assert.equal(attemptAfterClose(5, 1001, codes), 1);
});

test("other closes keep the backoff", () => {
  assert.equal(attemptAfterClose(3, 1006, codes), 3);
  assert.equal(attemptAfterClose(3, null, codes), 3);
});
