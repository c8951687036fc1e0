//! Change operations, mapped from every spelling the runtimes use to one vocabulary.

use serde::Serialize;

/// A change operation. The discriminant order matters: within one source position an
/// `UpdateBefore` image sorts first, so the last event of a key is its after-image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum Operation {
    UpdateBefore = 0,
    /// No operation configured: every record is just "a change".
    Change = 1,
    Read = 2,
    Insert = 3,
    Update = 4,
    UpdateAfter = 5,
    Delete = 6,
}

/// What a raw operation value means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParsedOperation {
    Change(Operation),
    /// Transaction `begin`/`commit` markers: not data, skipped.
    Marker,
}

impl Operation {
    pub const ALL: [Operation; 7] = [
        Self::UpdateBefore,
        Self::Change,
        Self::Read,
        Self::Insert,
        Self::Update,
        Self::UpdateAfter,
        Self::Delete,
    ];

    /// Map RPCN names (`read`, `update_before`…), SQL Server `__$operation` codes (1 delete,
    /// 2 insert, 3 update-before, 4 update-after) and Debezium letters (`c`, `u`, `d`, `r`).
    pub fn parse(raw: &str) -> Option<ParsedOperation> {
        use Operation::*;
        let op = match raw.trim().to_ascii_lowercase().as_str() {
            "read" | "r" | "snapshot" => Read,
            "insert" | "c" | "create" | "i" | "2" => Insert,
            "update" | "u" => Update,
            "update_before" | "3" => UpdateBefore,
            "update_after" | "4" => UpdateAfter,
            "delete" | "d" | "1" => Delete,
            "begin" | "commit" => return Some(ParsedOperation::Marker),
            _ => return None,
        };
        Some(ParsedOperation::Change(op))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::UpdateBefore => "update_before",
            Self::Change => "change",
            Self::Read => "read",
            Self::Insert => "insert",
            Self::Update => "update",
            Self::UpdateAfter => "update_after",
            Self::Delete => "delete",
        }
    }

    /// The operation of a stored code, if it is one (`None` for a code no version writes).
    pub fn from_code(raw: i16) -> Option<Self> {
        usize::try_from(raw)
            .ok()
            .and_then(|i| Self::ALL.get(i))
            .copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_map_to_one_vocabulary() {
        assert_eq!(
            Operation::parse("4"),
            Some(ParsedOperation::Change(Operation::UpdateAfter))
        );
        assert_eq!(Operation::parse("update_after"), Operation::parse("4"));
        assert_eq!(Operation::parse("1"), Operation::parse("delete"));
        assert_eq!(Operation::parse("COMMIT"), Some(ParsedOperation::Marker));
        assert_eq!(Operation::parse("merge"), None);
    }

    #[test]
    fn discriminants_round_trip() {
        for op in Operation::ALL {
            assert_eq!(Operation::from_code(op as i16), Some(op));
        }
    }
}
