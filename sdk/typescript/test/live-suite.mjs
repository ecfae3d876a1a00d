// The client against a live gunicorn, the same tests on each backend: every
// method (the writes with a named token of scope system, bulk with one of
// scope operator), the queue's order and time bounds, every error class a
// running server with a good database produces, paging, and retries that
// replay the first answer through a FlakyProxy that loses answers on purpose.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { inspect } from "node:util";
import { after, before, describe, test } from "node:test";
import {
  AdminTokenInvalid, Forbidden, IdempotencyKeyReused, InsufficientBalance, InvalidActor, InvalidAmount, InvalidBulk,
  InvalidCurrency, InvalidCursor, InvalidDestination, InvalidIdempotencyKey, InvalidJson, InvalidLimit, InvalidOrder,
  InvalidPayoutId, InvalidStatus, InvalidTime, InvalidTxHash, InvalidType, InvalidUserId, MethodNotAllowed, NotFound,
  PayoutNotActionable, PayoutNotFound, TransportError, TriportAdmin, TriportError, UserNotFound,
} from "../dist/esm/index.js";
import { FlakyProxy, answer } from "./flaky-proxy.mjs";
import {
  FAST, Server, TOKEN, cli, client, collect, createToken, makePayout, scratchDir, sleep, transitions, uniqueUser,
} from "./harness.mjs";

const IN_USE = answer(409, { error: "idempotency_key_in_use" });
const UNAVAILABLE = answer(503, { error: "database_unavailable" });

