//! The one place that writes SQL for the row diff.
//!
//! Nothing from the config reaches SQL except through [`quote_ident`]; values (schema and table
//! names in catalog queries, keys, hash windows) are always bound parameters. Type names spliced
//! into casts come from `format_type()` in the catalog, never from the config.
//!
//! Each compared column has, per side, a *normalized text* expression (what Rust reads and
//! compares) and a *hash* expression (what the database sums per bucket). They are built from
//! the same [`Kind`] so that two values the Rust comparison calls different also hash
//! differently: the hash uses the type's own equality (numeric `1.50 = 1.5`, jsonb by value,
//! timestamps by instant), which is never coarser than the Rust comparison of the text. The
//! reverse (equal in Rust, different hash) can only cost a bucket re-read, never a wrong result.
//! Expressions depend on `DateStyle = ISO` and `extra_float_digits = 1`, which
//! [`super::conn`] sets on every connection; time zones are handled explicitly with
//! `AT TIME ZONE 'UTC'` so the session `TimeZone` does not matter.

/// Quote an identifier the way Postgres' `quote_ident` does, always (never "only when needed").
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `"schema"."table"`.
pub fn qualified(schema: &str, table: &str) -> String {
    format!("{}.{}", quote_ident(schema), quote_ident(table))
}

/// How a column pair is normalized; decided once per pair by [`pair_kind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// int2/int4/int8 on both sides.
    Int,
    /// numeric on at least one side, integer or numeric on the other: exact value, scale ignored.
    Numeric,
    /// float4 on at least one side: both compared as float4 (the wider side is rounded).
    Float4,
    Float8,
    /// timestamp / timestamptz in any mix: the UTC instant, a naive `timestamp` taken as UTC.
    Timestamp,
    Date,
    /// json / jsonb in any mix: compared as jsonb (key order, whitespace, number scale ignored).
    Json,
    /// text / varchar / char / name / citext in any mix (char's trailing blanks ignored).
    Text,
    Bool,
    Uuid,
    /// Any other type, allowed only when both sides have exactly the same type.
    Same,
}

/// A column's type on one side, from `pg_type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlType {
    /// `pg_type.typname` (`int4`, `timestamptz`, `_text`…).
    pub typname: String,
    /// `format_type(oid, NULL)`: a cast target spelling without typmod.
    pub cast: String,
    /// Declared `NOT NULL` (primary-key columns are).
    pub not_null: bool,
}

fn family(typname: &str) -> &'static str {
    match typname {
        "int2" | "int4" | "int8" => "int",
        "numeric" => "numeric",
        "float4" => "float4",
        "float8" => "float8",
        "timestamp" | "timestamptz" => "timestamp",
        "date" => "date",
        "json" | "jsonb" => "json",
        "text" | "varchar" | "bpchar" | "name" | "citext" => "text",
        "bool" => "bool",
        "uuid" => "uuid",
        _ => "other",
    }
}

/// The compatibility table: `None` means the pair cannot be compared by meaning.
pub fn pair_kind(a: &SqlType, b: &SqlType) -> Option<Kind> {
    let kind = match (family(&a.typname), family(&b.typname)) {
        ("int", "int") => Kind::Int,
        ("int" | "numeric", "int" | "numeric") => Kind::Numeric,
        ("float4", "float4" | "float8") | ("float8", "float4") => Kind::Float4,
        ("float8", "float8") => Kind::Float8,
        ("timestamp", "timestamp") => Kind::Timestamp,
        ("date", "date") => Kind::Date,
        ("json", "json") => Kind::Json,
        ("text", "text") => Kind::Text,
        ("bool", "bool") => Kind::Bool,
        ("uuid", "uuid") => Kind::Uuid,
        ("other", "other") if a.typname == b.typname => Kind::Same,
        _ => return None,
    };
    Some(kind)
}

/// The timestamp as a UTC `timestamp` value: explicit conversion, independent of `TimeZone`.
fn utc(col: &str, t: &SqlType) -> String {
    if t.typname == "timestamptz" {
        format!("({col} AT TIME ZONE 'UTC')")
    } else {
        col.to_owned()
    }
}

/// Normalized text of `col` (already quoted) on a side of type `t`.
pub fn text_expr(col: &str, t: &SqlType, kind: Kind) -> String {
    match kind {
        Kind::Numeric => format!("trim_scale({col}::numeric)::text"),
        Kind::Float4 => format!("{col}::float4::text"),
        Kind::Timestamp => format!("{}::text", utc(col, t)),
        Kind::Json => format!("{col}::jsonb::text"),
        _ => format!("{col}::text"),
    }
}

