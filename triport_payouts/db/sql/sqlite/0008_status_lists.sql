-- Schema version 8 (SQLite): the lists of allowed values in the schema are
-- written as OR chains. SQLite (3.40 measured) builds a temporary index for
-- an IN list of three or more constants on every run of a statement that
-- tests it, about 3.5 us each time; `x = 'a' OR x = 'b' ...` costs 0.06 us.
-- A status change tested four (the payout's CHECK, the settled-payout
-- trigger's WHEN, the event's two CHECKs): 16 us of a transition's 90 us of
-- SQL. For every value, NULL included, the two forms agree (NULL passes both).
--
-- The CHECKs are rewritten in the tables' text in place, after the procedure
-- SQLite documents for changing constraints that every row already meets
-- (https://www.sqlite.org/lang_altertable.html, "Making Other Kinds Of Table
-- Schema Changes"): no row is read or written, whatever the database's size.
-- Rebuilding the tables would copy every payout and event, and payout_events
-- cannot be dropped while webhook deliveries refer to it. writable_schema =
-- RESET ends the writing and makes this connection read the new text. Where
-- the documented procedure sets PRAGMA schema_version to one more (a number a
-- step file cannot name), the trigger made again below moves it on, which
-- makes every other connection read the new text too: keep that DDL in this
-- step.

PRAGMA writable_schema = ON;

UPDATE sqlite_master SET sql = replace(sql,
    'status IN (''requested'', ''processing'', ''sent'', ''failed'', ''cancelled'')',
    '(status = ''requested'' OR status = ''processing'' OR status = ''sent'''
    || ' OR status = ''failed'' OR status = ''cancelled'')')
WHERE type = 'table' AND name = 'payouts';

UPDATE sqlite_master SET sql = replace(replace(sql,
    'from_status IN (''requested'', ''processing'', ''sent'', ''failed'', ''cancelled'')',
    '(from_status = ''requested'' OR from_status = ''processing'' OR from_status = ''sent'''
    || ' OR from_status = ''failed'' OR from_status = ''cancelled'')'),
    'to_status IN (''requested'', ''processing'', ''sent'', ''failed'', ''cancelled'')',
    '(to_status = ''requested'' OR to_status = ''processing'' OR to_status = ''sent'''
    || ' OR to_status = ''failed'' OR to_status = ''cancelled'')')
WHERE type = 'table' AND name = 'payout_events';

UPDATE sqlite_master SET sql = replace(sql,
    'status IN (''pending'', ''delivered'', ''failed'')',
    '(status = ''pending'' OR status = ''delivered'' OR status = ''failed'')')
WHERE type = 'table' AND name = 'webhook_deliveries';

UPDATE sqlite_master SET sql = replace(sql,
    'scope IN (''read'', ''operator'', ''system'', ''admin'')',
    '(scope = ''read'' OR scope = ''operator'' OR scope = ''system'' OR scope = ''admin'')')
WHERE type = 'table' AND name = 'operator_tokens';

PRAGMA writable_schema = RESET;

DROP TRIGGER payouts_terminal_is_final;
CREATE TRIGGER payouts_terminal_is_final
BEFORE UPDATE ON payouts
WHEN OLD.status = 'sent' OR OLD.status = 'failed' OR OLD.status = 'cancelled'
BEGIN
    SELECT RAISE(ABORT, 'payout is settled');
END;
