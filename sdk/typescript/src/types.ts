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

/** One step of a payout's history; the first is its creation (from_status null). */
export interface PayoutEvent {
  payout_id: string;
  from_status: PayoutStatus | null;
  to_status: PayoutStatus;
  reason: string | null;
  tx_hash: string | null;
  /** X-Admin-Actor, the command-line user, or null. */
  actor: string | null;
  at: string;
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
  actor: string | null;
  /** The payout as the list shows it, right after this change. */
  payout: Payout;
}
