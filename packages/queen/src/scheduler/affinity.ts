import { createHash } from "node:crypto";
import type { ChatMessage } from "@rbee/contract";

/** Conversations remembered; the oldest is forgotten first. */
const MAX_ENTRIES = 10_000;

function keyOf(model: string, messages: readonly ChatMessage[]): string {
  const h = createHash("sha1").update(model.toLowerCase());
  for (const m of messages) h.update(`\u0000${m.role}\u0000${m.content}`);
  return h.digest("base64url");
}

/**
 * Which worker holds a conversation's prefix in its cache. After a chat turn the worker has the
 * messages and its own answer cached, so the next turn (the same messages, the answer, a new user
 * message) is remembered under that; the conversation's opening (system prompt and first message)
 * is remembered too, for a turn whose history the client edited.
 */
export class ConversationAffinity {
  #workers = new Map<string, string>();

  /** The worker that served the conversation so far, if one is remembered. */
  lookup(model: string, messages: readonly ChatMessage[]): string | undefined {
    if (messages.length < 2) return undefined;
    return this.#get(keyOf(model, messages.slice(0, -1))) ?? this.#get(keyOf(model, messages.slice(0, 2)));
  }

  /** Remembers that `workerId` answered `messages` with `answer`. */
  record(model: string, messages: readonly ChatMessage[], answer: string, workerId: string): void {
    this.#set(keyOf(model, [...messages, { role: "assistant", content: answer }]), workerId);
    if (messages.length >= 2) this.#set(keyOf(model, messages.slice(0, 2)), workerId);
  }

  get size(): number {
    return this.#workers.size;
  }

  #get(key: string): string | undefined {
    const id = this.#workers.get(key);
    if (id !== undefined) {
      // most recently used last, so that the oldest conversations are the ones forgotten
      this.#workers.delete(key);
      this.#workers.set(key, id);
    }
    return id;
  }

  #set(key: string, workerId: string): void {
    this.#workers.delete(key);
    this.#workers.set(key, workerId);
    if (this.#workers.size > MAX_ENTRIES) {
      const oldest = this.#workers.keys().next().value;
      if (oldest !== undefined) this.#workers.delete(oldest);
    }
  }
}
