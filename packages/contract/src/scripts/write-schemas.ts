import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { z } from "zod";
import { PROTOCOL_VERSION } from "../protocol.js";
import { WIRE_SCHEMAS } from "../schemas.js";

/** Writes one JSON Schema file per wire message, so a worker in another language can implement the contract. */
const outDir = resolve(process.argv[2] ?? "docs/schemas");
mkdirSync(outDir, { recursive: true });
for (const [name, schema] of Object.entries(WIRE_SCHEMAS)) {
  const json = z.toJSONSchema(schema, { target: "draft-2020-12", io: "input", unrepresentable: "any" });
  const doc = { $id: `https://rbee.dev/schemas/v${PROTOCOL_VERSION}/${name}.json`, title: name, ...json };
  writeFileSync(join(outDir, `${name}.json`), `${JSON.stringify(doc, null, 2)}\n`);
}
console.log(`wrote ${Object.keys(WIRE_SCHEMAS).length} schemas (protocol ${PROTOCOL_VERSION}) to ${outDir}`);