/// 64-bit hash of the normalized value, `seed` distinguishing columns; NULL stays NULL.
pub fn hash_expr(col: &str, t: &SqlType, kind: Kind, seed: i64) -> String {
    match kind {
        Kind::Int => format!("hashint8extended({col}::int8, {seed})"),
        Kind::Numeric => format!("hash_numeric_extended({col}::numeric, {seed})"),
        Kind::Timestamp => format!("timestamp_hash_extended({}, {seed})", utc(col, t)),
        Kind::Json => format!("jsonb_hash_extended({col}::jsonb, {seed})"),
        Kind::Bool => format!("hashint4extended({col}::int4, {seed})"),
        Kind::Uuid => format!("uuid_hash_extended({col}, {seed})"),
        // Hash the normalized text in the "C" collation: byte equality, like the Rust side.
        _ => format!(
            "hashtextextended(({}) COLLATE \"C\", {seed})",
            text_expr(col, t, kind)
        ),
    }
}

/// NULL's stand-in in a combined hash: distinct per column so NULLs in different columns differ.
fn null_mark(seed: i64) -> i64 {
    (seed as u64)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .rotate_left(17) as i64
}

/// XOR of the per-column hashes of one row. XOR is safe *within* a row because every column has
/// its own seed; *across* rows we sum (see `docs/rowdiff.md`), so duplicate rows never cancel.
pub fn combined_hash(parts: &[(String, i64)]) -> String {
    let terms: Vec<String> = parts
        .iter()
        .map(|(expr, seed)| format!("coalesce({expr}, {})", null_mark(*seed)))
        .collect();
    format!("({})", terms.join(" # "))
}

/// Rebuild a side's key value from its normalized text (a text[] element named `param`).
pub fn key_from_text(param: &str, t: &SqlType, kind: Kind) -> String {
    if kind == Kind::Timestamp && t.typname == "timestamptz" {
        format!("({param}::timestamp AT TIME ZONE 'UTC')")
    } else {
        format!("{param}::{}", t.cast)
    }
}

/// Columns of a table with their types, in attribute order ($1 schema, $2 table).
pub const CATALOG_COLUMNS: &str =
    "SELECT a.attname::text, t.typname::text, format_type(a.atttypid, NULL), a.attnotnull \
     FROM pg_catalog.pg_attribute a \
     JOIN pg_catalog.pg_class c ON c.oid = a.attrelid \
     JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
     JOIN pg_catalog.pg_type t ON t.oid = a.atttypid \
     WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped \
     ORDER BY a.attnum";

/// Does the relation exist ($1 schema, $2 table); also returns the planner's row estimate.
pub const CATALOG_TABLE: &str =
    "SELECT greatest(c.reltuples, 0)::float8 FROM pg_catalog.pg_class c \
     JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
     WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p', 'v', 'm', 'f')";

/// Bucket of a row by key hash: `$1` is the mask (`2^k - 1`).
pub fn hash_bucket(key_hash: &str) -> String {
    format!("({key_hash} & $1::int8)")
}

/// Bucket of a row by the value of its single integer key: `$1` is the width, `$2` the smallest
/// key of both tables, so a bucket is the key range `[$2 + b·$1, $2 + (b+1)·$1)`.
pub fn range_bucket(key_col: &str) -> String {
    format!("(({key_col}::int8 - $2::int8) / $1::int8)")
}

/// Smallest and largest key (index-only in practice).
pub fn key_range(table: &str, key_col: &str) -> String {
    format!("SELECT min({key_col})::int8, max({key_col})::int8 FROM {table}")
}

/// Exact row count (only when the catalog has no estimate).
pub fn count_rows(table: &str) -> String {
    format!("SELECT count(*)::int8 FROM {table}")
}

/// Per-bucket `count(*)` and `sum(row hash)` in one scan. The sum is `numeric` (exact, no
/// overflow) and read as text; parameters as in [`hash_bucket`] / [`range_bucket`].
pub fn bucket_checksums(table: &str, bucket: &str, row_hash: &str) -> String {
    format!(
        "SELECT b, count(*)::int8, sum(h)::text FROM \
         (SELECT {bucket} AS b, {row_hash} AS h FROM {table}) s GROUP BY b"
    )
}

/// Normalized key texts and the row hash of the rows in the given hash buckets (`$1` mask, `$2`
/// bucket ids). `IN (SELECT unnest(...))` lets the planner hash the list instead of scanning it.
pub fn bucket_members(table: &str, key_texts: &[String], key_hash: &str, row_hash: &str) -> String {
    format!(
        "SELECT {}, {row_hash} FROM {table} WHERE ({key_hash} & $1::int8) IN (SELECT unnest($2::int8[]))",
        key_texts.join(", ")
    )
}

