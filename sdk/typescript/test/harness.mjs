// What the suites share: the repository's .venv (its triport-payouts command
// makes the data, its gunicorn serves it), live servers on 127.0.0.1, fresh
// databases (a SQLite file, or a PostgreSQL schema of our own), and clients
// with fast retries.
import { execFile, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync, openSync, closeSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { TriportAdmin } from "../dist/esm/index.js";

export const SDK = join(dirname(fileURLToPath(import.meta.url)), "..");
export const ROOT = join(SDK, "..", "..");
export const VENV = process.env.TRIPORT_VENV ?? join(ROOT, ".venv");
export const TOKEN = "ts-test-admin-token";
export const PAYOUTS = "/v1/admin/referrals/payouts";
// Fast retries for tests; the defaults back off for seconds.
export const FAST = { backoffMs: 5, maxBackoffMs: 20, timeoutMs: 5_000 };
const POSTGRES = process.env.TRIPORT_TEST_POSTGRES ?? "postgresql://postgres@127.0.0.1:5432/test";
const run = promisify(execFile);

export function client(baseUrl, options = {}) {
  return new TriportAdmin({ adminToken: TOKEN, baseUrl, ...FAST, ...options });
}

/** A folder for this suite's files, removed when the process exits. */
export function scratchDir() {
  const dir = mkdtempSync(join(tmpdir(), "triport-ts-"));
  process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Runs triport-payouts on `database`; its stdout. */
export async function cli(database, ...args) {
  const { stdout } = await run(join(VENV, "bin", "triport-payouts"), args, {
    env: { ...process.env, TRIPORT_DATABASE: database },
  });
  return stdout;
}

/** Runs Python code with the .venv's interpreter, argv after it. */
export async function python(code, ...args) {
  const { stdout } = await run(join(VENV, "bin", "python"), ["-c", code, ...args]);
  return stdout;
}

/** A new requested payout of `user`, credited just enough first; its id. */
export async function makePayout(database, user, amount = "10.00", currency = "USDT") {
  await cli(database, "credit", "--user-id", user, "--amount", amount, "--currency", currency);
  const payout = JSON.parse(await cli(database, "create-payout", "--user-id", user, "--amount", amount,
    "--currency", currency, "--destination", "0xdest"));
  return payout.id;
}

/** A named token of `scope` made by `triport-payouts token create` on `database`; its secret (tpk_...). */
export async function createToken(database, name, scope) {
  return JSON.parse(await cli(database, "token", "create", "--name", name, "--scope", scope)).token;
}

/** A user id no other test uses. */
export function uniqueUser(name) {
  return `${name}-${randomUUID().slice(0, 8)}`;
}

/** A new SQLite database with the schema, in `dir`. */
export async function sqliteDatabase(dir, name = "served.sqlite3") {
  const database = join(dir, name);
  await cli(database, "init-db");
  return database;
}

/**
 * A fresh PostgreSQL schema with the service's schema in it, on the test
 * server (the Python suite's, which may run at the same time: it never
 * touches our schema). {database, drop} or {skip: reason}; with CI=true an
 * unreachable server fails instead of skipping.
 */
export async function postgresDatabase() {
  const schema = `ts_${randomUUID().replaceAll("-", "").slice(0, 16)}`;
  const admin = "import psycopg, sys\n"
    + "with psycopg.connect(sys.argv[1], autocommit=True, connect_timeout=3) as c:\n"
    + "    c.execute(sys.argv[2])\n";
  try {
    await python(admin, POSTGRES, `CREATE SCHEMA ${schema}`);
  } catch (failure) {
    if (process.env.CI === "true") throw failure;
    const reason = String(failure.stderr ?? failure).trim().split("\n").at(-1).trim();
    return { skip: `PostgreSQL at ${POSTGRES} is not usable (${reason})` };
  }
  const database = `${POSTGRES}${POSTGRES.includes("?") ? "&" : "?"}options=-csearch_path%3D${schema}`;
  await cli(database, "init-db");
  return { database, drop: () => python(admin, POSTGRES, `DROP SCHEMA ${schema} CASCADE`) };
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

const running = new Set();
process.on("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

/** gunicorn with the project's settings on a free 127.0.0.1 port. */
export class Server {
  static async start({ database, token = TOKEN, workers = 2, log }) {
    const port = await freePort();
    const out = openSync(log ?? "/dev/null", "w");
    const child = spawn(join(VENV, "bin", "python"), [
      "-m", "gunicorn", "--config", "python:triport_payouts.gunicorn_conf",
      "--bind", `127.0.0.1:${port}`, "--workers", String(workers), "triport_payouts.wsgi:application",
    ], { env: { ...process.env, TRIPORT_DATABASE: database, TRIPORT_ADMIN_TOKEN: token }, stdio: ["ignore", out, out] });
    closeSync(out);
    running.add(child);
    const server = new Server(child, port, log);
    await server.#ready();
    return server;
  }

  constructor(child, port, log) {
    this.child = child;
    this.port = port;
    this.url = `http://127.0.0.1:${port}`;
    this.log = log;
  }

  async #ready() {
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      if (this.child.exitCode !== null) throw new Error(`gunicorn exited with ${this.child.exitCode}: ${this.#tail()}`);
      try {
        if ((await fetch(`${this.url}/healthz`)).status === 200) return;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
    await this.stop();
    throw new Error("gunicorn did not start in time");
  }

  #tail() {
    return this.log ? readFileSync(this.log, "utf8").slice(-2000) : "";
  }

  async stop() {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise((resolve) => this.child.once("exit", resolve));
      this.child.kill("SIGTERM");
      const timer = setTimeout(() => this.child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
    }
    running.delete(this.child);
  }
}

/** Everything an async iterable gives, as an array. */
export async function collect(iterable) {
  const items = [];
  for await (const item of iterable) items.push(item);
  return items;
}

/** The (from, to) pairs of a history, creation left out. */
export function transitions(events) {
  return events.filter((event) => event.from_status !== null);
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
