//! Exact decimal numbers: one canonical spelling per value, never through `f64`.
//!
//! `12345678901234567891` and `12345678901234567000` must stay different, and `1050.00`, `1050`
//! and `1.05e3` must become the same. We work on the digit string itself: strip the sign, split
//! mantissa and exponent, drop leading and trailing zeros, and re-emit.

/// Canonical spelling of a JSON number literal, or `None` when `text` is not one.
///
/// Output: plain decimal notation (`-12.5`, `1050`, `0.001`) while the exponent keeps the digit
/// count modest, otherwise `d.ddddE±n` (scientific, mantissa normalized). Zero is always `0`.
pub fn canonical_number(text: &str) -> Option<String> {
    let parsed = parse(text)?;
    Some(render(&parsed))
}

/// A decimal-looking string as produced for SQL `numeric`/`decimal` and money (`"1050.00"`,
/// `"-0.5"`): optional minus, digits without a superfluous leading zero, optional fraction.
/// Exponents, `+` signs and leading zeros (`"007"`, a postcode) are not decimals.
pub fn is_decimal_string(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    // Most strings in a payload are words: they fail at their first byte.
    if !digits.as_bytes().first().is_some_and(u8::is_ascii_digit) {
        return false;
    }
    let (int, frac) = match digits.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (digits, None),
    };
    let int_ok = !int.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && (int.len() == 1 || !int.starts_with('0'));
    let frac_ok = frac.is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()));
    int_ok && frac_ok
}

struct Parsed {
    negative: bool,
    /// Significant digits, no leading or trailing zeros; empty means zero.
    digits: String,
    /// Value = 0.digits × 10^point, i.e. the decimal point sits `point` places after the first digit's left.
    point: i64,
}

fn parse(text: &str) -> Option<Parsed> {
    let (negative, rest) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(i) => (&rest[..i], rest[i + 1..].parse::<i64>().ok()?),
        None => (rest, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if (int.is_empty() && frac.is_empty())
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let all: String = [int, frac].concat();
    let leading = all.bytes().take_while(|&b| b == b'0').count();
    let trimmed = all[leading..].trim_end_matches('0');
    if trimmed.is_empty() {
        return Some(Parsed {
            negative: false,
            digits: String::new(),
            point: 0,
        });
    }
    let point = i64::try_from(int.len()).ok()? - i64::try_from(leading).ok()? + exponent;
    Some(Parsed {
        negative,
        digits: trimmed.to_owned(),
        point,
    })
}

/// Beyond this many zeros of padding we switch to scientific notation, so `1e400` stays short.
const MAX_PLAIN_PADDING: i64 = 21;

fn render(p: &Parsed) -> String {
    if p.digits.is_empty() {
        return "0".to_owned();
    }
    let mut out = String::with_capacity(p.digits.len() + 8);
    if p.negative {
        out.push('-');
    }
    let n = p.digits.len() as i64;
    if p.point > n + MAX_PLAIN_PADDING || p.point < -MAX_PLAIN_PADDING {
        out.push_str(&p.digits[..1]);
        if n > 1 {
            out.push('.');
            out.push_str(&p.digits[1..]);
        }
        out.push('E');
        out.push_str(&(p.point - 1).to_string());
    } else if p.point <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', p.point.unsigned_abs() as usize));
        out.push_str(&p.digits);
    } else if p.point >= n {
        out.push_str(&p.digits);
        out.extend(std::iter::repeat_n('0', (p.point - n) as usize));
    } else {
        let (int, frac) = p.digits.split_at(p.point as usize);
        out.push_str(int);
        out.push('.');
        out.push_str(frac);
    }
    out
}

/// Round a decimal to the nearest `f32` and spell that value canonically: how float4 columns
/// compare when one runtime widened them to 64 bits (`1.100000023841858`) and the other did not.
pub fn canonical_float32(text: &str) -> Option<String> {
    let value: f32 = text.parse().ok()?;
    if !value.is_finite() {
        return None;
    }
    // `f32`'s Display is the shortest string that round-trips to the same f32.
    canonical_number(&value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn spellings_of_one_value_agree() {
        for (input, want) in [
            ("1050.00", "1050"),
            ("1050", "1050"),
            ("1.05e3", "1050"),
            ("105E1", "1050"),
            ("0.0", "0"),
            ("-0", "0"),
            ("-0.500", "-0.5"),
            ("0.001", "0.001"),
            ("1e-3", "0.001"),
            ("00012.3400", "12.34"),
            ("1e400", "1E400"),
            ("-2.5e-30", "-2.5E-30"),
        ] {
            assert_eq!(canonical_number(input).as_deref(), Some(want), "{input}");
        }
    }

    #[test]
    fn big_integers_stay_exact() {
        let a = canonical_number("12345678901234567891");
        let b = canonical_number("12345678901234567000");
        assert_eq!(a.as_deref(), Some("12345678901234567891"));
        assert_ne!(a, b);
    }

    #[test]
    fn rejects_non_numbers() {
        for bad in ["", "-", ".", "1.2.3", "1e", "abc", "1,5", "0x10"] {
            assert_eq!(canonical_number(bad), None, "{bad}");
        }
    }

    #[test]
    fn decimal_strings_are_recognized_strictly() {
        for ok in ["0", "1050.00", "-0.5", "12", "0.25"] {
            assert!(is_decimal_string(ok), "{ok}");
        }
        for not in ["007", "1e5", "+1", "1.", ".5", "", "-", "12a", "1 000"] {
            assert!(!is_decimal_string(not), "{not}");
        }
    }

    #[test]
    fn float32_widening_is_undone() {
        assert_eq!(
            canonical_float32("1.100000023841858").as_deref(),
            Some("1.1")
        );
        assert_eq!(canonical_float32("1.1").as_deref(), Some("1.1"));
        assert_ne!(canonical_float32("1.1"), canonical_float32("1.2"));
    }

    proptest! {
        #[test]
        fn scale_padding_and_exponent_shift_do_not_change_value(
            int in 0u64..1_000_000_000, frac in "[0-9]{0,6}", pad in 0usize..5, neg: bool
        ) {
            let sign = if neg { "-" } else { "" };
            let plain = if frac.is_empty() { format!("{sign}{int}") } else { format!("{sign}{int}.{frac}") };
            let padded = format!("{plain}{}{}", if frac.is_empty() && pad > 0 { "." } else { "" }, "0".repeat(pad));
            let shifted = format!("{sign}{int}{frac}e-{}", frac.len());
            let a = canonical_number(&plain);
            prop_assert!(a.is_some());
            prop_assert_eq!(&a, &canonical_number(&padded));
            prop_assert_eq!(&a, &canonical_number(&shifted));
        }

        #[test]
        fn distinct_integers_stay_distinct(a: u128, b: u128) {
            prop_assume!(a != b);
            prop_assert_ne!(canonical_number(&a.to_string()), canonical_number(&b.to_string()));
        }
    }
}
