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
    let utc = match parse_common(bytes) {
        Some(t) => t,
        None => parse(text)?,
    };
    Some(render(&utc))
}

/// Whether `text` needs no normalization as an instant: spelled `YYYY-MM-DDTHH:MM:SS[.f]Z` with
/// hour, minute and second in range and a fraction of 1 to 9 digits not ending in `0`. Such a text
/// is either exactly what [`canonical_instant`] renders, or no date at all (month 13, day 31 of a
/// short month), which stays as it is too; so normalization may keep it without parsing and
/// rendering it (a property test holds it to that). Most timestamps a runtime writes in UTC are
/// spelled so.
pub fn is_canonical_spelling(text: &str) -> bool {
    let b = text.as_bytes();
    let two = |at: usize| u32::from(b[at] - b'0') * 10 + u32::from(b[at + 1] - b'0');
    let shape = b.len() >= 20
        && b[b.len() - 1] == b'Z'
        && [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18]
            .iter()
            .all(|&i| b[i].is_ascii_digit())
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':';
    if !shape || two(11) > 23 || two(14) > 59 || two(17) > 59 {
        return false;
    }
    match &b[19..b.len() - 1] {
        [] => true,
        [b'.', fraction @ ..] => {
            (1..=9).contains(&fraction.len())
                && fraction.iter().all(u8::is_ascii_digit)
                && fraction.last() != Some(&b'0')
        }
        _ => false,
    }
}

/// The spelling nearly every CDC timestamp has, read without chrono's format interpreter:
/// `YYYY-MM-DD(T| )HH:MM:SS[.f{1,9}][Z|±HH:MM]`. `None` means "not this exact form", not "not a
/// timestamp": the caller then tries every accepted form ([`parse`]), so this only ever speeds up
/// what `parse` would have answered the same (a property test holds it to that).
fn parse_common(b: &[u8]) -> Option<DateTime<Utc>> {
    let digits = |range: std::ops::Range<usize>| -> Option<u32> {
        let part = b.get(range)?;
        part.iter().try_fold(0u32, |n, d| {
            d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
        })
    };
    if b.len() < 19 || !matches!(b[10], b'T' | b' ') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    // Leap seconds and out-of-range fields: left to chrono's own rules.
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut at = 19;
    let mut nanos = 0u32;
    if b.get(at) == Some(&b'.') {
        let count = b[at + 1..]
            .iter()
            .take_while(|d| d.is_ascii_digit())
            .count();
        if !(1..=9).contains(&count) {
            return None;
        }
        nanos = digits(at + 1..at + 1 + count)? * 10u32.pow(9 - count as u32);
        at += 1 + count;
    }
    let offset_seconds = match &b[at..] {
        [] | [b'Z'] => 0i64,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (h, m) = (digits(at + 1..at + 3)?, digits(at + 4..at + 6)?);
            if h > 23 || m > 59 {
                return None;
            }
            let magnitude = i64::from(h * 3600 + m * 60);
            if *sign == b'-' {
                -magnitude
            } else {
                magnitude
            }
        }
        _ => return None,
    };
    let local = NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)?
        .and_hms_nano_opt(hour, minute, second, nanos)?;
    let utc = local.checked_sub_signed(chrono::TimeDelta::seconds(offset_seconds))?;
    Some(utc.and_utc())
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
#[path = "instant_tests.rs"]
mod tests;
