"""``copy-data``: copying a whole database into another (SQLite to
PostgreSQL, typically): credits, payouts and events, then the webhook
endpoints (with their secrets) and subscriptions and the named tokens (their
hashes, revoked ones too), streamed in batches, in one
transaction on the target, which must be empty. Events keep their order;
their ids are the target's own. Deliveries, pending or not, and the outbox
stay behind; so do idempotency keys.
"""

from __future__ import annotations

import itertools

from . import domain
from .repository import TABLES, Repository
from .tokens import TokenStore
from .webhooks import COPIED_TABLES, Webhooks

BATCH = 5_000


class TargetNotEmpty(domain.DomainError):
    """the target database already holds data: copy only into an empty one"""


def copy_database(source: Repository, target: Repository) -> dict[str, int]:
    """Copies every row of source into target; returns the rows copied per
    table. A target without a schema gets this release's; one with a schema
    of another version is refused (SchemaOutdated, SchemaTooNew): migrating
    is the operator's call."""
    if target.db.schema_version() == 0:
        target.db.init_schema()
    counts = dict.fromkeys([*TABLES, *COPIED_TABLES, "operator_tokens"], 0)
    with target.db.transaction() as out:
        if (not target.is_empty(out) or Webhooks(target.db).has_endpoints(out)
                or TokenStore(target.db).has_tokens(out)):
            raise TargetNotEmpty()
        with source.snapshot() as snapshot:
            for table, (columns, _order) in TABLES.items():
                for batch in snapshot.table(table, BATCH):
                    target.db.bulk_insert(out, table, columns, batch)
                    counts[table] += len(batch)
            # The endpoints after the events: the outbox trigger fired for
            # each event copied and found none, so no history is sent again.
            copied = itertools.chain(Webhooks(source.db).copied(snapshot, BATCH),
                                     TokenStore(source.db).copied(snapshot, BATCH))
            for table, columns, batch in copied:
                target.db.bulk_insert(out, table, columns, batch)
                counts[table] += len(batch)
    return counts
