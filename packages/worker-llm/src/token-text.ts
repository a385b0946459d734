import type { LlamaModel, Token } from "node-llama-cpp";

const REPLACEMENT = "\uFFFD";
/** A UTF-8 character is at most 4 bytes, so at most 4 byte tokens. */
const MAX_PENDING = 4;
const CONTEXT_TOKENS = 4;

/**
 * Turns generated tokens into text one token at a time. Tokens that end in the middle of a UTF-8
 * character are held until the character is complete, and the tokens before are passed as context
 * so that the tokenizer places leading spaces as it would for the whole text.
 */
export class TokenTextDecoder {
  #model: LlamaModel;
  #context: Token[];
  #pending: Token[] = [];

  constructor(model: LlamaModel, precedingTokens: readonly Token[]) {
    this.#model = model;
    this.#context = precedingTokens.slice(-CONTEXT_TOKENS);
  }

  /** The text the token completes (possibly empty while a character is incomplete). */
  push(token: Token): string {
    this.#pending.push(token);
    const text = this.#model.detokenize(this.#pending, false, this.#context);
    if (text.endsWith(REPLACEMENT) && this.#pending.length < MAX_PENDING) return "";
    this.#advance();
    return text;
  }

  /** Whatever is still held, decoded as it is. */
  flush(): string {
    if (this.#pending.length === 0) return "";
    const text = this.#model.detokenize(this.#pending, false, this.#context);
    this.#advance();
    return text;
  }

  #advance(): void {
    const all = this.#context.concat(this.#pending);
    this.#context = all.slice(-CONTEXT_TOKENS);
    this.#pending = [];
  }
}
