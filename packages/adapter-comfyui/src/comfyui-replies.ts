import { z } from "zod";

/**
 * ComfyUI's replies, as its server.py and execution.py write them. Lenient (extra fields pass): the
 * adapter reads what it needs and survives a newer ComfyUI.
 */

/** `GET /system_stats`. */
export const SystemStats = z.looseObject({
  system: z.looseObject({
    comfyui_version: z.string().optional(),
    ram_total: z.number().optional(),
    ram_free: z.number().optional(),
  }),
  devices: z.array(
    z.looseObject({
      name: z.string().optional(),
      type: z.string().optional(),
      vram_total: z.number().optional(),
      vram_free: z.number().optional(),
    }),
  ),
});
export type SystemStats = z.infer<typeof SystemStats>;

/** `POST /prompt` accepted. */
export const PromptQueued = z.looseObject({
  prompt_id: z.string().min(1),
  number: z.number().optional(),
  node_errors: z.unknown().optional(),
});

/** One reason a node failed validation (execution.py's validate_inputs). */
export const NodeValidationError = z.looseObject({
  type: z.string(),
  message: z.string(),
  details: z.string().optional(),
  extra_info: z.looseObject({ input_name: z.string().optional(), received_value: z.unknown().optional() }).optional(),
});

/** `POST /prompt` refused (400): `error` is a string ("no prompt") or an object; `node_errors` by node id. */
export const PromptRefused = z.looseObject({
  error: z.union([
    z.string(),
    z.looseObject({ type: z.string().optional(), message: z.string(), details: z.string().optional() }),
  ]),
  node_errors: z
    .union([
      z.record(z.string(), z.looseObject({ errors: z.array(NodeValidationError), class_type: z.string().optional() })),
      z.array(z.unknown()),
    ])
    .optional(),
});
export type PromptRefused = z.infer<typeof PromptRefused>;

export const ImageRef = z.looseObject({
  filename: z.string(),
  subfolder: z.string().default(""),
  type: z.string().default("output"),
});
export type ImageRef = z.infer<typeof ImageRef>;

/** `GET /history/{prompt_id}`: `{}` or `{<prompt_id>: entry}`. */
export const HistoryEntry = z.looseObject({
  outputs: z.record(z.string(), z.looseObject({ images: z.array(ImageRef).optional() })),
  status: z
    .looseObject({
      status_str: z.string().optional(),
      completed: z.boolean().optional(),
      messages: z.array(z.unknown()).optional(),
    })
    .optional(),
});
export type HistoryEntry = z.infer<typeof HistoryEntry>;

/** A websocket message: `{type, data}` (binary frames are previews, which the adapter skips). */
export const SocketMessage = z.looseObject({
  type: z.string(),
  data: z.looseObject({
    prompt_id: z.string().nullable().optional(),
    node: z.string().nullable().optional(),
    value: z.number().optional(),
    max: z.number().optional(),
    node_id: z.string().optional(),
    node_type: z.string().optional(),
    exception_message: z.string().optional(),
    exception_type: z.string().optional(),
  }),
});
export type SocketMessage = z.infer<typeof SocketMessage>;
