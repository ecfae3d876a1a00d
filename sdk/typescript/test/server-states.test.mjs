// The errors only a server in a bad state answers, each from a live gunicorn
// (SQLite): no token configured, a damaged database, one without a schema,
// one an earlier or a later release left. A full disk needs a small
// filesystem of its own: its 503 is a canned answer through the proxy.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { closeSync, mkdirSync, openSync, unlinkSync, writeSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import {
  AdminTokenUnset, DatabaseUnavailable, Internal, SchemaOutdated, SchemaTooNew, StorageFull, TriportError,
} from "../dist/esm/index.js";
import { Server, cli, client, collect, python, scratchDir, sqliteDatabase } from "./harness.mjs";

const run = promisify(execFile);

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
            # Renaming a column a view names is refused unless the view is left as it is.
            c.execute("PRAGMA legacy_alter_table=ON")
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
});

describe("a server whose disk is full", () => {
  const dir = scratchDir();
  const disk = join(dir, "disk");
  let server, payout, mounted, skip;

  before(async () => {
    mkdirSync(disk);
    try {
      if (process.getuid?.() !== 0) throw new Error("mounting a small disk (tmpfs) needs root");
      await run("mount", ["-t", "tmpfs", "-o", "size=2m", "tmpfs", disk]);
      mounted = true;
    } catch (failure) {
      if (process.env.CI === "true") throw failure;
      skip = `cannot mount a tmpfs: ${String(failure.stderr || failure.message).trim()}`;
      return;
    }
    const database = await sqliteDatabase(disk);
    [payout] = (await cli(database, "seed-demo", "--payouts", "1", "--users", "1")).trim().split("\n");
    server = await Server.start({ database, workers: 1, log: join(dir, "full-disk.log") });
  });

  after(async () => {
    await server?.stop();
    if (mounted) await run("umount", [disk]).catch(() => run("umount", ["--lazy", disk]));
  });

  test("StorageFull (503 storage_full); the same call, with its key, succeeds once there is room", async (t) => {
    if (skip) return t.skip(skip);
    const admin = client(server.url, { maxRetries: 0 });
    await admin.referrals.payouts.events(payout); // a host in service: the database is open when the disk fills
    const filler = join(disk, "filler");
    const fd = openSync(filler, "wx");
    try {
      for (const chunk of [Buffer.alloc(65536), Buffer.alloc(4096)]) {
        try {
          for (;;) writeSync(fd, chunk);
        } catch (failure) {
          if (failure.code !== "ENOSPC") throw failure;
        }
      }
    } finally {
      closeSync(fd);
    }
    const error = await admin.referrals.payouts.markFailed(payout, { reason: "rejected" }).catch((e) => e);
    assert.ok(error instanceof StorageFull && error instanceof TriportError, String(error));
    assert.deepEqual([error.status, error.tag], [503, "storage_full"]);
    assert.equal((await admin.referrals.payouts.events(payout)).length, 1); // reads go on; nothing changed
    unlinkSync(filler);
    const again = { reason: "rejected", idempotencyKey: error.idempotencyKey };
    assert.equal(await admin.referrals.payouts.markFailed(payout, again), true);
    assert.equal((await admin.referrals.payouts.events(payout)).at(-1).to_status, "failed");
  });
});
