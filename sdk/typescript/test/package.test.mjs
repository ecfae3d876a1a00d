// The package as a user gets it: `npm pack`, installed from the tarball into a
// scratch project, where the seed page's TypeScript example, verbatim, is
// type-checked and run against a live server, and so is its plain fetch
// example; and `require` works as well as `import`, types included.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { ROOT, SDK, Server, TOKEN, cli, client, scratchDir, sqliteDatabase, transitions } from "./harness.mjs";

const run = promisify(execFile);
const SPEC = join(ROOT, "..", "shared", "spec", "mark-payout-failed.txt");

// The seed page's examples (spec/mark-payout-failed.txt), verbatim: the page lost their indentation.
const TYPESCRIPT_EXAMPLE = `import { TriportAdmin } from "@triport/sdk";
const admin = new TriportAdmin({ adminToken: process.env.TRIPORT_ADMIN_TOKEN! });
await admin.referrals.payouts.markFailed(payoutId, {
reason: "destination wallet rejected the transfer",
});`;

const FETCH_EXAMPLE = `const res = await fetch(
\`https://api.triport.io/v1/admin/referrals/payouts/\${payoutId}/failed\`,
{
method: "POST",
headers: {
"X-Admin-Token": process.env.TRIPORT_ADMIN_TOKEN,
"Content-Type": "application/json",
},
body: JSON.stringify({ reason: "destination wallet rejected the transfer" }),
}
);
if (!res.ok) {
const { error } = await res.json();
throw new Error(\`mark-failed failed: \${error}\`);
}
const { ok } = await res.json(); // ok === true`;

// A CommonJS user: require() through the exports map, with the CommonJS declarations.
const COMMONJS_USER = `import { TriportAdmin, PayoutNotActionable, TriportError, webhooks, type Payout } from "@triport/sdk";

async function main(): Promise<void> {
  const admin = new TriportAdmin({ adminToken: process.env.TRIPORT_ADMIN_TOKEN!, actor: "cjs" });
  const refused = await admin.referrals.payouts.markFailed(process.env.PAYOUT_ID!).catch((error: unknown) => error);
  if (!(refused instanceof PayoutNotActionable)) throw new Error(\`expected PayoutNotActionable, got \${String(refused)}\`);
  const failed: Payout[] = [];
  for await (const payout of admin.referrals.payouts.list({ status: "failed", limit: 1 })) failed.push(payout);
  // @ts-expect-error amounts are decimal strings, never numbers
  const amount: number = failed[0]!.amount;
  void amount;
  const error: TriportError = refused;
  console.log(JSON.stringify({ status: error.status, tag: error.tag, failed: failed.length, verify: typeof webhooks.verify }));
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
`;

// Sends the page's https://api.triport.io requests to the test's server: the example stays verbatim.
const TO_THE_LIVE_SERVER = `const real = globalThis.fetch;
globalThis.fetch = (url, init) => real(String(url).replace("https://api.triport.io", process.env.TRIPORT_BASE_URL), init);
`;

