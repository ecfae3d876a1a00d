/**
 * The calls: `admin.referrals.payouts`, `admin.referrals.credits`,
 * `admin.referrals.users` and `admin.referrals.events` (the change feed).
 *
 * Path segments are percent-encoded (`/` included); the server validates
 * every value and answers a malformed one with its own error class. A new
 * route is one method here over `transport.get` or `transport.post`.
 */

import type { Transport } from "./transport.js";
import type {
  BulkAction, BulkResults, Credit, EventType, FeedEvent, Payout, PayoutEvent, PayoutStatus, UserView,
} from "./types.js";

const PAYOUTS = "/v1/admin/referrals/payouts";
const USERS = "/v1/admin/referrals/users";
const EVENTS = "/v1/admin/referrals/events";
const CREDITS = "/v1/admin/referrals/credits";

export interface ActionOptions {
  /** Sent as Idempotency-Key; by default a new one per call. Pass the one an error carried to retry that call safely. */
  idempotencyKey?: string;
}

export interface MarkFailedOptions extends ActionOptions {
  /** Stored as an annotation only. */
  reason?: string | null;
}

export interface MarkSentOptions extends ActionOptions {
  /** The transfer's reference: 1 to 256 printable characters. */
  txHash: string;
}

export interface CreateCreditParams {
  /** 1 to 128 printable characters, no `/`. */
  userId: string;
  /** A positive decimal string such as "25.50"; a number is refused before sending. */
  amount: string;
  /** 2 to 10 upper-case letters or digits, starting with a letter ("USDT"). */
  currency: string;
  /** Any text, kept with the credit. */
  note?: string | null;
}

export interface CreatePayoutParams {
  /** 1 to 128 printable characters, no `/`. */
  userId: string;
  /** A positive decimal string such as "20.00"; a number is refused before sending. */
  amount: string;
  /** 2 to 10 upper-case letters or digits, starting with a letter ("USDT"). */
  currency: string;
  /** Where to send it: 1 to 256 printable characters. */
  destination: string;
}

export interface ListPayoutsParams {
  status?: PayoutStatus;
  userId?: string;
  /** The page size (1 to 200; the server's default is 50), not a cap on the total. */
  limit?: number;
  /** By creation time: `"newest"` first (the server's default) or `"oldest"` first. */
  order?: "newest" | "oldest";
  /** Exclusive bounds on `created_at`: RFC 3339 text with its offset, or a Date (sent as its `toISOString()`). */
  createdAfter?: string | Date;
  createdBefore?: string | Date;
  /** Exclusive bound on `updated_at` (the last change); the list is then in the order of the last change. */
  updatedBefore?: string | Date;
}

/** One payout of a bulk action: `txHash` for `sent` (several may share one), `reason` for `failed` (optional). */
export interface BulkItem {
  id: string;
  txHash?: string;
  reason?: string | null;
}

export interface ListEventsParams {
  /** One event type or several; all of them by default. */
  type?: EventType | readonly EventType[];
  /** A cursor (`feed.cursor`) to go on from; the feed's start by default. */
  after?: string | null;
  /** The page size (1 to 200; the server's default is 100). */
  limit?: number;
}

/**
 * An amount as the API takes it: a string, sent as given. A number is
 * refused here, before anything is sent: a float cannot say most amounts
 * exactly (0.1 + 0.2 !== 0.3), and the server would refuse it anyway.
 */
function amountOf(value: unknown): string {
  if (typeof value !== "string") {
    const given = typeof value === "number" ? `the number ${value} (a float cannot say an amount exactly)`
      : value === null || value === undefined ? String(value) : `a ${typeof value}`;
    throw new TypeError(`amount must be a string such as "12.50", not ${given}`);
  }
  return value;
}

/** A time filter as the query takes it: text as given, a Date as its ISO string; an invalid Date is refused here. */
function timeOf(value: string | Date | null | undefined, name: string): string | undefined {
  if (value === null || value === undefined) return undefined;
  if (value instanceof Date) {
    if (Number.isNaN(value.getTime())) throw new TypeError(`${name} is an invalid Date`);
    return value.toISOString();
  }
  return value;
}

