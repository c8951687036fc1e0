//! API tokens: read from the environment only, kept only as BLAKE3 hashes, compared in constant
//! time, each bound to an identity (the "who" of a sign-off comes from the token, never the body).
//!
//! `PARITYGATE_APPROVER_TOKENS` and `PARITYGATE_READER_TOKENS`: comma-separated `identity=token`.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Reader,
    Approver,
}

#[derive(Clone)]
struct Entry {
    identity: String,
    role: Role,
    hash: blake3::Hash,
}

/// The configured tokens (hashes only).
#[derive(Clone, Default)]
pub struct Tokens {
    entries: Vec<Entry>,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Identities are fine to show; hashes are not interesting and tokens are never kept.
        let ids: Vec<_> = self.entries.iter().map(|e| (&e.identity, e.role)).collect();
        f.debug_struct("Tokens").field("identities", &ids).finish()
    }
}

impl Tokens {
    /// Parse one variable's value; errors name the variable and the entry's position, never the token.
    pub fn add(&mut self, variable: &str, value: &str, role: Role) -> Result<(), String> {
        for (i, entry) in value
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .enumerate()
        {
            let Some((identity, token)) = entry.split_once('=') else {
                return Err(format!(
                    "{variable}: entry {} is not `identity=token`",
                    i + 1
                ));
            };
            let (identity, token) = (identity.trim(), token.trim());
            if identity.is_empty() || token.len() < 16 {
                return Err(format!(
                    "{variable}: entry {} needs an identity and a token of at least 16 characters",
                    i + 1
                ));
            }
            if self.entries.iter().any(|e| e.identity == identity) {
                return Err(format!("{variable}: identity `{identity}` appears twice"));
            }
            self.entries.push(Entry {
                identity: identity.to_owned(),
                role,
                hash: blake3::hash(token.as_bytes()),
            });
        }
        Ok(())
    }

    /// Who presents this token, and with which role. Every entry is compared (constant time each,
    /// `blake3::Hash` equality is constant-time) so timing does not reveal which one matched.
    pub fn authenticate(&self, presented: &str) -> Option<(String, Role)> {
        let hash = blake3::hash(presented.as_bytes());
        let mut found = None;
        for e in &self.entries {
            if e.hash == hash {
                found = Some((e.identity.clone(), e.role));
            }
        }
        found
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_bind_identities_and_roles() {
        let mut t = Tokens::default();
        t.add(
            "PARITYGATE_APPROVER_TOKENS",
            "alice=aaaaaaaaaaaaaaaa1, bob=bbbbbbbbbbbbbbbb2",
            Role::Approver,
        )
        .unwrap();
        t.add(
            "PARITYGATE_READER_TOKENS",
            "ci=cccccccccccccccc3",
            Role::Reader,
        )
        .unwrap();
        assert_eq!(
            t.authenticate("aaaaaaaaaaaaaaaa1"),
            Some(("alice".into(), Role::Approver))
        );
        assert_eq!(
            t.authenticate("cccccccccccccccc3"),
            Some(("ci".into(), Role::Reader))
        );
        assert_eq!(t.authenticate("aaaaaaaaaaaaaaaa"), None);
        assert!(!format!("{t:?}").contains("aaaa"));
    }

    #[test]
    fn bad_entries_name_the_variable_not_the_token() {
        let mut t = Tokens::default();
        let e = t
            .add("PARITYGATE_APPROVER_TOKENS", "alice=short", Role::Approver)
            .unwrap_err();
        assert!(
            e.starts_with("PARITYGATE_APPROVER_TOKENS: entry 1") && !e.contains("short"),
            "{e}"
        );
        assert!(t
            .add("X", "nobody", Role::Reader)
            .unwrap_err()
            .contains("not `identity=token`"));
    }
}