/// Same for range buckets: key ranges `[$1[i], $2[i])` joined to the table through the key's
/// index. The table is read in a subquery so our column expressions cannot collide with the
/// range list's column names; its key column comes last and is ignored by the reader.
pub fn range_members(table: &str, key_texts: &[String], key_col: &str, row_hash: &str) -> String {
    format!(
        "SELECT s.* FROM (SELECT {}, {row_hash} AS h, {key_col} AS k FROM {table}) s \
         JOIN unnest($1::int8[], $2::int8[]) AS r(lo, hi) ON s.k >= r.lo AND s.k < r.hi",
        key_texts.join(", ")
    )
}

/// `(k1, k2) IN (SELECT <cast>(u.c0), ... FROM unnest($n::text[], ...) u(c0, ...))`: looks
/// rows up by key through the primary-key index. `first_param` is the first array's number.
pub fn keys_in(key_cols: &[String], key_casts: &[String], first_param: usize) -> String {
    let arrays: Vec<String> = (0..key_cols.len())
        .map(|i| format!("${}::text[]", first_param + i))
        .collect();
    let names: Vec<String> = (0..key_cols.len()).map(|i| format!("c{i}")).collect();
    format!(
        "({}) IN (SELECT {} FROM unnest({}) AS u({}))",
        key_cols.join(", "),
        key_casts.join(", "),
        arrays.join(", "),
        names.join(", ")
    )
}

/// Full normalized rows for a key list (arrays from `$1`).
pub fn rows_by_keys(table: &str, texts: &[String], keys_in: &str) -> String {
    format!("SELECT {} FROM {table} WHERE {keys_in}", texts.join(", "))
}

/// Full normalized rows whose key hash falls in `[$1, $2)` of the 32-bit hash space, plus the
/// listed keys (arrays from `$3`), with the 32-bit key hash last: one query per side per round.
pub fn sample_window(table: &str, texts: &[String], key_hash: &str, keys_in: &str) -> String {
    format!(
        "SELECT {}, ({key_hash} & 4294967295) FROM {table} \
         WHERE (({key_hash} & 4294967295) >= $1 AND ({key_hash} & 4294967295) < $2) OR {keys_in}",
        texts.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ty(name: &str) -> SqlType {
        SqlType {
            typname: name.into(),
            cast: name.into(),
            not_null: true,
        }
    }

    #[test]
    fn identifiers_are_always_quoted_and_escaped() {
        assert_eq!(quote_ident("id"), "\"id\"");
        assert_eq!(
            quote_ident("a\"; drop table x; --"),
            "\"a\"\"; drop table x; --\""
        );
        assert_eq!(
            qualified("bento_shadow", "Orders"),
            "\"bento_shadow\".\"Orders\""
        );
    }

    #[test]
    fn compatibility_table() {
        assert_eq!(pair_kind(&ty("int4"), &ty("int8")), Some(Kind::Int));
        assert_eq!(pair_kind(&ty("numeric"), &ty("int8")), Some(Kind::Numeric));
        assert_eq!(
            pair_kind(&ty("timestamp"), &ty("timestamptz")),
            Some(Kind::Timestamp)
        );
        assert_eq!(pair_kind(&ty("json"), &ty("jsonb")), Some(Kind::Json));
        assert_eq!(pair_kind(&ty("varchar"), &ty("bpchar")), Some(Kind::Text));
        assert_eq!(pair_kind(&ty("float8"), &ty("float4")), Some(Kind::Float4));
        assert_eq!(
            pair_kind(&ty("interval"), &ty("interval")),
            Some(Kind::Same)
        );
        assert_eq!(pair_kind(&ty("numeric"), &ty("float8")), None);
        assert_eq!(pair_kind(&ty("text"), &ty("int4")), None);
        assert_eq!(pair_kind(&ty("interval"), &ty("time")), None);
    }

    #[test]
    fn timestamptz_is_converted_explicitly_to_utc() {
        assert_eq!(
            text_expr("\"t\"", &ty("timestamptz"), Kind::Timestamp),
            "(\"t\" AT TIME ZONE 'UTC')::text"
        );
        assert_eq!(
            text_expr("\"t\"", &ty("timestamp"), Kind::Timestamp),
            "\"t\"::text"
        );
        assert_eq!(
            key_from_text("u.c0", &ty("timestamptz"), Kind::Timestamp),
            "(u.c0::timestamp AT TIME ZONE 'UTC')"
        );
    }

    #[test]
    fn null_marks_differ_per_column() {
        assert_ne!(null_mark(1), null_mark(2));
        let h = combined_hash(&[("a".into(), 1), ("b".into(), 2)]);
        assert!(
            h.starts_with("(coalesce(a, ") && h.contains(" # coalesce(b, "),
            "{h}"
        );
    }
}
