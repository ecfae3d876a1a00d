/** `TriportAdmin`: the options, checked once, and the calls under `referrals`. */

import { Referrals } from "./resources.js";
import { Transport, type Fetch } from "./transport.js";

export const DEFAULT_BASE_URL = "https://api.triport.io";

export interface ClientOptions {
  /** Sent as X-Admin-Token; never logged, never shown by inspect, toString, JSON or an error. */
  adminToken: string;
  /** The option, else TRIPORT_BASE_URL, else https://api.triport.io (a path prefix is kept). */
  baseUrl?: string;
  /** Sent as X-Admin-Actor so the audit trail names the operator. */
  actor?: string;
  /** Per attempt, the body included. Default 10 000. */
  timeoutMs?: number;
  /** Retries after the first attempt. Default 3. */
  maxRetries?: number;
  /** The first retry waits about this long, each next one twice as long. Default 250. */
  backoffMs?: number;
  /** The longest wait between attempts, Retry-After included. Default 4 000. */
  maxBackoffMs?: number;
  /** The fetch to call; the global one by default. */
  fetch?: Fetch;
}

/**
 * The operator API.
 *
 * ```ts
 * const admin = new TriportAdmin({ adminToken: process.env.TRIPORT_ADMIN_TOKEN! });
 * await admin.referrals.payouts.markFailed(payoutId, { reason: "destination wallet rejected the transfer" });
 * ```
 */
export class TriportAdmin {
  readonly referrals: Referrals;
  readonly #transport: Transport;

  constructor(options: ClientOptions) {
    const { adminToken, actor } = options ?? ({} as ClientOptions);
    if (typeof adminToken !== "string") {
      throw new TypeError("adminToken must be a string");
    }
    if (!sendable(adminToken)) {
      throw new TypeError("adminToken contains characters that cannot be sent in a header");
    }
    if (actor !== undefined && !(typeof actor === "string" && sendable(actor))) {
      throw new TypeError("actor must be a string without control characters");
    }
    const fetch = options.fetch ?? globalThis.fetch;
    if (typeof fetch !== "function") {
      throw new TypeError("no fetch: use Node.js 18 or newer, or pass options.fetch");
    }
    this.#transport = new Transport({
      adminToken,
      actor,
      baseUrl: checkBaseUrl(options.baseUrl ?? environmentBaseUrl() ?? DEFAULT_BASE_URL),
      timeoutMs: positive(options.timeoutMs, 10_000, "timeoutMs"),
      maxRetries: count(options.maxRetries, 3, "maxRetries"),
      backoffMs: count(options.backoffMs, 250, "backoffMs"),
      maxBackoffMs: count(options.maxBackoffMs, 4_000, "maxBackoffMs"),
      fetch,
    });
    this.referrals = new Referrals(this.#transport);
  }

  get baseUrl(): string {
    return this.#transport.baseUrl;
  }

  toString(): string {
    return `TriportAdmin(${this.baseUrl})`;
  }

  toJSON(): object {
    return { baseUrl: this.baseUrl };
  }

  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return `TriportAdmin { baseUrl: ${JSON.stringify(this.baseUrl)} }`;
  }
}

function environmentBaseUrl(): string | undefined {
  const value = typeof process === "undefined" ? undefined : process.env["TRIPORT_BASE_URL"];
  return value || undefined;
}

function checkBaseUrl(text: string): string {
  let url: URL | undefined;
  try {
    url = new URL(text);
  } catch {
    url = undefined;
  }
  if (url === undefined || !["http:", "https:"].includes(url.protocol) || !url.host || url.search || url.hash
      || text.includes("?") || text.includes("#") || /[\s\x00-\x1f\x7f]/.test(text)) {
    throw new TypeError(`baseUrl must be an http:// or https:// URL, not ${JSON.stringify(text)}`);
  }
  return text.replace(/\/+$/, "");
}

function sendable(text: string): boolean {
  return !/[\x00-\x1f\x7f]/.test(text);
}

function positive(value: number | undefined, otherwise: number, name: string): number {
  if (value === undefined) return otherwise;
  if (typeof value !== "number" || !(value > 0) || !Number.isFinite(value)) {
    throw new TypeError(`${name} must be a positive number of milliseconds`);
  }
  return value;
}

function count(value: number | undefined, otherwise: number, name: string): number {
  if (value === undefined) return otherwise;
  if (typeof value !== "number" || !(value >= 0) || !Number.isFinite(value)) {
    throw new TypeError(`${name} must be a number, 0 or more`);
  }
  return value;
}
