import type { CatalogListing, ModelInspection } from "@rbee/contract";
import { Command } from "commander";
import { clientOf, configOf, printJson } from "../context.js";
import { modelRef } from "../model-ref.js";
import { intArg } from "../parse.js";
import { formatBytes } from "../render/format.js";
import { renderTable } from "../render/table.js";
import { runWithNarration } from "../run-job.js";

type Listed = CatalogListing["models"][number];

function statusCell(m: Listed): string {
  if (m.status === "Downloading" && m.size_bytes > 0 && m.downloaded_bytes !== undefined) {
    return `Downloading ${Math.floor((m.downloaded_bytes / m.size_bytes) * 100)}%`;
  }
  return m.status;
}

function renderCatalog(models: Listed[]): string {
  if (models.length === 0)
    return "no models yet: `rbee model download <owner/repo[:file.gguf]>`, or `rbee infer -m <file.gguf>`";
  const columns = [
    { header: "HIVE" },
    { header: "ID" },
    { header: "SIZE", align: "right" as const },
    { header: "QUANT" },
    { header: "STATUS" },
    { header: "SOURCE" },
  ];
  const rows = models.map((m) => [
    m.hive_id,
    m.id,
    formatBytes(m.size_bytes),
    m.gguf?.quantization ?? "-",
    m.status === "Failed" ? `Failed: ${m.error ?? "unknown error"}` : statusCell(m),
    m.source_url ?? m.path ?? "",
  ]);
  return renderTable(columns, rows);
}

function renderInspection(i: ModelInspection & { hive_id?: string }): string {
  const g = i.gguf;
  const e = i.estimate;
  const lines = [
    `model        ${i.model_id}${i.model ? ` (in hive ${i.hive_id}'s catalog, ${i.model.status})` : ""}`,
    `source       ${i.source}${i.picked ? `: ${i.picked}` : ""}`,
    `files        ${i.files.map((f) => `${f.path} (${formatBytes(f.size_bytes)})`).join(", ")}`,
    `architecture ${g.architecture}${g.name ? ` (${g.name})` : ""}`,
    `parameters   ${(g.parameter_count / 1e6).toFixed(g.parameter_count < 1e7 ? 2 : 0)} M`,
    `quantization ${g.quantization}`,
    `context      ${g.context_length} tokens (trained)`,
    `layers       ${g.block_count}, embedding ${g.embedding_length}, heads ${g.head_count} (kv ${g.head_count_kv})`,
    `memory       ${formatBytes(e.total)} for ${e.parallel} × ${e.context_size} tokens: weights ${formatBytes(e.weights)}, KV cache ${formatBytes(e.kv_cache)}, compute ${formatBytes(e.compute)}, overhead ${formatBytes(e.overhead)}`,
    `fetched      ${i.bytes_fetched === 0 ? "nothing over the network (read on disk)" : `${formatBytes(i.bytes_fetched)} of the header, over the network`}`,
  ];
  return lines.join("\n");
}

/** `rbee model download|ls|rm|info`. */
export function modelCommand(): Command {
  const model = new Command("model").description("download, list, inspect and remove models in the hives' catalogs");
  model
    .command("download")
    .alias("pull")
    .description("fetch a model into a hive's catalog, with progress; resumes where an earlier download stopped")
    .argument("<ref>", "owner/repo[:file.gguf], hf://owner/repo/file.gguf@rev, a short name, or a GGUF path")
    .option("--hive <id>", "the hive to put it on (default: where it fits)")
    .option("--json", "print the model as JSON")
    .option("-q, --quiet", "no narration or progress on stderr")
    .action(async (ref: string, flags: { hive?: string; json?: boolean; quiet?: boolean }, cmd: Command) => {
      const result = (await runWithNarration(
        cmd,
        { type: "download_model", model: modelRef(ref), hive: flags.hive },
        flags.quiet === true,
      )) as {
        model?: { id?: string };
      };
      if (flags.json) printJson(result?.model);
      else process.stdout.write(`${result?.model?.id ?? ref}\n`);
    });
  model
    .command("ls")
    .alias("list")
    .description("list the models of every hive's catalog, with their size, quantization and status")
    .option("--json", "print them as a JSON array")
    .action(async (flags: { json?: boolean }, cmd: Command) => {
      const models = await clientOf(configOf(cmd)).catalog();
      if (flags.json) printJson(models);
      else process.stdout.write(`${renderCatalog(models)}\n`);
    });
  model
    .command("rm")
    .alias("remove")
    .description("remove a model from the hives' catalogs (files the catalog holds are deleted; yours stay)")
    .argument("<id>", "the model's id, as `rbee model ls` shows it")
    .option("--hive <id>", "only on this hive")
    .option("--json", "print the job's result as JSON")
    .option("-q, --quiet", "no narration on stderr")
    .action(async (id: string, flags: { hive?: string; json?: boolean; quiet?: boolean }, cmd: Command) => {
      const result = await runWithNarration(
        cmd,
        { type: "remove_model", model: id, hive: flags.hive },
        flags.quiet === true,
      );
      if (flags.json) printJson(result);
      else process.stdout.write(`${id}\n`);
    });
  model
    .command("info")
    .description(
      "what a model is and the memory it needs, from its GGUF header only (fetched by Range for a remote model)",
    )
    .argument("<ref>", "a model id, owner/repo[:file.gguf], hf://…, a short name, or a GGUF path")
    .option("--hive <id>", "the hive that reads it (default: the first)")
    .option("-c, --ctx-size <n>", "tokens of context per parallel request for the estimate", intArg(16, 1 << 20))
    .option("--parallel <n>", "parallel requests for the estimate", intArg(1, 256))
    .option("--json", "print it as JSON")
    .action(
      async (
        ref: string,
        flags: { hive?: string; ctxSize?: number; parallel?: number; json?: boolean },
        cmd: Command,
      ) => {
        const result = (await runWithNarration(
          cmd,
          {
            type: "model_info",
            model: modelRef(ref),
            hive: flags.hive,
            ctx_size: flags.ctxSize,
            parallel: flags.parallel,
          },
          true,
        )) as ModelInspection & { hive_id?: string };
        if (flags.json) printJson(result);
        else process.stdout.write(`${renderInspection(result)}\n`);
      },
    );
  return model;
}
