//! Timestamps compared as instants: one spelling per point in time.
//!
//! Redpanda Connect trims trailing fraction zeros (`…30.12Z`), SQL Server gives seven digits, Bento
//! substitutes may write `+00:00` or a local offset. All of them become UTC with the shortest exact
//! fraction and a `Z`. A timestamp without an offset (SQL `timestamp`, `datetime2`) is taken as UTC,
//! and a bare date as its midnight UTC: documented in `docs/canonical-form.md`.

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Timelike, Utc};

/// Canonical UTC spelling of an ISO 8601 / RFC 3339 timestamp, or `None` when `text` is not one.
pub fn canonical_instant(text: &str) -> Option<String> {
    // Cheap rejection first: most strings in a payload are not timestamps.
    let bytes = text.as_bytes();
    if !(10..=40).contains(&bytes.len())
        || !bytes[..4].iter().all(u8::is_ascii_digit)
        || bytes[4] != b'-'
        || bytes[7] != b'-'
    {
        return None;
    }
    let utc = parse(text)?;
    Some(render(&utc))
}

fn parse(text: &str) -> Option<DateTime<Utc>> {
    if text.len() == 10 {
        let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
        return Some(date.and_hms_opt(0, 0, 0)?.and_utc());
    }
    // Without a `Z` or a sign after the date nothing with an offset can match: go straight to
    // the naive forms (SQL Server's `datetime2` is the common case; each failed attempt costs).
    let may_have_offset = text.as_bytes()[10..]
        .iter()
        .any(|b| matches!(b, b'Z' | b'z' | b'+' | b'-'));
    parse_date_time(text, may_have_offset)
}

/// A date and time in the accepted forms: with an offset (RFC 3339, or `+0200` without a colon)
/// unless `try_offsets` is false, then naive with `T` or a space.
fn parse_date_time(text: &str, try_offsets: bool) -> Option<DateTime<Utc>> {
    if try_offsets {
        if let Ok(with_offset) = DateTime::parse_from_rfc3339(text) {
            return Some(with_offset.with_timezone(&Utc));
        }
        for format in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z"] {
            if let Ok(t) = DateTime::parse_from_str(text, format) {
                return Some(t.with_timezone(&Utc));
            }
        }
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, format) {
            return Some(t.and_utc());
        }
    }
    None
}

fn render(t: &DateTime<Utc>) -> String {
    // Digits pushed directly: `strftime` items, then `write!`, were several % of extraction's
    // CPU. Years outside 0..=9999 keep chrono's own spelling (sign, more digits).
    let mut out = String::with_capacity(32);
    if (0..=9999).contains(&t.year()) {
        push_digits(&mut out, t.year().unsigned_abs(), 4);
        for (separator, value) in [
            ('-', t.month()),
            ('-', t.day()),
            ('T', t.hour()),
            (':', t.minute()),
            (':', t.second()),
        ] {
            out.push(separator);
            push_digits(&mut out, value, 2);
        }
    } else {
        out = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    }
    let nanos = t.nanosecond() % 1_000_000_000;
    if nanos != 0 {
        let mut digits = 9;
        let mut fraction = nanos;
        while fraction % 10 == 0 {
            fraction /= 10;
            digits -= 1;
        }
        out.push('.');
        push_digits(&mut out, fraction, digits);
    }
    out.push('Z');
    out
}

/// `value` in decimal, zero-padded to `width` digits (it has at most `width`; callers ensure it).
fn push_digits(out: &mut String, value: u32, width: u32) {
    for place in (0..width).rev() {
        let digit = (value / 10u32.pow(place)) % 10;
        out.push(char::from(b'0' + digit as u8));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn spellings_of_one_instant_agree() {
        let want = Some("2026-08-20T10:15:30.12Z".to_owned());
        for input in [
            "2026-08-20T10:15:30.12Z",
            "2026-08-20T10:15:30.120000Z",
            "2026-08-20T10:15:30.1200000",
            "2026-08-20 10:15:30.12+00:00",
            "2026-08-20T12:15:30.12+02:00",
            "2026-08-20T12:15:30.120+0200",
            "2026-08-20T05:15:30.12-05:00",
        ] {
            assert_eq!(canonical_instant(input), want, "{input}");
        }
    }

    #[test]
    fn different_instants_differ() {
        assert_ne!(
            canonical_instant("2026-08-20T10:15:30.12Z"),
            canonical_instant("2026-08-20T10:15:30.12+01:00")
        );
        assert_ne!(
            canonical_instant("2026-08-20T10:15:30.1234567Z"),
            canonical_instant("2026-08-20T10:15:30.1234568Z")
        );
    }

    #[test]
    fn dates_and_whole_seconds() {
        assert_eq!(
            canonical_instant("2026-08-20").as_deref(),
            Some("2026-08-20T00:00:00Z")
        );
        assert_eq!(
            canonical_instant("2026-08-20T00:00:00.000Z").as_deref(),
            Some("2026-08-20T00:00:00Z")
        );
    }

    #[test]
    fn non_timestamps_are_left_alone() {
        for s in [
            "hello",
            "2026-13-40T00:00:00Z",
            "1234-56",
            "2026-08-20T10:15",
            "12345678901",
        ] {
            assert_eq!(canonical_instant(s), None, "{s}");
        }
    }

    proptest! {
        #[test]
        fn offset_and_fraction_length_do_not_change_the_instant(
            secs in 0i64..4_000_000_000, nanos in 0u32..1_000_000_000, offset_min in -720i32..=840
        ) {
            let t = DateTime::from_timestamp(secs, nanos).unwrap();
            let tz = chrono::FixedOffset::east_opt(offset_min * 60).unwrap();
            let local = t.with_timezone(&tz).to_rfc3339_opts(chrono::SecondsFormat::Nanos, false);
            let utc_auto = t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
            prop_assert_eq!(canonical_instant(&local), canonical_instant(&utc_auto));
            prop_assert!(canonical_instant(&local).is_some());
        }

        /// Skipping the offset forms when no offset can be there changes no result (`true`: every
        /// form in turn, as before the shortcut).
        #[test]
        fn the_naive_shortcut_changes_nothing(
            date in "20[0-9]{2}-[01][0-9]-[0-3][0-9]",
            sep in "[T t]",
            time in "[0-2][0-9]:[0-5][0-9]:[0-6][0-9](\\.[0-9]{1,9})?",
            zone in "(|Z|z|[+-][01][0-9]:?[0-5][0-9]|x|:)",
        ) {
            let text = format!("{date}{sep}{time}{zone}");
            prop_assert_eq!(parse(&text), parse_date_time(&text, true));
        }

        /// The direct formatter spells every instant as the `strftime` one it replaced did.
        #[test]
        fn rendering_matches_the_strftime_spelling(
            secs in -62_000_000_000i64..300_000_000_000, nanos in 0u32..1_000_000_000
        ) {
            let t = DateTime::from_timestamp(secs, nanos).unwrap();
            let mut want = t.format("%Y-%m-%dT%H:%M:%S").to_string();
            if nanos != 0 {
                want.push('.');
                want.push_str(format!("{nanos:09}").trim_end_matches('0'));
            }
            want.push('Z');
            prop_assert_eq!(render(&t), want);
        }
    }
}
