/**
 * The shapes the API answers with, field for field as on the wire (snake_case).
 * Amounts are decimal strings ("12.50"), never numbers; times are RFC 3339 UTC
 * with six fractional digits, so they sort as text.
 */

export type PayoutStatus = "requested" | "processing" | "sent" | "failed" | "cancelled";

/** The change feed's event types: one per status a payout can reach. */
export type EventType = `payout.${PayoutStatus}`;

export interface Payout {
  id: string;
  user_id: string;
  amount: string;
  currency: string;
  destination: string;
  status: PayoutStatus;
  /** Null until a failure names one. */
  reason: string | null;
  /** Null until sent. */
  tx_hash: string | null;
  created_at: string;
  updated_at: string;
}

/** The actions `payouts.bulk` applies. */
export type BulkAction = "processing" | "sent" | "failed";

/** One item's outcome in a bulk answer, in request order. */
export interface BulkResult {
  /** As the request named it. */
  id: string;
  ok: boolean;
  /** When not ok: the tag the single action would have answered (`payout_not_actionable`, `payout_not_found`, ...). */
  error?: string;
}

/** What `payouts.bulk` resolves: every item's outcome and the counts. */
export interface BulkResults {
  results: BulkResult[];
  succeeded: number;
  failed: number;
}

/** One step of a payout's history; the first is its creation (from_status null). */
export interface PayoutEvent {
  payout_id: string;
  from_status: PayoutStatus | null;
  to_status: PayoutStatus;
  reason: string | null;
  tx_hash: string | null;
  /** The named token's name; with the environment's token, its X-Admin-Actor; the command-line user; or null. */
  actor: string | null;
  /** With a named token, the X-Admin-Actor it sent: whom its holder acted for. Else null. */
  on_behalf_of: string | null;
  at: string;
}

/** Earnings credited to a user, as `credits.create` resolves them. */
export interface Credit {
  id: string;
  user_id: string;
  amount: string;
  currency: string;
  note: string | null;
  created_at: string;
}

export interface Balance {
  currency: string;
  earned: string;
  reserved: string;
  sent: string;
  available: string;
}

export interface UserView {
  user_id: string;
  balances: Balance[];
  counts: Record<PayoutStatus, number>;
  /** The 20 newest payouts. */
  payouts: Payout[];
}

/** One event of the change feed, and the body of a webhook. */
export interface FeedEvent {
  /** Unique and stable: deduplicate on it. */
  id: string;
  type: EventType;
  created_at: string;
  from_status: PayoutStatus | null;
  to_status: PayoutStatus;
  reason: string | null;
  tx_hash: string | null;
  /** As on PayoutEvent: the named token's name, else X-Admin-Actor, the command-line user, or null. */
  actor: string | null;
  /** With a named token, the X-Admin-Actor it sent; else null. */
  on_behalf_of: string | null;
  /** The payout as the list shows it, right after this change. */
  payout: Payout;
}
