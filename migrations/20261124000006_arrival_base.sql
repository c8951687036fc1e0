-- Added to a partition's Kafka offsets to give its records' arrival order, which orders a key's
-- final state when its service has no positions. A partition whose log went back (topic deleted
-- and recreated, or truncated: `serve::cursor`) continues from a higher base, so arrival order
-- stays increasing across the reset and the new log's changes outrank the old log's.
ALTER TABLE partitions ADD COLUMN arrival_base bigint NOT NULL DEFAULT 0;
