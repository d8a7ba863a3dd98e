// The page holds no copies of the protocol's codes: chat/views.py hands them to it.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { test } from "node:test";

const root = new URL("../../", import.meta.url);
const protocol = readFileSync(new URL("chat/protocol.py", root), "utf8");
const pageDir = new URL("static/chat/", root);
const modules = readdirSync(pageDir).filter((name) => name.endsWith(".js"));

const closeCodes = [...protocol.matchAll(/^CLOSE_\w+ = (\d+)/gm)].map((m) => m[1]);
const errorCodes = [...protocol.matchAll(/^[A-Z_]+ = "([a-z_]+)"/gm)].map((m) => m[1]);

test("chat/protocol.py still has the codes this test looks for", () => {
  assert.ok(closeCodes.length >= 4, closeCodes.join());
  assert.ok(errorCodes.includes("muted") && errorCodes.includes("invalid_nick"), errorCodes.join());
});

for (const name of modules) {
  test(`${name} has no close or error code of the protocol`, () => {
    const source = readFileSync(new URL(name, pageDir), "utf8");
    for (const code of closeCodes) assert.doesNotMatch(source, new RegExp(`\\b${code}\\b`), code);
    for (const code of errorCodes) assert.doesNotMatch(source, new RegExp(`["'\`.]${code}["'\`]`), code);
  });
}
