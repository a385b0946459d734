import { readFile } from "node:fs/promises";
import { basename } from "node:path";
import { RbeeError, ValidationError, type WorkflowInputValue } from "@rbee/contract";

/** The text-to-image workflow that ships with the adapter (ComfyUI's API format, with {{name}} inputs). */
export const DEFAULT_WORKFLOW_PATH = new URL("../workflows/text-to-image.json", import.meta.url).pathname;

/** A node of a workflow in ComfyUI's API format ("Save (API Format)"). */
export interface WorkflowNode {
  class_type: string;
  inputs: Record<string, unknown>;
  _meta?: { title?: string };
}

/** The inputs every image workflow must have: the adapter cannot make an image of nothing. */
export const REQUIRED_INPUTS = ["prompt"] as const;

const WHOLE = /^\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}$/;
const INSIDE = /\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g;

/** A workflow file that cannot be used: 400 at a request, a failed start at load. */
export class WorkflowError extends RbeeError {
  constructor(message: string, param: string | null = "inputs") {
    super(message, { statusCode: 400, code: "workflow_invalid", param });
  }
}

/**
 * A ComfyUI workflow in API format whose node inputs may be **named inputs**: a value `"{{name}}"`
 * is replaced by the input's value (a number stays a number), and `{{name}}` inside a longer text is
 * replaced in the text. The default workflow names `prompt`, `negative_prompt`, `width`, `height`,
 * `steps`, `seed` and `checkpoint`; a user's workflow may name others, given per request in `inputs`.
 */
export class Workflow {
  readonly name: string;
  readonly graph: Readonly<Record<string, WorkflowNode>>;
  /** The named inputs, in the order they appear. */
  readonly inputs: readonly string[];

  constructor(name: string, graph: unknown) {
    this.name = name;
    if (typeof graph !== "object" || graph === null || Array.isArray(graph)) {
      throw new WorkflowError(`workflow ${name} is not a JSON object of nodes (ComfyUI's API format)`, null);
    }
    const g = graph as Record<string, unknown>;
    if (Array.isArray(g.nodes) && "links" in g) {
      throw new WorkflowError(
        `workflow ${name} is in ComfyUI's UI format; export it with "Save (API Format)" (enable the dev mode options in ComfyUI's settings) and use that file`,
        null,
      );
    }
    const names: string[] = [];
    for (const [id, node] of Object.entries(g)) {
      const n = node as Partial<WorkflowNode> | null;
      if (typeof n !== "object" || n === null || typeof n.class_type !== "string" || typeof n.inputs !== "object") {
        throw new WorkflowError(
          `workflow ${name}: node ${id} has no class_type and inputs (ComfyUI's API format)`,
          null,
        );
      }
      for (const value of Object.values(n.inputs ?? {})) {
        if (typeof value !== "string") continue;
        for (const m of value.matchAll(INSIDE)) if (!names.includes(m[1] as string)) names.push(m[1] as string);
      }
    }
    this.graph = g as Record<string, WorkflowNode>;
    this.inputs = names;
    for (const required of REQUIRED_INPUTS) {
      if (!names.includes(required)) {
        throw new WorkflowError(
          `workflow ${name} has no input '${required}': put "{{${required}}}" where the text prompt goes (the text of a CLIPTextEncode node); its inputs are: ${names.length > 0 ? names.join(", ") : "none"}`,
          null,
        );
      }
    }
  }

  /** Reads a workflow file; without a path, the default text-to-image workflow. */
  static async load(path: string | undefined): Promise<Workflow> {
    const file = path ?? DEFAULT_WORKFLOW_PATH;
    let text: string;
    try {
      text = await readFile(file, "utf8");
    } catch (err) {
      throw new WorkflowError(`cannot read the workflow file ${file}: ${(err as Error).message}`, null);
    }
    let graph: unknown;
    try {
      graph = JSON.parse(text);
    } catch (err) {
      throw new WorkflowError(`the workflow file ${file} is not JSON: ${(err as Error).message}`, null);
    }
    return new Workflow(path === undefined ? "text-to-image" : basename(file).replace(/\.json$/i, ""), graph);
  }

  has(input: string): boolean {
    return this.inputs.includes(input);
  }

  /**
   * The graph with every named input replaced by its value.
   * @throws ValidationError (400) naming an input the workflow needs and was not given.
   */
  fill(values: Readonly<Record<string, WorkflowInputValue | undefined>>): Record<string, WorkflowNode> {
    const value = (name: string): WorkflowInputValue => {
      const v = values[name];
      if (v === undefined) {
        throw new ValidationError(
          `workflow ${this.name} needs the input '${name}' and the request gave none: send it as inputs.${name}`,
          `inputs.${name}`,
        );
      }
      return v;
    };
    const out: Record<string, WorkflowNode> = {};
    for (const [id, node] of Object.entries(this.graph)) {
      const inputs: Record<string, unknown> = {};
      for (const [key, v] of Object.entries(node.inputs)) {
        if (typeof v !== "string") {
          inputs[key] = v;
          continue;
        }
        const whole = WHOLE.exec(v);
        inputs[key] = whole ? value(whole[1] as string) : v.replace(INSIDE, (_m, name: string) => String(value(name)));
      }
      out[id] = { ...node, inputs };
    }
    return out;
  }

  /** The class of a node (to narrate what ComfyUI is doing): its title, else its class_type. */
  nodeLabel(id: string | null | undefined): string | undefined {
    if (id === null || id === undefined) return undefined;
    const node = this.graph[id];
    return node?.class_type ?? undefined;
  }
}
