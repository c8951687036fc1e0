-- A partition is identified by its side as well as its topic and number: with a cluster per side
-- (`[kafka.candidate]`), both clusters may hold a topic of the same name (a pipeline publishing to
-- the old and the new Kafka). With one cluster a topic has one side, so existing rows keep their
-- identity; the identities of a partition's events follow their partition row's side.
ALTER TABLE partitions DROP CONSTRAINT partitions_pkey;
ALTER TABLE partitions ADD PRIMARY KEY (side, topic, partition);

ALTER TABLE event_ids ADD COLUMN side smallint CHECK (side IN (0, 1));
UPDATE event_ids e SET side = p.side FROM partitions p
WHERE p.topic = e.topic AND p.partition = e.partition;
-- Identities are written in the same transaction as their partition's row, so none lacks one;
-- should one, it belongs to no partition paritygate resumes and nothing reads it.
DELETE FROM event_ids WHERE side IS NULL;
ALTER TABLE event_ids ALTER COLUMN side SET NOT NULL;
DROP INDEX event_ids_by_partition;
CREATE INDEX event_ids_by_partition ON event_ids (side, topic, partition);
