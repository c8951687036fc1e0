-- Deduplication moves out of a per-event primary key and into the consuming process.
--
-- Why: one indexed row per event (a six-column primary key plus an event-time index) cost Postgres
-- about 10 µs of CPU per event and made it the service's bottleneck. A runtime partitions by key,
-- so every copy of an event arrives on the partition its first copy came from; the replica that owns
-- a partition can decide "new or duplicate" in memory. What it needs to rebuild that memory after a
-- restart or a rebalance is the set of event identities stored per partition, appended here in the
-- same transaction as the offsets (one packed row per partition and checkpoint, no per-event index).
CREATE TABLE event_ids (
    topic     text    NOT NULL,
    partition integer NOT NULL,
    -- 16 bytes per distinct event: its 128-bit identity (key, position, operation, digest).
    ids       bytea   NOT NULL
);
CREATE INDEX event_ids_by_partition ON event_ids (topic, partition);

-- A deterministic 1-in-32 sample of events (chosen by identity, so both sides sample the same
-- events) with their Kafka record timestamps: the latency guardrail's delivery-delay evidence.
CREATE TABLE deliveries (
    service_id smallint NOT NULL,
    side       smallint NOT NULL,
    event_id   uuid     NOT NULL,
    event_ms   bigint   NOT NULL,
    record_ms  bigint   NOT NULL
);
CREATE INDEX deliveries_recent ON deliveries (service_id, side, event_ms);
CREATE INDEX deliveries_by_event ON deliveries (service_id, event_id);

-- The earliest event time per partition: the observation span starts where both sides have events.
ALTER TABLE partitions ADD COLUMN min_event_ms bigint;

-- Carry the observation start over. Event identities are not carried: they are a BLAKE3 hash computed
-- by the service, which SQL cannot reproduce; paritygate had no deployment before this schema, so no
-- running dual run loses its deduplication memory.
UPDATE partitions p SET min_event_ms = m.t
FROM (SELECT service_id, side, partition, min(event_ms) AS t FROM events GROUP BY 1, 2, 3) m
WHERE p.service_id = m.service_id AND p.side = m.side AND p.partition = m.partition;
DROP TABLE events;
