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
    pub fn remove_from<T: JsonTree>(&self, value: &mut T) {
        remove(&self.segments, value);
    }

    /// Apply `f` to every value the pattern matches.
    pub fn for_each_mut<T: JsonTree>(&self, value: &mut T, f: &mut dyn FnMut(&mut T)) {
        visit(&self.segments, value, f);
    }

    /// The value at this pointer, when it has no wildcard.
    pub fn get<'v, T: JsonTree>(&self, value: &'v T) -> Option<&'v T> {
        let mut current = value;
        for segment in &self.segments {
            current = match segment {
                Segment::Name(name) => current.child(name)?,
                Segment::Any => return None,
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

/// What pointer patterns walk: `serde_json::Value` (the generator, tests) and the extraction's
/// borrowed `tree::Node`. A segment names an object member or, on an array, an index.
pub trait JsonTree: Sized {
    fn child(&self, segment: &str) -> Option<&Self>;
    fn child_mut(&mut self, segment: &str) -> Option<&mut Self>;
    fn each_child_mut(&mut self, f: &mut dyn FnMut(&mut Self));
    fn remove_child(&mut self, segment: &str);
    fn clear_children(&mut self);
}

impl JsonTree for Value {
    fn child(&self, segment: &str) -> Option<&Self> {
        match self {
            Value::Object(map) => map.get(segment),
            Value::Array(items) => array_child(items, segment),
            _ => None,
        }
    }

    fn child_mut(&mut self, segment: &str) -> Option<&mut Self> {
        match self {
            Value::Object(map) => map.get_mut(segment),
            Value::Array(items) => array_child_mut(items, segment),
            _ => None,
        }
    }

    fn each_child_mut(&mut self, f: &mut dyn FnMut(&mut Self)) {
        match self {
            Value::Object(map) => map.values_mut().for_each(f),
            Value::Array(items) => items.iter_mut().for_each(f),
            _ => {}
        }
    }

    fn remove_child(&mut self, segment: &str) {
        match self {
            Value::Object(map) => {
                map.remove(segment);
            }
            Value::Array(items) => remove_array_child(items, segment),
            _ => {}
        }
    }

    fn clear_children(&mut self) {
        match self {
            Value::Object(map) => map.clear(),
            Value::Array(items) => items.clear(),
            _ => {}
        }
    }
}

/// A pointer segment as an array index (no leading zeros, as RFC 6901 says).
fn array_index(segment: &str) -> Option<usize> {
    if segment.len() > 1 && segment.starts_with('0') {
        return None;
    }
    segment.parse().ok()
}

/// The array item a segment names: one reading of RFC 6901 indexes for every [`JsonTree`].
pub fn array_child<'v, T>(items: &'v [T], segment: &str) -> Option<&'v T> {
    items.get(array_index(segment)?)
}

pub fn array_child_mut<'v, T>(items: &'v mut [T], segment: &str) -> Option<&'v mut T> {
    items.get_mut(array_index(segment)?)
}

pub fn remove_array_child<T>(items: &mut Vec<T>, segment: &str) {
    if let Some(i) = array_index(segment).filter(|&i| i < items.len()) {
        items.remove(i);
    }
}

fn remove<T: JsonTree>(segments: &[Segment], value: &mut T) {
    let Some((first, rest)) = segments.split_first() else {
        return;
    };
    if rest.is_empty() {
        match first {
            Segment::Any => value.clear_children(),
            Segment::Name(name) => value.remove_child(name),
        }
        return;
    }
    visit_children(first, value, &mut |child| remove(rest, child));
}

fn visit<T: JsonTree>(segments: &[Segment], value: &mut T, f: &mut dyn FnMut(&mut T)) {
    match segments.split_first() {
        None => f(value),
        Some((first, rest)) => visit_children(first, value, &mut |child| visit(rest, child, f)),
    }
}

fn visit_children<T: JsonTree>(segment: &Segment, value: &mut T, f: &mut dyn FnMut(&mut T)) {
    match segment {
        Segment::Any => value.each_child_mut(f),
        Segment::Name(name) => {
            if let Some(child) = value.child_mut(name) {
                f(child);
            }
        }
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
