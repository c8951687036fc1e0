-- Sampled row diffs of the two sink tables (`[services.targets]`, docs/rowdiff.md). One row per
-- sampler round; the history is pruned to the newest rounds per service by the writer.
CREATE TABLE row_samples (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    service_id           smallint NOT NULL REFERENCES services (id),
    evaluated_at         timestamptz NOT NULL DEFAULT now(),
    -- Keys of the uniform sample (the ratio's denominator).
    rows_sampled         bigint NOT NULL,
    -- Settled differences among the uniform sample, by kind (the ratio's numerator).
    missing_in_candidate bigint NOT NULL,
    extra_in_candidate   bigint NOT NULL,
    mismatched           bigint NOT NULL,
    -- Flagged and recently changed keys checked besides the sample (not in the ratio).
    extra_keys_checked   bigint NOT NULL,
    extra_keys_invalid   bigint NOT NULL,
    extra_missing_in_candidate bigint NOT NULL,
    extra_extra_in_candidate   bigint NOT NULL,
    extra_mismatched           bigint NOT NULL,
    -- Differences that vanished after the settle delay (rows still travelling through a sink).
    in_flight            bigint NOT NULL,
    diff_ratio           double precision NOT NULL,
    diff_ratio_upper_95  double precision NOT NULL,
    -- [{"column": …, "mismatched_rows": …}] of the uniform sample.
    columns              jsonb NOT NULL,
    duration_ms          bigint NOT NULL
);
CREATE INDEX row_samples_by_service ON row_samples (service_id, id DESC);

-- The differing keys of each service's latest round only (bounded by the writer).
CREATE TABLE row_sample_diffs (
    round_id   bigint   NOT NULL REFERENCES row_samples (id) ON DELETE CASCADE,
    ordinal    integer  NOT NULL,
    service_id smallint NOT NULL,
    key        jsonb    NOT NULL,
    kind       text     NOT NULL,
    columns    jsonb    NOT NULL,   -- ["amount", …]
    -- In the uniform sample (counted in the ratio) or one of the extra keys.
    uniform    boolean  NOT NULL,
    PRIMARY KEY (round_id, ordinal)
);
CREATE INDEX row_sample_diffs_by_service ON row_sample_diffs (service_id);
