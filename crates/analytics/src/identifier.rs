//! Client-chosen strings in events (ANALYTICS-EVENTS.md section 4: ids and identifiers pass,
//! capped at 64 characters). A client can put anything in a field it names (a model, an
//! effort, a thread source, an expected turn id): only identifier-shaped values leave, so text
//! (a prompt, a message, a path, terminal or bidi control characters) never does.

/// At most this many characters of an identifier leave.
pub const MAX_IDENTIFIER_CHARS: usize = 64;

/// What a field that cannot be null carries in place of a value that is not an identifier.
pub const NOT_AN_IDENTIFIER: &str = "other";

/// `s` capped at 64 characters when it is an identifier: ASCII letters, digits and `._-:@+/`
/// (model slugs such as `org/model:tag`), not starting with `/` (a path); else `None`.
pub fn identifier(s: &str) -> Option<String> {
    let shaped = !s.is_empty()
        && !s.starts_with('/')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-:@+/".contains(&b));
    shaped.then(|| s.chars().take(MAX_IDENTIFIER_CHARS).collect())
}

/// [`identifier`], or [`NOT_AN_IDENTIFIER`] for a field that is never null.
pub fn identifier_or_other(s: &str) -> String {
    identifier(s).unwrap_or_else(|| NOT_AN_IDENTIFIER.to_owned())
}

/// A client's name (`clientInfo.name`, also the `originator` header, so printable ASCII, spaces
/// included) capped at 64 characters; [`NOT_AN_IDENTIFIER`] when it is anything else.
pub fn client_name(s: &str) -> String {
    let printable = !s.is_empty() && s.bytes().all(|b| (0x20..0x7f).contains(&b));
    if printable {
        s.chars().take(MAX_IDENTIFIER_CHARS).collect()
    } else {
        NOT_AN_IDENTIFIER.to_owned()
    }
}

#[cfg(test)]
#[path = "identifier_tests.rs"]
mod tests;
