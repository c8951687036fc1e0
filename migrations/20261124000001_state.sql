-- paritygate's own state. Everything the live comparison knows is here, written in one transaction
-- per checkpoint together with the Kafka offsets that produced it (exactly-once effect).

-- Services by name; events reference the small id to keep the big tables narrow.
CREATE TABLE services (
    id   smallint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL UNIQUE
);

-- One row per consumed Kafka partition: where consumption resumes, and its event-time progress.
-- `next_offset` is updated only by compare-and-set, so a replica that lost the partition can never
-- write a stale batch for it.
CREATE TABLE partitions (
    topic          text     NOT NULL,
    partition      integer  NOT NULL,
    service_id     smallint NOT NULL REFERENCES services (id),
    side           smallint NOT NULL CHECK (side IN (0, 1)),
    next_offset    bigint   NOT NULL,
    max_event_ms   bigint,
    end_offset     bigint,
    last_record_at timestamptz,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, partition)
);

-- Distinct events. The primary key is the deduplication identity (plus the digest, so a conflicting
-- duplicate is kept); ON CONFLICT DO NOTHING makes replays and re-deliveries free of double counting.
-- Without a configured position, `position` is zero and the digest identifies the event.
CREATE TABLE events (
    service_id   smallint NOT NULL,
    side         smallint NOT NULL,
    key_hash     uuid     NOT NULL,
    position     uuid     NOT NULL,
    operation    smallint NOT NULL,
    digest       uuid     NOT NULL,
    arrival      bigint   NOT NULL,
    event_ms     bigint   NOT NULL,
    partition    integer  NOT NULL,
    kafka_offset bigint   NOT NULL,
    PRIMARY KEY (service_id, side, key_hash, position, operation, digest)
);

-- One row per (service, key, side): the set-based comparison joins the two sides' rows, so a key's
-- baseline and candidate events may be consumed by different replicas.
CREATE TABLE keys (
    service_id      smallint NOT NULL,
    key_hash        uuid     NOT NULL,
    side            smallint NOT NULL,
    key_text        text     NOT NULL,
    events          bigint   NOT NULL,
    -- Sum of 64-bit event fingerprints: an order-independent digest of the key's distinct events.
    fingerprint_sum numeric  NOT NULL,
    final_position  uuid     NOT NULL,
    final_operation smallint NOT NULL,
    final_arrival   bigint   NOT NULL,
    final_digest    uuid,
    final_content   jsonb,
    last_event_ms   bigint   NOT NULL,
    partition       integer  NOT NULL,
    PRIMARY KEY (service_id, key_hash, side)
);

-- Counts per (service, side, kind, name): kind `operation` (records and distinct events),
-- `rejected`, `skipped`, `unparseable` (records only).
CREATE TABLE tallies (
    service_id smallint NOT NULL,
    side       smallint NOT NULL,
    kind       text     NOT NULL,
    name       text     NOT NULL,
    records    bigint   NOT NULL DEFAULT 0,
    events     bigint   NOT NULL DEFAULT 0,
    PRIMARY KEY (service_id, side, kind, name)
);

-- Tumbling event-time windows: distinct events per operation and a multiset fingerprint per side.
CREATE TABLE windows (
    service_id      smallint NOT NULL,
    side            smallint NOT NULL,
    window_start_ms bigint   NOT NULL,
    operation       smallint NOT NULL,
    events          bigint   NOT NULL,
    fingerprint_sum numeric  NOT NULL,
    PRIMARY KEY (service_id, window_start_ms, side, operation)
);

-- Samples of messages that could not be compared, kept for inspection (bounded per reason).
CREATE TABLE bad_messages (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    service_id   smallint NOT NULL,
    side         smallint NOT NULL,
    reason       text     NOT NULL,
    topic        text     NOT NULL,
    partition    integer  NOT NULL,
    kafka_offset bigint   NOT NULL,
    sample       text     NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX bad_messages_by_reason ON bad_messages (service_id, reason, id DESC);