/** A bulk item as the wire has it (`tx_hash`); anything but an object is sent as is, for the server to refuse. */
function bulkItemOf(item: BulkItem): unknown {
  if (item === null || typeof item !== "object") return item;
  const { id, txHash, reason } = item;
  const wire: Record<string, unknown> = { id };
  if (txHash !== undefined) wire["tx_hash"] = txHash;
  if (reason !== undefined && reason !== null) wire["reason"] = reason;
  return wire;
}

function segment(value: string, name: string): string {
  if (typeof value !== "string" || value === "") {
    throw new TypeError(`${name} must be a non-empty string`);
  }
  return encodeURIComponent(value);
}

export class Referrals {
  readonly payouts: Payouts;
  readonly credits: Credits;
  readonly users: Users;
  readonly events: Events;

  constructor(transport: Transport) {
    this.payouts = new Payouts(transport);
    this.credits = new Credits(transport);
    this.users = new Users(transport);
    this.events = new Events(transport);
  }
}

/**
 * Referral payouts: the three operator actions, one by one or in bulk,
 * payout requests and their cancellation, and the reads.
 *
 * The actions (and `cancel`) resolve `true` once the server answered
 * `{"ok": true}`; any refusal rejects with the `TriportError` subclass of its
 * tag (e.g. `PayoutNotActionable`). Every call that writes sends one
 * Idempotency-Key, the same on each retry.
 */
export class Payouts {
  readonly #transport: Transport;

  constructor(transport: Transport) {
    this.#transport = transport;
  }

  /** requested/processing -> failed, with an optional reason. */
  markFailed(payoutId: string, options: MarkFailedOptions = {}): Promise<boolean> {
    const { reason, idempotencyKey } = options;
    return this.#act(payoutId, "failed", reason === undefined || reason === null ? {} : { reason }, idempotencyKey);
  }

  /** requested/processing -> sent, recording the transfer's txHash. */
  markSent(payoutId: string, options: MarkSentOptions): Promise<boolean> {
    return this.#act(payoutId, "sent", { tx_hash: options.txHash }, options.idempotencyKey);
  }

  /** requested -> processing. */
  markProcessing(payoutId: string, options: ActionOptions = {}): Promise<boolean> {
    return this.#act(payoutId, "processing", {}, options.idempotencyKey);
  }

  /** requested -> cancelled: the amount is available again (scope `system`). */
  cancel(payoutId: string, options: ActionOptions = {}): Promise<boolean> {
    return this.#act(payoutId, "cancel", {}, options.idempotencyKey);
  }

  /**
   * A payout request (status `requested`), as the server created it;
   * `InsufficientBalance` past the user's available balance (scope
   * `system`). Retried with one key, so an answer lost in transit is
   * replayed, never a second payout. A number `amount` rejects with a
   * TypeError before anything is sent.
   */
  async create(params: CreatePayoutParams, options: ActionOptions = {}): Promise<Payout> {
    const { userId, amount, currency, destination } = params;
    const body = { user_id: userId, amount: amountOf(amount), currency, destination };
    return this.#transport.post<Payout>(PAYOUTS, body, options.idempotencyKey);
  }

  /**
   * One action on up to 100 payouts named by id, in one request: resolves
   * `{ results: [{ id, ok, error? }, ...], succeeded, failed }`, each item in
   * request order. An item refused (`payout_not_actionable`, ...) is
   * reported there, not thrown; a request of the wrong shape (an unknown
   * action, not 1 to 100 items, a payout named twice) rejects with
   * `InvalidBulk` and changes nothing. One Idempotency-Key covers the whole
   * request, the same on every retry, so a lost answer is replayed and each
   * item applied once (scope `operator`).
   */
  async bulk(action: BulkAction, items: Iterable<BulkItem>, options: ActionOptions = {}): Promise<BulkResults> {
    const body = { action, items: Array.from(items, bulkItemOf) };
    return this.#transport.post<BulkResults>(`${PAYOUTS}/bulk`, body, options.idempotencyKey);
  }

