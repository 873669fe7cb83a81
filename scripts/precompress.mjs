// Writes a brotli (quality 11) and a gzip copy next to each built file, so Parlor serves
// the widget and console compressed once at build time instead of on every request.
// Run by scripts/build-web.sh.
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { brotliCompressSync, gzipSync, constants } from "node:zlib";

const root = new URL("..", import.meta.url).pathname;
for (const app of ["widget", "console"]) {
  const dir = join(root, "dist", app);
  for (const name of readdirSync(dir).filter((f) => /\.(wasm|js|css|html)$/.test(f))) {
    const file = join(dir, name);
    const body = readFileSync(file);
    writeFileSync(`${file}.br`, brotliCompressSync(body, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }));
    writeFileSync(`${file}.gz`, gzipSync(body, { level: 9 }));
  }
}
