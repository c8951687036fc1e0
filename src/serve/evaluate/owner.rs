//! Who evaluates which service: one replica at a time per service, the holder of its evaluator
//! lease (`store::lease`). Each round a replica signs of life, then takes the leases of the
//! services it is preferred for (rendezvous hashing over the live replicas spreads them evenly and
//! moves few when a replica comes or goes), takes over any service whose stored verdict went
//! stale (its evaluator died or lost the database), and hands back a service taken over once its
//! preferred replica shows life again.

use crate::store::lease::{LeaseKind, LeaseSession};
use crate::store::{served, Store, StoreError};
use chrono::{DateTime, Utc};
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

/// The replica among `live` preferred for `service`: the highest hash of (replica, service).
pub fn preferred<'a>(live: &'a [String], service: &str) -> Option<&'a str> {
    live.iter()
        .max_by_key(|replica| {
            let mut h = blake3::Hasher::new();
            h.update(replica.as_bytes());
            h.update(&[0]);
            h.update(service.as_bytes());
            *h.finalize().as_bytes()
        })
        .map(String::as_str)
}

/// A live replica and when the database last heard of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub replica: String,
    pub at: DateTime<Utc>,
}

/// What a replica should do with its leases this round.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Leases to try to take (another replica may hold one: then it stays theirs).
    pub take: Vec<i16>,
    /// Leases to give back: taken over from a replica that is alive again (or newly preferred).
    pub release: Vec<i16>,
}

/// The plan of replica `me`, given the live replicas, the configured services (id, name), the
/// leases it holds with when it took each, and which services' verdicts are stale (or missing).
pub fn plan(
    me: &str,
    live: &[Seen],
    services: &[(i16, &str)],
    held: &HashMap<i16, DateTime<Utc>>,
    stale: impl Fn(i16) -> bool,
) -> Plan {
    let names: Vec<String> = live.iter().map(|s| s.replica.clone()).collect();
    let mut out = Plan::default();
    for &(id, name) in services {
        let choice = preferred(&names, name);
        let mine = choice.is_none_or(|p| p == me);
        match held.get(&id) {
            None if mine || stale(id) => out.take.push(id),
            None => {}
            // Hand back only once the preferred replica signed of life after we took the service:
            // one that died before (why we took it over) stays silent, and keeping the service
            // avoids leaving it to nobody.
            Some(taken_at) if !mine => {
                let back = live
                    .iter()
                    .any(|s| Some(s.replica.as_str()) == choice && s.at > *taken_at);
                if back {
                    out.release.push(id);
                }
            }
            Some(_) => {}
        }
    }
    out
}

/// A new replica name: `$HOSTNAME` (a pod's name) or `/etc/hostname`, the process id, and a
/// random suffix so that two processes of one host, or a restart, never share a name.
pub fn default_replica_name() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "paritygate".into());
    let pid = std::process::id();
    let seed = format!("{host}/{pid}/{:?}", std::time::SystemTime::now());
    let suffix = blake3::hash(seed.as_bytes()).to_hex();
    format!("{host}-{pid}-{}", &suffix[..6])
}

/// A replica's leases over the rounds: its session (reopened after a loss) and when it took each.
#[derive(Debug)]
pub struct Ownership {
    pub replica: String,
    session: Option<LeaseSession>,
    taken_at: HashMap<i16, DateTime<Utc>>,
    /// A replica counts as live while its last sign of life is this recent.
    live_for: Duration,
}

impl Ownership {
    pub fn new(replica: String, evaluation_interval: Duration) -> Ownership {
        Ownership {
            replica,
            session: None,
            taken_at: HashMap::new(),
            live_for: (evaluation_interval * 5).max(Duration::from_secs(10)),
        }
    }

    /// Sign of life, then take and release leases; returns the ids this replica evaluates now.
    /// A failure loses the session, and with it every lease (the database frees them).
    pub async fn settle(
        &mut self,
        store: &Store,
        services: &[(i16, &str)],
    ) -> Result<BTreeSet<i16>, StoreError> {
        let result = self.try_settle(store, services).await;
        if result.is_err() {
            self.lose();
        }
        result
    }

