/**
 * @triport/sdk: the TypeScript client of the Triport operator API. No
 * dependencies: Node.js 18 or newer (fetch, AbortSignal.timeout, node:crypto).
 *
 * ```ts
 * import { TriportAdmin, PayoutNotActionable } from "@triport/sdk";
 * const admin = new TriportAdmin({ adminToken: process.env.TRIPORT_ADMIN_TOKEN! });
 * await admin.referrals.payouts.markFailed(payoutId, { reason: "destination wallet rejected the transfer" });
 * for await (const payout of admin.referrals.payouts.list({ status: "requested" })) { ... }
 * // with a token of scope system: credits.create, payouts.create and payouts.cancel
 * const payout = await admin.referrals.payouts.create({ userId: "alice", amount: "20.00", currency: "USDT", destination: "0xA11CE" });
 * ```
 *
 * Every API error tag is a class extending `TriportError` (`.status`,
 * `.tag`); no answer at all is `TransportError`. `webhooks.verify(secret,
 * headers, body)` checks a webhook's signature and returns its event.
 */

export { TriportAdmin, DEFAULT_BASE_URL, type ClientOptions } from "./client.js";
export type {
  ActionOptions, BulkItem, CreateCreditParams, CreatePayoutParams, Credits, Events, Feed, ListEventsParams,
  ListPayoutsParams, MarkFailedOptions, MarkSentOptions, Payouts, Referrals, Users,
} from "./resources.js";
export type { Fetch } from "./transport.js";
export type {
  Balance, BulkAction, BulkResult, BulkResults, Credit, EventType, FeedEvent, Payout, PayoutEvent, PayoutStatus,
  UserView,
} from "./types.js";
export {
  AdminTokenInvalid, AdminTokenUnset, DatabaseUnavailable, ERROR_CLASSES, Forbidden, IdempotencyKeyInUse,
  IdempotencyKeyReused, InsufficientBalance, Internal, InvalidActor, InvalidAmount, InvalidBulk, InvalidCurrency,
  InvalidCursor, InvalidDestination, InvalidIdempotencyKey, InvalidJson, InvalidLimit, InvalidOrder, InvalidPayoutId,
  InvalidStatus, InvalidTime, InvalidTxHash, InvalidType, InvalidUserId, MethodNotAllowed, NotFound,
  PayoutNotActionable, PayoutNotFound, SchemaOutdated, SchemaTooNew, StorageFull, TransportError, TriportError,
  UserNotFound, errorClassFor, type ErrorDetails,
} from "./errors.js";
export * as webhooks from "./webhooks.js";
export { WebhookVerificationError } from "./webhooks.js";
export { VERSION } from "./version.js";