/** `setup()` gives {database, drop?} or {skip: reason}. */
export function liveSuite(backend, setup) {
  return describe(`the client against a live server on ${backend}`, async () => {
    let server, database, drop, systemToken, operatorToken, readToken;
    const dir = scratchDir();
    const proxies = [];

    before(async () => {
      ({ database, drop } = await setup());
      // The server finds a token made after its start too; made side by side, they cost no time.
      [server, systemToken, operatorToken, readToken] = await Promise.all([
        Server.start({ database, log: join(dir, "gunicorn.log") }),
        createToken(database, "billing-service", "system"),
        createToken(database, "payments-bot", "operator"),
        createToken(database, "auditor", "read"),
      ]);
    });

    after(async () => {
      await Promise.all(proxies.map((proxy) => proxy.close()));
      await server?.stop();
      await drop?.();
    });

    async function proxy(script = []) {
      const started = await FlakyProxy.start(server.port, script);
      proxies.push(started);
      return started;
    }

    // seed-demo gives 2 payouts to each demo user: users[n] (n from 1) owns
    // payouts[n - 1] and, newer, payouts[n - 1 + USERS]. Each test takes its own user.
    const USERS = 32;
    let seeded;
    const user = (n) => `demo-user-${String(n).padStart(4, "0")}`;
    const owned = (n) => [seeded[n - 1], seeded[n - 1 + USERS]];
    before(async () => {
      seeded = (await cli(database, "seed-demo", "--payouts", String(2 * USERS), "--users", String(USERS)))
        .trim().split("\n");
    });
    const historyOf = async (id) => transitions(await client(server.url).referrals.payouts.events(id));
    const cents = (amount) => Math.round(Number(amount) * 100);
    const usdt = async (who) => (await client(server.url).referrals.users.get(who)).balances
      .filter((b) => b.currency === "USDT").map((b) => [b.earned, b.reserved, b.available].map(cents))[0];

    test("every method, against the live server", async () => {
      const [sent, failed] = owned(1);
      const [quiet] = owned(2);
      const saved = process.env.TRIPORT_BASE_URL;
      process.env.TRIPORT_BASE_URL = server.url;
      let admin;
      try {
        admin = new TriportAdmin({ adminToken: TOKEN, actor: "ops@example.com", ...FAST });
      } finally {
        if (saved === undefined) delete process.env.TRIPORT_BASE_URL;
        else process.env.TRIPORT_BASE_URL = saved;
      }
      const payouts = admin.referrals.payouts;

      assert.equal(await payouts.markProcessing(sent), true);
      assert.equal(await payouts.markSent(sent, { txHash: "0xabc" }), true);
      assert.equal(await payouts.markFailed(failed, { reason: "wallet rejected" }), true);
      assert.equal(await payouts.markFailed(quiet.toUpperCase()), true); // no reason, either case

      const events = await payouts.events(sent);
      assert.deepEqual(events.map((e) => [e.from_status, e.to_status]),
        [[null, "requested"], ["requested", "processing"], ["processing", "sent"]]);
      assert.equal(events.at(-1).tx_hash, "0xabc");
      assert.deepEqual(new Set(events.slice(1).map((e) => e.actor)), new Set(["ops@example.com"]));
      assert.ok(events.every((e) => e.on_behalf_of === null)); // the environment's token: the actor is as sent
      const [failure] = transitions(await payouts.events(failed));
      assert.deepEqual([failure.to_status, failure.reason], ["failed", "wallet rejected"]);
      assert.equal(transitions(await payouts.events(quiet))[0].reason, null);

      const mine = await collect(payouts.list({ userId: user(1) }));
      assert.deepEqual(mine.map((p) => p.id), [failed, sent]); // newest first
      assert.deepEqual((await collect(payouts.list({ userId: user(1), limit: 1 }))).map((p) => p.id), [failed, sent]);
      assert.deepEqual((await collect(payouts.list({ userId: user(1), status: "sent" }))).map((p) => p.id), [sent]);
      assert.deepEqual(await collect(payouts.list({ userId: user(1), status: "processing" })), []);
      assert.deepEqual((await collect(payouts.list({ status: "sent" }))).map((p) => p.id), [sent]);
      const [, newest] = mine;
      assert.equal(newest.tx_hash, "0xabc");
      assert.match(newest.amount, /^\d+\.\d\d$/); // amounts stay strings

      const view = await admin.referrals.users.get(user(1));
      assert.equal(view.user_id, user(1));
      assert.deepEqual(view.counts, { requested: 0, processing: 0, sent: 1, failed: 1, cancelled: 0 });
      const [usdt] = view.balances;
      assert.ok(Object.values(usdt).every((value) => typeof value === "string"));
      assert.equal(cents(usdt.sent), cents(newest.amount));
      assert.equal(cents(usdt.reserved), 0);
      assert.equal(cents(usdt.available), cents(usdt.earned) - cents(usdt.sent));
      assert.deepEqual(view.payouts.map((p) => p.id), [failed, sent]);
    });

    test("the writes, with a named system token: credits, a payout request, its cancellation", async () => {
      const who = uniqueUser("writer");
      const system = client(server.url, { adminToken: systemToken, actor: "maria" });
      const { credits, payouts } = system.referrals;

      const credit = await credits.create({ userId: who, amount: "25.50", currency: "USDT", note: "november referrals" });
      assert.match(credit.id, /^[0-9a-f-]{36}$/);
      assert.deepEqual([credit.user_id, cents(credit.amount), credit.currency, credit.note],
        [who, 2550, "USDT", "november referrals"]);
      assert.equal(typeof credit.amount, "string");
      const again = { userId: who, amount: "4.50", currency: "USDT" };
      const plain = await credits.create(again, { idempotencyKey: `credit-${who}` });
      assert.equal(plain.note, null);
      // The same key and body later: the same credit, not a second one.
      assert.deepEqual(await credits.create(again, { idempotencyKey: `credit-${who}` }), plain);
      assert.deepEqual(await usdt(who), [3000, 0, 3000]);

      const payout = await payouts.create({ userId: who, amount: "20.00", currency: "USDT", destination: "0xA11CE" });
      assert.deepEqual([payout.user_id, cents(payout.amount), payout.currency, payout.destination, payout.status],
        [who, 2000, "USDT", "0xA11CE", "requested"]);
      assert.equal(typeof payout.amount, "string");
      assert.deepEqual(await usdt(who), [3000, 2000, 1000]);

      assert.equal(await payouts.cancel(payout.id), true);
      assert.deepEqual(await usdt(who), [3000, 0, 3000]);
      const history = await payouts.events(payout.id);
      assert.deepEqual(history.map((e) => [e.from_status, e.to_status, e.actor, e.on_behalf_of]), [
        [null, "requested", "billing-service", "maria"],
        ["requested", "cancelled", "billing-service", "maria"], // the token's name, not the header's claim
      ]);
    });

    test("user ids that need quoting reach the server intact", async () => {
      const odd = uniqueUser("jörg ?#%&+ 名");
      const id = await makePayout(database, odd);
      const admin = client(server.url);
      assert.equal((await admin.referrals.users.get(odd)).user_id, odd);
      assert.deepEqual((await collect(admin.referrals.payouts.list({ userId: odd }))).map((p) => p.id), [id]);
      await assert.rejects(admin.referrals.users.get("jörg"), UserNotFound);
    });

    test("pages are followed to the end, more payouts than one page", async () => {
      const flaky = await proxy();
      const payouts = client(flaky.url).referrals.payouts;
      const all = (await collect(payouts.list({ limit: 200 }))).map((p) => p.id);
      assert.ok(all.length > 50 && seeded.every((id) => all.includes(id)));
      assert.equal(flaky.requests.length, 1);
      assert.deepEqual((await collect(payouts.list({ limit: 10 }))).map((p) => p.id), all);
      assert.equal(flaky.requests.length, 1 + Math.ceil(all.length / 10));
      assert.deepEqual((await collect(payouts.list())).map((p) => p.id), all); // the server's 50 a page
      assert.equal(flaky.requests.length, 1 + Math.ceil(all.length / 10) + Math.ceil(all.length / 50));
      const cursors = flaky.requests.filter((r) => r.target.includes("cursor="));
      assert.ok(cursors.slice(0, -1).every((r) => r.target.includes("limit=10")));
    });

    test("every error class a running server produces, none retried", async () => {
      const [done, open] = owned(3);
      const flaky = await proxy();
      const admin = client(flaky.url);
      const { payouts, users, events } = admin.referrals;
      await payouts.markFailed(done);
      const key = randomUUID();
      await payouts.markFailed(open, { reason: "first", idempotencyKey: key });
      // The one route the calls never use wrongly: a fetch that turns their GET into a DELETE.
      const deleting = client(flaky.url, { fetch: (url, init) => fetch(url, { ...init, method: "DELETE" }) });
      const reader = client(flaky.url, { adminToken: readToken }).referrals;
      const { credits } = admin.referrals;
      const nobody = uniqueUser("nobody");
      const asked = { userId: nobody, amount: "1.00", currency: "USDT", destination: "0xdest" };
      const cases = [
        [() => payouts.markFailed("not-a-uuid"), InvalidPayoutId, 400],
        [() => payouts.events("42"), InvalidPayoutId, 400],
        [() => payouts.markFailed(randomUUID()), PayoutNotFound, 404],
        [() => payouts.events(randomUUID()), PayoutNotFound, 404],
        [() => payouts.markFailed(done, { reason: "again" }), PayoutNotActionable, 409],
        [() => payouts.markSent(done, { txHash: "0x1" }), PayoutNotActionable, 409],
        [() => payouts.markProcessing(done), PayoutNotActionable, 409],
        [() => payouts.markSent(done, { txHash: "" }), InvalidTxHash, 400],
        [() => payouts.markSent(done, { txHash: "x".repeat(257) }), InvalidTxHash, 400],
        [() => payouts.markFailed(done, { reason: 42 }), InvalidJson, 400],
        [() => payouts.markFailed(done, { reason: "r".repeat(5000) }), InvalidJson, 400],
        [() => collect(payouts.list({ status: "lost" })), InvalidStatus, 400],
        [() => collect(payouts.list({ limit: 0 })), InvalidLimit, 400],
        [() => collect(payouts.list({ limit: 201 })), InvalidLimit, 400],
        [() => collect(payouts.list({ userId: "u".repeat(129) })), InvalidUserId, 400],
        [() => collect(payouts.list({ order: "sideways" })), InvalidOrder, 400],
        [() => collect(payouts.list({ createdAfter: "yesterday" })), InvalidTime, 400],
        [() => collect(payouts.list({ updatedBefore: "2026-11-23T22:31:00" })), InvalidTime, 400], // no offset
        [() => payouts.bulk("settled", [{ id: open }]), InvalidBulk, 400],
        [() => payouts.bulk("failed", []), InvalidBulk, 400],
        [() => payouts.bulk("failed", Array.from({ length: 101 }, () => ({ id: randomUUID() }))), InvalidBulk, 400],
        [() => payouts.bulk("failed", [{ id: open }, { id: open.toUpperCase() }]), InvalidBulk, 400], // one payout twice
        [() => collect(events.list({ type: "payout.paid" })), InvalidType, 400],
        [() => collect(events.list({ after: "forged" })), InvalidCursor, 400],
        [() => users.get("nobody-" + randomUUID()), UserNotFound, 404],
        [() => users.get("a/b"), NotFound, 404],
        [() => payouts.markFailed(done, { idempotencyKey: "k".repeat(256) }), InvalidIdempotencyKey, 400],
        [() => payouts.markFailed(open, { reason: "second", idempotencyKey: key }), IdempotencyKeyReused, 422],
        [() => client(flaky.url, { actor: "a".repeat(129) }).referrals.payouts.markFailed(done), InvalidActor, 400],
        [() => client(flaky.url, { adminToken: "wrong" }).referrals.users.get("alice"), AdminTokenInvalid, 401],
        [() => client(flaky.url, { adminToken: "" }).referrals.payouts.events(done), AdminTokenInvalid, 401],
        [() => deleting.referrals.users.get("alice"), MethodNotAllowed, 405],
        [() => credits.create({ userId: nobody, amount: "-1.00", currency: "USDT" }), InvalidAmount, 400],
        [() => credits.create({ userId: nobody, amount: "1e3", currency: "USDT" }), InvalidAmount, 400],
        [() => credits.create({ userId: nobody, amount: "1.00", currency: "usdt" }), InvalidCurrency, 400],
        [() => credits.create({ userId: "", amount: "1.00", currency: "USDT" }), InvalidUserId, 400],
        [() => payouts.create({ ...asked, destination: "" }), InvalidDestination, 400],
        [() => payouts.create(asked), InsufficientBalance, 409],
        [() => payouts.cancel(done), PayoutNotActionable, 409],
        [() => payouts.cancel(randomUUID()), PayoutNotFound, 404],
        [() => payouts.cancel("not-a-uuid"), InvalidPayoutId, 400],
        [() => reader.credits.create({ userId: nobody, amount: "1.00", currency: "USDT" }), Forbidden, 403],
        [() => reader.payouts.create(asked), Forbidden, 403],
        [() => reader.payouts.cancel(open), Forbidden, 403],
        [() => reader.payouts.markProcessing(open), Forbidden, 403],
        [() => reader.payouts.bulk("processing", [{ id: open }]), Forbidden, 403],
      ];
      for (const [call, Kind, status] of cases) {
        const before = flaky.requests.length;
        const error = await call().then(() => assert.fail(`${Kind.name} expected`), (e) => e);
        assert.ok(error instanceof Kind, `${Kind.name} expected, got ${inspect(error)}`);
        assert.ok(error instanceof TriportError);
        assert.deepEqual([error.status, error.tag, error.name], [status, Kind.tag, Kind.name]);
        assert.equal(flaky.requests.length, before + 1, `${Kind.name} was retried`);
        for (const shown of [String(error), error.message, inspect(error, { depth: 10, showHidden: true })]) {
          assert.ok(![TOKEN, readToken, systemToken].some((token) => shown.includes(token)), `a token in ${shown}`);
        }
      }
      // A refused action still names the key it sent, for a later safe retry.
      const refused = await payouts.markFailed(done).catch((e) => e);
      assert.ok(refused instanceof PayoutNotActionable);
      assert.equal(refused.idempotencyKey, flaky.requests.at(-1).headers["idempotency-key"]);
      // The reader's token was refused before anything changed.
      assert.deepEqual(transitions(await payouts.events(open)).map((e) => e.to_status), ["failed"]);
    });

    test("the queue: oldest or newest first, exclusive time bounds, a Date sent as its ISO text", async () => {
      const [first, second] = owned(9);
      const flaky = await proxy();
      const { payouts } = client(flaky.url).referrals;
      const listed = (params) => collect(payouts.list({ userId: user(9), ...params }));
      const ids = async (params) => (await listed(params)).map((p) => p.id);
      const [older, newer] = await listed({ order: "oldest" });
      assert.deepEqual([older.id, newer.id], [first, second]);
      assert.deepEqual(await ids({ order: "newest" }), [second, first]);
      assert.deepEqual(await ids({}), [second, first]);
      // Exclusive: a bound at a payout's own created_at leaves it out.
      assert.deepEqual(await ids({ createdAfter: older.created_at }), [second]);
      assert.deepEqual(await ids({ createdBefore: newer.created_at }), [first]);
      const hourAhead = new Date(Date.now() + 3_600_000);
      assert.deepEqual(await ids({ createdBefore: hourAhead, order: "oldest", limit: 1 }), [first, second]); // paged
      assert.deepEqual(await ids({ createdAfter: hourAhead }), []);
      const sent = flaky.requests.map((r) => new URL(r.target, flaky.url).searchParams);
      assert.ok(sent.some((query) => query.get("created_before") === hourAhead.toISOString()));
      // With updatedBefore, the order of the last change: the first, claimed now, comes last.
      await payouts.markProcessing(first);
      assert.deepEqual(await ids({ updatedBefore: hourAhead, order: "oldest" }), [second, first]);
      const [claimed] = await listed({ status: "processing" });
      assert.deepEqual(await ids({ updatedBefore: claimed.updated_at }), [second]);
    });

    test("bulk with a named operator token: each item applied or refused on its own, in request order", async () => {
      const [paid, untagged] = owned(10);
      const [settled] = owned(11);
      await client(server.url).referrals.payouts.markFailed(settled);
      const bot = client(server.url, { adminToken: operatorToken, actor: "maria" }).referrals.payouts;
      const missing = randomUUID();
      const batch = [
        { id: paid, txHash: "0xbatch7" }, { id: settled, txHash: "0xbatch7" }, { id: missing, txHash: "0xbatch7" },
        { id: "not-a-uuid", txHash: "0xbatch7" }, { id: untagged },
      ];
      assert.deepEqual(await bot.bulk("sent", batch), {
        results: [
          { id: paid, ok: true },
          { id: settled, ok: false, error: "payout_not_actionable" },
          { id: missing, ok: false, error: "payout_not_found" },
          { id: "not-a-uuid", ok: false, error: "invalid_payout_id" },
          { id: untagged, ok: false, error: "invalid_tx_hash" },
        ],
        succeeded: 1,
        failed: 4,
      });
      const [event] = await historyOf(paid);
      assert.deepEqual([event.to_status, event.tx_hash, event.actor, event.on_behalf_of],
        ["sent", "0xbatch7", "payments-bot", "maria"]);
      assert.deepEqual(await historyOf(untagged), []);
      assert.equal((await historyOf(settled)).length, 1);
    });

    test("a bulk answer lost in transit is replayed under the same key: each item applied once", async () => {
      const [one, two] = owned(12);
      const flaky = await proxy(["drop"]);
      const key = `batch-${randomUUID()}`;
      const items = [{ id: one, reason: "batch rejected" }, { id: two }];
      const all = { results: [{ id: one, ok: true }, { id: two, ok: true }], succeeded: 2, failed: 0 };
      assert.deepEqual(await client(flaky.url).referrals.payouts.bulk("failed", items, { idempotencyKey: key }), all);
      // Two attempts; a third only if a loaded machine let the retry time out too.
      assert.ok(flaky.requests.length >= 2);
      assert.deepEqual(new Set(flaky.requests.map((r) => r.headers["idempotency-key"])), new Set([key]));
      assert.equal(new Set(flaky.requests.map((r) => r.body)).size, 1);
      assert.deepEqual((await historyOf(one)).map((e) => [e.to_status, e.reason]), [["failed", "batch rejected"]]);
      assert.equal((await historyOf(two)).length, 1);
      // The control: a new call, a new key, and each item is refused as settled.
      const again = await client(server.url).referrals.payouts.bulk("failed", items);
      assert.deepEqual(again.results.map((r) => r.error), ["payout_not_actionable", "payout_not_actionable"]);
    });

    test("a number amount is refused with a TypeError, without a request", async () => {
      const flaky = await proxy();
      const { credits, payouts } = client(flaky.url, { adminToken: systemToken }).referrals;
      const who = uniqueUser("float");
      for (const amount of [12.5, 20, undefined, null]) {
        await assert.rejects(credits.create({ userId: who, amount, currency: "USDT" }), TypeError);
        await assert.rejects(payouts.create({ userId: who, amount, currency: "USDT", destination: "0xdest" }),
          /amount must be a string/);
      }
      assert.equal(flaky.requests.length, 0);
    });

    test("a 201 lost in transit is replayed by the retry: one credit, one payout", async () => {
      const who = uniqueUser("lost");
      const flaky = await proxy(["drop", "forward", "drop"]); // the first answer of each create is lost
      const { credits, payouts } = client(flaky.url, { adminToken: systemToken }).referrals;
      const credit = await credits.create({ userId: who, amount: "15.00", currency: "USDT" });
      assert.equal(credit.user_id, who);
      const payout = await payouts.create({ userId: who, amount: "15.00", currency: "USDT", destination: "0xdest" });
      assert.equal(payout.status, "requested");
      // Two attempts each (more only if a loaded machine let one time out), one key and one body per call.
      const keys = flaky.requests.map((r) => r.headers["idempotency-key"]);
      assert.ok(flaky.requests.length >= 4);
      assert.equal(new Set(keys).size, 2);
      for (const key of new Set(keys)) {
        const same = flaky.requests.filter((r) => r.headers["idempotency-key"] === key);
        assert.ok(same.length >= 2);
        assert.equal(new Set(same.map((r) => r.body)).size, 1);
      }
      const mine = await collect(client(server.url).referrals.payouts.list({ userId: who }));
      assert.deepEqual(mine.map((p) => [p.id, p.status]), [[payout.id, "requested"]]);
      assert.deepEqual(await usdt(who), [1500, 1500, 0]); // earned once, all of it reserved by the one payout
    });

    for (const loss of ["drop", "stall"]) {
      test(`an answer lost by a ${loss} is replayed by the retry: true, one transition`, async () => {
        const [id] = owned(loss === "drop" ? 4 : 5);
        const flaky = await proxy([loss]);
        const admin = client(flaky.url, loss === "stall" ? { timeoutMs: 1_000 } : {});
        assert.equal(await admin.referrals.payouts.markFailed(id, { reason: "wallet rejected" }), true);
        // Two attempts; a third only if a loaded machine let the retry time out too.
        assert.ok(flaky.requests.length >= 2);
        assert.equal(new Set(flaky.requests.map((r) => r.headers["idempotency-key"])).size, 1);
        assert.equal(new Set(flaky.requests.map((r) => r.body)).size, 1);
        const [event] = await historyOf(id);
        assert.deepEqual([event.to_status, event.reason], ["failed", "wallet rejected"]);
        assert.equal((await historyOf(id)).length, 1);
      });
    }

    test("the control: without the same key, the retry would have been a 409", async () => {
      const [id] = owned(6);
      const flaky = await proxy(["drop"]);
      await assert.rejects(client(flaky.url, { maxRetries: 0 }).referrals.payouts.markFailed(id), TransportError);
      await assert.rejects(client(flaky.url).referrals.payouts.markFailed(id), PayoutNotActionable); // a new call: a new key
      assert.equal((await historyOf(id)).length, 1);
    });

    test("in_use and 5xx answers are retried, with one key", async () => {
      const [id] = owned(7);
      const html = answer(502, { text: "<html>bad gateway</html>" });
      const flaky = await proxy([IN_USE, UNAVAILABLE, html]);
      const admin = client(flaky.url);
      assert.equal(await admin.referrals.payouts.markProcessing(id), true);
      assert.equal(new Set(flaky.requests.map((r) => r.headers["idempotency-key"])).size, 1);
      flaky.script.push(UNAVAILABLE, answer(500, { error: "internal" }));
      assert.deepEqual((await collect(admin.referrals.payouts.list({ userId: user(7) }))).map((p) => p.status),
        ["requested", "processing"]); // newest first: its other payout, then this one
      flaky.script.push(html);
      assert.equal(transitions(await admin.referrals.payouts.events(id))[0].to_status, "processing");
      assert.equal(flaky.requests.length, 4 + 3 + 2);
      assert.equal((await historyOf(id)).length, 1);
    });

    test("the feed is followed to its end and tailed from its cursor", async () => {
      const admin = client(server.url);
      const [first, second] = owned(8);
      await admin.referrals.payouts.markProcessing(first);
      const mine = (events) => events.filter((e) => e.payout.user_id === user(8));
      // On PostgreSQL the feed holds events back while any writing transaction
      // is open, other suites' too: wait for ours.
      const { events, feed } = await feedUntil(() => admin.referrals.events.list({ limit: 25 }), mine, 3);
      assert.deepEqual(mine(events).map((e) => [e.payout.id, e.type]),
        [[first, "payout.requested"], [second, "payout.requested"], [first, "payout.processing"]]);
      assert.equal(mine(events).at(-1).payout.status, "processing");
      assert.equal(typeof mine(events)[0].payout.amount, "string");

      await admin.referrals.payouts.markSent(first, { txHash: "0xabc" });
      const later = await feedUntil(() => admin.referrals.events.list({ after: feed.cursor }), mine, 1);
      assert.deepEqual(mine(later.events).map((e) => [e.payout.id, e.type, e.tx_hash]), [[first, "payout.sent", "0xabc"]]);
      // The same Feed, iterated again, goes on from its cursor.
      const again = await collect(later.feed);
      assert.ok(!again.some((e) => e.payout.id === first && e.type === "payout.sent"));
      const settled = await feedUntil(
        () => admin.referrals.events.list({ type: ["payout.sent", "payout.failed"], limit: 200 }), mine, 1);
      assert.deepEqual(mine(settled.events).map((e) => [e.payout.id, e.type]), [[first, "payout.sent"]]);
      assert.ok(settled.events.every((e) => e.type === "payout.sent" || e.type === "payout.failed"));
      const one = await collect(admin.referrals.events.list({ type: "payout.processing", limit: 200 }));
      assert.ok(one.every((e) => e.type === "payout.processing"));
    });
  });
}

/** {events, feed} of list() once `mine(events)` has `count` events, or after 20 s. */
async function feedUntil(list, mine, count) {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const feed = list();
    const events = await collect(feed);
    if (mine(events).length >= count || Date.now() > deadline) return { events, feed };
    await sleep(50);
  }
}