describe("the packed package, in a scratch project", () => {
  const dir = scratchDir();
  const project = join(dir, "project");
  let server, database, ids, env;

  before(async () => {
    mkdirSync(project);
    writeFileSync(join(project, "package.json"), JSON.stringify({ name: "scratch", private: true, type: "module" }));
    const serving = (async () => {
      database = await sqliteDatabase(dir);
      ids = (await cli(database, "seed-demo", "--payouts", "3", "--users", "1")).trim().split("\n");
      server = await Server.start({ database, workers: 1, log: join(dir, "gunicorn.log") });
    })();
    await Promise.all([serving, (async () => {
      const packed = JSON.parse((await run("npm", ["pack", "--json", "--ignore-scripts", "--pack-destination", dir], { cwd: SDK })).stdout);
      const tarball = join(dir, packed[0].filename);
      await run("npm", ["install", "--offline", "--no-audit", "--no-fund", tarball], { cwd: project });
    })()]);
    env = { ...process.env, TRIPORT_ADMIN_TOKEN: TOKEN, TRIPORT_BASE_URL: server.url };
  });

  after(() => server?.stop());

  test("the examples are the page's, verbatim", (t) => {
    if (!existsSync(SPEC)) return t.skip(`no ${SPEC} beside the checkout`);
    const page = readFileSync(SPEC, "utf8");
    assert.ok(page.includes(TYPESCRIPT_EXAMPLE), "the TypeScript example differs from the page's");
    assert.ok(page.includes(FETCH_EXAMPLE), "the fetch example differs from the page's");
  });

  test("the tarball holds the builds and their declarations, no sources, no tests", () => {
    const installed = join(project, "node_modules", "@triport", "sdk");
    const manifest = JSON.parse(readFileSync(join(installed, "package.json"), "utf8"));
    assert.deepEqual(Object.keys(manifest.exports["."].import), ["types", "default"]);
    assert.deepEqual(Object.keys(manifest.exports["."].require), ["types", "default"]);
    assert.equal(manifest.dependencies, undefined);
    for (const file of ["dist/esm/index.js", "dist/esm/index.d.ts", "dist/cjs/index.js", "dist/cjs/index.d.ts", "README.md"]) {
      assert.ok(existsSync(join(installed, file)), file);
    }
    assert.ok(!existsSync(join(installed, "src")) && !existsSync(join(installed, "test")));
  });

  test("the TypeScript example, and a CommonJS user, type-check and run against the live server", async () => {
    writeFileSync(join(project, "example.ts"), `const payoutId = process.env.PAYOUT_ID!;\n${TYPESCRIPT_EXAMPLE}\n`);
    writeFileSync(join(project, "commonjs.cts"), COMMONJS_USER);
    writeFileSync(join(project, "tsconfig.json"), JSON.stringify({
      compilerOptions: {
        module: "NodeNext", moduleResolution: "NodeNext", target: "ES2022", strict: true, outDir: "out",
        typeRoots: [join(SDK, "node_modules", "@types")], types: ["node"], skipLibCheck: true,
      },
      files: ["example.ts", "commonjs.cts"],
    }));
    await run(process.execPath, [join(SDK, "node_modules", "typescript", "bin", "tsc"), "-p", project]).catch((failure) => {
      assert.fail(`tsc: ${failure.stdout}${failure.stderr}`);
    });
    await run(process.execPath, [join(project, "out", "example.js")], { env: { ...env, PAYOUT_ID: ids[0] } });
    const [event] = transitions(await client(server.url).referrals.payouts.events(ids[0]));
    assert.deepEqual([event.to_status, event.reason], ["failed", "destination wallet rejected the transfer"]);

    const { stdout } = await run(process.execPath, [join(project, "out", "commonjs.cjs")], { env: { ...env, PAYOUT_ID: ids[0] } });
    assert.deepEqual(JSON.parse(stdout), { status: 409, tag: "payout_not_actionable", failed: 1, verify: "function" });
    assert.match(readFileSync(join(project, "out", "commonjs.cjs"), "utf8"), /require\("@triport\/sdk"\)/);
  });

  test("the plain fetch example runs against the live server", async () => {
    writeFileSync(join(project, "fetch-example.mjs"),
      `const payoutId = process.env.PAYOUT_ID;\n${FETCH_EXAMPLE}\nconsole.log(JSON.stringify({ ok }));\n`);
    writeFileSync(join(project, "to-live-server.mjs"), TO_THE_LIVE_SERVER);
    const { stdout } = await run(process.execPath, ["--import", "./to-live-server.mjs", "fetch-example.mjs"],
      { cwd: project, env: { ...env, PAYOUT_ID: ids[1] } });
    assert.deepEqual(JSON.parse(stdout), { ok: true });
    const [event] = transitions(await client(server.url).referrals.payouts.events(ids[1]));
    assert.deepEqual([event.to_status, event.reason], ["failed", "destination wallet rejected the transfer"]);
  });
});
