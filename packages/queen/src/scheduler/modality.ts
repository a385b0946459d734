import { RbeeError, type WorkerCapability } from "@rbee/contract";
import { findWorkerType } from "@rbee/worker-types";
import { type ClusterRegistry, workerCapabilities } from "../registry/cluster-registry.js";
import type { ReplicaStore } from "../store/replica-store.js";

const norm = (s: string) => s.toLowerCase();

/** Whether a capability asks for text (or vectors of text), as opposed to images. */
function wantsText(c: WorkerCapability): boolean {
  return c === "text-generation" || c === "chat" || c === "json_schema" || c === "tools" || c === "embeddings";
}

/**
 * What a model is known to make, from the workers that serve it, its minimum's worker type and the
 * hives' catalogs (a catalog model is a GGUF: text): "images", "text", or undefined when nothing says.
 */
function modelMakes(registry: ClusterRegistry, replicas: ReplicaStore, model: string): "images" | "text" | undefined {
  const m = norm(model);
  const workers = [...registry.workers.values()].filter((w) => !w.stopping && norm(w.report.model) === m);
  if (workers.length > 0) {
    const caps = workers.flatMap((w) => [...workerCapabilities(w)]);
    if (caps.some(wantsText)) return caps.includes("image-generation") ? undefined : "text";
    if (caps.includes("image-generation")) return "images";
  }
  const type = replicas.get(model)?.worker_type;
  const typeCaps = type === undefined ? undefined : findWorkerType(type)?.capabilities;
  if (typeCaps?.includes("image-generation") && !typeCaps.some(wantsText)) return "images";
  if (typeCaps?.some(wantsText)) return "text";
  for (const h of registry.hives.values()) {
    if (h.state !== "lost" && h.models.some((x) => norm(x.id) === m)) return "text";
  }
  return undefined;
}

/** The models running workers serve with image generation (what an image request may name). */
export function imageModels(registry: ClusterRegistry): string[] {
  const ids = new Set<string>();
  for (const w of registry.workers.values()) {
    if (!w.stopping && workerCapabilities(w).includes("image-generation")) ids.add(w.report.model);
  }
  return [...ids].sort();
}

/**
 * Refuses, with a 400 that says what to use instead, a request whose kind the model cannot make: an
 * image request to a model that generates text (naming the models that generate images), and a text
 * request to a model that generates images.
 */
export function checkModality(
  registry: ClusterRegistry,
  replicas: ReplicaStore,
  model: string,
  capability: WorkerCapability,
): void {
  const makes = modelMakes(registry, replicas, model);
  if (capability === "image-generation" && makes === "text") {
    const images = imageModels(registry);
    throw new RbeeError(
      `model '${model}' generates text, not images; ${
        images.length > 0
          ? `the models that generate images here are: ${images.join(", ")}`
          : "no model that generates images is running; start one with `rbee worker spawn --type comfyui -m <checkpoint>` (ComfyUI)"
      }`,
      { statusCode: 400, code: "model_not_image", param: "model", details: { image_models: images } },
    );
  }
  if (wantsText(capability) && makes === "images") {
    throw new RbeeError(
      `model '${model}' generates images, not text; send it to POST /v1/images/generations (rbee image -m ${model} -p "...")`,
      { statusCode: 400, code: "model_generates_images", param: "model" },
    );
  }
}
