-- Keys, final contents and bad-message samples as bytes, not text.
--
-- Why: they come from Kafka records, which may hold any bytes. Postgres `text` refuses NUL
-- (`invalid byte sequence for encoding "UTF8": 0x00`), so one record with a NUL in its key, or a
-- non-JSON payload with a raw NUL, made every checkpoint of its lane fail, forever, and froze the
-- counts of every service behind it. `bytea` holds any bytes, losslessly; the API and the page show
-- them with `core::event::display_bytes` (UTF-8 without control characters as is, anything else as
-- `0x…` hex). Existing rows were valid UTF-8 text: `convert_to` keeps their exact bytes.
ALTER TABLE keys RENAME COLUMN key_text TO key_bytes;
ALTER TABLE keys ALTER COLUMN key_bytes TYPE bytea USING convert_to(key_bytes, 'UTF8');
ALTER TABLE keys ALTER COLUMN final_content TYPE bytea USING convert_to(final_content, 'UTF8');
ALTER TABLE bad_messages ALTER COLUMN sample TYPE bytea USING convert_to(sample, 'UTF8');
-- The record's key, so a sample names the record it came from.
ALTER TABLE bad_messages ADD COLUMN key_bytes bytea;
