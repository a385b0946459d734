import { readFileSync } from "node:fs";
import { join } from "node:path";
import {
  configSchemaProblems,
  describeConfigSchema,
  RbeeError,
  WorkerPackageManifest,
  workerConfigFor,
} from "@rbee/contract";
import { REPO_ROOT } from "@rbee/testing";
import { describe, expect, it } from "vitest";

/** A package's config_schema (the JSON Schema subset of worker-config.ts) and the spawn's config checked against it. */
describe("worker configuration against a package's config_schema", () => {
  const schema = {
    type: "object",
    properties: {
      case: { enum: ["as-is", "upper", "lower"], default: "as-is" },
      max_words: { type: "integer", minimum: 1, maximum: 100 },
      ratio: { type: "number", minimum: 0, maximum: 1, default: 0.5 },
      name: { type: "string" },
      tags: { type: "array", items: { type: "string" } },
      limits: {
        type: "object",
        properties: { rpm: { type: "integer", default: 60 } },
        additionalProperties: false,
        default: {},
      },
    },
    required: ["name"],
    additionalProperties: false,
  };
  /** The refusal of `config` under `s` (null: a type without a schema). */
  const refused = (config: Record<string, unknown> | undefined, s: Record<string, unknown> | null = schema) => {
    try {
      workerConfigFor("demo", s ?? undefined, config);
    } catch (err) {
      expect(err).toBeInstanceOf(RbeeError);
      const e = err as RbeeError;
      expect(e.statusCode).toBe(400);
      return { param: e.param, message: e.message };
    }
    throw new Error("the configuration was taken");
  };

  it("fills in defaults (nested too) and leaves the given object alone", () => {
    const given = { name: "x", max_words: 3 };
    expect(workerConfigFor("demo", schema, given)).toEqual({
      name: "x",
      max_words: 3,
      case: "as-is",
      ratio: 0.5,
      limits: { rpm: 60 },
    });
    expect(given).toEqual({ name: "x", max_words: 3 });
    expect(workerConfigFor("demo", schema, { name: "y", ratio: 1, tags: ["a"], limits: { rpm: 5 } })).toMatchObject({
      ratio: 1,
      limits: { rpm: 5 },
    });
  });

  it("names the field and what it expected", () => {
    expect(refused({ name: "x", case: "loud" })).toEqual({
      param: "config.case",
      message: expect.stringMatching(
        /^config\.case must be one of "as-is", "upper", "lower", got "loud": worker type 'demo' refuses this configuration/,
      ),
    });
    expect(refused({ name: "x", max_words: 0 }).message).toMatch(
      /^config\.max_words must be a whole number from 1 to 100, got 0/,
    );
    expect(refused({ name: "x", max_words: 2.5 }).message).toMatch(
      /config\.max_words must be a whole number from 1 to 100, got 2\.5/,
    );
    expect(refused({ name: "x", ratio: "half" }).message).toMatch(
      /config\.ratio must be a number from 0 to 1, got "half"/,
    );
    expect(refused({}).message).toMatch(/^config\.name is required \(a string\)/);
    expect(refused({ name: "x", colour: "red" })).toMatchObject({
      param: "config.colour",
      message: expect.stringMatching(
        /config\.colour is not a setting of this worker type; it takes case, max_words, ratio, name, tags, limits/,
      ),
    });
    expect(refused({ name: "x", tags: ["a", 2] }).param).toBe("config.tags[1]");
    expect(refused({ name: "x", limits: { rpm: 1, burst: 2 } }).param).toBe("config.limits.burst");
  });

  it("describes the settings for people (rbee worker info)", () => {
    expect(describeConfigSchema(schema)).toEqual([
      'case: one of "as-is", "upper", "lower" (default "as-is")',
      "max_words: a whole number from 1 to 100",
      "ratio: a number from 0 to 1 (default 0.5)",
      "name: a string (required)",
      "tags: a list",
      "limits: an object (default {})",
    ]);
    expect(describeConfigSchema(undefined)).toEqual([]);
  });

  it("a type without a schema takes no configuration", () => {
    expect(workerConfigFor("llm", undefined, undefined)).toBeUndefined();
    expect(workerConfigFor("llm", undefined, {})).toBeUndefined();
    expect(refused({ a: 1 }, null).message).toMatch(/worker type 'demo' takes no configuration/);
  });

  it("refuses a schema with keywords outside the subset, or a default that does not match it, when the manifest is read", () => {
    expect(configSchemaProblems(schema)).toEqual([]);
    expect(configSchemaProblems({ type: "object", properties: { a: { type: "string", pattern: "^x" } } })).toEqual([
      "config_schema.properties.a: keyword 'pattern' is not supported; use type, properties, required, additionalProperties, enum, minimum, maximum, items, default",
    ]);
    expect(configSchemaProblems({ type: "thing" })[0]).toMatch(/config_schema\.type: 'thing' is not one of/);
    expect(configSchemaProblems({ properties: { n: { type: "integer", default: "x" } } })[0]).toMatch(
      /config_schema\.properties\.n\.default must be a whole number, got "x": the default does not match its own schema/,
    );
    const manifest = JSON.parse(readFileSync(join(REPO_ROOT, "examples/echo-worker-package/rbee-worker.json"), "utf8"));
    expect(WorkerPackageManifest.safeParse(manifest).success).toBe(true);
    const bad = WorkerPackageManifest.safeParse({ ...manifest, config_schema: { type: "object", oneOf: [] } });
    expect(bad.success).toBe(false);
    expect(bad.error?.issues[0]?.message).toMatch(/keyword 'oneOf' is not supported/);
  });
});
