import { randomBytes } from "node:crypto";
import type { FinishReason, InferRequest, ToolCall } from "@rbee/contract";
import type { InferContext } from "@rbee/worker-kit";
import {
  type ChatHistoryItem,
  type ChatModelFunctions,
  type ChatWrapper,
  type ChatWrapperGenerateContextStateOptions,
  LlamaChat,
  type LlamaContextSequence,
  LlamaText,
} from "node-llama-cpp";

/** A tool call's id, in the form OpenAI's clients expect ("call_..."). */
export function newToolCallId(): string {
  return `call_${randomBytes(12).toString("hex")}`;
}

/**
 * The model's chat wrapper with two changes for one request: it describes `all` the request's tools
 * even when only one may be called (a named tool_choice), and with `force` the model's turn starts
 * in function-calling mode (node-llama-cpp's `noPrefixTrigger`: the call prefix is put in the context
 * and the function name is grammar-constrained), so the model calls a tool.
 */
function requestWrapper(wrapper: ChatWrapper, all: ChatModelFunctions, force: boolean): ChatWrapper {
  return new Proxy(wrapper, {
    get(target, property) {
      if (property === "generateContextState") {
        return (options: ChatWrapperGenerateContextStateOptions) => {
          const state = target.generateContextState({
            ...options,
            availableFunctions: options.availableFunctions === undefined ? undefined : all,
          });
          if (!force) return state;
          if (state.functionCall !== undefined)
            return { ...state, functionCall: { initiallyEngaged: true, disengageInitiallyEngaged: [] } };
          return {
            ...state,
            prefixTriggers: undefined,
            noPrefixTrigger: { type: "functionCall" as const, inject: LlamaText([]) },
          };
        };
      }
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

export interface ToolGenerationOptions {
  request: InferRequest;
  ctx: InferContext;
  sequence: LlamaContextSequence;
  wrapper: ChatWrapper;
  history: ChatHistoryItem[];
  /** Every tool of the request. */
  functions: ChatModelFunctions;
  promptTokens: number;
  stopStrings: readonly string[];
  sampling: {
    temperature: number;
    topK: number;
    topP: number;
    minP: number;
    seed: number | undefined;
    repeatPenalty: false | { penalty: number; presencePenalty: number; frequencyPenalty: number };
  };
}

export interface ToolGenerationResult {
  text: string;
  toolCalls: ToolCall[];
  tokensGenerated: number;
  finishReason: FinishReason;
}

/**
 * One chat turn in which the model may call the request's tools, with node-llama-cpp's LlamaChat:
 * the chat wrapper (from the model's Jinja template) tells how a call is written, LlamaChat notices
 * the call prefix in the generated text, then generates the function name and the arguments under
 * grammars built from the tools' JSON schemas, so that every call parses against its schema. Text
 * and argument pieces are streamed as they come.
 */
export async function generateWithTools(o: ToolGenerationOptions): Promise<ToolGenerationResult> {
  const { request, ctx } = o;
  const choice = request.tool_choice ?? "auto";
  const callable: ChatModelFunctions =
    typeof choice === "object" ? { [choice.name]: o.functions[choice.name] ?? {} } : o.functions;
  const force = choice === "required" || typeof choice === "object";
  const chat = new LlamaChat({
    contextSequence: o.sequence,
    chatWrapper: requestWrapper(o.wrapper, o.functions, force),
    autoDisposeSequence: false,
  });
  const ids: string[] = [];
  const streamed = new Set<number>();
  let textTokens = 0;
  let pendingTokens = 0;
  let text = "";
  const idFor = (index: number): string => {
    ids[index] ??= newToolCallId();
    return ids[index];
  };
  try {
    const res = await chat.generateResponse(o.history, {
      functions: callable,
      documentFunctionParams: true,
      maxParallelFunctionCalls: request.parallel_tool_calls === false ? 1 : undefined,
      signal: ctx.signal,
      stopOnAbortSignal: true,
      maxTokens: request.max_tokens,
      temperature: o.sampling.temperature,
      topK: o.sampling.topK,
      topP: o.sampling.topP,
      minP: o.sampling.minP,
      seed: o.sampling.seed,
      repeatPenalty: o.sampling.repeatPenalty,
      customStopTriggers: o.stopStrings.length > 0 ? [...o.stopStrings] : undefined,
      onToken: (tokens) => {
        textTokens += tokens.length;
        pendingTokens += tokens.length;
      },
      onTextChunk: (chunk) => {
        text += chunk;
        // callbacks cannot wait: a failed write surfaces when the runtime flushes the stream
        void ctx.emit(chunk, pendingTokens)?.catch(() => undefined);
        pendingTokens = 0;
      },
      onFunctionCallParamsChunk: (piece) => {
        const first = !streamed.has(piece.callIndex);
        streamed.add(piece.callIndex);
        const written = ctx.emitToolCall(
          first
            ? {
                index: piece.callIndex,
                id: idFor(piece.callIndex),
                name: piece.functionName,
                arguments: piece.paramsChunk,
              }
            : { index: piece.callIndex, arguments: piece.paramsChunk },
          1,
        );
        void written?.catch(() => undefined);
      },
    });
    const calls = res.functionCalls ?? [];
    const toolCalls: ToolCall[] = calls.map((c, index) => ({
      id: idFor(index),
      name: c.functionName,
      arguments: JSON.stringify(c.params ?? {}),
    }));
    // a tool without parameters has no argument pieces: its call goes out whole
    for (const [index, call] of toolCalls.entries())
      if (!streamed.has(index)) await ctx.emitToolCall({ index, ...call }, 0);
    const generated = Math.max(textTokens, o.sequence.nextTokenIndex - o.promptTokens);
    const stop = res.metadata.stopReason;
    const finishReason: FinishReason =
      toolCalls.length > 0
        ? "tool_calls"
        : stop === "maxTokens"
          ? "length"
          : stop === "abort" || ctx.signal.aborted
            ? "cancelled"
            : "stop";
    return { text: res.response || text, toolCalls, tokensGenerated: generated, finishReason };
  } finally {
    chat.dispose({ disposeSequence: false });
  }
}
