-- Key-level parity kept up to date (`store::parity`), so an evaluation round's work follows the
-- keys that changed since the previous round instead of re-joining every key of both sides.
--
-- Each event-log row records the transaction that wrote it: a checkpoint writes its keys and its
-- log rows in one transaction, so the log rows written by transactions at or after a cursor name
-- every key changed since. The cursor is the oldest transaction still running when the previous
-- refresh read the log (`pg_snapshot_xmin`): whatever it could not see has an id at or after it.
ALTER TABLE event_log ADD COLUMN xid xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX event_log_by_xid ON event_log (service_id, xid);

-- One row per key of a service's epoch: the join of its two sides' `keys` rows, classified as
-- `joined_keys_sql!` classifies it (`matched` or a mismatch kind), and the later side's last
-- event time (what settling compares).
CREATE TABLE key_parity (
    service_id    smallint NOT NULL,
    epoch         bigint   NOT NULL,
    key_hash      uuid     NOT NULL,
    kind          text     NOT NULL,
    last_event_ms bigint   NOT NULL,
    PRIMARY KEY (service_id, epoch, key_hash)
);
-- Mismatch pages (keyset by key hash) and in-flight counts (a range on the latest change) read
-- the differing keys alone: proportional to differences, never to all keys.
CREATE INDEX key_parity_differences ON key_parity (service_id, epoch, key_hash)
    WHERE kind <> 'matched';
CREATE INDEX key_parity_recent_differences ON key_parity (service_id, epoch, last_event_ms)
    WHERE kind <> 'matched';

-- Per service epoch: the refresh cursor (an xid8 as bigint) and the keys per kind, kept by the
-- refresh with every key it reclassifies. `final`: the epoch ended and every change is in.
CREATE TABLE parity_state (
    service_id           smallint    NOT NULL,
    epoch                bigint      NOT NULL,
    cursor_xid           bigint      NOT NULL,
    final                boolean     NOT NULL DEFAULT false,
    matched              bigint      NOT NULL DEFAULT 0,
    missing_in_candidate bigint      NOT NULL DEFAULT 0,
    extra_in_candidate   bigint      NOT NULL DEFAULT 0,
    mismatched           bigint      NOT NULL DEFAULT 0,
    refreshed_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (service_id, epoch)
);
