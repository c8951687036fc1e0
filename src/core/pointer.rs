//! JSON pointer patterns (RFC 6901 plus `*` for "any one segment") used by normalization rules.

use serde_json::Value;
use std::fmt;

/// A parsed pointer pattern such as `/meta/*/processed_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PointerPattern {
    text: String,
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Any,
    Name(String),
}

/// Why a pointer could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PointerError {
    #[error("a JSON pointer must start with `/` (got `{0}`)")]
    MissingSlash(String),
    #[error("`{0}` has an invalid escape: `~` must be followed by 0 or 1")]
    BadEscape(String),
}

impl PointerPattern {
    pub fn parse(text: &str) -> Result<Self, PointerError> {
        let body = text
            .strip_prefix('/')
            .ok_or_else(|| PointerError::MissingSlash(text.to_owned()))?;
        let segments = body
            .split('/')
            .map(|raw| {
                if raw == "*" {
                    return Ok(Segment::Any);
                }
                unescape(raw)
                    .map(Segment::Name)
                    .ok_or_else(|| PointerError::BadEscape(text.to_owned()))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            text: text.to_owned(),
            segments,
        })
    }

    /// Remove every value the pattern matches.
    pub fn remove_from(&self, value: &mut Value) {
        remove(&self.segments, value);
    }

    /// Apply `f` to every value the pattern matches.
    pub fn for_each_mut(&self, value: &mut Value, f: &mut dyn FnMut(&mut Value)) {
        visit(&self.segments, value, f);
    }

    /// The value at this pointer, when it has no wildcard.
    pub fn get<'v>(&self, value: &'v Value) -> Option<&'v Value> {
        let mut current = value;
        for segment in &self.segments {
            current = match (segment, current) {
                (Segment::Name(name), Value::Object(map)) => map.get(name)?,
                (Segment::Name(name), Value::Array(items)) => items.get(index(name)?)?,
                _ => return None,
            };
        }
        Some(current)
    }

    pub fn has_wildcard(&self) -> bool {
        self.segments.contains(&Segment::Any)
    }
}

impl fmt::Display for PointerPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn unescape(raw: &str) -> Option<String> {
    if !raw.contains('~') {
        return Some(raw.to_owned());
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        match c {
            '~' => match chars.next() {
                Some('0') => out.push('~'),
                Some('1') => out.push('/'),
                _ => return None,
            },
            other => out.push(other),
        }
    }
    Some(out)
}

/// Escape one object key as a pointer segment.
pub fn escape_segment(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn index(segment: &str) -> Option<usize> {
    if segment.len() > 1 && segment.starts_with('0') {
        return None;
    }
    segment.parse().ok()
}

fn remove(segments: &[Segment], value: &mut Value) {
    let Some((first, rest)) = segments.split_first() else {
        return;
    };
    if rest.is_empty() {
        match (first, value) {
            (Segment::Any, Value::Object(map)) => map.clear(),
            (Segment::Any, Value::Array(items)) => items.clear(),
            (Segment::Name(name), Value::Object(map)) => {
                map.remove(name);
            }
            (Segment::Name(name), Value::Array(items)) => {
                if let Some(i) = index(name).filter(|&i| i < items.len()) {
                    items.remove(i);
                }
            }
            _ => {}
        }
        return;
    }
    visit_children(first, value, &mut |child| remove(rest, child));
}

fn visit(segments: &[Segment], value: &mut Value, f: &mut dyn FnMut(&mut Value)) {
    match segments.split_first() {
        None => f(value),
        Some((first, rest)) => visit_children(first, value, &mut |child| visit(rest, child, f)),
    }
}

fn visit_children(segment: &Segment, value: &mut Value, f: &mut dyn FnMut(&mut Value)) {
    match (segment, value) {
        (Segment::Any, Value::Object(map)) => map.values_mut().for_each(f),
        (Segment::Any, Value::Array(items)) => items.iter_mut().for_each(f),
        (Segment::Name(name), Value::Object(map)) => {
            if let Some(child) = map.get_mut(name) {
                f(child);
            }
        }
        (Segment::Name(name), Value::Array(items)) => {
            if let Some(child) = index(name).and_then(|i| items.get_mut(i)) {
                f(child);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn removes_plain_and_wildcard_paths() {
        let mut v = json!({"__sync_timestamp": 1, "id": 2,
            "meta": {"a": {"processed_at": 3, "k": 4}, "b": {"processed_at": 5}}});
        PointerPattern::parse("/__sync_timestamp")
            .unwrap()
            .remove_from(&mut v);
        PointerPattern::parse("/meta/*/processed_at")
            .unwrap()
            .remove_from(&mut v);
        assert_eq!(v, json!({"id": 2, "meta": {"a": {"k": 4}, "b": {}}}));
    }

    #[test]
    fn escapes_and_errors() {
        let p = PointerPattern::parse("/a~1b/c~0d").unwrap();
        assert_eq!(p.get(&json!({"a/b": {"c~d": 7}})), Some(&json!(7)));
        assert_eq!(
            PointerPattern::parse("a"),
            Err(PointerError::MissingSlash("a".into()))
        );
        assert_eq!(
            PointerPattern::parse("/a~2"),
            Err(PointerError::BadEscape("/a~2".into()))
        );
        assert_eq!(escape_segment("a/b~c"), "a~1b~0c");
    }

    #[test]
    fn get_reads_arrays_and_misses_cleanly() {
        let v = json!({"items": [{"id": 1}, {"id": 2}]});
        assert_eq!(
            PointerPattern::parse("/items/1/id").unwrap().get(&v),
            Some(&json!(2))
        );
        assert_eq!(PointerPattern::parse("/items/01/id").unwrap().get(&v), None);
        assert_eq!(PointerPattern::parse("/nope").unwrap().get(&v), None);
    }
}
