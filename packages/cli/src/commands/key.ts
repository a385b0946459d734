import { Command } from "commander";
import { clientOf, configOf, printJson } from "../context.js";
import { renderTable } from "../render/table.js";

/** `rbee key create|ls|rm`: the queen's API keys (needs this machine's cluster token). */
export function keyCommand(): Command {
  const key = new Command("key").description(
    "manage the queen's API keys; once one exists, the OpenAI, job and cluster routes require a key",
  );
  key
    .command("create")
    .description("create an API key and print it (the only time it is shown)")
    .option("--name <name>", "a name to tell keys apart", "default")
    .option("--admin", "the key may create and revoke keys too (the web dashboard's Keys view)")
    .option("--json", "print the key and its id, name, prefix and creation time as JSON")
    .action(async (flags: { name: string; admin?: boolean; json?: boolean }, cmd: Command) => {
      const created = await clientOf(configOf(cmd)).createKey(flags.name, flags.admin === true);
      if (flags.json) printJson(created);
      else process.stdout.write(`${created.key}\n`);
      process.stderr.write(
        `API key '${created.name}' created (id ${created.id}). It is shown only this once: store it now. Clients send it as 'Authorization: Bearer <key>' (OpenAI SDKs: apiKey); the rbee CLI takes --api-key or RBEE_API_KEY.\n`,
      );
    });
  key
    .command("ls")
    .alias("list")
    .description("list the API keys (ids, names, prefixes; never the keys themselves)")
    .option("--json", "print them as a JSON array")
    .action(async (flags: { json?: boolean }, cmd: Command) => {
      const keys = await clientOf(configOf(cmd)).listKeys();
      if (flags.json) printJson(keys);
      else if (keys.length === 0) {
        process.stdout.write("no API keys: the queen's API is open, and it listens on loopback only\n");
      } else {
        const rows = keys.map((k) => [k.id, k.name, `${k.prefix}…`, k.created_at]);
        process.stdout.write(
          `${renderTable([{ header: "id" }, { header: "name" }, { header: "prefix" }, { header: "created" }], rows)}\n`,
        );
      }
    });
  key
    .command("rm")
    .alias("remove")
    .description("remove an API key; clients using it are refused from now on")
    .argument("<id>", "the key's id, as `rbee key ls` shows it")
    .action(async (id: string, _flags: object, cmd: Command) => {
      await clientOf(configOf(cmd)).removeKey(id);
      process.stdout.write(`removed API key ${id}\n`);
    });
  return key;
}
