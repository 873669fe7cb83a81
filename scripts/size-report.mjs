// Prints what the widget costs a customer's site, compressed as Parlor serves it, and
// checks that the widget's bundle is the Leptos app and holds no console code. Run after
// scripts/build-web.sh.
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { brotliCompressSync, gzipSync, constants } from "node:zlib";

const root = new URL("..", import.meta.url).pathname;
const kb = (n) => (n / 1024).toFixed(1).padStart(7) + " KB";
const brotli = (buf) =>
  brotliCompressSync(buf, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length;

function report(label, files) {
  let raw = 0, gz = 0, br = 0;
  for (const file of files) {
    const buf = readFileSync(file);
    raw += buf.length; gz += gzipSync(buf, { level: 9 }).length; br += brotli(buf);
  }
  console.log(`${label.padEnd(34)} raw ${kb(raw)}   gzip ${kb(gz)}   brotli ${kb(br)}`);
  return br;
}

// The built files, not the compressed copies scripts/precompress.mjs writes beside them.
const dir = (app) =>
  readdirSync(join(root, "dist", app))
    .filter((f) => !/\.(br|gz)$/.test(f))
    .map((f) => join(root, "dist", app, f));
// The minified loader Parlor serves (scripts/minify-loader.mjs), as sites download it.
report("Host page before a click (loader)", [join(root, "dist", "widget.js")]);
report("Widget first open (HTML+JS+WASM+CSS)", dir("widget"));
report("Console (HTML+JS+WASM+CSS)", dir("console"));

// The widget and the console are separate entry points: no console text in the widget.
const widgetWasm = dir("widget").find((f) => f.endsWith(".wasm"));
const text = readFileSync(widgetWasm).toString("latin1");
const consoleOnly = ["Sign in to the agent console", "Incoming chat", "/ws/agent"];
const leaked = consoleOnly.filter((s) => text.includes(s));
if (leaked.length > 0) {
  console.error(`The widget bundle contains console code: ${leaked.join(", ")}`);
  process.exit(1);
}
// The widget is a Leptos app like the console, built from the same components;
// Leptos's crates leave their names in any bundle that links them.
const leptosMarks = ["reactive_graph", "tachys"].filter((s) => !text.includes(s));
if (leptosMarks.length > 0) {
  console.error(`The widget bundle does not link Leptos (no ${leptosMarks.join(", ")} in it).`);
  process.exit(1);
}
if (!text.includes("/ws/visitor")) {
  console.error("The widget bundle check looked at the wrong file: no /ws/visitor in it.");
  process.exit(1);
}
console.log("Widget bundle is Leptos and holds no console code.");
