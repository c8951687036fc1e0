-- The dedupe horizon (`[serve] dedupe_horizon_seconds`, `serve::lane::dedupe`): each packed row of
-- identities records the newest event time of its partition's batch, so a restart loads only the
-- rows within the horizon behind the partition's newest event, and retention prunes the others.
-- Rows written before this column existed keep NULL: loaded as of the partition's newest event,
-- never pruned by the horizon.
ALTER TABLE event_ids ADD COLUMN max_event_ms bigint;
