"""One feature view per entity group, each over its gold snapshot table."""

from datetime import timedelta

# No expiry: a training row joins the newest snapshot at or before its time, however old. Every
# gold build snapshots every shopper, product and seller, so that snapshot is at most one build
# old. (A TTL would make the DuckDB offline store render an interval that ibis 12 and the sqlglot
# the project's dbt tooling needs no longer agree on; Feast's file store drops, rather than
# nulls, rows whose entity has only later snapshots.)
SNAPSHOT_TTL = timedelta(0)
