// The client without a server: options, what it sends, which answers it
// retries and how often, and that the token is never shown. A fake fetch
// answers from a script and records every call.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { describe, test } from "node:test";
import { inspect } from "node:util";
import * as sdk from "../dist/esm/index.js";
import {
  AdminTokenInvalid, DatabaseUnavailable, ERROR_CLASSES, IdempotencyKeyInUse, Internal, InvalidJson,
  PayoutNotActionable, TransportError, TriportAdmin, TriportError, errorClassFor,
} from "../dist/esm/index.js";
import { freePort, ROOT, SDK } from "./harness.mjs";

const ID = "4f2c9b1e-7a3d-4c0b-9e21-3f8a6d5c1b22";
const SECRET = "s3cret-token-value";

/** A fetch that answers from `script` (a Response-making function, or an Error to throw) and records calls. */
function fakeFetch(script) {
  const calls = [];
  const fetch = async (url, init) => {
    calls.push({ url, ...init, headers: new Headers(init.headers) });
    const next = script.length > 1 ? script.shift() : script[0];
    if (next instanceof Error) throw next;
    return typeof next === "function" ? next(init) : next.clone();
  };
  return { fetch, calls };
}

const json = (status, payload, headers = {}) =>
  new Response(JSON.stringify(payload), { status, headers: { "Content-Type": "application/json", ...headers } });
