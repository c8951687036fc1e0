//! A borrowed JSON tree for the canonical form: strings and number texts point into the record's
//! bytes unless an escape forced a copy, and object members are kept sorted by key.
//!
//! Why not `serde_json::Value`: extraction runs once per consumed record, and building a `Value`
//! allocates every string, every key and (with `arbitrary_precision`) every number, then frees them
//! all again: that was over a third of extraction's CPU. [`parse`] is a single pass that accepts a
//! *subset* of what serde_json accepts and returns `None` for anything unusual (duplicate keys,
//! unpaired surrogate escapes, deep nesting); [`parse_payload`] then falls back to serde_json, so the
//! accepted documents and their trees are serde_json's in every case. A property test holds the two
//! parsers to that (`tree_tests.rs`).

use super::pointer::{array_child, array_child_mut, remove_array_child, JsonTree};
pub use parser::parse;
use serde_json::Value;
use std::borrow::Cow;

mod parser;

/// One JSON value. Numbers keep their text (exact decimal value, never through `f64`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node<'a> {
    Null,
    Bool(bool),
    Number(Cow<'a, str>),
    String(Cow<'a, str>),
    Array(Vec<Node<'a>>),
    /// Members sorted by the bytes of their keys, keys unique.
    Object(Vec<(Cow<'a, str>, Node<'a>)>),
}

/// Parse a payload as serde_json would (same accepted documents, same tree), the fast way first.
pub fn parse_payload(bytes: &[u8]) -> Option<Node<'_>> {
    parse(bytes).or_else(|| {
        serde_json::from_slice::<Value>(bytes)
            .ok()
            .map(|v| Node::from_value(&v).into_owned())
    })
}

impl<'a> Node<'a> {
    /// A view of a `serde_json::Value` (numbers by their text).
    pub fn from_value(value: &'a Value) -> Self {
        match value {
            Value::Null => Node::Null,
            Value::Bool(b) => Node::Bool(*b),
            Value::Number(n) => Node::Number(Cow::Owned(n.to_string())),
            Value::String(s) => Node::String(Cow::Borrowed(s)),
            Value::Array(items) => Node::Array(items.iter().map(Node::from_value).collect()),
            Value::Object(map) => {
                let mut members: Vec<_> = map
                    .iter()
                    .map(|(k, v)| (Cow::Borrowed(k.as_str()), Node::from_value(v)))
                    .collect();
                // serde_json's map is sorted unless a dependency turns on `preserve_order`.
                if !members.is_sorted_by(|a, b| a.0 < b.0) {
                    members.sort_unstable_by(|a, b| a.0.cmp(&b.0));
                }
                Node::Object(members)
            }
        }
    }

    /// The same tree, owning all its text.
    pub fn into_owned(self) -> Node<'static> {
        let own = |c: Cow<'_, str>| Cow::Owned(c.into_owned());
        match self {
            Node::Null => Node::Null,
            Node::Bool(b) => Node::Bool(b),
            Node::Number(n) => Node::Number(own(n)),
            Node::String(s) => Node::String(own(s)),
            Node::Array(items) => Node::Array(items.into_iter().map(Node::into_owned).collect()),
            Node::Object(members) => Node::Object(
                members
                    .into_iter()
                    .map(|(k, v)| (own(k), v.into_owned()))
                    .collect(),
            ),
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Node::Null)
    }

    /// An object's member by key (binary search over the sorted members).
    pub fn member(&self, key: &str) -> Option<&Node<'a>> {
        match self {
            Node::Object(members) => find(members, key).ok().map(|i| &members[i].1),
            _ => None,
        }
    }
}

/// Where `key` is (or would go) among an object's sorted members.
fn find(members: &[(Cow<'_, str>, Node<'_>)], key: &str) -> Result<usize, usize> {
    members.binary_search_by(|(k, _)| k.as_ref().cmp(key))
}

impl JsonTree for Node<'_> {
    fn child(&self, segment: &str) -> Option<&Self> {
        match self {
            Node::Object(_) => self.member(segment),
            Node::Array(items) => array_child(items, segment),
            _ => None,
        }
    }

    fn child_mut(&mut self, segment: &str) -> Option<&mut Self> {
        match self {
            Node::Object(members) => find(members, segment).ok().map(|i| &mut members[i].1),
            Node::Array(items) => array_child_mut(items, segment),
            _ => None,
        }
    }

    fn each_child_mut(&mut self, f: &mut dyn FnMut(&mut Self)) {
        match self {
            Node::Object(members) => members.iter_mut().for_each(|(_, v)| f(v)),
            Node::Array(items) => items.iter_mut().for_each(f),
            _ => {}
        }
    }

    fn remove_child(&mut self, segment: &str) {
        match self {
            Node::Object(members) => {
                if let Ok(i) = find(members, segment) {
                    members.remove(i);
                }
            }
            Node::Array(items) => remove_array_child(items, segment),
            _ => {}
        }
    }

    fn clear_children(&mut self) {
        match self {
            Node::Object(members) => members.clear(),
            Node::Array(items) => items.clear(),
            _ => {}
        }
    }
}

#[cfg(test)]
#[path = "tree_tests.rs"]
mod tests;
