import assert from "node:assert/strict";
import { test } from "node:test";

import { readConfig } from "../../static/chat/config.js";

/**
 * A document holding `config` in #chat-config, as the page's json_script does.
 * @param {unknown} config
 */
function page(config) {
  const text = config === undefined ? null : JSON.stringify(config);
  return /** @type {Document} */ (
    /** @type {unknown} */ ({
      getElementById: (/** @type {string} */ id) => (id === "chat-config" && text !== null ? { textContent: text } : null),
    })
  );
}

const protocol = { close: { tooBig: 4009 }, errors: { muted: "muted" } };

test("the server's values win over the defaults", () => {
  const config = readConfig(page({ protocol, maxBody: 500, strings: { send: "Send" } }));
  assert.equal(config.maxBody, 500);
  assert.deepEqual(config.strings, { send: "Send" });
  assert.equal(config.protocol.close.tooBig, 4009);
});

test("what the server leaves out has a default", () => {
  const config = readConfig(page({ protocol }));
  assert.equal(config.wsPath, "/ws/chat/");
  assert.equal(config.apiPath, "/api/messages");
  assert.equal(config.maxNick, 32);
  assert.deepEqual(config.strings, {});
});

test("a page without the protocol's codes fails at once, not on the first close", () => {
  assert.throws(() => readConfig(page({ maxBody: 500 })), /no protocol codes/);
  assert.throws(() => readConfig(page({ protocol: { close: {} } })), /no protocol codes/);
  assert.throws(() => readConfig(page(undefined)), /no protocol codes/);
});
