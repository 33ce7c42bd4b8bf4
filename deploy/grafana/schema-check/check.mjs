// The dashboard JSON as an object literal typed `Dashboard` from @grafana/schema (the Grafana version the compose
// file runs), compiled with tsc --noEmit: unknown keys (excess properties) and bad enum values are type errors.
// Usage: node check.mjs DASHBOARD.json [...]   (exit 1 on any error)
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const dir = join(here, ".generated"); // beside node_modules, so that the import resolves
rmSync(dir, { recursive: true, force: true });
mkdirSync(dir);
const files = process.argv.slice(2).map((path, i) => {
  const json = JSON.stringify(JSON.parse(readFileSync(path, "utf8")), null, 2);
  const file = join(dir, `dashboard${i}.ts`);
  writeFileSync(file, `// ${path}\nimport type { Dashboard } from "@grafana/schema";\nexport const dashboard: Dashboard = ${json};\n`);
  return file;
});
const tsc = join(here, "node_modules", "typescript", "bin", "tsc");
try {
  execFileSync(process.execPath, [tsc, "--noEmit", "--strict", "--skipLibCheck", "--moduleResolution", "node",
    "--module", "esnext", "--target", "es2020", ...files], { stdio: "inherit", cwd: here });
  console.log(`dashboards valid against @grafana/schema: ${process.argv.slice(2).join(", ")}`);
} catch {
  process.exit(1);
}
