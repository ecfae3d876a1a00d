// The package's build: src/ type-checked and compiled once by tsc to
// dist/esm (ES modules, with declarations), then each file transpiled alone
// to dist/cjs (CommonJS) beside copies of the same declarations (isolated
// modules make both safe, and a second tsc would cost seconds more). A
// package.json in each folder tells Node.js and TypeScript which kind its
// files are.
import { execFile } from "node:child_process";
import { copyFile, mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const ts = createRequire(import.meta.url)("typescript");
const dist = join(root, "dist");

await rm(dist, { recursive: true, force: true });
try {
  await promisify(execFile)(process.execPath, [join(root, "node_modules", "typescript", "bin", "tsc"), "-p", root]);
} catch (failure) {
  process.stderr.write(failure.stdout + failure.stderr);
  process.exit(1);
}
await mkdir(join(dist, "cjs"));
const { options } = ts.convertCompilerOptionsFromJson(
  JSON.parse(await readFile(join(root, "tsconfig.cjs.json"), "utf8")).compilerOptions, root);
for (const name of await readdir(join(root, "src"))) {
  const stem = name.replace(/\.ts$/, "");
  const source = await readFile(join(root, "src", name), "utf8");
  const { outputText } = ts.transpileModule(source, { compilerOptions: options, fileName: name });
  await writeFile(join(dist, "cjs", `${stem}.js`), outputText);
  await copyFile(join(dist, "esm", `${stem}.d.ts`), join(dist, "cjs", `${stem}.d.ts`));
}
await writeFile(join(dist, "esm", "package.json"), JSON.stringify({ type: "module" }) + "\n");
await writeFile(join(dist, "cjs", "package.json"), JSON.stringify({ type: "commonjs" }) + "\n");
