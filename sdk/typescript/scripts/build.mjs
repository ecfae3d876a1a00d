// The package's build: src/ compiled twice, to dist/esm (ES modules) and
// dist/cjs (CommonJS), each with its declarations, and a package.json in
// each folder that tells Node.js and TypeScript which kind its .js files are.
import { execFile } from "node:child_process";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const tsc = join(root, "node_modules", "typescript", "bin", "tsc");
const run = promisify(execFile);

await rm(join(root, "dist"), { recursive: true, force: true });
const builds = [["tsconfig.json", "esm", "module"], ["tsconfig.cjs.json", "cjs", "commonjs"]];
await Promise.all(builds.map(async ([config, folder, type]) => {
  try {
    await run(process.execPath, [tsc, "-p", join(root, config)], { cwd: root });
  } catch (failure) {
    process.stderr.write(failure.stdout + failure.stderr);
    process.exit(1);
  }
  await mkdir(join(root, "dist", folder), { recursive: true });
  await writeFile(join(root, "dist", folder, "package.json"), JSON.stringify({ type }) + "\n");
}));
