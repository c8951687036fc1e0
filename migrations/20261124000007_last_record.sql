-- A fingerprint (128-bit BLAKE3) of the record at `next_offset - 1`, the last one this state
-- counted. At assignment the record found there is compared with it (`serve::verify`): a different
-- record means the topic was deleted and recreated (or truncated and rewritten) meanwhile, and the
-- partition is read from its new log's start. NULL: not known (nothing is verified).
ALTER TABLE partitions ADD COLUMN last_record bytea;
