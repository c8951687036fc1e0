-- Gates with evidence: history, waivers, wave sign-offs (append-only), delivery timestamps.

-- Record timestamps (delivery time) per event: the latency guardrail compares the candidate's
-- delivery of an event with the baseline's delivery of the same event.
ALTER TABLE events ADD COLUMN record_ms bigint;
CREATE INDEX events_recent ON events (service_id, side, event_ms);

-- Served verdicts, one row per change of a service's verdict or criteria statuses.
CREATE TABLE gate_history (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    service           text        NOT NULL,
    evaluated_at      timestamptz NOT NULL,
    verdict           text        NOT NULL,
    raw_verdict       text        NOT NULL,
    report            jsonb       NOT NULL,
    config_digest     text        NOT NULL,
    canonical_version text        NOT NULL
);
CREATE INDEX gate_history_by_service ON gate_history (service, id DESC);

-- Waivers: a criterion counts as passed (shown as waived) until it expires.
CREATE TABLE waivers (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    service    text        NOT NULL,
    criterion  text        NOT NULL,
    reason     text        NOT NULL,
    expires_at timestamptz NOT NULL,
    created_by text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX waivers_active ON waivers (service, expires_at);

-- Wave sign-offs and revocations: an audit trail that no path can edit.
CREATE TABLE wave_signoffs (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    wave_id    integer     NOT NULL,
    action     text        NOT NULL CHECK (action IN ('signoff', 'revocation')),
    identity   text        NOT NULL,
    comment    text        NOT NULL,
    -- The full verdict of every service of the wave at that moment, with criteria and config digests.
    snapshot   jsonb       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX wave_signoffs_by_wave ON wave_signoffs (wave_id, id);

CREATE FUNCTION wave_signoffs_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'wave_signoffs is append-only: % is not allowed', TG_OP;
END;
$$;
CREATE TRIGGER wave_signoffs_no_update_delete
    BEFORE UPDATE OR DELETE ON wave_signoffs
    FOR EACH ROW EXECUTE FUNCTION wave_signoffs_append_only();
CREATE TRIGGER wave_signoffs_no_truncate
    BEFORE TRUNCATE ON wave_signoffs
    FOR EACH STATEMENT EXECUTE FUNCTION wave_signoffs_append_only();
