mod avro_diff;
mod canonical_pinned;
mod demo;
mod diff;
mod fixtures_fresh;
mod fixtures_parity;
mod gate;
mod generate_live;
