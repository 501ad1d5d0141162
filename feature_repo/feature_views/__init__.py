"""One feature view per entity group, each over its gold snapshot table."""

from datetime import timedelta

# Snapshots are rebuilt with every gold build (at least nightly): a value older than this is
# missing rather than stale, online and in training sets alike.
SNAPSHOT_TTL = timedelta(days=3)
