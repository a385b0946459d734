/**
 * Quantization names as they appear in GGUF file names ("qwen2.5-0.5b-instruct-q4_k_m.gguf",
 * "Llama-3.2-1B-Instruct-Q4_K_M.gguf", "model-UD-Q4_K_XL-00001-of-00002.gguf"), in the order a
 * repo's file is preferred: the common 4-bit K-quants first, then 5- and 8-bit, the other 4-bit
 * formats, larger and smaller quants, and the unquantized formats last.
 */
export const QUANT_PREFERENCE: readonly string[] = [
  "Q4_K_M",
  "Q4_K_S",
  "Q4_K_XL",
  "Q5_K_M",
  "Q5_K_S",
  "Q8_0",
  "Q4_0",
  "Q4",
  "Q8",
  "IQ4_XS",
  "IQ4_NL",
  "MXFP4",
  "MXFP4_MOE",
  "Q4_1",
  "Q6_K",
  "Q6_K_L",
  "Q5_K_L",
  "Q4_K_L",
  "Q5_0",
  "Q5_1",
  "Q5",
  "Q6",
  "Q3_K_XL",
  "Q3_K_L",
  "Q3_K_M",
  "IQ3_M",
  "IQ3_S",
  "IQ3_XS",
  "Q3_K_S",
  "IQ3_XXS",
  "Q2_K_XL",
  "Q2_K_L",
  "Q2_K",
  "IQ2_M",
  "IQ2_S",
  "IQ2_XS",
  "IQ2_XXS",
  "Q2_K_S",
  "Q3",
  "Q2",
  "IQ1_M",
  "IQ1_S",
  "TQ2_0",
  "TQ1_0",
  "F16",
  "BF16",
  "F32",
];

/** How a quant is described in a pick's reason. */
export function quantKind(quant: string): string {
  if (/^(F16|BF16|F32)$/.test(quant)) return "unquantized";
  const bits = /^[A-Z]*?(\d)/.exec(quant.replace(/^MXFP4.*/, "Q4"))?.[1];
  return bits ? `${bits}-bit` : "quantized";
}

const NAMES = [...QUANT_PREFERENCE].sort((a, b) => b.length - a.length);
const QUANT_IN_NAME = new RegExp(`(?:^|[-_.])(${NAMES.join("|")}|FP16|FP32)(?=[-_.]|$)`, "i");

/**
 * The quantization a GGUF file name states ("Q4_K_M"), upper-cased, or undefined. Split suffixes
 * and the extension are ignored; "fp16" reads as F16.
 */
export function quantOfFileName(path: string): string | undefined {
  const base = (path.split("/").at(-1) ?? path).replace(/\.gguf$/i, "").replace(/-\d{5}-of-\d{5}$/i, "");
  // the last match wins: "Qwen2.5-1.5B-Instruct-Q4_K_M" has the quant at the end
  let found: string | undefined;
  let rest = base;
  for (;;) {
    const m = QUANT_IN_NAME.exec(rest);
    if (!m || m[1] === undefined) break;
    found = m[1].toUpperCase();
    rest = rest.slice(m.index + m[0].length);
  }
  if (found === "FP16") return "F16";
  if (found === "FP32") return "F32";
  return found;
}

/** True when `text` reads as a quantization name (for references like `owner/repo:Q4_K_M`). */
export function isQuantName(text: string): boolean {
  const upper = text.toUpperCase();
  return QUANT_PREFERENCE.includes(upper) || upper === "FP16" || upper === "FP32";
}
