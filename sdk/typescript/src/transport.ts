/**
 * The transport: one HTTP exchange per attempt over `fetch`, JSON in and out,
 * and bounded retries with backoff.
 *
 * What is retried:
 * - every request: no answer (connection refused, reset or dropped, timeout)
 *   and any 5xx answer;
 * - the POST actions also on `409 idempotency_key_in_use`. Each action call
 *   sends one `Idempotency-Key` (a random UUID) and the same body on every
 *   attempt, so a retry of an action whose 200 was lost in transit gets that
 *   200 replayed by the server, never `409 payout_not_actionable`.
 * 4xx answers are never retried. Redirects are not followed.
 */

import { randomUUID } from "node:crypto";
import { IdempotencyKeyInUse, TransportError, errorFromAnswer, tagOf } from "./errors.js";
import { VERSION } from "./version.js";

export type Fetch = typeof globalThis.fetch;
export type Query = Record<string, string | number | null | undefined>;

export interface TransportSettings {
  adminToken: string;
  baseUrl: string;
  actor?: string | undefined;
  timeoutMs: number;
  maxRetries: number;
  backoffMs: number;
  maxBackoffMs: number;
  fetch: Fetch;
}

interface Answer {
  status: number;
  body: string;
  retryAfter: string | null;
}

interface Exchange {
  method: string;
  target: string;
  path: string;
  body?: string;
  headers: Record<string, string>;
  retryInUse: boolean;
  idempotencyKey?: string;
}

// TLS failures that no retry will cure (Node's error codes).
const CERTIFICATE_ERRORS = new Set([
  "CERT_HAS_EXPIRED", "CERT_NOT_YET_VALID", "DEPTH_ZERO_SELF_SIGNED_CERT", "ERR_TLS_CERT_ALTNAME_INVALID",
  "SELF_SIGNED_CERT_IN_CHAIN", "UNABLE_TO_GET_ISSUER_CERT_LOCALLY", "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
]);

export class Transport {
  readonly baseUrl: string;
  readonly #settings: TransportSettings;
  readonly #headers: Record<string, string>;

  constructor(settings: TransportSettings) {
    this.#settings = settings;
    this.baseUrl = settings.baseUrl;
    this.#headers = {
      "X-Admin-Token": utf8Header(settings.adminToken), // the server compares UTF-8 bytes
      Accept: "application/json",
      "User-Agent": `triport-sdk-typescript/${VERSION}`,
    };
    if (settings.actor !== undefined) {
      this.#headers["X-Admin-Actor"] = utf8Header(settings.actor);
    }
  }

  /** A GET; null and undefined query values are left out. */
  get<T>(path: string, query: Query = {}): Promise<T> {
    const params = new URLSearchParams();
    for (const [name, value] of Object.entries(query)) {
      if (value !== null && value !== undefined) params.append(name, String(value));
    }
    const search = params.toString();
    const target = search ? `${path}?${search}` : path;
    return this.#send({ method: "GET", target, path, headers: {}, retryInUse: false });
  }

  /** One logical action: one key, the same body on every attempt. */
  post<T>(path: string, payload: object, idempotencyKey?: string): Promise<T> {
    const key = idempotencyKey ?? randomUUID();
    return this.#send({
      method: "POST", target: path, path, body: JSON.stringify(payload),
      headers: { "Content-Type": "application/json", "Idempotency-Key": key },
      retryInUse: true, idempotencyKey: key,
    });
  }

  async #send<T>(exchange: Exchange): Promise<T> {
    const { method, path, idempotencyKey } = exchange;
    const attempts = this.#settings.maxRetries + 1;
    for (let attempt = 1; ; attempt++) {
      const last = attempt >= attempts;
      let answer: Answer;
      try {
        answer = await this.#exchange(exchange);
      } catch (failure) {
        if (last || isCertificateError(failure)) {
          throw new TransportError(
            `no answer on ${method} ${path} after ${attempt} attempt(s): ${describe(failure)}`,
            { method, path, idempotencyKey, cause: failure },
          );
        }
        await this.#pause(attempt, null);
        continue;
      }
      if (answer.status >= 200 && answer.status < 300) {
        try {
          return JSON.parse(answer.body) as T;
        } catch {
          throw errorFromAnswer(answer.status, answer.body, method, path, idempotencyKey);
        }
      }
      const retryable = answer.status >= 500 || (
        exchange.retryInUse && answer.status === 409 && tagOf(answer.body) === IdempotencyKeyInUse.tag);
      if (!retryable || last) {
        throw errorFromAnswer(answer.status, answer.body, method, path, idempotencyKey);
      }
      await this.#pause(attempt, answer.retryAfter);
    }
  }

  async #exchange(exchange: Exchange): Promise<Answer> {
    const response = await this.#settings.fetch(this.baseUrl + exchange.target, {
      method: exchange.method,
      headers: { ...this.#headers, ...exchange.headers },
      body: exchange.body,
      redirect: "manual",
      signal: AbortSignal.timeout(this.#settings.timeoutMs),
    });
    // The timeout covers the body too: an answer cut off mid-body is no answer.
    const body = await response.text();
    return { status: response.status, body, retryAfter: response.headers.get("retry-after") };
  }

  /** Attempt n+1 waits about backoffMs * 2**(n-1), jittered, at most maxBackoffMs, and at least Retry-After (capped the same). */
  #pause(attempt: number, retryAfter: string | null): Promise<void> {
    const { backoffMs, maxBackoffMs } = this.#settings;
    const ceiling = Math.min(maxBackoffMs, backoffMs * 2 ** (attempt - 1));
    let delay = ceiling / 2 + Math.random() * (ceiling / 2);
    const asked = retryAfterMs(retryAfter);
    if (asked !== null) delay = Math.max(delay, Math.min(asked, maxBackoffMs));
    return new Promise((resolve) => setTimeout(resolve, delay));
  }

  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return `Transport { baseUrl: ${JSON.stringify(this.baseUrl)} }`;
  }

  toJSON(): object {
    return { baseUrl: this.baseUrl };
  }
}

/** Retry-After as milliseconds: a number of seconds or an HTTP date; null when absent or unreadable. */
function retryAfterMs(value: string | null): number | null {
  if (value === null || value.trim() === "") return null;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? null : Math.max(0, date - Date.now());
}

function isCertificateError(failure: unknown): boolean {
  const cause = (failure as { cause?: { code?: unknown } } | null)?.cause;
  return typeof cause?.code === "string" && CERTIFICATE_ERRORS.has(cause.code);
}

/** What went wrong, from fetch's error and its cause (which names the socket error). */
function describe(failure: unknown): string {
  const inner = (failure as { cause?: unknown } | null)?.cause ?? failure;
  if (inner instanceof Error) {
    const code = (inner as { code?: unknown }).code;
    const name = typeof code === "string" ? code : inner.name;
    return inner.message ? `${name}: ${inner.message}` : name;
  }
  return String(inner);
}

/** A header value whose bytes on the wire are `text` in UTF-8: fetch sends each character of a header as one byte. */
function utf8Header(text: string): string {
  return String.fromCharCode(...new TextEncoder().encode(text));
}
