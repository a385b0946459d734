import { type ChatMessage, ValidationError } from "@rbee/contract";
import {
  type ChatHistoryItem,
  type ChatModelFunctionCall,
  type ChatModelFunctions,
  type ChatModelResponse,
  type ChatWrapper,
  GeneralChatWrapper,
  type LlamaModel,
  type LlamaText,
  resolveChatWrapper,
  SpecialToken,
  SpecialTokensText,
  type Token,
} from "node-llama-cpp";

/** A chat history turned into prompt tokens, with what ends the assistant's turn. */
export interface ChatPrompt {
  tokens: Token[];
  /** Text that ends the reply (not shown to the client). */
  stopStrings: string[];
  /** Tokens that end the reply besides the model's end-of-generation tokens. */
  stopTokens: Token[];
}

export interface ChatPromptFormatter {
  /** "template:<name>" for the model's own template, "plain" for the fallback. */
  readonly name: string;
  /**
   * The node-llama-cpp chat wrapper that tool calls are generated with: the model's own template, or
   * node-llama-cpp's general one for a model without a template.
   */
  readonly wrapper: ChatWrapper;
  /** The prompt for a chat; `functions` are described to the model the way its template does. */
  format(messages: readonly ChatMessage[], functions?: ChatModelFunctions): ChatPrompt;
}