const OK = json(200, { ok: true });
const refused = () => Object.assign(new TypeError("fetch failed"), { cause: Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:9"), { code: "ECONNREFUSED" }) });

function admin(fetch, options = {}) {
  return new TriportAdmin({ adminToken: SECRET, baseUrl: "http://api.test", fetch, backoffMs: 1, maxBackoffMs: 2, ...options });
}

describe("options", () => {
  test("the base URL: the option, else TRIPORT_BASE_URL, else the default; a trailing slash dropped", () => {
    const saved = process.env.TRIPORT_BASE_URL;
    try {
      delete process.env.TRIPORT_BASE_URL;
      assert.equal(new TriportAdmin({ adminToken: "t" }).baseUrl, "https://api.triport.io");
      process.env.TRIPORT_BASE_URL = "http://127.0.0.1:9/prefix/";
      assert.equal(new TriportAdmin({ adminToken: "t" }).baseUrl, "http://127.0.0.1:9/prefix");
      assert.equal(new TriportAdmin({ adminToken: "t", baseUrl: "https://x.example" }).baseUrl, "https://x.example");
    } finally {
      if (saved === undefined) delete process.env.TRIPORT_BASE_URL;
      else process.env.TRIPORT_BASE_URL = saved;
    }
    for (const bad of ["ftp://x", "127.0.0.1:8000", "http://x/?q=1", "http://x y", "http://x/#f", ""]) {
      assert.throws(() => new TriportAdmin({ adminToken: "t", baseUrl: bad }), TypeError, bad);
    }
  });

  test("bad tokens, actors and numbers are refused at once, without showing the token", () => {
    const error = (() => { try { new TriportAdmin({ adminToken: `${SECRET}\r\nX-Evil: 1` }); } catch (e) { return e; } })();
    assert.ok(error instanceof TypeError && !error.message.includes(SECRET));
    assert.throws(() => new TriportAdmin({ adminToken: undefined }), TypeError);
    assert.throws(() => new TriportAdmin({ adminToken: "t", actor: "a\nb" }), TypeError);
    for (const option of ["timeoutMs", "maxRetries", "backoffMs", "maxBackoffMs"]) {
      assert.throws(() => new TriportAdmin({ adminToken: "t", [option]: -1 }), TypeError, option);
    }
  });
});

describe("what is sent", () => {
  test("the token, the actor in UTF-8, the User-Agent with the version, JSON with one key per action", async () => {
    const { fetch, calls } = fakeFetch([OK]);
    const client = admin(fetch, { actor: "jörg" });
    assert.equal(await client.referrals.payouts.markFailed(ID, { reason: "wallet rejected" }), true);
    assert.equal(await client.referrals.payouts.markSent(ID, { txHash: "0xabc", idempotencyKey: "mine-1" }), true);
    assert.equal(await client.referrals.payouts.markProcessing(ID), true);
    const [failed, sent, processing] = calls;
    assert.equal(failed.url, `http://api.test/v1/admin/referrals/payouts/${ID}/failed`);
    assert.equal(failed.method, "POST");
    assert.equal(failed.body, '{"reason":"wallet rejected"}');
    assert.equal(failed.headers.get("x-admin-token"), SECRET);
    assert.equal(Buffer.from(failed.headers.get("x-admin-actor"), "latin1").toString("utf8"), "jörg");
    assert.equal(failed.headers.get("content-type"), "application/json");
    const { version } = JSON.parse(readFileSync(join(SDK, "package.json"), "utf8"));
    assert.equal(sdk.VERSION, version);
    assert.equal(failed.headers.get("user-agent"), `triport-sdk-typescript/${version}`);
    assert.equal(failed.redirect, "manual");
    assert.match(failed.headers.get("idempotency-key"), /^[0-9a-f-]{36}$/);
    assert.equal(sent.headers.get("idempotency-key"), "mine-1");
    assert.equal(sent.body, '{"tx_hash":"0xabc"}');
    assert.equal(processing.body, "{}");
    assert.notEqual(processing.headers.get("idempotency-key"), failed.headers.get("idempotency-key"));
  });

  test("the writes: snake_case bodies, a note only when given, one key per call or the caller's", async () => {
    const { fetch, calls } = fakeFetch([json(201, { id: "c1" }), json(201, { id: "c2" }), json(201, { id: ID }), OK]);
    const { credits, payouts } = admin(fetch).referrals;
    assert.deepEqual(await credits.create({ userId: "alice", amount: "25.50", currency: "USDT", note: "november" }), { id: "c1" });
    await credits.create({ userId: "alice", amount: "1.00", currency: "USDT", note: null }, { idempotencyKey: "credit-1" });
    assert.deepEqual(await payouts.create({ userId: "alice", amount: "20.00", currency: "USDT", destination: "0xA11CE" }), { id: ID });
    assert.equal(await payouts.cancel(ID, { idempotencyKey: "cancel-1" }), true);
    assert.deepEqual(calls.map((c) => [c.method, c.url.replace("http://api.test/v1/admin/referrals", ""), c.body]), [
      ["POST", "/credits", '{"user_id":"alice","amount":"25.50","currency":"USDT","note":"november"}'],
      ["POST", "/credits", '{"user_id":"alice","amount":"1.00","currency":"USDT"}'],
      ["POST", "/payouts", '{"user_id":"alice","amount":"20.00","currency":"USDT","destination":"0xA11CE"}'],
      ["POST", `/payouts/${ID}/cancel`, "{}"],
    ]);
    assert.match(calls[0].headers.get("idempotency-key"), /^[0-9a-f-]{36}$/);
    assert.equal(calls[1].headers.get("idempotency-key"), "credit-1");
    assert.notEqual(calls[2].headers.get("idempotency-key"), calls[0].headers.get("idempotency-key"));
    assert.equal(calls[3].headers.get("idempotency-key"), "cancel-1");
    await assert.rejects(credits.create({ userId: "alice", amount: 0.1 + 0.2, currency: "USDT" }), TypeError);
    await assert.rejects(payouts.cancel(""), TypeError);
    assert.equal(calls.length, 4);
  });

  test("reads: filters in the query, none when unset, path segments encoded", async () => {
    const { fetch, calls } = fakeFetch([json(200, { payouts: [], next_cursor: null, events: [] })]);
    const client = admin(fetch);
    for await (const _ of client.referrals.payouts.list({ status: "sent", userId: "a b&c", limit: 0 })) { /* empty */ }
    for await (const _ of client.referrals.payouts.list()) { /* empty */ }
    for await (const _ of client.referrals.events.list({ type: ["payout.sent", "payout.failed"], after: "c1", limit: 5 })) { /* empty */ }
    await client.referrals.users.get("a/b?");
    assert.deepEqual(calls.map((c) => [c.method, c.url.replace("http://api.test/v1/admin/referrals", "")]), [
      ["GET", "/payouts?status=sent&user_id=a+b%26c&limit=0"],
      ["GET", "/payouts"],
      ["GET", "/events?type=payout.sent%2Cpayout.failed&limit=5&after=c1"],
      ["GET", "/users/a%2Fb%3F"],
    ]);
    assert.ok(calls.every((c) => !c.headers.has("idempotency-key") && c.body === undefined));
    assert.throws(() => client.referrals.users.get(""), TypeError);
  });

  test("the queue's filters: order and times as given, a Date as its ISO string, an invalid Date refused", async () => {
    const { fetch, calls } = fakeFetch([json(200, { payouts: [], next_cursor: null })]);
    const { payouts } = admin(fetch).referrals;
    const since = new Date(Date.UTC(2026, 10, 23, 22, 31, 0, 250));
    const page = () => calls.splice(0).map((c) => Object.fromEntries(new URL(c.url).searchParams));
    for await (const _ of payouts.list({ order: "oldest", createdAfter: since, createdBefore: "2026-11-24T00:00:00+01:00",
      updatedBefore: since })) { /* empty */ }
    assert.deepEqual(page(), [{ order: "oldest", created_after: "2026-11-23T22:31:00.250Z",
      created_before: "2026-11-24T00:00:00+01:00", updated_before: "2026-11-23T22:31:00.250Z" }]);
    for await (const _ of payouts.list({ createdAfter: null, updatedBefore: undefined })) { /* empty */ }
    assert.deepEqual(page(), [{}]);
    assert.throws(() => payouts.list({ createdAfter: new Date("yesterday") }), /createdAfter is an invalid Date/);
    assert.equal(calls.length, 0);
  });

  test("bulk: txHash sent as tx_hash, unset fields left out, one key for the call or the caller's", async () => {
    const results = { results: [{ id: ID, ok: true }], succeeded: 1, failed: 0 };
    const { fetch, calls } = fakeFetch([json(200, results)]);
    const { payouts } = admin(fetch).referrals;
    const other = ID.replace("4f", "5f");
    assert.deepEqual(await payouts.bulk("sent", [{ id: ID, txHash: "0xbatch" }, { id: other, txHash: "0xbatch" }]), results);
    await payouts.bulk("failed", new Set([{ id: ID, reason: "wallet rejected" }, { id: other, reason: null }]),
      { idempotencyKey: "batch-1" });
    await payouts.bulk("processing", [{ id: ID }]);
    assert.deepEqual(calls.map((c) => [c.method, c.url.replace("http://api.test/v1/admin/referrals", ""), JSON.parse(c.body)]), [
      ["POST", "/payouts/bulk", { action: "sent", items: [{ id: ID, tx_hash: "0xbatch" }, { id: other, tx_hash: "0xbatch" }] }],
      ["POST", "/payouts/bulk", { action: "failed", items: [{ id: ID, reason: "wallet rejected" }, { id: other }] }],
      ["POST", "/payouts/bulk", { action: "processing", items: [{ id: ID }] }],
    ]);
    assert.match(calls[0].headers.get("idempotency-key"), /^[0-9a-f-]{36}$/);
    assert.equal(calls[1].headers.get("idempotency-key"), "batch-1");
    assert.notEqual(calls[2].headers.get("idempotency-key"), calls[0].headers.get("idempotency-key"));
  });
});

describe("retries", () => {
  test("an action retries no answer, 5xx and in_use with the same key and body, then resolves true", async () => {
    const { fetch, calls } = fakeFetch([refused(), json(503, { error: "database_unavailable" }),
      json(409, { error: "idempotency_key_in_use" }), OK]);
    assert.equal(await admin(fetch).referrals.payouts.markFailed(ID, { reason: "r" }), true);
    assert.equal(calls.length, 4);
    assert.equal(new Set(calls.map((c) => c.headers.get("idempotency-key"))).size, 1);
    assert.equal(new Set(calls.map((c) => c.body)).size, 1);
  });

  for (const [name, answerOf, Kind, tag] of [
    ["503", () => json(503, { error: "database_unavailable" }), DatabaseUnavailable, "database_unavailable"],
    ["500", () => json(500, { error: "internal" }), Internal, "internal"],
    ["a proxy's 502 page", () => new Response("<html>bad gateway</html>", { status: 502 }), TriportError, null],
    ["in_use", () => json(409, { error: "idempotency_key_in_use" }), IdempotencyKeyInUse, "idempotency_key_in_use"],
  ]) {
    test(`retries are bounded: ${name} to the end throws after maxRetries + 1 attempts`, async () => {
      const { fetch, calls } = fakeFetch([answerOf]);
      const error = await admin(fetch).referrals.payouts.markSent(ID, { txHash: "0x1" }).catch((e) => e);
      assert.equal(error.constructor, Kind);
      assert.deepEqual([error.tag, calls.length], [tag, 4]);
      assert.equal(error.idempotencyKey, calls[0].headers.get("idempotency-key"));
    });
  }

  test("maxRetries counts the retries: 0 is one attempt", async () => {
    const { fetch, calls } = fakeFetch([json(503, { error: "database_unavailable" })]);
    await assert.rejects(admin(fetch, { maxRetries: 0 }).referrals.users.get("a"), DatabaseUnavailable);
    assert.equal(calls.length, 1);
  });

  test("4xx is never retried, nor in_use on a read; unknown tags and non-JSON answers stay readable", async () => {
    for (const [status, tag] of Object.entries({ 400: "invalid_json", 401: "admin_token_invalid", 409: "payout_not_actionable", 422: "idempotency_key_reused" })) {
      const { fetch, calls } = fakeFetch([json(Number(status), { error: tag })]);
      const error = await admin(fetch).referrals.payouts.markFailed(ID).catch((e) => e);
      assert.deepEqual([error.constructor, error.status, calls.length], [errorClassFor(tag), Number(status), 1]);
    }
    const { fetch, calls } = fakeFetch([json(409, { error: "idempotency_key_in_use" }), json(418, { error: "brand_new" }),
      new Response("not json", { status: 200 })]);
    const client = admin(fetch);
    await assert.rejects(client.referrals.users.get("a"), IdempotencyKeyInUse);
    const unknown = await client.referrals.users.get("a").catch((e) => e);
    assert.deepEqual([unknown.constructor, unknown.status, unknown.tag], [TriportError, 418, "brand_new"]);
    const garbled = await client.referrals.users.get("a").catch((e) => e);
    assert.deepEqual([garbled.constructor, garbled.status, garbled.tag], [TriportError, 200, null]);
    assert.equal(calls.length, 3);
  });

  test("Retry-After is honoured up to maxBackoffMs, in seconds or as a date", async () => {
    // An HTTP date has whole seconds: 2.5 s ahead is at least 1.5 s, capped to 0.3.
    for (const retryAfterOf of [() => "0.3", () => new Date(Date.now() + 2500).toUTCString()]) {
      const retryAfter = retryAfterOf();
      const { fetch } = fakeFetch([json(503, { error: "database_unavailable" }, { "Retry-After": retryAfter }), OK]);
      const started = performance.now();
      await admin(fetch, { maxBackoffMs: 300 }).referrals.payouts.markProcessing(ID);
      const waited = performance.now() - started;
      // The upper bound only catches an uncapped wait (1.5 s or more); a loaded machine is slow.
      assert.ok(waited >= 280 && waited < 1400, `waited ${waited} ms for Retry-After ${retryAfter}`);
    }
  });

  test("backoff doubles from backoffMs, jittered, capped at maxBackoffMs", async () => {
    const { fetch, calls } = fakeFetch([json(503, { error: "database_unavailable" })]);
    const times = [];
    const timed = async (url, init) => { times.push(performance.now()); return fetch(url, init); };
    await assert.rejects(admin(timed, { backoffMs: 40, maxBackoffMs: 100, maxRetries: 3 }).referrals.users.get("a"));
    const gaps = times.slice(1).map((t, i) => t - times[i]);
    assert.equal(calls.length, 4);
    for (const [gap, [low, high]] of gaps.map((gap, i) => [gap, [[20, 40], [40, 80], [50, 100]][i]])) {
      assert.ok(gap >= low - 2 && gap < high + 400, `gap ${gap} outside ${low}..${high}`);
    }
  });

  test("a timeout is no answer: retried, then TransportError naming the attempts", async () => {
    let attempts = 0;
    const hanging = (url, init) => new Promise((_, reject) => {
      attempts += 1;
      init.signal.addEventListener("abort", () => reject(init.signal.reason));
    });
    // AbortSignal.timeout's timer does not hold the process open; a real socket would.
    const alive = setTimeout(() => {}, 10_000);
    const error = await admin(hanging, { timeoutMs: 30, maxRetries: 1 }).referrals.payouts.markFailed(ID).catch((e) => e);
    clearTimeout(alive);
    assert.ok(error instanceof TransportError && error instanceof TriportError);
    assert.deepEqual([error.status, error.tag, attempts], [null, null, 2]);
    assert.match(error.message, /^no answer on POST \/v1\/admin\/referrals\/payouts\/[0-9a-f-]+\/failed after 2 attempt\(s\): TimeoutError/);
    assert.ok(error.idempotencyKey);
  });

  test("no server at all: TransportError after every attempt, with the socket's error", async () => {
    const client = new TriportAdmin({ adminToken: SECRET, baseUrl: `http://127.0.0.1:${await freePort()}`, backoffMs: 1, maxBackoffMs: 2, maxRetries: 2 });
    const error = await client.referrals.payouts.markFailed(ID).catch((e) => e);
    assert.ok(error instanceof TransportError);
    assert.match(error.message, /after 3 attempt\(s\): ECONNREFUSED/);
  });

  test("a certificate that fails verification is not retried", async () => {
    const tls = Object.assign(new TypeError("fetch failed"), { cause: Object.assign(new Error("self-signed certificate"), { code: "DEPTH_ZERO_SELF_SIGNED_CERT" }) });
    const { fetch, calls } = fakeFetch([tls]);
    await assert.rejects(admin(fetch).referrals.users.get("a"), TransportError);
    assert.equal(calls.length, 1);
  });
});

describe("the token is never shown", () => {
  test("not by inspect, toString, JSON, nor any error", async () => {
    const { fetch } = fakeFetch([refused(), json(503, { error: "database_unavailable" }), json(401, { error: "admin_token_invalid" })]);
    const client = admin(fetch, { actor: "ops" });
    const invalid = await client.referrals.payouts.markFailed(ID).catch((e) => e);
    assert.ok(invalid instanceof AdminTokenInvalid);
    const transport = await admin(fakeFetch([refused()]).fetch, { maxRetries: 0 }).referrals.users.get("a").catch((e) => e);
    const shown = [
      inspect(client, { depth: Infinity, showHidden: true }), inspect(client.referrals, { depth: Infinity, showHidden: true }),
      String(client), JSON.stringify(client), `${client}`, JSON.stringify(client.referrals),
      ...[invalid, transport].flatMap((e) => [String(e), e.message, e.stack, inspect(e, { depth: Infinity, showHidden: true }), JSON.stringify(e)]),
    ];
    for (const text of shown) assert.ok(!text.includes(SECRET), text);
    assert.match(inspect(client), /TriportAdmin \{ baseUrl: "http:\/\/api.test" \}/);
  });
});

describe("errors", () => {
  test("every tag of the API's OpenAPI document has its own class, exported under its name", () => {
    const document = JSON.parse(readFileSync(join(ROOT, "triport_payouts", "openapi.json"), "utf8"));
    const tags = document.components.schemas.Error.properties.error.enum;
    assert.deepEqual(new Set(Object.keys(ERROR_CLASSES)), new Set(tags));
    for (const tag of tags) {
      const Kind = errorClassFor(tag);
      assert.ok(Kind !== TriportError && Kind.prototype instanceof TriportError && Kind.tag === tag);
      assert.equal(sdk[Kind.name], Kind);
      assert.ok([400, 401, 403, 404, 405, 409, 422, 500, 503].includes(Kind.status), tag);
      const error = new Kind("m");
      assert.deepEqual([error.name, error.status, error.tag, error instanceof Error], [Kind.name, Kind.status, tag, true]);
    }
    assert.equal(errorClassFor("brand_new"), TriportError);
    assert.equal(errorClassFor("constructor"), TriportError);
    assert.equal(errorClassFor(null), TriportError);
    assert.equal(new PayoutNotActionable("m").status, 409);
    assert.equal(new InvalidJson("m", { status: 400, tag: "invalid_json" }).tag, "invalid_json");
  });

  test("require() gives the same API as import", () => {
    const required = createRequire(import.meta.url)("../dist/cjs/index.js");
    assert.deepEqual(Object.keys(required).sort(), Object.keys(sdk).sort());
    assert.equal(typeof required.TriportAdmin, "function");
    assert.equal(typeof required.webhooks.verify, "function");
  });
});
