//! Which Kafka cluster each side is read from: `[kafka]` for both, unless `[kafka.baseline]` or
//! `[kafka.candidate]` names a side's own brokers or properties (a move from Redpanda to Apache
//! Kafka publishes to both clusters; a move to managed Kafka mirrors between them).
//!
//! A cluster is identified by what paritygate connects with (bootstrap servers and the merged
//! librdkafka properties): two sides whose settings come out equal share one cluster and one
//! consumer, exactly as with a single `[kafka]`.

use super::model::KafkaConfig;
use crate::model::Side;
use std::collections::BTreeMap;

/// One cluster paritygate consumes from, and the sides it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    /// Both sides (one cluster), or the one side whose cluster this is.
    pub sides: Vec<Side>,
    pub brokers: String,
    /// `[kafka.properties]` with the side's own properties merged over them.
    pub properties: BTreeMap<String, String>,
}

impl Cluster {
    /// `shared`, `baseline` or `candidate`: for logs and thread names (metrics label by side).
    pub fn name(&self) -> &'static str {
        name_of(&self.sides)
    }

    pub fn holds(&self, side: Side) -> bool {
        self.sides.contains(&side)
    }
}

/// The name of the cluster holding `sides`: `shared` for both, else the side's.
pub fn name_of(sides: &[Side]) -> &'static str {
    match sides {
        [side] => side.as_str(),
        _ => "shared",
    }
}

impl KafkaConfig {
    /// The bootstrap servers and properties `side`'s clients use.
    pub fn side_settings(&self, side: Side) -> (String, BTreeMap<String, String>) {
        let own = match side {
            Side::Baseline => self.baseline.as_ref(),
            Side::Candidate => self.candidate.as_ref(),
        };
        let mut properties = self.properties.clone();
        let mut brokers = self.brokers.clone();
        if let Some(own) = own {
            properties.extend(own.properties.clone());
            if let Some(b) = &own.brokers {
                brokers.clone_from(b);
            }
        }
        (brokers, properties)
    }

    /// The clusters to consume: one holding both sides, or one per side.
    pub fn clusters(&self) -> Vec<Cluster> {
        let (b, c) = (
            self.side_settings(Side::Baseline),
            self.side_settings(Side::Candidate),
        );
        if b == c {
            return vec![Cluster {
                sides: vec![Side::Baseline, Side::Candidate],
                brokers: b.0,
                properties: b.1,
            }];
        }
        [(Side::Baseline, b), (Side::Candidate, c)]
            .into_iter()
            .map(|(side, (brokers, properties))| Cluster {
                sides: vec![side],
                brokers,
                properties,
            })
            .collect()
    }

    /// Whether the two sides are read from different clusters.
    pub fn split(&self) -> bool {
        self.clusters().len() > 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kafka(text: &str) -> KafkaConfig {
        let file: super::super::model::FileConfig = toml::from_str(text).unwrap();
        file.kafka
    }

    #[test]
    fn one_kafka_table_is_one_cluster_for_both_sides() {
        let k = kafka(
            "[kafka]\nbrokers = \"a:1\"\n[kafka.properties]\n\"security.protocol\" = \"SSL\"\n",
        );
        let clusters = k.clusters();
        assert_eq!(clusters.len(), 1);
        assert_eq!(clusters[0].name(), "shared");
        assert!(clusters[0].holds(Side::Baseline) && clusters[0].holds(Side::Candidate));
        assert_eq!(clusters[0].properties["security.protocol"], "SSL");
        // A side table that changes nothing keeps one cluster (and one consumer).
        let same = kafka("[kafka]\nbrokers = \"a:1\"\n[kafka.candidate]\nbrokers = \"a:1\"\n");
        assert!(!same.split());
    }

    #[test]
    fn a_side_table_gives_that_side_its_own_cluster_with_merged_properties() {
        let k = kafka(
            "[kafka]\nbrokers = \"redpanda:9092\"\n[kafka.properties]\n\"security.protocol\" = \"SASL_SSL\"\n\
             \"sasl.mechanism\" = \"PLAIN\"\n[kafka.candidate]\nbrokers = \"msk:9096\"\n\
             [kafka.candidate.properties]\n\"sasl.mechanism\" = \"SCRAM-SHA-512\"\n",
        );
        let clusters = k.clusters();
        assert_eq!(clusters.len(), 2);
        let (b, c) = (&clusters[0], &clusters[1]);
        assert_eq!(
            (b.name(), b.brokers.as_str()),
            ("baseline", "redpanda:9092")
        );
        assert_eq!(b.properties["sasl.mechanism"], "PLAIN");
        assert_eq!((c.name(), c.brokers.as_str()), ("candidate", "msk:9096"));
        assert_eq!(c.properties["sasl.mechanism"], "SCRAM-SHA-512");
        assert_eq!(c.properties["security.protocol"], "SASL_SSL", "inherited");
        // Properties alone (same brokers, other credentials) also make a cluster of its own.
        let creds = kafka("[kafka.baseline.properties]\n\"sasl.username\" = \"rp\"\n");
        assert!(creds.split());
    }
}
