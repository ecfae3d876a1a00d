/**
 * The SDK's errors: one class per error tag of the API, all extending
 * `TriportError`, which carries the HTTP `status` and the `tag`.
 *
 * Messages name the method, the path, the status and the tag; they never
 * contain a header, so never the admin token.
 */

export interface ErrorDetails {
  status?: number | null;
  tag?: string | null;
  method?: string;
  path?: string;
  idempotencyKey?: string;
  cause?: unknown;
}

/**
 * An error from the Triport API, or no answer from it at all.
 *
 * `status`: the HTTP status, or null when no answer arrived.
 * `tag`: the `{"error": tag}` of the answer; null when the answer had no such
 * envelope (a proxy's HTML page, a truncated body) or never arrived. An
 * unknown tag is kept here on a plain `TriportError`.
 * `idempotencyKey`: for the POST actions, the key the call sent; pass it back
 * (`{ idempotencyKey }`) to retry the same action safely later.
 */
export class TriportError extends Error {
  /** The status of every answer of this class; null on the base class. */
  static readonly status: number | null = null;
  /** The tag of this class; null on the base class. */
  static readonly tag: string | null = null;

  readonly status: number | null;
  readonly tag: string | null;
  readonly method: string | undefined;
  readonly path: string | undefined;
  readonly idempotencyKey: string | undefined;

  constructor(message: string, details: ErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    const kind = new.target as typeof TriportError;
    Object.defineProperty(this, "name", { value: kind.name, configurable: true, writable: true });
    this.status = details.status !== undefined ? details.status : kind.status;
    this.tag = details.tag !== undefined ? details.tag : kind.tag;
    this.method = details.method;
    this.path = details.path;
    this.idempotencyKey = details.idempotencyKey;
  }
}

/** No answer after every attempt: connection refused or dropped, timeout, TLS. */
export class TransportError extends TriportError {}

/** The payout id is not a hyphenated UUID. */
export class InvalidPayoutId extends TriportError {
  static override readonly status = 400;
  static override readonly tag = "invalid_payout_id";
}

/** The actor is not 1 to 128 printable characters. */
export class InvalidActor extends TriportError {
  static override readonly status = 400;
  static override readonly tag = "invalid_actor";
}

/** The body is not a JSON object of the right shape (or is over 4 KiB). */
export class InvalidJson extends TriportError {
  static override readonly status = 400;
  static override readonly tag = "invalid_json";
}

/** txHash is not a non-empty string of at most 256 characters. */
export class InvalidTxHash extends TriportError {
  static override readonly status = 400;
  static override readonly tag = "invalid_tx_hash";
}

/** status is not one of the five payout states. */
export class InvalidStatus extends TriportError {
  static override readonly status = 400;
  static override readonly tag = "invalid_status";
}

/** userId is not 1 to 128 printable characters. */
export class InvalidUserId extends TriportError {
  static override readonly status = 400;
  static override readonly tag = "invalid_user_id";
}

/** limit is not an integer from 1 to 200. */
export class InvalidLimit extends TriportError {
  static override readonly status = 400;
  static override readonly tag = "invalid_limit";
}

/** order is not `newest` or `oldest`. */
export class InvalidOrder extends TriportError {
  static override readonly status = 400;
  static override readonly tag = "invalid_order";
}

/** A time filter is not an RFC 3339 time with its offset (`2026-11-23T22:31:00Z`). */
export class InvalidTime extends TriportError {
  static override readonly status = 400;
  static override readonly tag = "invalid_time";
}

/** The cursor is not one the server issued for these filters. */
export class InvalidCursor extends TriportError {
  static override readonly status = 400;
  static override readonly tag = "invalid_cursor";
}

/** An event type of the feed's `type` filter is not one the server knows. */
export class InvalidType extends TriportError {
  static override readonly status = 400;
  static override readonly tag = "invalid_type";
}

/** The Idempotency-Key is not 1 to 255 printable ASCII characters. */
export class InvalidIdempotencyKey extends TriportError {
  static override readonly status = 400;
  static override readonly tag = "invalid_idempotency_key";
}

/** A bulk request of the wrong shape (an unknown action, not 1 to 100 items, a payout named twice): nothing applied. */
export class InvalidBulk extends TriportError {
  static override readonly status = 400;
  static override readonly tag = "invalid_bulk";
}

/** The server has no admin token configured. */
export class AdminTokenUnset extends TriportError {
  static override readonly status = 401;
  static override readonly tag = "admin_token_unset";
}

/** The admin token is missing or wrong. */
export class AdminTokenInvalid extends TriportError {
  static override readonly status = 401;
  static override readonly tag = "admin_token_invalid";
}

/** amount is not a positive decimal string (a JSON number is refused: it may have been rounded). */
export class InvalidAmount extends TriportError {
  static override readonly status = 400;
  static override readonly tag = "invalid_amount";
}

