//! Source positions (LSNs) and their order: how "latest change of a key" is decided.
//!
//! Every accepted spelling maps to one unsigned 128-bit integer so both runtimes' positions compare
//! directly: Postgres LSN `XXXXXXXX/XXXXXXXX` (either half may be unpadded) → `hi << 32 | lo`;
//! `0x…` hex (SQL Server `__$start_lsn` as polled with `sql_raw`) and raw big-endian bytes (the 10
//! bytes RPCN puts in its `lsn` header) → the same number; SQL Server's textual LSN
//! `XXXXXXXX:XXXXXXXX:XXXX` (Debezium's `change_lsn` / `commit_lsn`: the same 10 bytes as three hex
//! groups) → the same number as those bytes; a decimal integer → itself.

/// A position, ordered as the source database orders its log.
pub type Position = u128;

/// How a position value is written (`position = { …, format = "…" }`); `auto` tries LSN, SQL
/// Server LSN, `0x` hex, integer, then binary.
#[derive(Debug, Clone, Copy, serde::Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum PositionFormat {
    Auto,
    Lsn,
    /// SQL Server's textual LSN, `XXXXXXXX:XXXXXXXX:XXXX` (virtual log file, block, slot).
    SqlserverLsn,
    Hex,
    Integer,
    Binary,
}

/// Parse a textual or binary position; `None` when it does not fit the format.
pub fn parse_position(raw: &[u8], format: PositionFormat) -> Option<Position> {
    let text = std::str::from_utf8(raw).ok().map(str::trim);
    match format {
        PositionFormat::Lsn => text.and_then(parse_lsn),
        PositionFormat::SqlserverLsn => text.and_then(parse_sqlserver_lsn),
        PositionFormat::Hex => text.and_then(parse_hex),
        PositionFormat::Integer => text.and_then(|t| t.parse().ok()),
        PositionFormat::Binary => parse_binary(raw),
        PositionFormat::Auto => text
            .and_then(|t| {
                parse_lsn(t)
                    .or_else(|| parse_sqlserver_lsn(t))
                    .or_else(|| parse_hex(t))
                    .or_else(|| t.parse().ok())
            })
            .or_else(|| parse_binary(raw)),
    }
}

fn parse_lsn(text: &str) -> Option<Position> {
    let (hi, lo) = text.split_once('/')?;
    let half = |s: &str| {
        (!s.is_empty() && s.len() <= 8)
            .then(|| u32::from_str_radix(s, 16).ok())
            .flatten()
    };
    Some((u128::from(half(hi)?) << 32) | u128::from(half(lo)?))
}

/// `0000002b:00000b28:0002`: exactly 8, 8 and 4 hex digits, the 10 bytes of the LSN in order.
fn parse_sqlserver_lsn(text: &str) -> Option<Position> {
    let mut parts = text.split(':');
    let (vlf, block, slot) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || vlf.len() != 8 || block.len() != 8 || slot.len() != 4 {
        return None;
    }
    let hex = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_hexdigit())
            .then(|| u128::from_str_radix(s, 16).ok())
            .flatten()
    };
    Some((hex(vlf)? << 48) | (hex(block)? << 16) | hex(slot)?)
}

fn parse_hex(text: &str) -> Option<Position> {
    let digits = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))?;
    if digits.is_empty() || digits.len() > 32 {
        return None;
    }
    u128::from_str_radix(digits, 16).ok()
}

/// Raw bytes, big-endian. A capture tool that wrote binary header bytes into a JSON string turns
/// each byte into one character U+0000..U+00FF, so those strings are read back byte per character.
fn parse_binary(raw: &[u8]) -> Option<Position> {
    let latin1: Option<Vec<u8>> = std::str::from_utf8(raw)
        .ok()
        .filter(|s| !s.is_ascii())
        .and_then(|s| s.chars().map(|c| u8::try_from(u32::from(c)).ok()).collect());
    let bytes = latin1.as_deref().unwrap_or(raw);
    if bytes.is_empty() || bytes.len() > 16 {
        return None;
    }
    Some(
        bytes
            .iter()
            .fold(0u128, |acc, &b| (acc << 8) | u128::from(b)),
    )
}

