import { createHash, randomBytes } from "node:crypto";
import type { Account, CatalogStore } from "./catalog-store.js";

export function tokenHash(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

/**
 * Creates (or renews the token of) a catalog account; returns its token, shown once and stored only
 * as a hash. Publishers may publish; every account may review.
 */
export function createAccount(store: CatalogStore, name: string, canPublish: boolean): string {
  if (!/^[A-Za-z0-9_.@-]{1,64}$/.test(name)) {
    throw new Error(`account name '${name}' must be 1-64 letters, digits, _ . @ or -`);
  }
  const token = `rbc_${randomBytes(24).toString("base64url")}`;
  store.addAccount(name, tokenHash(token), canPublish);
  return token;
}

/** The account a bearer token belongs to. */
export function accountOf(store: CatalogStore, authorization: string | undefined): Account | undefined {
  const m = /^Bearer\s+(\S+)$/i.exec(authorization ?? "");
  return m ? store.accountByTokenHash(tokenHash(m[1] as string)) : undefined;
}
