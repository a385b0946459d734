// Writes a brotli (.br) and a gzip (.gz) copy beside every text asset of the built page, so that the
// queen sends compressed bytes without compressing on each request.
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { extname, join } from "node:path";
import { brotliCompressSync, constants, gzipSync } from "node:zlib";

const root = new URL("../dist/web/", import.meta.url).pathname;
const TEXT = new Set([".html", ".js", ".css", ".svg", ".json", ".txt"]);

function* walk(dir) {
  for (const name of readdirSync(dir)) {
    const full = join(dir, name);
    if (statSync(full).isDirectory()) yield* walk(full);
    else yield full;
  }
}

let raw = 0;
let br = 0;
for (const file of walk(root)) {
  if (!TEXT.has(extname(file))) continue;
  const body = readFileSync(file);
  const b = brotliCompressSync(body, {
    params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: body.length },
  });
  writeFileSync(`${file}.br`, b);
  writeFileSync(`${file}.gz`, gzipSync(body, { level: 9 }));
  raw += body.length;
  br += b.length;
}
console.log(`dashboard: ${(raw / 1024).toFixed(1)} KB of assets, ${(br / 1024).toFixed(1)} KB with brotli`);
