//! The one retry schedule of the pipeline: exponential delays with jitter, for every wait on a
//! dependency that is away (the store during start-up, a checkpoint, a lane's read of a
//! partition's stored state). Jitter because replicas restarted together (a rollout, a database
//! failover) must not retry in lockstep.

use backon::{BackoffBuilder, ExponentialBuilder};
use std::time::Duration;

/// Delays from about `first`, doubling, capped at `max`, each with random jitter; never ends.
pub fn delays(first: Duration, max: Duration) -> impl Iterator<Item = Duration> {
    let mut inner = ExponentialBuilder::new()
        .with_min_delay(first)
        .with_max_delay(max)
        .with_jitter()
        .without_max_times()
        .build();
    std::iter::from_fn(move || Some(inner.next().unwrap_or(max)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_to_the_cap_with_jitter_and_never_end() {
        let (first, max) = (Duration::from_millis(100), Duration::from_secs(2));
        let d: Vec<Duration> = delays(first, max).take(12).collect();
        assert_eq!(d.len(), 12);
        assert!(d[0] >= first && d[0] <= first * 2, "{d:?}");
        // Jitter adds up to one more delay; the cap bounds the base.
        assert!(d.iter().all(|x| *x <= max * 2), "{d:?}");
        assert!(d[11] >= max, "grown to the cap: {d:?}");
        // Two schedules differ (jitter), so replicas spread out.
        let other: Vec<Duration> = delays(first, max).take(12).collect();
        assert_ne!(d, other);
    }
}
