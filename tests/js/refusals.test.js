import assert from "node:assert/strict";
import { test } from "node:test";

import { refusal } from "../../static/chat/refusals.js";

// As chat/views.py hands them to the page (from chat/protocol.py).
const codes = {
  invalidJson: "invalid_json",
  invalidType: "invalid_type",
  invalidBody: "invalid_body",
  tooLong: "too_long",
  invalidNick: "invalid_nick",
  rateLimited: "rate_limited",
  binaryUnsupported: "binary_unsupported",
  unavailable: "unavailable",
  forbidden: "forbidden",
  muted: "muted",
};

test("a muted message fails with the mute's reason", () => {
  assert.deepEqual(refusal({ code: codes.muted, retry_after: 60 }, true, codes), { do: "fail", muted: true });
});

test("muted without a message is a notice", () => {
  assert.deepEqual(refusal({ code: codes.muted }, false, codes), { do: "notice", muted: true });
});

test("a rate-limited message waits for retry_after", () => {
  assert.deepEqual(refusal({ code: codes.rateLimited, retry_after: 1.5 }, true, codes), {
    do: "postpone",
    retryAfter: 1.5,
  });
});

test("a message the server could not store is sent again later", () => {
  assert.deepEqual(refusal({ code: codes.unavailable, retry_after: 3 }, true, codes), { do: "postpone" });
});

test("a message refused for what it says fails", () => {
  for (const code of [codes.tooLong, codes.invalidBody, codes.forbidden, "something_new"]) {
    assert.deepEqual(refusal({ code }, true, codes), { do: "fail", muted: false }, code);
  }
});

test("forbidden without a message is a notice", () => {
  assert.deepEqual(refusal({ code: codes.forbidden, detail: "no" }, false, codes), { do: "notice", muted: false });
});

test("a refused rename goes back to the confirmed name", () => {
  assert.deepEqual(refusal({ code: codes.invalidNick }, false, codes), { do: "revertNick" });
});

test("any other error without a message is a notice", () => {
  assert.deepEqual(refusal({ code: codes.invalidJson, detail: "bad" }, false, codes), { do: "notice", muted: false });
});