/** currency is not 2 to 10 upper-case letters or digits, starting with a letter. */
export class InvalidCurrency extends TriportError {
  static override readonly status = 400;
  static override readonly tag = "invalid_currency";
}

/** destination is not 1 to 256 printable characters. */
export class InvalidDestination extends TriportError {
  static override readonly status = 400;
  static override readonly tag = "invalid_destination";
}

/** The token is valid, but its scope does not cover this call. */
export class Forbidden extends TriportError {
  static override readonly status = 403;
  static override readonly tag = "forbidden";
}

/** No route has that path. */
export class NotFound extends TriportError {
  static override readonly status = 404;
  static override readonly tag = "not_found";
}

/** No payout has that id. */
export class PayoutNotFound extends TriportError {
  static override readonly status = 404;
  static override readonly tag = "payout_not_found";
}

/** The user has no credits and no payouts. */
export class UserNotFound extends TriportError {
  static override readonly status = 404;
  static override readonly tag = "user_not_found";
}

/** The route does not take that method. */
export class MethodNotAllowed extends TriportError {
  static override readonly status = 405;
  static override readonly tag = "method_not_allowed";
}

/** The payout's status does not allow that action. */
export class PayoutNotActionable extends TriportError {
  static override readonly status = 409;
  static override readonly tag = "payout_not_actionable";
}

/** The payout asked for is more than the user's available balance in that currency. */
export class InsufficientBalance extends TriportError {
  static override readonly status = 409;
  static override readonly tag = "insufficient_balance";
}

/** The first request with this Idempotency-Key is still running. */
export class IdempotencyKeyInUse extends TriportError {
  static override readonly status = 409;
  static override readonly tag = "idempotency_key_in_use";
}

/** This Idempotency-Key was used for a different request. */
export class IdempotencyKeyReused extends TriportError {
  static override readonly status = 422;
  static override readonly tag = "idempotency_key_reused";
}

/** The server failed unexpectedly. */
export class Internal extends TriportError {
  static override readonly status = 500;
  static override readonly tag = "internal";
}

/** The server cannot reach its database. */
export class DatabaseUnavailable extends TriportError {
  static override readonly status = 503;
  static override readonly tag = "database_unavailable";
}

/** The disk of the server's database is full: nothing was changed. */
export class StorageFull extends TriportError {
  static override readonly status = 503;
  static override readonly tag = "storage_full";
}

/** The server's database has an older schema than the server: it needs `triport-payouts migrate`. */
export class SchemaOutdated extends TriportError {
  static override readonly status = 503;
  static override readonly tag = "schema_outdated";
}

/** The server's database was migrated by a newer release than the server. */
export class SchemaTooNew extends TriportError {
  static override readonly status = 503;
  static override readonly tag = "schema_too_new";
}

/** Every tag the API answers with, and its class. A new tag is one class above and one entry here. */
export const ERROR_CLASSES: Readonly<Record<string, typeof TriportError>> = Object.freeze(
  Object.fromEntries(
    [
      InvalidPayoutId, InvalidActor, InvalidJson, InvalidTxHash, InvalidStatus, InvalidUserId,
      InvalidLimit, InvalidOrder, InvalidTime, InvalidCursor, InvalidType, InvalidIdempotencyKey, InvalidBulk,
      InvalidAmount, InvalidCurrency, InvalidDestination, AdminTokenUnset, AdminTokenInvalid, Forbidden, NotFound,
      PayoutNotFound, UserNotFound, MethodNotAllowed, PayoutNotActionable, InsufficientBalance, IdempotencyKeyInUse,
      IdempotencyKeyReused, Internal, DatabaseUnavailable, StorageFull, SchemaOutdated, SchemaTooNew,
    ].map((kind) => [kind.tag, kind]),
  ),
);

/** The class of a tag; `TriportError` for an unknown one (or none). */
export function errorClassFor(tag: string | null): typeof TriportError {
  return (tag !== null && Object.hasOwn(ERROR_CLASSES, tag) ? ERROR_CLASSES[tag] : undefined) ?? TriportError;
}

/** The tag of an `{"error": tag}` body, else null. */
export function tagOf(body: string): string | null {
  try {
    const payload: unknown = JSON.parse(body);
    if (payload !== null && typeof payload === "object" && !Array.isArray(payload)) {
      const tag = (payload as Record<string, unknown>)["error"];
      return typeof tag === "string" ? tag : null;
    }
  } catch {
    // not JSON: a proxy's page, a truncated body
  }
  return null;
}

/** The error for a non-2xx answer (or a 2xx whose body is not JSON). */
export function errorFromAnswer(
  status: number, body: string, method: string, path: string, idempotencyKey?: string,
): TriportError {
  const tag = tagOf(body);
  const detail = tag ?? "(no error envelope in the answer)";
  const Kind = errorClassFor(tag);
  return new Kind(`${status} ${detail} on ${method} ${path}`, { status, tag, method, path, idempotencyKey });
}