/** Arguments and results travel as JSON text; the chat wrappers take values. */
function parseJsonOr(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/**
 * A chat in node-llama-cpp's terms. An assistant turn with tool calls, the `tool` messages that
 * answer them and the assistant text after them are one model response, as node-llama-cpp's chat
 * wrappers render a turn with function calls; a chat that ends in tool results is continued by the
 * model within that turn.
 */
export function toChatHistory(messages: readonly ChatMessage[]): ChatHistoryItem[] {
  const history: ChatHistoryItem[] = [];
  const open = new Map<string, ChatModelFunctionCall>();
  let lastCalls: ChatModelFunctionCall[] = [];
  for (const [i, m] of messages.entries()) {
    const last = history.at(-1);
    if (m.role === "system") history.push({ type: "system", text: m.content });
    else if (m.role === "user") history.push({ type: "user", text: m.content });
    else if (m.role === "assistant") {
      const response: ChatModelResponse["response"] = m.content === "" ? [] : [m.content];
      const calls = (m.tool_calls ?? []).map(
        (c, j): ChatModelFunctionCall => ({
          type: "functionCall",
          name: c.name,
          params: parseJsonOr(c.arguments),
          result: undefined,
          startsNewChunk: j === 0,
        }),
      );
      for (const [j, c] of calls.entries()) open.set(m.tool_calls?.[j]?.id ?? "", c);
      lastCalls = calls;
      // text after tool results continues the turn that called the tools
      const continues = last?.type === "model" && typeof last.response.at(-1) === "object";
      if (continues) last.response.push(...response, ...calls);
      else history.push({ type: "model", response: [...response, ...calls] });
    } else {
      const call =
        (m.tool_call_id !== undefined ? open.get(m.tool_call_id) : undefined) ??
        lastCalls.find((c) => c.result === undefined && (m.name === undefined || c.name === m.name));
      if (call === undefined)
        throw new ValidationError(
          `messages[${i}] is a tool result, but no assistant tool call before it has id '${m.tool_call_id ?? ""}'`,
          `messages[${i}].tool_call_id`,
        );
      call.result = parseJsonOr(m.content);
      if (m.tool_call_id !== undefined) open.delete(m.tool_call_id);
    }
  }
  return history;
}

/** The tools of a request in node-llama-cpp's terms. */
export function toChatFunctions(
  tools: ReadonlyArray<{ name: string; description?: string; parameters?: Record<string, unknown> }>,
): ChatModelFunctions {
  const functions: Record<string, ChatModelFunctions[string]> = {};
  for (const t of tools) {
    functions[t.name] = {
      ...(t.description === undefined ? {} : { description: t.description }),
      ...(t.parameters === undefined ? {} : { params: t.parameters as never }),
    };
  }
  return functions;
}

/**
 * The model's own chat template (read from the GGUF's `tokenizer.chat_template`, run by
 * node-llama-cpp's Jinja or specialized wrappers), or, for models without one, a plain
 * "User:/Assistant:" layout that any text model continues sensibly.
 */
export function createChatPromptFormatter(model: LlamaModel): ChatPromptFormatter {
  const template = model.fileInfo.metadata.tokenizer?.chat_template;
  if (typeof template === "string" && template.trim() !== "") {
    return new TemplateChatFormatter(model, resolveChatWrapper(model));
  }
  return new PlainChatFormatter(model, new GeneralChatWrapper());
}

class TemplateChatFormatter implements ChatPromptFormatter {
  readonly name: string;
  #stopStrings: string[] = [];
  #stopTokens: Token[] = [];

  constructor(
    private readonly model: LlamaModel,
    readonly wrapper: ChatWrapper,
  ) {
    this.name = `template:${wrapper.wrapperName}`;
  }

  format(messages: readonly ChatMessage[], functions?: ChatModelFunctions): ChatPrompt {
    const history = toChatHistory(messages);
    // a trailing assistant message is a prefill the model continues; otherwise open a new turn
    if (history.at(-1)?.type !== "model") history.push({ type: "model", response: [] });
    const state = this.wrapper.generateContextState({
      chatHistory: history,
      availableFunctions: functions,
      documentFunctionParams: functions === undefined ? undefined : true,
    });
    if (this.#stopStrings.length === 0 && this.#stopTokens.length === 0)
      this.#readTriggers(state.stopGenerationTriggers);
    return {
      tokens: state.contextText.tokenize(this.model.tokenizer),
      stopStrings: this.#stopStrings,
      stopTokens: this.#stopTokens,
    };
  }

  #readTriggers(triggers: readonly LlamaText[]): void {
    for (const trigger of triggers) {
      const only = trigger.values.length === 1 ? trigger.values[0] : undefined;
      if (typeof only === "string") this.#stopStrings.push(only);
      else if (only instanceof SpecialTokensText || only instanceof SpecialToken) {
        const tokens = trigger.tokenize(this.model.tokenizer);
        if (tokens.length === 1) this.#stopTokens.push(tokens[0] as Token);
      } else if (trigger.values.every((v) => typeof v === "string")) this.#stopStrings.push(trigger.toString());
    }
  }
}

class PlainChatFormatter implements ChatPromptFormatter {
  readonly name = "plain";

  constructor(
    private readonly model: LlamaModel,
    readonly wrapper: ChatWrapper,
  ) {}

  format(messages: readonly ChatMessage[], functions?: ChatModelFunctions): ChatPrompt {
    // tools need a format the model's calls can be parsed in: node-llama-cpp's general wrapper's
    if (functions !== undefined || messages.some((m) => m.role === "tool" || m.tool_calls?.length))
      return new TemplateChatFormatter(this.model, this.wrapper).format(messages, functions);
    let text = "";
    for (const m of messages) {
      if (m.role === "system") text += `${m.content}\n\n`;
      else if (m.role === "user") text += `User: ${m.content}\n`;
      else text += `Assistant: ${m.content}\n`;
    }
    const last = messages.at(-1);
    if (last?.role === "assistant") text = text.slice(0, -1);
    else text += "Assistant:";
    return {
      tokens: tokenizePrompt(this.model, text),
      stopStrings: ["\nUser:", "\nAssistant:"],
      stopTokens: [],
    };
  }
}

/**
 * Tokenizes a raw prompt as llama.cpp's server does: special tokens written in the text are parsed,
 * and the model's BOS token is prepended when its tokenizer asks for one.
 */
export function tokenizePrompt(model: LlamaModel, text: string): Token[] {
  const tokens = model.tokenize(text, true);
  const bos = model.tokens.bos;
  if (model.tokens.shouldPrependBosToken && bos !== null && tokens[0] !== bos) tokens.unshift(bos);
  return tokens;
}
