// Minifies the loader every site embeds (public/widget.js) into dist/widget.js, which
// Parlor serves in its place: the source keeps its comments and names for readers, and
// sites download neither. Names are shortened and spaces and comments dropped; nothing
// is rewritten (no compression passes), and the server's settings slot is kept.
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { minify } from "terser";

const root = new URL("..", import.meta.url).pathname;
const SLOT = "/*SETTINGS*/{}";
const source = readFileSync(`${root}public/widget.js`, "utf8");
const { code } = await minify(source, {
  compress: false,
  mangle: true,
  format: { comments: /^!|^SETTINGS$/ },
});
if (!code.includes(SLOT)) {
  console.error(`The minified loader lost its settings slot (${SLOT}).`);
  process.exit(1);
}
mkdirSync(`${root}dist`, { recursive: true });
writeFileSync(`${root}dist/widget.js`, code);
console.log(`loader: ${source.length} bytes of source, ${code.length} minified`);
