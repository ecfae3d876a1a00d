/**
 * Verifying the webhooks triport_payouts sends (Standard Webhooks), with
 * node:crypto only:
 *
 * ```ts
 * import { webhooks } from "@triport/sdk";
 * const event = webhooks.verify(secret, request.headers, rawBody); // the event, as the change feed shows it
 * ```
 *
 * `verify` checks `webhook-signature` (any one of its space-separated `v1,`
 * signatures may match: during a secret rotation two are sent) against
 * HMAC-SHA256 over `{webhook-id}.{webhook-timestamp}.{body}` keyed with the
 * secret's decoded bytes, compared in constant time, and refuses a timestamp
 * more than 5 minutes off, so a captured request cannot be replayed later.
 * Deliveries are at least once: deduplicate on `webhook-id`.
 */

import { createHmac, timingSafeEqual } from "node:crypto";
import type { FeedEvent } from "./types.js";

/** Seconds either way. */
export const TOLERANCE_SECONDS = 5 * 60;
const PREFIX = "whsec_";
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** The request is not a genuine, fresh webhook of this secret's endpoint. */
export class WebhookVerificationError extends Error {
  constructor(message: string) {
    super(message);
    Object.defineProperty(this, "name", { value: "WebhookVerificationError", configurable: true, writable: true });
  }
}

/** A fetch `Headers`, a `Map`, or a plain object such as Node's `IncomingHttpHeaders`; names in any case. */
export type WebhookHeaders =
  | { get(name: string): string | null | undefined; [Symbol.iterator]?(): Iterator<[string, string]> }
  | Readonly<Record<string, string | readonly string[] | undefined>>;

export interface VerifyOptions {
  /** The time to check the timestamp against; now by default. */
  now?: Date;
}

/**
 * The event if `body` is signed with `secret` and its timestamp is within
 * TOLERANCE_SECONDS of now; throws WebhookVerificationError otherwise. Pass
 * the raw body as received (a Buffer, or its exact text), never a re-encoded one.
 */
export function verify(
  secret: string, headers: WebhookHeaders, body: string | Uint8Array | ArrayBuffer, options: VerifyOptions = {},
): FeedEvent {
  const msgId = header(headers, "webhook-id");
  const timestamp = header(headers, "webhook-timestamp");
  const signatures = header(headers, "webhook-signature");
  const raw = typeof body === "string" ? new TextEncoder().encode(body)
    : body instanceof Uint8Array ? body : new Uint8Array(body);
  if (!/^\s*[+-]?\d+\s*$/.test(timestamp)) {
    throw new WebhookVerificationError("invalid webhook-timestamp");
  }
  const sentAt = Number.parseInt(timestamp, 10);
  const now = (options.now ?? new Date()).getTime() / 1000;
  if (Math.abs(now - sentAt) > TOLERANCE_SECONDS) {
    throw new WebhookVerificationError("webhook-timestamp too far from now (a replay, or a clock off)");
  }
  const encoded = typeof secret === "string" && secret.startsWith(PREFIX) ? secret.slice(PREFIX.length) : secret;
  if (typeof encoded !== "string" || !BASE64.test(encoded)) {
    throw new WebhookVerificationError("the secret is not a whsec_ secret");
  }
  const expected = Buffer.from(
    createHmac("sha256", Buffer.from(encoded, "base64"))
      .update(`${msgId}.${sentAt}.`).update(raw).digest("base64"),
  );
  let matched = false;
  for (const candidate of signatures.split(/\s+/)) {
    const comma = candidate.indexOf(",");
    if (comma < 0 || candidate.slice(0, comma) !== "v1") continue;
    const value = Buffer.from(candidate.slice(comma + 1));
    // Every candidate is compared, in constant time: no early exit to time.
    if (value.length === expected.length && timingSafeEqual(value, expected)) matched = true;
  }
  if (!matched) {
    throw new WebhookVerificationError("no matching signature");
  }
  let event: unknown;
  try {
    event = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(raw));
  } catch {
    throw new WebhookVerificationError("the body is not JSON");
  }
  if (event === null || typeof event !== "object" || Array.isArray(event)) {
    throw new WebhookVerificationError("the body is not a JSON object");
  }
  return event as FeedEvent;
}

/** A header by case-insensitive name. */
function header(headers: WebhookHeaders, name: string): string {
  let value: unknown;
  if (typeof headers.get === "function") {
    value = (headers as { get(name: string): unknown }).get(name);
  }
  if (value === null || value === undefined) {
    const entries: Iterable<[string, unknown]> = Symbol.iterator in headers
      ? (headers as Iterable<[string, unknown]>) : Object.entries(headers);
    for (const [key, item] of entries) {
      if (key.toLowerCase() === name) {
        value = item;
        break;
      }
    }
  }
  if (Array.isArray(value)) value = value.join(" ");
  if (typeof value !== "string") {
    throw new WebhookVerificationError(`missing header ${name}`);
  }
  return value;
}
