//! Tests of `core::instant`: spellings of one instant agree, the direct reader and the canonical
//! spelling shortcut agree with the general parser, rendering matches chrono's.

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
fn the_common_cdc_spellings_take_the_direct_reader() {
    for input in [
        "2026-08-20T10:15:30Z",
        "2026-08-20T10:15:30.123456Z",
        "2026-08-20 10:15:30.1234567",
        "2026-08-20T12:15:30.12+02:00",
    ] {
        assert!(parse_common(input.as_bytes()).is_some(), "{input}");
    }
    for other in ["2026-08-20T12:15:30.120+0200", "2026-08-20t10:15:30z"] {
        assert!(parse_common(other.as_bytes()).is_none(), "{other}");
        assert!(canonical_instant(other).is_some(), "{other}");
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
    fn a_canonical_spelling_is_left_unchanged_or_is_no_instant(
        // Mostly real dates (months 01-12, days up to 28 or 31), some impossible ones.
        text in "[0-9]{4}-(0[1-9]|1[0-2]|[0-9]{2})-(0[1-9]|1[0-9]|2[0-8]|3[01]|[0-9]{2})T[0-2][0-9]:[0-6][0-9]:[0-6][0-9](\\.[0-9]{0,8}[0-9])?Z"
    ) {
        if is_canonical_spelling(&text) {
            let canonical = canonical_instant(&text);
            prop_assert!(canonical.is_none() || canonical.as_deref() == Some(text.as_str()));
        }
    }

    #[test]
    fn every_rendered_instant_is_a_canonical_spelling(
        secs in -62_000_000_000i64..253_000_000_000, nanos in 0u32..1_000_000_000
    ) {
        let t = DateTime::from_timestamp(secs, nanos).unwrap();
        prop_assert!(is_canonical_spelling(&render(&t)), "{}", render(&t));
    }

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

    /// The direct reader of the common form answers exactly what the general parser does,
    /// wherever it answers at all.
    #[test]
    fn the_common_form_reader_agrees_with_the_general_parser(
        date in "[0-9]{4}-[01][0-9]-[0-3][0-9]",
        sep in "[T t]",
        time in "[0-2][0-9]:[0-6][0-9]:[0-6][0-9](\\.[0-9]{0,11})?",
        zone in "(|Z|z|[+-][0-2][0-9]:?[0-6][0-9]|x|:)",
    ) {
        let text = format!("{date}{sep}{time}{zone}");
        if let Some(fast) = parse_common(text.as_bytes()) {
            prop_assert_eq!(Some(fast), parse(&text), "{}", text);
        }
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
