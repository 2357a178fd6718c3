"""The database's schema, as the migrations that build it: each runs once,
in order, and ``PRAGMA user_version`` counts how many have run."""

MIGRATIONS: tuple[str, ...] = (
    # 1: the first schema.
    """
    CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE log (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        wall_ms INTEGER NOT NULL,
        logical INTEGER NOT NULL,
        origin TEXT NOT NULL,
        version INTEGER NOT NULL,
        tombstone INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX log_by_origin ON log (origin, version);
    CREATE TABLE checks (
        target TEXT NOT NULL,
        at_ms INTEGER NOT NULL,
        ok INTEGER NOT NULL,
        latency_ms REAL,
        reason TEXT NOT NULL
    );
    CREATE INDEX checks_by_target ON checks (target, at_ms);
    CREATE TABLE outbox (
        event_id TEXT PRIMARY KEY,
        subject TEXT NOT NULL,
        notice TEXT NOT NULL,
        event TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'queued',
        created_ms INTEGER NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT
    );
    """,
    # 2: per-node rollups of raw checks, and agreed-state intervals kept for good.
    """
    CREATE TABLE rollups (
        target TEXT NOT NULL,
        resolution TEXT NOT NULL,
        bucket_ms INTEGER NOT NULL,
        checks INTEGER NOT NULL,
        ups INTEGER NOT NULL,
        latency_min_ms REAL,
        latency_sum_ms REAL NOT NULL DEFAULT 0,
        latency_count INTEGER NOT NULL DEFAULT 0,
        latency_max_ms REAL,
        PRIMARY KEY (target, resolution, bucket_ms)
    );
    CREATE TABLE intervals (
        target TEXT NOT NULL,
        state TEXT NOT NULL,
        mode TEXT NOT NULL,
        start_ms INTEGER NOT NULL,
        end_ms INTEGER,
        event TEXT,
        PRIMARY KEY (target, start_ms)
    );
    CREATE INDEX intervals_open ON intervals (target, end_ms);
    ALTER TABLE checks ADD COLUMN details TEXT;
    """,
    # 3: what ntfy answered for each outbox row.
    """
    ALTER TABLE outbox ADD COLUMN message_id TEXT;
    ALTER TABLE outbox ADD COLUMN updated_ms INTEGER;
    """,
    # 4: the sequence id of the post in flight (the event's own, or a summary's).
    """
    ALTER TABLE outbox ADD COLUMN sequence_id TEXT;
    """,
    # 5: minute rollups were written and never read, nor ever pruned: a row
    # per check kept for good.
    """
    DELETE FROM rollups WHERE resolution = 'minute';
    """,
    # 6: intervals are now a cache derived from the log's agreed moves; the
    # old per-node rows are kept aside, and the cache is rebuilt at start.
    """
    CREATE TABLE intervals_v1 AS SELECT * FROM intervals;
    DELETE FROM intervals;
    DELETE FROM meta WHERE name = 'history_cache';
    """,
    # 7: each hour's latency percentiles, kept once the hour is over.
    """
    ALTER TABLE rollups ADD COLUMN latency_p50_ms REAL;
    ALTER TABLE rollups ADD COLUMN latency_p95_ms REAL;
    """,
    # 8: each event's delivery to each webhook, as the outbox holds ntfy's.
    """
    CREATE TABLE hook_outbox (
        hook TEXT NOT NULL,
        event_id TEXT NOT NULL,
        subject TEXT NOT NULL,
        event TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'queued',
        created_ms INTEGER NOT NULL,
        updated_ms INTEGER,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        PRIMARY KEY (hook, event_id)
    );
    """,
)
# Bumped when the derivation of history changes: the cache is rebuilt.
HISTORY_CACHE_VERSION = "1"