  async #act(payoutId: string, action: string, body: object, idempotencyKey?: string): Promise<boolean> {
    const path = `${PAYOUTS}/${segment(payoutId, "payoutId")}/${action}`;
    const answer = await this.#transport.post<{ ok?: unknown }>(path, body, idempotencyKey);
    return answer.ok === true;
  }

  /**
   * Every matching payout, newest first (`order: "oldest"` turns it around),
   * following `next_cursor` across all pages as the iteration reaches them;
   * each `for await` starts over. The times are exclusive bounds; with
   * `updatedBefore` the order is that of the last change, so
   * `list({ status: "processing", updatedBefore: anHourAgo, order: "oldest" })`
   * is the stalled payouts, stuck longest first. A bad filter rejects at the
   * first page (e.g. `InvalidStatus`, `InvalidTime`); an invalid Date throws a
   * TypeError here.
   */
  list(params: ListPayoutsParams = {}): AsyncIterable<Payout> {
    const transport = this.#transport;
    const query = {
      status: params.status, user_id: params.userId, limit: params.limit, order: params.order,
      created_after: timeOf(params.createdAfter, "createdAfter"),
      created_before: timeOf(params.createdBefore, "createdBefore"),
      updated_before: timeOf(params.updatedBefore, "updatedBefore"),
    };
    return {
      async *[Symbol.asyncIterator]() {
        let cursor: string | null = null;
        do {
          const page: PayoutPage = await transport.get<PayoutPage>(PAYOUTS, { ...query, cursor });
          yield* page.payouts;
          cursor = page.next_cursor;
        } while (cursor !== null);
      },
    };
  }

  /** The payout's history, oldest first. */
  async events(payoutId: string): Promise<PayoutEvent[]> {
    const page = await this.#transport.get<{ events: PayoutEvent[] }>(`${PAYOUTS}/${segment(payoutId, "payoutId")}/events`);
    return page.events;
  }
}

interface PayoutPage {
  payouts: Payout[];
  next_cursor: string | null;
}

/** Referral earnings (scope `system`). */
export class Credits {
  readonly #transport: Transport;

  constructor(transport: Transport) {
    this.#transport = transport;
  }

  /**
   * Records earnings; resolves the credit as the server created it. Retried
   * with one key, so an answer lost in transit credits once. A number
   * `amount` rejects with a TypeError before anything is sent.
   */
  async create(params: CreateCreditParams, options: ActionOptions = {}): Promise<Credit> {
    const { userId, amount, currency, note } = params;
    const body: Record<string, string> = { user_id: userId, amount: amountOf(amount), currency };
    if (note !== undefined && note !== null) body["note"] = note;
    return this.#transport.post<Credit>(CREDITS, body, options.idempotencyKey);
  }
}

export class Users {
  readonly #transport: Transport;

  constructor(transport: Transport) {
    this.#transport = transport;
  }

  /**
   * The operator view of a user: balances per currency, counts per status
   * and the 20 newest payouts. `UserNotFound` when the user has neither
   * credits nor payouts.
   */
  get(userId: string): Promise<UserView> {
    return this.#transport.get<UserView>(`${USERS}/${segment(userId, "userId")}`);
  }
}

/** The change feed: every change of every payout, oldest first. */
export class Events {
  readonly #transport: Transport;

  constructor(transport: Transport) {
    this.#transport = transport;
  }

  /**
   * Every event after the cursor `after` (from the first without one), of the
   * given types, following cursors until the feed has nothing more.
   */
  list(params: ListEventsParams = {}): Feed {
    const type = typeof params.type === "string" || params.type === undefined ? params.type : params.type.join(",");
    return new Feed(this.#transport, { type, limit: params.limit }, params.after ?? null);
  }
}

interface FeedPage {
  events: FeedEvent[];
  next_cursor: string;
}

/**
 * The events of `events.list()`, page by page. `cursor` is the position after
 * the last page read whole: save it and pass it as `after` later to tail the
 * feed (each later event once). Iterating the same Feed again goes on from
 * `cursor`; resuming after a break in the middle of a page gets the rest of
 * that page again (at least once).
 */
export class Feed implements AsyncIterable<FeedEvent> {
  cursor: string | null;
  readonly #transport: Transport;
  readonly #query: { type: string | undefined; limit: number | undefined };

  constructor(transport: Transport, query: { type: string | undefined; limit: number | undefined }, after: string | null) {
    this.#transport = transport;
    this.#query = query;
    this.cursor = after;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<FeedEvent> {
    for (;;) {
      const page = await this.#transport.get<FeedPage>(EVENTS, { ...this.#query, after: this.cursor });
      yield* page.events;
      this.cursor = page.next_cursor;
      if (page.events.length === 0) return;
    }
  }
}
