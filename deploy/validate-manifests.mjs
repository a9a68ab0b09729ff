// Validates Kubernetes manifests against the Kubernetes OpenAPI schemas that the npm package kubernetes-models carries
// (one class per apiVersion/kind, each with validate()). Every document of every file is checked; a document whose
// apiVersion/kind the package does not know is an error too, so a typo cannot pass unchecked.
// Usage: node deploy/validate-manifests.mjs NODE_MODULES_DIR FILE.yaml...   (test.sh installs the packages into build/npm)
// Prints one line per document; exits 1 when any document is invalid, 2 on a usage or set-up error.
import { readFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [modules, ...files] = process.argv.slice(2);
if (!modules || files.length === 0) {
  console.error("usage: node deploy/validate-manifests.mjs NODE_MODULES_DIR FILE.yaml...");
  process.exit(2);
}

// The packages export ES modules through "exports" maps; this script lives outside their node_modules, so it resolves
// a package's subpath itself, taking the entry Node would pick (import, node or default condition).
function resolveExport(pkg, subpath) {
  const dir = join(modules, pkg);
  if (!existsSync(join(dir, "package.json"))) {
    console.error(`${dir} is missing: run \`npm install --prefix build/npm kubernetes-models@5.1.0 yaml@2.9.1\` (test.sh does)`);
    process.exit(2);
  }
  const entry = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")).exports?.[subpath];
  const target = typeof entry === "string" ? entry : entry?.import ?? entry?.node ?? entry?.default;
  return target ? pathToFileURL(join(dir, target)).href : null;
}

const YAML = await import(resolveExport("yaml", "."));
let failed = 0;
for (const file of files) {
  const docs = YAML.parseAllDocuments(readFileSync(file, "utf8"));
  for (const [i, doc] of docs.entries()) {
    const where = `${file} document ${i + 1}`;
    if (doc.errors.length > 0) { console.log(`${where}: not YAML: ${doc.errors[0].message}`); failed++; continue; }
    const obj = doc.toJS();
    if (obj === null) continue; // an empty document (a trailing ---)
    const { apiVersion, kind } = obj;
    const module = typeof apiVersion === "string" ? resolveExport("kubernetes-models", "./" + apiVersion) : null;
    const Model = module ? (await import(module))[kind] : undefined;
    if (typeof Model !== "function") { console.log(`${where}: unknown apiVersion/kind ${apiVersion}/${kind}`); failed++; continue; }
    try {
      new Model(obj).validate();
      console.log(`${where}: ${apiVersion} ${kind} ${obj.metadata?.name ?? "(no name)"}: valid`);
    } catch (e) {
      console.log(`${where}: ${apiVersion} ${kind} ${obj.metadata?.name ?? "(no name)"}: INVALID: ${e.message}`);
      failed++;
    }
  }
}
console.log(`${failed === 0 ? "all valid" : failed + " invalid"}`);
process.exit(failed === 0 ? 0 : 1);
