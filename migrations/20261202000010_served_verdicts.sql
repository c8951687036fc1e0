-- One verdict whichever replica answers: each service's served status is evaluated by one
-- replica at a time (the holder of its evaluator lease, `store::lease`) and stored here; every
-- replica answers from this row. The hysteresis state (consecutive passes, served verdict) is
-- stored with it, so a restart or a failover continues where the last evaluation stopped.
CREATE TABLE served_verdicts (
    service_id      smallint    PRIMARY KEY REFERENCES services (id),
    -- The full status as served (`model::status::ServiceStatus`), gate included.
    status          jsonb       NOT NULL,
    verdict         text        NOT NULL,
    passes_in_a_row integer     NOT NULL CHECK (passes_in_a_row >= 0),
    -- The (verdict, criteria statuses) last written to gate_history: a transition is recorded once,
    -- whoever evaluates next.
    recorded        jsonb       NOT NULL,
    evaluated_at    timestamptz NOT NULL,
    evaluated_by    text        NOT NULL,
    -- After this long without a newer evaluation the verdict is stale (served as such, and any
    -- replica may take the service over).
    stale_after_ms  bigint      NOT NULL CHECK (stale_after_ms > 0)
);

-- Replicas that evaluate, with their last sign of life: evaluation is spread over the live ones.
CREATE TABLE evaluators (
    replica text        PRIMARY KEY,
    seen_at timestamptz NOT NULL
);
