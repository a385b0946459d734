import { type ChatMessage, type ToolCall, type ToolChoice, type ToolDefinition, ValidationError } from "@rbee/contract";
import type { OllamaChatRequest } from "./ollama-schemas.js";

/**
 * `/api/chat` tools (`{type: "function", function: {name, description, parameters}}`) as the
 * worker's, with rbee's tool_choice and parallel_tool_calls extensions.
 */
export function ollamaTools(req: OllamaChatRequest): {
  tools?: ToolDefinition[];
  tool_choice?: ToolChoice;
  parallel_tool_calls?: boolean;
} {
  const tools = definitions(req);
  const c = req.tool_choice;
  const named = typeof c === "object" ? (c as { name?: string; function?: { name: string } }) : undefined;
  const name = named ? (named.function?.name ?? named.name) : undefined;
  if (!tools) {
    if (c === "required" || name !== undefined)
      throw new ValidationError("tool_choice asks for a tool call, but the request has no tools", "tool_choice");
    return {};
  }
  if (name !== undefined && !tools.some((t) => t.name === name))
    throw new ValidationError(`tool_choice names '${name}', which is not one of the tools`, "tool_choice");
  return {
    tools,
    ...(c === undefined ? {} : { tool_choice: name !== undefined ? { name } : (c as "auto" | "none" | "required") }),
    ...(req.parallel_tool_calls === false ? { parallel_tool_calls: false } : {}),
  };
}

function definitions(req: OllamaChatRequest): ToolDefinition[] | undefined {
  if (!req.tools || req.tools.length === 0) return undefined;
  return req.tools.map((t, i) => {
    const f = (t as { function?: { name?: unknown; description?: unknown; parameters?: unknown } }).function;
    if (typeof f?.name !== "string" || !/^[A-Za-z0-9_.-]{1,64}$/.test(f.name))
      throw new ValidationError(
        `tools[${i}].function.name must be 1-64 letters, digits, '_', '.' or '-'`,
        `tools[${i}].function.name`,
      );
    return {
      name: f.name,
      ...(typeof f.description === "string" ? { description: f.description } : {}),
      ...(f.parameters && typeof f.parameters === "object"
        ? { parameters: f.parameters as Record<string, unknown> }
        : {}),
    };
  });
}

/**
 * Ollama's history as the worker's: Ollama's tool calls have no ids, so each gets one
 * (`call_<message>_<n>`), and the `tool` messages that follow answer them in order (or by
 * `tool_name`).
 */
export function ollamaHistory(req: OllamaChatRequest): ChatMessage[] {
  let pending: ToolCall[] = [];
  return (req.messages ?? []).map((m, i): ChatMessage => {
    const content = m.content ?? "";
    if (m.role === "assistant" && m.tool_calls && m.tool_calls.length > 0) {
      const calls = m.tool_calls.map((c, j): ToolCall => {
        const f = (c as { id?: string; function?: { name?: unknown; arguments?: unknown } }).function;
        if (typeof f?.name !== "string")
          throw new ValidationError(
            `messages[${i}].tool_calls[${j}].function.name: Field required`,
            `messages[${i}].tool_calls[${j}]`,
          );
        const args = f.arguments;
        return {
          id: (c as { id?: string }).id ?? `call_${i}_${j}`,
          name: f.name,
          arguments: typeof args === "string" ? args : JSON.stringify(args ?? {}),
        };
      });
      pending = [...calls];
      return { role: "assistant", content, tool_calls: calls };
    }
    if (m.role === "tool") {
      const byName = m.tool_name ? pending.findIndex((c) => c.name === m.tool_name) : -1;
      const call = pending.splice(Math.max(byName, 0), 1)[0];
      const name = m.tool_name ?? call?.name;
      return { role: "tool", content, ...(call ? { tool_call_id: call.id } : {}), ...(name ? { name } : {}) };
    }
    return { role: m.role, content };
  });
}

/** The worker's calls as Ollama writes them: arguments as an object. */
export function ollamaToolCalls(calls: readonly ToolCall[]) {
  return calls.map((c, index) => {
    let args: unknown = {};
    try {
      args = JSON.parse(c.arguments);
    } catch {}
    return { id: c.id, function: { index, name: c.name, arguments: args } };
  });
}
