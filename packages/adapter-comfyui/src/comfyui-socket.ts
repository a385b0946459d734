import { randomUUID } from "node:crypto";
import { RbeeError, safeParse } from "@rbee/contract";
import type { Logger } from "@rbee/server-kit";
import WebSocket from "ws";
import { SocketMessage } from "./comfyui-replies.js";

type Listener = {
  message(m: SocketMessage): void;
  /** The websocket closed: ComfyUI stopped or restarted, and what it was doing for us is lost. */
  lost(error: Error): void;
};

/** Messages of a prompt that arrive before anyone listens for it (the POST's reply may come after them). */
const EARLY_LIMIT = 256;

/**
 * The adapter's websocket to ComfyUI (`/ws?clientId=<id>`): ComfyUI sends the messages of a prompt
 * queued with this `client_id` here. Messages are handed to the listener of their `prompt_id`; those
 * that arrive before the listener (ComfyUI may start a prompt before its POST /prompt reply is read)
 * are kept for it. When the socket closes, every listener is told at once (its request fails, never
 * hangs), and the next request opens a new socket.
 */
export class ComfySocket {
  readonly clientId = randomUUID().replaceAll("-", "");
  #url: string;
  #log: Logger;
  #ws: WebSocket | undefined;
  #opening: Promise<WebSocket> | undefined;
  #listeners = new Map<string, Listener>();
  #early = new Map<string, SocketMessage[]>();
  #closed = false;
  /** The last `executing` node and `progress` of any prompt (for the heartbeat). */
  onMessage: ((m: SocketMessage) => void) | undefined;

  constructor(baseUrl: string, log: Logger) {
    this.#url = `${baseUrl.replace(/^http/, "ws")}/ws?clientId=${this.clientId}`;
    this.#log = log;
  }

  /** Opens the socket when it is not open (and waits for ComfyUI's first `status` message). */
  open(signal?: AbortSignal): Promise<WebSocket> {
    if (this.#closed) return Promise.reject(new Error("the ComfyUI socket is closed"));
    if (this.#ws?.readyState === WebSocket.OPEN) return Promise.resolve(this.#ws);
    this.#opening ??= new Promise<WebSocket>((resolve, reject) => {
      const ws = new WebSocket(this.#url, { handshakeTimeout: 10_000 });
      const abort = () => ws.terminate();
      signal?.addEventListener("abort", abort, { once: true });
      ws.once("open", () => {
        signal?.removeEventListener("abort", abort);
        this.#ws = ws;
        resolve(ws);
      });
      ws.once("error", (err) => {
        signal?.removeEventListener("abort", abort);
        reject(
          new RbeeError(`cannot open ComfyUI's websocket (${this.#url}): ${err.message}`, {
            statusCode: 503,
            code: "engine_unreachable",
            retryable: true,
          }),
        );
      });
      // an error after the handshake is followed by its close, which fails what waits
      ws.on("error", (err) => this.#log.warn({ engine: "comfyui", err: err.message }, "comfyui websocket error"));
      ws.on("message", (raw, binary) => {
        if (binary) return; // preview images
        this.#dispatch(raw.toString());
      });
      ws.on("close", (code) => {
        if (this.#ws === ws) this.#ws = undefined;
        this.#lost(code);
      });
    }).finally(() => {
      this.#opening = undefined;
    });
    return this.#opening;
  }

  /** Listens for the messages of one prompt, those that came early first. Returns the unsubscriber. */
  listen(promptId: string, listener: Listener): () => void {
    if (this.#ws?.readyState !== WebSocket.OPEN) {
      // closed between the POST and now: nothing of this prompt will come
      queueMicrotask(() =>
        listener.lost(
          new RbeeError(
            "ComfyUI closed its websocket as the prompt was queued (it stopped or restarted); retry the request",
            {
              statusCode: 502,
              code: "engine_restarted",
            },
          ),
        ),
      );
      return () => {};
    }
    this.#listeners.set(promptId, listener);
    const early = this.#early.get(promptId);
    this.#early.delete(promptId);
    for (const m of early ?? []) listener.message(m);
    return () => {
      if (this.#listeners.get(promptId) === listener) this.#listeners.delete(promptId);
    };
  }

  close(): void {
    this.#closed = true;
    this.#ws?.terminate();
  }

  #dispatch(text: string): void {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      this.#log.warn({ engine: "comfyui" }, "comfyui sent a websocket message that is not JSON; skipped");
      return;
    }
    const m = safeParse(SocketMessage, json, "comfyui websocket message");
    if (!m.ok) return; // a message type the adapter does not read
    this.onMessage?.(m.value);
    const id = m.value.data.prompt_id;
    if (typeof id !== "string") return;
    const listener = this.#listeners.get(id);
    if (listener) {
      listener.message(m.value);
      return;
    }
    const list = this.#early.get(id) ?? [];
    if (list.length < EARLY_LIMIT) list.push(m.value);
    this.#early.set(id, list);
    if (this.#early.size > 64) this.#early.delete(this.#early.keys().next().value as string);
  }

  #lost(code: number): void {
    const listeners = [...this.#listeners.values()];
    this.#listeners.clear();
    this.#early.clear();
    if (listeners.length > 0) {
      this.#log.warn({ engine: "comfyui", code, in_flight: listeners.length }, "comfyui closed its websocket");
    }
    for (const l of listeners) {
      l.lost(
        new RbeeError(
          `ComfyUI closed its websocket (code ${code}) in the middle of the generation: it stopped or restarted, and the image was not made; retry the request`,
          { statusCode: 502, code: "engine_restarted" },
        ),
      );
    }
  }
}
