-- Schema version 6 (PostgreSQL): the operator's queue.
--
-- The list takes updated_before ("what has not moved since"), and is then
-- ordered by updated_at, the time of the last change, so that the payouts
-- stuck longest come first (status=processing&updated_before=...&order=oldest:
-- the stalled ones). One index per equality filter, as for created_at in
-- version 1, each ending in (updated_at, id): every page of every filter and
-- order is one index range, read in index order, never sorted.
CREATE INDEX IF NOT EXISTS payouts_changed ON payouts (updated_at, id);
CREATE INDEX IF NOT EXISTS payouts_by_status_changed ON payouts (status, updated_at, id);
CREATE INDEX IF NOT EXISTS payouts_by_user_changed ON payouts (user_id, updated_at, id);
