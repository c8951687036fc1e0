-- Vacuum the tables a checkpoint or an evaluation rewrites long before Postgres' defaults would.
-- The default scale factor (20 % of a table's rows dead before a vacuum) lets `keys` and
-- `key_parity` of a 5,000,000-key service carry a million dead row versions or more, so every
-- index probe of the parity refresh and the checkpoint upsert walks them (bench soak: rounds
-- doubled within minutes). A fixed share of 1 % (plus a floor) keeps the dead rows to a
-- working-set's worth; analyze follows at 2 % so plans see the tables as they are.
ALTER TABLE keys SET (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 10000,
    autovacuum_analyze_scale_factor = 0.02);
ALTER TABLE key_parity SET (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 10000,
    autovacuum_analyze_scale_factor = 0.02);
-- Append-and-prune tables: what the pruner deleted is reused as soon as it is vacuumed.
ALTER TABLE event_log SET (autovacuum_vacuum_scale_factor = 0.05, autovacuum_vacuum_threshold = 200);
ALTER TABLE event_ids SET (autovacuum_vacuum_scale_factor = 0.05, autovacuum_vacuum_threshold = 200);
ALTER TABLE deliveries SET (autovacuum_vacuum_scale_factor = 0.05, autovacuum_vacuum_threshold = 1000);
ALTER TABLE windows SET (autovacuum_vacuum_scale_factor = 0.05, autovacuum_vacuum_threshold = 1000);
