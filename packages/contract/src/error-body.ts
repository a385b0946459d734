import { z } from "zod";

/**
 * The error body every rbee HTTP endpoint answers with. It is OpenAI's shape, so the official SDKs
 * read our errors as their own: `{"error": {"message", "type", "code", "param"}}`.
 */
export const ErrorBody = z.looseObject({
  error: z.looseObject({
    message: z.string(),
    type: z.string(),
    code: z.string().nullable(),
    param: z.string().nullable(),
  }),
});
export type ErrorBody = z.infer<typeof ErrorBody>;
