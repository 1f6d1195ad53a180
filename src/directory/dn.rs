//! Distinguished names, RFC 4514: parsing, escaping and printing.
//!
//! This module knows only the string representation. Normalisation needs the
//! schema (each value is normalised by its attribute's equality rule), so it
//! lives in `schema::Schema::normalize_dn`; the result is a plain `String`
//! whose ancestry can be tested with [`is_under`].

use std::fmt;
use std::sync::{Arc, OnceLock};

use super::error::{DirectoryError, Result};

/// One attribute-value assertion of an RDN, as the client wrote it (value unescaped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ava {
    pub attr: String,
    pub value: String,
}

/// A relative distinguished name: one or more AVAs joined by `+` (RFC 4514 §2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rdn {
    pub avas: Vec<Ava>,
}

/// A distinguished name; `rdns[0]` is the entry's own RDN, the last one is the top.
///
/// Shared, not copied, when cloned: a write passes its entry's DN through
/// the checks, the group commit, the changelog and the answer.
#[derive(Debug, Clone, Default)]
pub struct Dn(Arc<DnParts>);

#[derive(Debug, Default)]
struct DnParts {
    /// Parsed on first use when the DN came from the store.
    rdns: OnceLock<Vec<Rdn>>,
    /// The string form, kept when the DN was read back from the store (where
    /// it was written by [`fmt::Display`]): answering a search copies it
    /// instead of parsing it and printing every RDN again.
    text: Option<Box<str>>,
}

impl PartialEq for Dn {
    fn eq(&self, other: &Dn) -> bool {
        match (&self.0.text, &other.0.text) {
            // Both canonical: the printed form is one-to-one with the RDNs.
            (Some(a), Some(b)) => a == b,
            _ => self.rdns() == other.rdns(),
        }
    }
}

impl Eq for Dn {}

impl Dn {
    /// The root DSE's empty DN.
    pub fn root() -> Dn {
        Dn::from_rdns(Vec::new())
    }

    pub fn from_rdns(rdns: Vec<Rdn>) -> Dn {
        Dn(Arc::new(DnParts { rdns: OnceLock::from(rdns), text: None }))
    }

    /// The RDNs, the entry's own first.
    pub fn rdns(&self) -> &[Rdn] {
        self.0.rdns.get_or_init(|| {
            let text = self.0.text.as_deref().unwrap_or_default();
            Parser::new(text).rdns().unwrap_or_else(|e| {
                // Only a damaged store gets here (`convergences check` reports it).
                tracing::error!(dn = text, "a stored DN does not parse: {e}");
                Vec::new()
            })
        })
    }

    /// A DN as the store wrote it (its own string form, see [`fmt::Display`]),
    /// kept as text until its RDNs are needed.
    pub fn from_stored(s: &str) -> Dn {
        Dn(Arc::new(DnParts { rdns: OnceLock::new(), text: Some(s.into()) }))
    }

    /// The RFC 4514 string form; no printing when the DN came from the store.
    pub fn text(&self) -> std::borrow::Cow<'_, str> {
        match &self.0.text {
            Some(t) => std::borrow::Cow::Borrowed(t),
            None => std::borrow::Cow::Owned(self.to_string()),
        }
    }

    pub fn is_root(&self) -> bool {
        self.rdns().is_empty()
    }

    /// Parse the RFC 4514 string form. Spaces around `,`, `+` and `=` are
    /// tolerated, as in RFC 4514 §4 and common servers; `;` is accepted as an
    /// RDN separator (RFC 4514 §4, "implementations MAY recognise").
    pub fn parse(s: &str) -> Result<Dn> {
        Parser::new(s).rdns().map(Dn::from_rdns)
    }

    /// The parent DN; the root's parent is the root.
    pub fn parent(&self) -> Dn {
        Dn::from_rdns(self.rdns().iter().skip(1).cloned().collect())
    }

    pub fn rdn(&self) -> Option<&Rdn> {
        self.rdns().first()
    }

    /// `rdn,self`.
    pub fn child(&self, rdn: Rdn) -> Dn {
        let mut rdns = Vec::with_capacity(self.rdns().len() + 1);
        rdns.push(rdn);
        rdns.extend(self.rdns().iter().cloned());
        Dn::from_rdns(rdns)
    }

    /// Replace the first `depth` RDNs (an old base) by `new_base`: how a subtree move
    /// renames every descendant.
    pub fn rebase(&self, old_len: usize, new_base: &Dn) -> Dn {
        let keep = self.rdns().len().saturating_sub(old_len);
        let mut rdns: Vec<Rdn> = self.rdns().iter().take(keep).cloned().collect();
        rdns.extend(new_base.rdns().iter().cloned());
        Dn::from_rdns(rdns)
    }
}

