//! The single-pass parser behind [`super::parse`]: one walk over the bytes that borrows every
//! string without an escape and every number text, and gives up (`None`) on what it leaves to
//! serde_json (duplicate keys, unpaired surrogates, deep nesting), see `super`'s module doc.

use super::Node;
use std::borrow::Cow;

/// Nesting beyond this goes to serde_json (whose own limit is 128), so both agree on what is JSON.
const MAX_DEPTH: usize = 100;

/// The single-pass parser alone: `None` for invalid JSON *and* for the valid documents it leaves to
/// serde_json (see the module doc).
pub fn parse(bytes: &[u8]) -> Option<Node<'_>> {
    let text = std::str::from_utf8(bytes).ok()?;
    let mut parser = Parser {
        text,
        bytes,
        at: 0,
        depth: 0,
    };
    let node = parser.value()?;
    parser.skip_whitespace();
    (parser.at == bytes.len()).then_some(node)
}

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
    depth: usize,
}

impl<'a> Parser<'a> {
    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.at) {
            self.at += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        self.skip_whitespace();
        (self.bytes.get(self.at) == Some(&byte)).then(|| self.at += 1)
    }

    fn literal(&mut self, word: &[u8], node: Node<'a>) -> Option<Node<'a>> {
        let end = self.at + word.len();
        (self.bytes.get(self.at..end) == Some(word)).then(|| {
            self.at = end;
            node
        })
    }

    fn value(&mut self) -> Option<Node<'a>> {
        self.skip_whitespace();
        match *self.bytes.get(self.at)? {
            b'{' => self.nested(Self::object),
            b'[' => self.nested(Self::array),
            b'"' => self.string().map(Node::String),
            b't' => self.literal(b"true", Node::Bool(true)),
            b'f' => self.literal(b"false", Node::Bool(false)),
            b'n' => self.literal(b"null", Node::Null),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    fn nested(&mut self, inner: fn(&mut Self) -> Option<Node<'a>>) -> Option<Node<'a>> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return None;
        }
        self.at += 1;
        let node = inner(self);
        self.depth -= 1;
        node
    }

    fn object(&mut self) -> Option<Node<'a>> {
        let mut members: Vec<(Cow<'a, str>, Node<'a>)> = Vec::new();
        if self.eat(b'}').is_none() {
            // Payload objects have a handful to a dozen members: skip the first regrowths.
            members.reserve(8);
            loop {
                self.eat(b'"')?;
                self.at -= 1;
                let key = self.string()?;
                self.eat(b':')?;
                let value = self.value()?;
                members.push((key, value));
                if self.eat(b',').is_none() {
                    self.eat(b'}')?;
                    break;
                }
            }
        }
        if !members.is_sorted_by(|a, b| a.0 < b.0) {
            members.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            // serde_json keeps the last of duplicate keys; rare enough to leave to it.
            if members.windows(2).any(|w| w[0].0 == w[1].0) {
                return None;
            }
        }
        Some(Node::Object(members))
    }

    fn array(&mut self) -> Option<Node<'a>> {
        let mut items = Vec::new();
        if self.eat(b']').is_none() {
            loop {
                items.push(self.value()?);
                if self.eat(b',').is_none() {
                    self.eat(b']')?;
                    break;
                }
            }
        }
        Some(Node::Array(items))
    }

    /// A string starting at the opening quote (`self.at`).
    fn string(&mut self) -> Option<Cow<'a, str>> {
        let start = self.at + 1;
        let rest = self.bytes.get(start..)?;
        let end = start + memchr::memchr2(b'"', b'\\', rest)?;
        let plain = &self.bytes[start..end];
        if plain.iter().any(|&b| b < 0x20) {
            return None;
        }
        if self.bytes[end] == b'"' {
            self.at = end + 1;
            // Both ends are ASCII quotes inside valid UTF-8: char boundaries.
            return self.text.get(start..end).map(Cow::Borrowed);
        }
        self.at = end;
        let mut owned = self.text.get(start..end)?.to_owned();
        self.escaped_rest(&mut owned)?;
        Some(Cow::Owned(owned))
    }

    /// The rest of a string from its first backslash, decoded into `out`.
    fn escaped_rest(&mut self, out: &mut String) -> Option<()> {
        loop {
            let byte = *self.bytes.get(self.at)?;
            match byte {
                b'"' => {
                    self.at += 1;
                    return Some(());
                }
                b'\\' => {
                    let escape = *self.bytes.get(self.at + 1)?;
                    self.at += 2;
                    let decoded = match escape {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => self.unicode_escape()?,
                        _ => return None,
                    };
                    out.push(decoded);
                }
                0..0x20 => return None,
                _ => {
                    let rest = &self.bytes[self.at..];
                    let run = memchr::memchr2(b'"', b'\\', rest).unwrap_or(rest.len());
                    let chunk = self.text.get(self.at..self.at + run)?;
                    if chunk.bytes().any(|b| b < 0x20) {
                        return None;
                    }
                    out.push_str(chunk);
                    self.at += run;
                }
            }
        }
    }

    /// `\uXXXX` after its `\u`; a surrogate pair must follow at once, anything else goes to serde_json.
    fn unicode_escape(&mut self) -> Option<char> {
        let high = self.hex4()?;
        if !(0xD800..0xE000).contains(&high) {
            return char::from_u32(high);
        }
        if high >= 0xDC00 || self.bytes.get(self.at..self.at + 2) != Some(b"\\u") {
            return None;
        }
        self.at += 2;
        let low = self.hex4()?;
        if !(0xDC00..0xE000).contains(&low) {
            return None;
        }
        char::from_u32(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = self.text.get(self.at..self.at + 4)?;
        if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        self.at += 4;
        u32::from_str_radix(digits, 16).ok()
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`, kept as written but for the exponent's spelling.
    fn number(&mut self) -> Option<Node<'a>> {
        let start = self.at;
        if self.bytes.get(self.at) == Some(&b'-') {
            self.at += 1;
        }
        match self.bytes.get(self.at)? {
            b'0' => self.at += 1,
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.bytes.get(self.at) == Some(&b'.') {
            self.at += 1;
            self.some_digits()?;
        }
        let mantissa_end = self.at;
        let mut exponent_as_written = true;
        if let Some(&e) = self.bytes.get(self.at) {
            if e == b'e' || e == b'E' {
                self.at += 1;
                match self.bytes.get(self.at) {
                    Some(b'+' | b'-') => self.at += 1,
                    _ => exponent_as_written = false,
                }
                exponent_as_written &= e == b'e';
                self.some_digits()?;
            }
        }
        let text = self.text.get(start..self.at)?;
        if exponent_as_written {
            return Some(Node::Number(Cow::Borrowed(text)));
        }
        // serde_json spells an exponent `e` with its sign (`1E5` is `1e+5`); so do we.
        let exponent = &text[mantissa_end - start + 1..];
        let sign = if exponent.starts_with(['+', '-']) {
            ""
        } else {
            "+"
        };
        let mantissa = &text[..mantissa_end - start];
        Some(Node::Number(Cow::Owned(format!(
            "{mantissa}e{sign}{exponent}"
        ))))
    }

    fn digits(&mut self) {
        while self.bytes.get(self.at).is_some_and(u8::is_ascii_digit) {
            self.at += 1;
        }
    }

    fn some_digits(&mut self) -> Option<()> {
        let before = self.at;
        self.digits();
        (self.at > before).then_some(())
    }
}
