import { createHash } from "node:crypto";
import { mkdir, rename, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { STORIES_MODEL } from "../paths.js";
import { GENERATED_MODEL_DIR } from "./generate-of-size.js";
import { GgufType } from "./gguf-format.js";
import { rewriteGgufMetadata } from "./rewrite-gguf-metadata.js";

/**
 * Qwen2.5-Instruct's chat template (the `tokenizer.chat_template` of its GGUFs), the Hermes-style
 * tool format: tools listed as JSON in the system turn, calls written as
 * `<tool_call>{"name": ..., "arguments": ...}</tool_call>`, results as `<tool_response>` in a user
 * turn. node-llama-cpp reads the function-calling syntax out of it (JinjaTemplateChatWrapper), as
 * llama.cpp's server does.
 */
export const QWEN25_TOOLS_TEMPLATE =
  "{%- if tools %}\n    {{- '<|im_start|>system\\n' }}\n    {%- if messages[0]['role'] == 'system' %}\n        {{- messages[0]['content'] }}\n    {%- else %}\n        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}\n    {%- endif %}\n    {{- \"\\n\\n# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\nYou are provided with function signatures within <tools></tools> XML tags:\\n<tools>\" }}\n    {%- for tool in tools %}\n        {{- \"\\n\" }}\n        {{- tool | tojson }}\n    {%- endfor %}\n    {{- \"\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\\"name\\\": <function-name>, \\\"arguments\\\": <args-json-object>}\\n</tool_call><|im_end|>\\n\" }}\n{%- else %}\n    {%- if messages[0]['role'] == 'system' %}\n        {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}\n    {%- else %}\n        {{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}\n    {%- endif %}\n{%- endif %}\n{%- for message in messages %}\n    {%- if (message.role == \"user\") or (message.role == \"system\" and not loop.first) or (message.role == \"assistant\" and not message.tool_calls) %}\n        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}\n    {%- elif message.role == \"assistant\" %}\n        {{- '<|im_start|>' + message.role }}\n        {%- if message.content %}\n            {{- '\\n' + message.content }}\n        {%- endif %}\n        {%- for tool_call in message.tool_calls %}\n            {%- if tool_call.function is defined %}\n                {%- set tool_call = tool_call.function %}\n            {%- endif %}\n            {{- '\\n<tool_call>\\n{\"name\": \"' }}\n            {{- tool_call.name }}\n            {{- '\", \"arguments\": ' }}\n            {{- tool_call.arguments | tojson }}\n            {{- '}\\n</tool_call>' }}\n        {%- endfor %}\n        {{- '<|im_end|>\\n' }}\n    {%- elif message.role == \"tool\" %}\n        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != \"tool\") %}\n            {{- '<|im_start|>user' }}\n        {%- endif %}\n        {{- '\\n<tool_response>\\n' }}\n        {{- message.content }}\n        {{- '\\n</tool_response>' }}\n        {%- if loop.last or (messages[loop.index0 + 1].role != \"tool\") %}\n            {{- '<|im_end|>\\n' }}\n        {%- endif %}\n    {%- endif %}\n{%- endfor %}\n{%- if add_generation_prompt %}\n    {{- '<|im_start|>assistant\\n' }}\n{%- endif %}\n";

const inFlight = new Map<string, Promise<string>>();

/**
 * The ids the test model declares as its fill-in-the-middle tokens (prefix, suffix, middle): the
 * byte tokens <0x01>, <0x02>, <0x03>, which TinyStories text never holds. stories260K was not
 * trained for FIM; the ids let tests run the FIM prompt layout end to end.
 */
export const TEST_FIM_TOKEN_IDS = { prefix: 4, suffix: 5, middle: 6 } as const;

/**
 * stories260K's weights with a real tool-capable chat template (Qwen2.5's) and declared FIM tokens:
 * a GGUF that tool-calling and fill-in-the-middle tests run end to end. The tiny model's choices are
 * not meaningful; the calls' syntax and their schema validity are. Written once into the
 * generated-model cache and reused.
 */
export async function toolCallingTestModel(dir = GENERATED_MODEL_DIR): Promise<string> {
  const hash = createHash("sha256")
    .update(QWEN25_TOOLS_TEMPLATE)
    .update(JSON.stringify(TEST_FIM_TOKEN_IDS))
    .digest("hex")
    .slice(0, 10);
  const path = join(dir, `stories260K-qwen-tools-${hash}.gguf`);
  let pending = inFlight.get(path);
  if (!pending) {
    pending = (async () => {
      if ((await stat(path).catch(() => undefined))?.isFile()) return path;
      await mkdir(dirname(path), { recursive: true });
      const part = `${path}.${process.pid}.${Math.random().toString(36).slice(2, 8)}.part`;
      await rewriteGgufMetadata(STORIES_MODEL, part, {
        set: [
          { key: "general.name", type: GgufType.STRING, value: "stories260K tools" },
          { key: "tokenizer.chat_template", type: GgufType.STRING, value: QWEN25_TOOLS_TEMPLATE },
          { key: "tokenizer.ggml.fim_pre_token_id", type: GgufType.UINT32, value: TEST_FIM_TOKEN_IDS.prefix },
          { key: "tokenizer.ggml.fim_suf_token_id", type: GgufType.UINT32, value: TEST_FIM_TOKEN_IDS.suffix },
          { key: "tokenizer.ggml.fim_mid_token_id", type: GgufType.UINT32, value: TEST_FIM_TOKEN_IDS.middle },
        ],
      });
      await rename(part, path);
      return path;
    })().finally(() => inFlight.delete(path));
    inFlight.set(path, pending);
  }
  return pending;
}
