import type { ChatMessage } from "@rbee/contract";
import {
  type ChatHistoryItem,
  type ChatWrapper,
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
  format(messages: readonly ChatMessage[]): ChatPrompt;
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
  return new PlainChatFormatter(model);
}

class TemplateChatFormatter implements ChatPromptFormatter {
  readonly name: string;
  #stopStrings: string[] = [];
  #stopTokens: Token[] = [];

  constructor(
    private readonly model: LlamaModel,
    private readonly wrapper: ChatWrapper,
  ) {
    this.name = `template:${wrapper.wrapperName}`;
  }

  format(messages: readonly ChatMessage[]): ChatPrompt {
    const history: ChatHistoryItem[] = messages.map((m) => {
      if (m.role === "system") return { type: "system", text: m.content };
      if (m.role === "user") return { type: "user", text: m.content };
      return { type: "model", response: [m.content] };
    });
    // a trailing assistant message is a prefill the model continues; otherwise open a new turn
    if (history.at(-1)?.type !== "model") history.push({ type: "model", response: [] });
    const state = this.wrapper.generateContextState({ chatHistory: history });
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

  constructor(private readonly model: LlamaModel) {}

  format(messages: readonly ChatMessage[]): ChatPrompt {
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
