// The errors only a server in a bad state answers, each from a live gunicorn
// (SQLite): no token configured, a damaged database, one without a schema,
// one an earlier or a later release left. A full disk needs a small
// filesystem of its own: its 503 is a canned answer through the proxy.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import {
  AdminTokenUnset, DatabaseUnavailable, Internal, SchemaOutdated, SchemaTooNew, StorageFull, TriportError,
} from "../dist/esm/index.js";
import { FlakyProxy, answer } from "./flaky-proxy.mjs";
import { Server, client, collect, python, scratchDir, sqliteDatabase } from "./harness.mjs";

// One process makes every database: argv is a good database, then (path, what) pairs,
// `what` being "empty" (a file with no schema), "copy" or SQL to run on a copy.
const PREPARE = `import shutil, sqlite3, sys
good, rest = sys.argv[1], sys.argv[2:]
for path, what in zip(rest[::2], rest[1::2]):
    if what == "empty":
        open(path, "w").close()
        continue
    shutil.copyfile(good, path)
    if what != "copy":
        with sqlite3.connect(path) as c:
            c.execute(what)
`;

// Each state: how to make its database from a good one, and what every call then answers.
const STATES = {
  "no token configured": { token: "", Kind: AdminTokenUnset, status: 401 },
  "a damaged database (a column renamed by hand)": {
    sql: "ALTER TABLE payouts RENAME COLUMN status TO state", Kind: Internal, status: 500, only: ["markFailed", "list"],
  },
  "a database without a schema": { empty: true, Kind: DatabaseUnavailable, status: 503 },
  "a database an earlier release left": {
    sql: "DELETE FROM schema_migrations WHERE version = (SELECT max(version) FROM schema_migrations)",
    Kind: SchemaOutdated, status: 503,
  },
  "a database a later release migrated": {
    sql: "INSERT INTO schema_migrations (version, applied_at) VALUES (99, '2030-01-01T00:00:00.000000Z')",
    Kind: SchemaTooNew, status: 503,
  },
};

describe("errors of a server in a bad state", () => {
  const dir = scratchDir();
  const servers = {};

  before(async () => {
    const good = await sqliteDatabase(dir, "good.sqlite3");
    const states = Object.entries(STATES).map(([name, state], i) => [name, state, join(dir, `state-${i}.sqlite3`)]);
    await python(PREPARE, good, ...states.flatMap(([, state, path]) => [path, state.empty ? "empty" : state.sql ?? "copy"]));
    await Promise.all(states.map(async ([name, state, database]) => {
      servers[name] = await Server.start({ database, token: state.token, workers: 1, log: `${database}.log` });
    }));
  });

  after(() => Promise.all(Object.values(servers).map((server) => server.stop())));

  for (const [name, { Kind, status, only }] of Object.entries(STATES)) {
    test(`${name}: ${Kind.name} (${status} ${Kind.tag}) from every call`, async () => {
      const admin = client(servers[name].url, { maxRetries: 0 });
      const id = randomUUID();
      const calls = {
        markFailed: () => admin.referrals.payouts.markFailed(id, { reason: "r" }),
        markSent: () => admin.referrals.payouts.markSent(id, { txHash: "0x1" }),
        markProcessing: () => admin.referrals.payouts.markProcessing(id),
        list: () => collect(admin.referrals.payouts.list()),
        events: () => admin.referrals.payouts.events(id),
        users: () => admin.referrals.users.get("alice"),
        feed: () => collect(admin.referrals.events.list()),
      };
      for (const [call, run] of Object.entries(calls)) {
        if (only && !only.includes(call)) continue;
        const error = await run().then(() => assert.fail(`${call}: ${Kind.name} expected`), (e) => e);
        assert.ok(error instanceof Kind && error instanceof TriportError, `${call}: ${error}`);
        assert.deepEqual([error.status, error.tag], [status, Kind.tag], call);
      }
    });
  }

  test("a full disk's storage_full is StorageFull, retried as any 503 and then thrown", async () => {
    const full = answer(503, { error: "storage_full" }, { "Retry-After": "30" });
    const proxy = await FlakyProxy.start(1, [full, full, full]);
    try {
      const error = await client(proxy.url, { maxRetries: 2 }).referrals.payouts.markSent(randomUUID(), { txHash: "0x1" })
        .then(() => assert.fail("StorageFull expected"), (e) => e);
      assert.ok(error instanceof StorageFull);
      assert.deepEqual([error.status, error.tag, proxy.requests.length], [503, "storage_full", 3]);
    } finally {
      await proxy.close();
    }
  });
});