/// The width a part of a composite position takes, by the format it was read in: a Postgres LSN
/// or an integer 64 bits; a SQL Server LSN (text, `0x` hex or its bytes) 80 bits.
fn part_width(format: PositionFormat, raw: &[u8]) -> u32 {
    let text = std::str::from_utf8(raw).ok().map(str::trim);
    match format {
        PositionFormat::Lsn | PositionFormat::Integer => 64,
        PositionFormat::SqlserverLsn | PositionFormat::Hex | PositionFormat::Binary => 80,
        PositionFormat::Auto => match text {
            Some(t) if parse_lsn(t).is_some() => 64,
            Some(t) if parse_sqlserver_lsn(t).is_some() || parse_hex(t).is_some() => 80,
            Some(t) if t.parse::<u128>().is_ok() => 64,
            _ => 80,
        },
    }
}

/// A composite position (`position = { pointers = […] }` or `headers = […]`): its parts ordered
/// field by field, each in its width (see [`part_width`]), packed most significant first. When the
/// parts take more than 128 bits, the part that does not fit keeps its least significant bits and
/// later parts are left out: SQL Server's `__$start_lsn` (80 bits) then the low 48 bits of
/// `__$seqval` (block and slot, what differs between the changes of one transaction). Events
/// equal in those bits are ordered by arrival, and their identities still differ by operation and
/// content. `None` when a part does not parse or does not fit its width.
pub fn parse_composite(parts: &[Vec<u8>], format: PositionFormat) -> Option<Position> {
    let mut packed: u128 = 0;
    let mut used: u32 = 0;
    for raw in parts {
        let value = parse_position(raw, format)?;
        let width = part_width(format, raw);
        if width < 128 && value >> width != 0 {
            return None;
        }
        if used >= 128 {
            break;
        }
        let room = 128 - used;
        let (take, bits) = if width <= room {
            (value, width)
        } else {
            (value & ((1u128 << room) - 1), room)
        };
        packed = if bits == 128 {
            take
        } else {
            (packed << bits) | take
        };
        used += bits;
    }
    // Left-align a composite shorter than 128 bits: the order is the same, and a part added to
    // the end later keeps the earlier ones' places.
    Some(if used == 0 || used >= 128 {
        packed
    } else {
        packed << (128 - used)
    })
}

