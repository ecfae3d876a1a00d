// webhooks.verify against the reference implementation (the standardwebhooks
// package) and against the server's own signing code, on the same inputs.
import assert from "node:assert/strict";
import { createHmac, randomBytes } from "node:crypto";
import { test } from "node:test";
import { Webhook } from "standardwebhooks";
import { WebhookVerificationError, webhooks } from "../dist/esm/index.js";
import { python } from "./harness.mjs";

const SECRET = `whsec_${randomBytes(32).toString("base64")}`;
const OTHER = `whsec_${randomBytes(32).toString("base64")}`;
const BODY = JSON.stringify({ id: "42", type: "payout.failed", payout: { id: "p", amount: "12.50", reason: "é" } });
const now = () => Math.floor(Date.now() / 1000);

function signed({ secret = SECRET, id = "msg_1", at = now(), body = BODY } = {}) {
  return {
    "webhook-id": id,
    "webhook-timestamp": String(at),
    "webhook-signature": new Webhook(secret).sign(id, new Date(at * 1000), body),
  };
}

function ours(secret, headers, body, options) {
  try {
    return webhooks.verify(secret, headers, body, options);
  } catch (error) {
    if (error instanceof WebhookVerificationError) return "refused";
    throw error;
  }
}

function reference(secret, headers, body) {
  try {
    return new Webhook(secret).verify(body, headers);
  } catch {
    return "refused";
  }
}

test("a delivery signed by the reference library gives its event, amounts as strings", () => {
  const event = webhooks.verify(SECRET, signed(), BODY);
  assert.deepEqual(event, JSON.parse(BODY));
  assert.equal(event.payout.amount, "12.50");
});

// Both read the clock: the window's edges are 20 s away here (a loaded machine
// is slow between signing and verifying); the exact edge is tested with `now` below.
test("the reference library and verify agree on every case", () => {
  const good = signed();
  const cases = {
    good: [SECRET, good, BODY],
    "the secret without whsec_": [SECRET.slice(6), good, BODY],
    "another secret": [OTHER, good, BODY],
    "a body changed": [SECRET, good, BODY.replace("12.50", "99.50")],
    "another id": [SECRET, { ...good, "webhook-id": "msg_2" }, BODY],
    "another timestamp": [SECRET, { ...good, "webhook-timestamp": String(now() + 1) }, BODY],
    "a v2 signature": [SECRET, { ...good, "webhook-signature": good["webhook-signature"].replace("v1,", "v2,") }, BODY],
    "two signatures, the second good (a rotation)": [SECRET, { ...good, "webhook-signature": `${signed({ secret: OTHER })["webhook-signature"]} ${good["webhook-signature"]}` }, BODY],
    "two signatures, the first good": [SECRET, { ...good, "webhook-signature": `${good["webhook-signature"]} v1,AAAA` }, BODY],
    "a signature cut short": [SECRET, { ...good, "webhook-signature": good["webhook-signature"].slice(0, -2) }, BODY],
    "280 s old": [SECRET, signed({ at: now() - 280 }), BODY],
    "320 s old": [SECRET, signed({ at: now() - 320 }), BODY],
    "280 s ahead": [SECRET, signed({ at: now() + 280 }), BODY],
    "320 s ahead": [SECRET, signed({ at: now() + 320 }), BODY],
    "no id": [SECRET, { ...good, "webhook-id": undefined }, BODY],
    "no signature": [SECRET, { ...good, "webhook-signature": undefined }, BODY],
    "a timestamp that is no number": [SECRET, { ...good, "webhook-timestamp": "soon" }, BODY],
  };
  for (const [name, [secret, headers, body]] of Object.entries(cases)) {
    const clean = Object.fromEntries(Object.entries(headers).filter(([, v]) => v !== undefined));
    const expected = reference(secret, clean, body);
    assert.deepEqual(ours(secret, clean, body), expected, name);
  }
  assert.equal(ours(OTHER, good, BODY), "refused");
});

test("a delivery signed by the server's own code, with two secrets during a rotation, verifies with either", async () => {
  const code = `import json, sys
from triport_payouts import signing
print(json.dumps(signing.headers([sys.argv[1], sys.argv[2]], "evt_7", int(sys.argv[3]), sys.argv[4].encode())))`;
  const headers = JSON.parse(await python(code, SECRET, OTHER, String(now()), BODY));
  for (const secret of [SECRET, OTHER]) assert.deepEqual(webhooks.verify(secret, headers, Buffer.from(BODY)), JSON.parse(BODY));
  assert.equal(ours(`whsec_${randomBytes(32).toString("base64")}`, headers, BODY), "refused");
});

test("headers in any form and case; the body as text, Buffer, Uint8Array or ArrayBuffer", () => {
  const headers = signed();
  const upper = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toUpperCase(), v]));
  const nodeStyle = Object.assign(Object.create(null), headers);
  const bytes = new TextEncoder().encode(BODY);
  for (const form of [headers, upper, nodeStyle, new Headers(headers), new Map(Object.entries(headers))]) {
    for (const body of [BODY, Buffer.from(BODY), bytes, bytes.buffer.slice(0)]) {
      assert.equal(webhooks.verify(SECRET, form, body).id, "42");
    }
  }
});

test("each refusal says why, as the Python client does", () => {
  const at = now();
  const good = signed({ at });
  const why = (secret, headers, body, options) => {
    try {
      webhooks.verify(secret, headers, body, options);
    } catch (error) {
      assert.ok(error instanceof WebhookVerificationError && error.name === "WebhookVerificationError");
      return error.message;
    }
    return "accepted";
  };
  assert.equal(why(SECRET, { ...good, "webhook-id": undefined }, BODY), "missing header webhook-id");
  assert.equal(why(SECRET, { ...good, "webhook-timestamp": "x1" }, BODY), "invalid webhook-timestamp");
  assert.equal(why(SECRET, good, BODY, { now: new Date((at + 301) * 1000) }),
    "webhook-timestamp too far from now (a replay, or a clock off)");
  assert.equal(why(SECRET, good, BODY, { now: new Date((at + 300) * 1000) }), "accepted");
  assert.equal(why("whsec_not base64!", good, BODY), "the secret is not a whsec_ secret");
  assert.equal(why(SECRET, good, BODY + " "), "no matching signature");
  assert.equal(why(SECRET, signed({ at, body: "not json" }), "not json"), "the body is not JSON");
  assert.equal(why(SECRET, signed({ at, body: "[1, 2]" }), "[1, 2]"), "the body is not a JSON object");
  // Bytes that are not UTF-8, signed as bytes (the reference signs text only).
  const raw = Buffer.from([0x7b, 0xff, 0x7d]);
  const key = Buffer.from(SECRET.slice(6), "base64");
  const signature = createHmac("sha256", key).update(`msg_raw.${at}.`).update(raw).digest("base64");
  const headers = { "webhook-id": "msg_raw", "webhook-timestamp": String(at), "webhook-signature": `v1,${signature}` };
  assert.equal(why(SECRET, headers, raw), "the body is not JSON");
});