    async fn try_settle(
        &mut self,
        store: &Store,
        services: &[(i16, &str)],
    ) -> Result<BTreeSet<i16>, StoreError> {
        if self.session.is_none() {
            self.session = Some(LeaseSession::open(store, LeaseKind::Evaluator).await?);
            self.taken_at.clear();
        }
        let Some(session) = self.session.as_mut() else {
            return Ok(BTreeSet::new());
        };
        let (now, live) = served::heartbeat(session, &self.replica, self.live_for).await?;
        let live: Vec<Seen> = live
            .into_iter()
            .map(|(replica, at)| Seen { replica, at })
            .collect();
        let freshness = served::freshness(&store.pool).await?;
        let stale = |id: i16| {
            freshness
                .get(&id)
                .is_none_or(|(at, ms)| (now - *at).num_milliseconds() > *ms)
        };
        let todo = plan(&self.replica, &live, services, &self.taken_at, stale);
        for id in todo.release {
            session.release(id).await?;
            self.taken_at.remove(&id);
            tracing::info!(service_id = id, replica = %self.replica, "handed the evaluation back to its preferred replica");
        }
        for id in todo.take {
            if session.try_take(id).await? {
                self.taken_at.insert(id, now);
                tracing::info!(service_id = id, replica = %self.replica, "evaluating this service");
            }
        }
        Ok(session.held().clone())
    }

    /// The session writes go through (present after a successful `settle`).
    pub fn session(&mut self) -> Option<&mut LeaseSession> {
        self.session.as_mut()
    }

    /// Forget the session and every lease (after a failed statement on it).
    pub fn lose(&mut self) {
        if self.session.take().is_some() {
            tracing::warn!(replica = %self.replica, "lost the lease session: this replica evaluates nothing until it reconnects");
        }
        self.taken_at.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(replica: &str, at: DateTime<Utc>) -> Seen {
        Seen {
            replica: replica.into(),
            at,
        }
    }

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("service-{i}")).collect()
    }

    #[test]
    fn preference_spreads_services_over_replicas() {
        let live: Vec<String> = ["a-1", "b-2", "c-3"].map(String::from).to_vec();
        let services = names(300);
        let mut per: HashMap<&str, usize> = HashMap::new();
        for s in &services {
            *per.entry(preferred(&live, s).unwrap()).or_default() += 1;
        }
        assert_eq!(per.len(), 3, "{per:?}");
        assert!(per.values().all(|n| (70..=130).contains(n)), "{per:?}");
        // A replica leaving moves only its own services.
        let two = &live[..2];
        for s in &services {
            let before = preferred(&live, s).unwrap();
            if before != "c-3" {
                assert_eq!(preferred(two, s), Some(before), "{s}");
            }
        }
        assert_eq!(preferred(&[], "x"), None);
    }

    #[test]
    fn a_replica_takes_what_it_is_preferred_for_and_what_went_stale() {
        let now = Utc::now();
        let live = [seen("a", now), seen("b", now)];
        let names = names(20);
        let services: Vec<(i16, &str)> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (i as i16, n.as_str()))
            .collect();
        let replicas = ["a".to_owned(), "b".to_owned()];
        let mine: Vec<i16> = services
            .iter()
            .filter(|(_, n)| preferred(&replicas, n) == Some("a"))
            .map(|(id, _)| *id)
            .collect();
        let fresh = plan("a", &live, &services, &HashMap::new(), |_| false);
        assert_eq!(fresh.take, mine);
        assert!(fresh.release.is_empty());
        // Everything stale (b died, or nothing was evaluated yet): a tries every lease.
        let all = plan("a", &live, &services, &HashMap::new(), |_| true);
        assert_eq!(all.take.len(), services.len());
    }

    #[test]
    fn a_service_taken_over_goes_back_only_once_its_replica_shows_life_again() {
        let t0 = Utc::now();
        let later = t0 + chrono::Duration::seconds(1);
        let replicas = ["a".to_owned(), "b".to_owned()];
        let name = (0..)
            .map(|i| format!("s{i}"))
            .find(|n| preferred(&replicas, n) == Some("b"))
            .unwrap();
        let services = [(7i16, name.as_str())];
        let held = HashMap::from([(7i16, later)]);
        // b was last seen before a took the service over: it stays with a.
        let silent = plan(
            "a",
            &[seen("a", later), seen("b", t0)],
            &services,
            &held,
            |_| false,
        );
        assert_eq!(silent, Plan::default());
        // b signed of life since: hand it back.
        let back = later + chrono::Duration::seconds(1);
        let alive = plan(
            "a",
            &[seen("a", back), seen("b", back)],
            &services,
            &held,
            |_| false,
        );
        assert_eq!(alive.release, vec![7]);
        // b gone from the live set: a is preferred now and keeps it.
        let gone = plan("a", &[seen("a", back)], &services, &held, |_| false);
        assert_eq!(gone, Plan::default());
    }

    #[test]
    fn replica_names_differ_between_calls() {
        let (a, b) = (default_replica_name(), default_replica_name());
        assert_ne!(a, b);
        assert!(a.contains(&std::process::id().to_string()), "{a}");
    }
}