/// Display a position the way operators read it: as a Postgres LSN when it fits in 64 bits, hex otherwise.
pub fn display_position(position: Position) -> String {
    if position <= u128::from(u64::MAX) {
        format!("{:X}/{:X}", position >> 32, position & 0xFFFF_FFFF)
    } else {
        format!("0x{position:X}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use PositionFormat::*;

    #[test]
    fn lsn_spellings_agree_and_order() {
        let padded = parse_position(b"00000001/6B374D48", Auto);
        assert_eq!(padded, parse_position(b"1/6B374D48", Auto));
        assert_eq!(padded, Some(0x1_6B37_4D48));
        assert!(parse_position(b"0/FFFFFFFF", Lsn) < parse_position(b"1/0", Lsn));
        assert_eq!(display_position(0x1_6B37_4D48), "1/6B374D48");
    }

    #[test]
    fn sql_server_hex_and_binary_agree() {
        let bytes = [0x00, 0x00, 0x00, 0x2A, 0x00, 0x00, 0x01, 0xF0, 0x00, 0x03];
        let hex = parse_position(b"0x0000002A000001F00003", Auto);
        assert_eq!(parse_position(&bytes, Binary), hex);
        // The same bytes as a kcat JSON string: one char per byte.
        let as_chars: String = [0x00u8, 0x2A, 0x01, 0xF0, 0x03]
            .iter()
            .map(|&b| char::from(b))
            .collect();
        assert_eq!(parse_position(as_chars.as_bytes(), Auto), Some(0x2A01F003));
    }

    #[test]
    fn sql_server_text_lsn_equals_its_bytes_and_orders() {
        let text = parse_position(b"0000002b:00000b28:0002", SqlserverLsn);
        assert_eq!(text, parse_position(b"0x0000002B00000B280002", Hex));
        assert_eq!(text, parse_position(b"0000002B:00000B28:0002", Auto));
        let bytes = [0x00, 0x00, 0x00, 0x2B, 0x00, 0x00, 0x0B, 0x28, 0x00, 0x02];
        assert_eq!(text, parse_position(&bytes, Binary));
        // Slot, then block, then virtual log file: field by field.
        let at = |s: &str| parse_position(s.as_bytes(), SqlserverLsn).unwrap();
        assert!(at("0000002b:00000b28:0002") < at("0000002b:00000b28:0003"));
        assert!(at("0000002b:00000b28:ffff") < at("0000002b:00000b29:0000"));
        assert!(at("0000002b:ffffffff:ffff") < at("0000002c:00000000:0000"));
        for bad in [
            "2b:b28:2",
            "0000002b:00000b28",
            "0000002b:00000b28:0002:1",
            "0000002g:00000b28:0002",
            "+000002b:00000b28:0002",
        ] {
            assert_eq!(parse_position(bad.as_bytes(), SqlserverLsn), None, "{bad}");
        }
    }

    #[test]
    fn composite_positions_order_field_by_field() {
        let at = |parts: &[&str]| {
            let raw: Vec<Vec<u8>> = parts.iter().map(|p| p.as_bytes().to_vec()).collect();
            parse_composite(&raw, Auto).unwrap()
        };
        // RPCN's SQL Server columns: __$start_lsn, __$seqval, __$command_id (192 bits: start_lsn
        // and the low 48 bits of seqval are kept).
        let commit = "0x0000002B00000B280002";
        assert!(
            at(&[commit, "0x0000002B00000A000001", "1"])
                < at(&[commit, "0x0000002B00000B000001", "1"])
        );
        assert!(
            at(&[commit, "0x0000002B00000A000001", "7"])
                < at(&[commit, "0x0000002B00000A000002", "1"])
        );
        assert!(
            at(&["0x0000002B00000B280002", "0x0000002B0000FF000001", "9"])
                < at(&["0x0000002B00000B280003", "0x0000002B00000A000001", "1"])
        );
        // Debezium's commit_lsn, change_lsn, event_serial_no in text form: the same numbers.
        assert_eq!(
            at(&["0000002b:00000b28:0002", "0000002b:00000a00:0001", "1"]),
            at(&[commit, "0x0000002B00000A000001", "2"]),
            "equal in the bits kept"
        );
        // Two parts within 128 bits keep both whole: a Postgres LSN and an integer.
        assert!(at(&["1/0", "2"]) < at(&["1/0", "3"]));
        assert!(at(&["1/0", "99"]) < at(&["1/1", "0"]));
        // A part beyond its width does not fit.
        let wide = vec![b"0x1000000000000000000000".to_vec(), b"1".to_vec()];
        assert_eq!(parse_composite(&wide, Hex), None);
        assert_eq!(parse_composite(&[b"1/0".to_vec(), Vec::new()], Auto), None);
    }

    #[test]
    fn integers_and_rejections() {
        assert_eq!(parse_position(b"42", Auto), Some(42));
        assert_eq!(parse_position(b"42", Lsn), None);
        assert_eq!(parse_position(b"0x", Hex), None);
        assert_eq!(parse_position(b"zz/1", Lsn), None);
        assert_eq!(parse_position(b"", Binary), None);
    }
}
