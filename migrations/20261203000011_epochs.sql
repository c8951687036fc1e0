-- Observation epochs: the gate judges one epoch of a service's dual run; an approver starts a new
-- one after a fix (`store::epochs`). Every key, window and tally row belongs to one epoch: epoch 0 is
-- the first (from the comparison start), a started epoch's rows carry its id. A new epoch's rows are
-- built, when it starts, from the event log below (events since its start that were already
-- counted), so nothing is re-read from Kafka; the earlier epochs' rows stay as they stood.

-- Append-only, like wave_signoffs: the trail of who restarted the judgement when, and why.
CREATE TABLE epochs (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    service_id   smallint    NOT NULL REFERENCES services (id),
    -- Event time (Unix ms) the epoch covers from.
    starts_at_ms bigint      NOT NULL,
    reason       text        NOT NULL,
    created_by   text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    -- The epoch this one ended (0: the first) and the served status it ended with.
    previous_id  bigint      NOT NULL,
    previous_status jsonb
);
CREATE INDEX epochs_by_service ON epochs (service_id, id DESC);

CREATE FUNCTION epochs_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'epochs is append-only: % is not allowed', TG_OP;
END;
$$;
CREATE TRIGGER epochs_no_update_delete
    BEFORE UPDATE OR DELETE ON epochs
    FOR EACH ROW EXECUTE FUNCTION epochs_append_only();
CREATE TRIGGER epochs_no_truncate
    BEFORE TRUNCATE ON epochs
    FOR EACH STATEMENT EXECUTE FUNCTION epochs_append_only();

ALTER TABLE keys ADD COLUMN epoch bigint NOT NULL DEFAULT 0;
ALTER TABLE keys DROP CONSTRAINT keys_pkey;
ALTER TABLE keys ADD PRIMARY KEY (service_id, epoch, key_hash, side);

ALTER TABLE windows ADD COLUMN epoch bigint NOT NULL DEFAULT 0;
ALTER TABLE windows DROP CONSTRAINT windows_pkey;
ALTER TABLE windows ADD PRIMARY KEY (service_id, epoch, window_start_ms, side, operation);

ALTER TABLE tallies ADD COLUMN epoch bigint NOT NULL DEFAULT 0;
ALTER TABLE tallies DROP CONSTRAINT tallies_pkey;
ALTER TABLE tallies ADD PRIMARY KEY (service_id, epoch, side, kind, name);

-- The distinct events (and re-delivered records) counted per checkpoint, packed per service side
-- (`store::epochs::LogEntry`, 86 bytes each), kept for `[store] rewind_minutes` of event time:
-- what a new epoch's rows are rebuilt from, so an epoch may start that far in the past.
CREATE TABLE event_log (
    service_id   smallint NOT NULL,
    side         smallint NOT NULL CHECK (side IN (0, 1)),
    min_event_ms bigint   NOT NULL,
    max_event_ms bigint   NOT NULL,
    entries      bytea    NOT NULL
);
CREATE INDEX event_log_by_time ON event_log (service_id, max_event_ms);
-- Stored out of line without compression: pglz on these rows (partly repetitive, so it does not
-- give up early) doubled Postgres' CPU per checkpoint in `bench serve` (24-29 s against 9 s).
ALTER TABLE event_log ALTER COLUMN entries SET STORAGE EXTERNAL;


-- The event time from which the log holds every counted event of the service (NULL: all of them);
-- raised by the pruner before it deletes rows wholly behind it. No epoch may start earlier.
ALTER TABLE services ADD COLUMN log_complete_from_ms bigint;
