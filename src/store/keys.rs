//! How an index key is encoded: kind, attribute, value.

/// Which posting list an index key belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexKind {
    /// attribute = normalised value
    Equality,
    /// attribute present
    Presence,
    /// attribute value contains a trigram
    Substring,
    /// attribute ~= folded value (`schema::approx`)
    Approx,
}

/// Build the key of an index posting: kind, attribute, value.
pub fn index_key(kind: IndexKind, attr: &str, value: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(attr.len() + value.len() + 2);
    k.push(match kind {
        IndexKind::Equality => b'e',
        IndexKind::Presence => b'p',
        IndexKind::Substring => b's',
        IndexKind::Approx => b'a',
    });
    k.extend_from_slice(attr.as_bytes());
    k.push(0);
    k.extend_from_slice(value);
    k
}