impl Rdn {
    pub fn single(attr: &str, value: &str) -> Rdn {
        Rdn { avas: vec![Ava { attr: attr.to_string(), value: value.to_string() }] }
    }

    /// Parse a lone RDN (the `newrdn` of a ModifyDN request).
    pub fn parse(s: &str) -> Result<Rdn> {
        match <[Rdn; 1]>::try_from(Parser::new(s).rdns()?) {
            Ok([rdn]) => Ok(rdn),
            Err(_) => Err(DirectoryError::InvalidDn(format!("'{s}' is not a single RDN"))),
        }
    }
}

impl fmt::Display for Ava {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.attr)?;
        f.write_str("=")?;
        f.write_str(&escape_value(&self.value))
    }
}

impl fmt::Display for Rdn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, ava) in self.avas.iter().enumerate() {
            if i > 0 {
                f.write_str("+")?;
            }
            write!(f, "{ava}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Dn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(t) = &self.0.text {
            return f.write_str(t);
        }
        for (i, rdn) in self.rdns().iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{rdn}")?;
        }
        Ok(())
    }
}

/// Escape an attribute value for the string form, RFC 4514 §2.4.
pub fn escape_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len() + 2);
    escape_value_into(&mut out, v);
    out
}

/// [`escape_value`], appended to `out`.
pub fn escape_value_into(out: &mut String, v: &str) {
    // Most values need no escaping: copied whole.
    let b = v.as_bytes();
    let special = |x: &u8| matches!(x, b'"' | b'+' | b',' | b';' | b'<' | b'>' | b'\\' | b'=' | 0..0x20 | 0x7f);
    if !b.iter().any(special) && !matches!(b.first(), Some(b'#' | b' ')) && b.last() != Some(&b' ') {
        out.push_str(v);
        return;
    }
    let last = v.chars().count().saturating_sub(1);
    for (i, c) in v.chars().enumerate() {
        match c {
            '"' | '+' | ',' | ';' | '<' | '>' | '\\' | '=' => {
                out.push('\\');
                out.push(c);
            }
            '#' if i == 0 => out.push_str("\\#"),
            ' ' if i == 0 || i == last => out.push_str("\\ "),
            '\0' => out.push_str("\\00"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
}

/// True when the normalised DN `ndn` equals `base` or lies below it. Both must
/// come from `Schema::normalize_dn`, where a `,` inside a value is always
/// written `\,`; a separator is a `,` preceded by an even number of backslashes.
pub fn is_under(ndn: &str, base: &str) -> bool {
    if base.is_empty() {
        return true;
    }
    if ndn.len() == base.len() {
        return ndn == base;
    }
    if ndn.len() < base.len() + 2 || !ndn.ends_with(base) {
        return false;
    }
    let head = &ndn.as_bytes()[..ndn.len() - base.len()];
    match head.split_last() {
        Some((b',', rest)) => rest.iter().rev().take_while(|&&b| b == b'\\').count() % 2 == 0,
        _ => false,
    }
}

/// The parent of a normalised DN (from `Schema::normalize_dn`, where a `,`
/// inside a value is always `\,`): what follows the first separator; the
/// empty root DN for a DN of one RDN.
pub fn parent_ndn(ndn: &str) -> &str {
    let mut escaped = false;
    for (i, b) in ndn.bytes().enumerate() {
        match b {
            b'\\' if !escaped => escaped = true,
            b',' if !escaped => return &ndn[i + 1..],
            _ => escaped = false,
        }
    }
    ""
}

/// How many RDNs a normalised DN has (separators are unescaped commas).
pub fn depth(ndn: &str) -> usize {
    if ndn.is_empty() {
        return 0;
    }
    let mut n = 1;
    let mut escaped = false;
    for b in ndn.bytes() {
        match b {
            b'\\' if !escaped => escaped = true,
            b',' if !escaped => n += 1,
            _ => escaped = false,
        }
    }
    n
}

struct Parser<'a> {
    s: &'a [u8],
    src: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn new(src: &'a str) -> Self {
        Parser { s: src.as_bytes(), src, pos: 0 }
    }

    fn err(&self, why: &str) -> DirectoryError {
        DirectoryError::InvalidDn(format!("'{}': {why} at offset {}", self.src, self.pos))
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn skip_spaces(&mut self) {
        while self.peek() == Some(b' ') {
            self.pos += 1;
        }
    }

    fn rdns(mut self) -> Result<Vec<Rdn>> {
        let mut rdns = Vec::new();
        self.skip_spaces();
        if self.peek().is_none() {
            return Ok(rdns);
        }
        loop {
            rdns.push(self.rdn()?);
            match self.peek() {
                None => break,
                Some(b',') | Some(b';') => {
                    self.pos += 1;
                    self.skip_spaces();
                }
                Some(_) => return Err(self.err("expected ',' between RDNs")),
            }
        }
        Ok(rdns)
    }

    fn rdn(&mut self) -> Result<Rdn> {
        let mut avas = vec![self.ava()?];
        while self.peek() == Some(b'+') {
            self.pos += 1;
            self.skip_spaces();
            avas.push(self.ava()?);
        }
        Ok(Rdn { avas })
    }

    fn ava(&mut self) -> Result<Ava> {
        let start = self.pos;
        while let Some(b) = self.peek() {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'.' {
                self.pos += 1;
            } else {
                break;
            }
        }
        let attr = &self.src[start..self.pos];
        if attr.is_empty() {
            return Err(self.err("missing attribute type"));
        }
        let first = attr.as_bytes()[0];
        let valid_type = if first.is_ascii_digit() {
            // numericoid: digits separated by single dots
            attr.split('.').all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        } else {
            first.is_ascii_alphabetic() && attr.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        if !valid_type {
            return Err(self.err("bad attribute type"));
        }
        self.skip_spaces();
        if self.peek() != Some(b'=') {
            return Err(self.err("expected '='"));
        }
        self.pos += 1;
        self.skip_spaces();
        let value = if self.peek() == Some(b'#') { self.hexstring()? } else { self.string()? };
        Ok(Ava { attr: attr.to_string(), value })
    }

    fn hexstring(&mut self) -> Result<String> {
        self.pos += 1;
        let start = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii_hexdigit()) {
            self.pos += 1;
        }
        let hex = &self.src[start..self.pos];
        if hex.is_empty() || !hex.len().is_multiple_of(2) {
            return Err(self.err("bad hexstring"));
        }
        self.skip_spaces();
        let bytes = decode_hex(hex).ok_or_else(|| self.err("bad hexstring"))?;
        // RFC 4514 §2.4: the BER encoding of the value. Take the content of a
        // string-typed TLV; anything else stays as the `#hex` literal.
        if let Some(content) = ber_string_content(&bytes)
            && let Ok(s) = String::from_utf8(content.to_vec())
        {
            return Ok(s);
        }
        Ok(format!("#{hex}"))
    }

    fn string(&mut self) -> Result<String> {
        let mut out: Vec<u8> = Vec::new();
        // Trailing unescaped spaces are not part of the value (RFC 4514 §3).
        let mut trailing_plain_spaces = 0usize;
        while let Some(b) = self.peek() {
            match b {
                b',' | b'+' | b';' => break,
                b'\\' => {
                    self.pos += 1;
                    match self.peek() {
                        Some(c) if c.is_ascii_hexdigit() => {
                            let hi = c;
                            let lo = self.s.get(self.pos + 1).copied();
                            match lo {
                                Some(lo) if lo.is_ascii_hexdigit() => {
                                    out.push(hex_val(hi) << 4 | hex_val(lo));
                                    self.pos += 2;
                                }
                                _ => return Err(self.err("bad hex escape")),
                            }
                        }
                        Some(c @ (b'"' | b'+' | b',' | b';' | b'<' | b'>' | b'\\' | b' ' | b'#' | b'='))
                        | Some(c @ (b'*' | b'(' | b')')) => {
                            out.push(c);
                            self.pos += 1;
                        }
                        _ => return Err(self.err("bad escape")),
                    }
                    trailing_plain_spaces = 0;
                }
                b'"' => return Err(self.err("unescaped '\"'")),
                b'=' | b'<' | b'>' => {
                    // RFC 4514 requires these escaped, but many clients send a bare '='
                    // inside values; accept it as slapd does, refuse the angle brackets.
                    if b != b'=' {
                        return Err(self.err("unescaped special character"));
                    }
                    out.push(b);
                    self.pos += 1;
                    trailing_plain_spaces = 0;
                }
                b' ' => {
                    out.push(b);
                    self.pos += 1;
                    trailing_plain_spaces += 1;
                }
                _ => {
                    out.push(b);
                    self.pos += 1;
                    trailing_plain_spaces = 0;
                }
            }
        }
        out.truncate(out.len() - trailing_plain_spaces);
        String::from_utf8(out).map_err(|_| self.err("value is not UTF-8"))
    }
}

fn hex_val(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        b'A'..=b'F' => b - b'A' + 10,
        _ => 0,
    }
}

pub(crate) fn decode_hex(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    if !b.len().is_multiple_of(2) || !b.iter().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    Some(b.chunks(2).map(|p| hex_val(p[0]) << 4 | hex_val(p[1])).collect())
}

/// Content octets of a primitive BER string TLV with a short or long length.
fn ber_string_content(b: &[u8]) -> Option<&[u8]> {
    let (&tag, rest) = b.split_first()?;
    // UTF8String, NumericString, PrintableString, TeletexString, IA5String, OCTET STRING
    if !matches!(tag, 0x0c | 0x12 | 0x13 | 0x14 | 0x16 | 0x04) {
        return None;
    }
    let (&len0, rest) = rest.split_first()?;
    let (len, rest) = if len0 < 0x80 {
        (len0 as usize, rest)
    } else {
        let n = (len0 & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let (lb, rest) = rest.split_at(n);
        (lb.iter().fold(0usize, |a, &x| a << 8 | x as usize), rest)
    };
    if rest.len() == len { Some(rest) } else { None }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_escaped_and_multivalued_rdns() {
        let dn = Dn::parse(r"cn=Dupré\, Hélène+uid=hdupre,ou=agents , o=123456789,dc=cig,dc=fr").unwrap();
        assert_eq!(dn.rdns().len(), 5);
        assert_eq!(dn.rdns()[0].avas.len(), 2);
        assert_eq!(dn.rdns()[0].avas[0].value, "Dupré, Hélène");
        assert_eq!(dn.rdns()[1].avas[0].value, "agents");
    }

    #[test]
    fn hex_escapes_decode_to_utf8() {
        let dn = Dn::parse(r"cn=H\C3\A9l\C3\A8ne,dc=fr").unwrap();
        assert_eq!(dn.rdns()[0].avas[0].value, "Hélène");
    }

    #[test]
    fn hexstring_value_is_ber_decoded() {
        // #04024869 = OCTET STRING "Hi"
        let dn = Dn::parse("cn=#04024869,dc=fr").unwrap();
        assert_eq!(dn.rdns()[0].avas[0].value, "Hi");
    }

    #[test]
    fn refuses_malformed_dns() {
        for bad in ["cn", "=x", "cn=a,,dc=fr", r"cn=a\", r"cn=a\zz", "cn=a<b", "1..2=x", "c n=x"] {
            assert!(Dn::parse(bad).is_err(), "{bad} should not parse");
        }
    }

    #[test]
    fn empty_string_is_the_root() {
        assert!(Dn::parse("").unwrap().is_root());
    }

    #[test]
    fn is_under_respects_escaped_commas() {
        assert!(is_under("uid=a,ou=x,dc=fr", "dc=fr"));
        assert!(is_under("dc=fr", "dc=fr"));
        assert!(!is_under("cn=a\\,dc=fr", "dc=fr"));
        assert!(is_under("cn=a\\\\,dc=fr", "dc=fr"));
        assert!(!is_under("xdc=fr", "dc=fr"));
        assert_eq!(depth("cn=a\\,b,dc=fr"), 2);
    }

    fn value_strategy() -> impl Strategy<Value = String> {
        proptest::string::string_regex("[ -~éèœŒ#=+,;<>\\\\\"]{1,12}").unwrap()
    }

    proptest! {
        #[test]
        fn parse_of_print_is_identity(
            rdns in proptest::collection::vec(
                proptest::collection::vec(("[a-zA-Z][a-zA-Z0-9-]{0,8}", value_strategy()), 1..3), 0..5)
        ) {
            let dn = Dn::from_rdns(rdns.into_iter().map(|avas| Rdn {
                avas: avas.into_iter().map(|(attr, value)| Ava { attr, value }).collect()
            }).collect());
            let printed = dn.to_string();
            let reparsed = Dn::parse(&printed).unwrap();
            // The printed form is canonical: what the store keeps is what it prints.
            prop_assert_eq!(reparsed.to_string(), printed.clone());
            let stored = Dn::from_stored(&printed);
            prop_assert_eq!(stored.text(), printed.as_str());
            prop_assert_eq!(stored.rdns(), dn.rdns());
            prop_assert_eq!(&stored, &dn);
            prop_assert_eq!(reparsed, dn);
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,40}") {
            let _ = Dn::parse(&s);
        }
    }
}
