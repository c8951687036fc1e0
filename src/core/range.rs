//! The event-time range a comparison covers (`diff --from/--until`; an observation epoch's start):
//! an event is compared when its event time lies in `[from, until)`, and counted as before the
//! start, after the end or untimed otherwise, so a capture of two topics with different histories
//! compares on what both sides saw, and nothing excluded goes uncounted.

/// The name events before a range's start are counted under (a `diff` report field, a skip reason
/// of `serve`: before `compare_from` or the epoch's start).
pub const BEFORE_START: &str = "before_start";

/// What an instant looks like, for error messages that name the expected form.
pub const INSTANT_EXAMPLE: &str = "2026-08-20T10:00:00Z";

/// An RFC 3339 instant (a range's end, `compare_from`) as Unix milliseconds.
pub fn parse_instant_ms(text: &str) -> Result<i64, chrono::ParseError> {
    chrono::DateTime::parse_from_rfc3339(text).map(|t| t.timestamp_millis())
}

/// Unix milliseconds as the RFC 3339 instant reports and messages show (`None` out of range).
pub fn format_instant_ms(ms: i64) -> Option<String> {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
}

/// `[from_ms, until_ms)` in event time (Unix ms); an open end is unbounded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeRange {
    pub from_ms: Option<i64>,
    pub until_ms: Option<i64>,
}

/// Where an event falls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    Inside,
    BeforeStart,
    AfterUntil,
    /// The range is bounded and the event has no time to place it by.
    Untimed,
}

impl TimeRange {
    /// Whether the range excludes anything (an unbounded range compares everything).
    pub fn is_bounded(&self) -> bool {
        self.from_ms.is_some() || self.until_ms.is_some()
    }

    pub fn place(&self, event_ms: Option<i64>) -> Placement {
        if !self.is_bounded() {
            return Placement::Inside;
        }
        let Some(t) = event_ms else {
            return Placement::Untimed;
        };
        if self.from_ms.is_some_and(|from| t < from) {
            Placement::BeforeStart
        } else if self.until_ms.is_some_and(|until| t >= until) {
            Placement::AfterUntil
        } else {
            Placement::Inside
        }
    }
}

/// Events a bounded range left out, per side.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Excluded {
    pub before_start: u64,
    pub after_until: u64,
    pub untimed: u64,
}

impl Excluded {
    /// Count an event that is not `Inside`; `true` when it is to be compared.
    pub fn admit(&mut self, placement: Placement) -> bool {
        match placement {
            Placement::Inside => return true,
            Placement::BeforeStart => self.before_start += 1,
            Placement::AfterUntil => self.after_until += 1,
            Placement::Untimed => self.untimed += 1,
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_start_is_inclusive_and_the_end_exclusive() {
        let r = TimeRange {
            from_ms: Some(100),
            until_ms: Some(200),
        };
        assert_eq!(r.place(Some(99)), Placement::BeforeStart);
        assert_eq!(r.place(Some(100)), Placement::Inside);
        assert_eq!(r.place(Some(199)), Placement::Inside);
        assert_eq!(r.place(Some(200)), Placement::AfterUntil);
        assert_eq!(r.place(None), Placement::Untimed);
        let open = TimeRange::default();
        assert_eq!(open.place(None), Placement::Inside);
        assert_eq!(open.place(Some(i64::MIN)), Placement::Inside);
        let mut excluded = Excluded::default();
        assert!(!excluded.admit(r.place(Some(5))));
        assert!(!excluded.admit(r.place(None)));
        assert!(excluded.admit(r.place(Some(150))));
        assert_eq!(
            excluded,
            Excluded {
                before_start: 1,
                after_until: 0,
                untimed: 1
            }
        );
    }
}
