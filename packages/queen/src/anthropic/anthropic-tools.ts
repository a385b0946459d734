import { type ChatMessage, type ToolCall, type ToolChoice, type ToolDefinition, ValidationError } from "@rbee/contract";
import type { ContentBlock, CountTokensRequest, MessageParam, MessagesRequest } from "./anthropic-schemas.js";

/** Anthropic's tools as the worker contract's: custom tools only (server tools run on Anthropic's side). */
export function toolsOf(req: MessagesRequest | CountTokensRequest): {
  tools?: ToolDefinition[];
  tool_choice?: ToolChoice;
  parallel_tool_calls?: boolean;
} {
  const defs = (req.tools ?? []).map((t, i): ToolDefinition => {
    const tool = t as { name: string; type?: string; description?: string; input_schema?: Record<string, unknown> };
    if (tool.type !== undefined && tool.type !== "custom")
      throw new ValidationError(
        `tools.${i}: the server tool '${tool.type}' runs on Anthropic's servers, not on rbee's; give custom tools with input_schema`,
        `tools.${i}.type`,
      );
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(tool.name))
      throw new ValidationError(
        `tools.${i}.name '${tool.name}' must be 1-64 letters, digits, '_', '.' or '-'`,
        `tools.${i}.name`,
      );
    return {
      name: tool.name,
      ...(tool.description === undefined ? {} : { description: tool.description }),
      ...(tool.input_schema === undefined ? {} : { parameters: tool.input_schema }),
    };
  });
  const choice = req.tool_choice as { type: string; name?: string; disable_parallel_tool_use?: boolean } | undefined;
  if (defs.length === 0) {
    if (choice && (choice.type === "any" || choice.type === "tool"))
      throw new ValidationError("tool_choice asks for a tool call, but the request has no tools", "tool_choice");
    return {};
  }
  let tool_choice: ToolChoice | undefined;
  if (choice?.type === "any") tool_choice = "required";
  else if (choice?.type === "none") tool_choice = "none";
  else if (choice?.type === "tool") {
    const name = choice.name ?? "";
    if (!defs.some((d) => d.name === name))
      throw new ValidationError(`tool_choice names '${name}', which is not one of the tools`, "tool_choice.name");
    tool_choice = { name };
  }
  return {
    tools: defs,
    ...(tool_choice === undefined ? {} : { tool_choice }),
    ...(choice?.disable_parallel_tool_use ? { parallel_tool_calls: false } : {}),
  };
}

function text(block: ContentBlock): string {
  const t = (block as { text?: unknown }).text;
  return typeof t === "string" ? t : "";
}

/** A tool_result's content: a string or text blocks. */
function resultText(block: ContentBlock, at: string): string {
  const r = block as { content?: unknown; is_error?: boolean };
  let out = "";
  if (typeof r.content === "string") out = r.content;
  else if (Array.isArray(r.content))
    out = (r.content as ContentBlock[])
      .map((b, k) => {
        if (b.type !== "text")
          throw new ValidationError(
            `${at}.content.${k}: tool results of type '${b.type}' are not supported by rbee yet; send text`,
            `${at}.content.${k}`,
          );
        return text(b);
      })
      .join("\n");
  return r.is_error ? `Error: ${out}` : out;
}

/**
 * One Anthropic turn as the worker's messages: an assistant turn's tool_use blocks become its
 * tool_calls; a user turn's tool_result blocks become tool messages (before the turn's text).
 */
export function turnMessages(m: MessageParam, at: string, names: Map<string, string>): ChatMessage[] {
  if (typeof m.content === "string") return [{ role: m.role, content: m.content }];
  const texts: string[] = [];
  const calls: ToolCall[] = [];
  const results: ChatMessage[] = [];
  m.content.forEach((block, j) => {
    const here = `${at}.content.${j}`;
    if (block.type === "text") texts.push(text(block));
    else if (block.type === "thinking" || block.type === "redacted_thinking") {
      // rbee makes none; one from elsewhere carries nothing the model here can use
    } else if (block.type === "tool_use" && m.role === "assistant") {
      const u = block as { id?: string; name?: string; input?: unknown };
      if (!u.id || !u.name) throw new ValidationError(`${here}: a tool_use block needs id and name`, here);
      names.set(u.id, u.name);
      calls.push({ id: u.id, name: u.name, arguments: JSON.stringify(u.input ?? {}) });
    } else if (block.type === "tool_result" && m.role === "user") {
      const id = (block as { tool_use_id?: string }).tool_use_id;
      if (!id) throw new ValidationError(`${here}.tool_use_id: Field required`, `${here}.tool_use_id`);
      const name = names.get(id);
      results.push({ role: "tool", content: resultText(block, here), tool_call_id: id, ...(name ? { name } : {}) });
    } else if (block.type === "tool_use" || block.type === "tool_result") {
      const belongs = block.type === "tool_use" ? "an assistant" : "a user";
      throw new ValidationError(
        `${here}: a ${block.type} block belongs in ${belongs} turn; this turn is the ${m.role}'s`,
        `${here}.type`,
      );
    } else {
      throw new ValidationError(
        `${here}: content blocks of type '${block.type}' are not supported by rbee yet; send text, tool_use and tool_result blocks`,
        `${here}.type`,
      );
    }
  });
  const content = texts.join("\n");
  if (m.role === "assistant")
    return [{ role: "assistant", content, ...(calls.length > 0 ? { tool_calls: calls } : {}) }];
  return [...results, ...(content !== "" || results.length === 0 ? [{ role: m.role, content }] : [])];
}

/** A call's arguments as Anthropic's `input` object (the worker's grammar made them JSON). */
export function inputOf(call: ToolCall): unknown {
  try {
    return JSON.parse(call.arguments);
  } catch {
    return {};
  }
}
