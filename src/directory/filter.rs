//! The one filter language of the directory (RFC 4511 §4.5.1.7). LDAP filters
//! and, later, SCIM filters are lowered into it; it is evaluated here against
//! entries with the schema's matching rules, and planned against indexes in
//! `search.rs`.

use std::fmt;

use super::entry::Entry;
use super::error::{DirectoryError, Result};
use super::schema::{Attr, MatchingRule, Schema, approx};

/// Substring assertion components (RFC 4511 §4.5.1.7.2).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Substrings {
    pub initial: Option<Vec<u8>>,
    pub any: Vec<Vec<u8>>,
    pub final_: Option<Vec<u8>>,
}

/// A search filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Not(Box<Filter>),
    Equality(String, Vec<u8>),
    Substrings(String, Substrings),
    GreaterOrEqual(String, Vec<u8>),
    LessOrEqual(String, Vec<u8>),
    Present(String),
    Approx(String, Vec<u8>),
    /// RFC 4511 §4.5.1.7.7; `rule` is a name or OID, `attr` optional.
    Extensible {
        rule: Option<String>,
        attr: Option<String>,
        value: Vec<u8>,
        dn_attributes: bool,
    },
}

/// RFC 4511 §4.5.1.7: filters evaluate to TRUE, FALSE or Undefined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tri {
    True,
    False,
    Undefined,
}

impl Tri {
    fn not(self) -> Tri {
        match self {
            Tri::True => Tri::False,
            Tri::False => Tri::True,
            Tri::Undefined => Tri::Undefined,
        }
    }
}

impl Filter {
    /// The filter that matches every entry, `(objectClass=*)`.
    pub fn everything() -> Filter {
        Filter::Present("objectClass".into())
    }

    /// Parse the RFC 4515 string form, with `\XX` escapes.
    pub fn parse(s: &str) -> Result<Filter> {
        let s = s.trim();
        // Be lenient like ldapsearch: a bare `uid=x` is `(uid=x)`.
        let owned;
        let s = if s.starts_with('(') {
            s
        } else {
            owned = format!("({s})");
            &owned
        };
        let mut p = FilterParser { b: s.as_bytes(), pos: 0, depth: 0 };
        let f = p.filter()?;
        if p.pos != p.b.len() {
            return Err(p.err("trailing characters"));
        }
        Ok(f)
    }

    /// Evaluate against an entry; `entry` must carry every attribute the filter
    /// names (virtual ones such as memberOf included).
    pub fn evaluate(&self, schema: &Schema, entry: &Entry) -> Tri {
        self.eval(schema, entry, None)
    }

    /// Like [`Filter::evaluate`], but a component on an attribute that
    /// `visible` refuses (by lower-case primary name) is Undefined: an
    /// identity that may not read an attribute cannot test it (RFC 4511
    /// §4.5.1.7 treats what cannot be evaluated as Undefined).
    pub fn evaluate_masked(&self, schema: &Schema, entry: &Entry, visible: &dyn Fn(&str) -> bool) -> Tri {
        self.eval(schema, entry, Some(visible))
    }

    fn eval(&self, schema: &Schema, entry: &Entry, visible: Option<&dyn Fn(&str) -> bool>) -> Tri {
        match self {
            Filter::And(fs) => {
                let mut out = Tri::True;
                for f in fs {
                    match f.eval(schema, entry, visible) {
                        Tri::False => return Tri::False,
                        Tri::Undefined => out = Tri::Undefined,
                        Tri::True => {}
                    }
                }
                out
            }
            Filter::Or(fs) => {
                let mut out = Tri::False;
                for f in fs {
                    match f.eval(schema, entry, visible) {
                        Tri::True => return Tri::True,
                        Tri::Undefined => out = Tri::Undefined,
                        Tri::False => {}
                    }
                }
                out
            }
            Filter::Not(f) => f.eval(schema, entry, visible).not(),
            leaf => {
                let hidden = visible.is_some_and(|v| {
                    leaf.leaf_attr().and_then(|a| schema.attr_id(a)).is_some_and(|id| !v(&schema.attr(id).lname))
                });
                if hidden { Tri::Undefined } else { leaf.eval_leaf(schema, entry) }
            }
        }
    }

    /// The attribute a non-composite component tests, if it names one.
    fn leaf_attr(&self) -> Option<&str> {
        match self {
            Filter::Present(a)
            | Filter::Equality(a, _)
            | Filter::Approx(a, _)
            | Filter::GreaterOrEqual(a, _)
            | Filter::LessOrEqual(a, _)
            | Filter::Substrings(a, _) => Some(a),
            Filter::Extensible { attr, .. } => attr.as_deref(),
            Filter::And(_) | Filter::Or(_) | Filter::Not(_) => None,
        }
    }

    fn eval_leaf(&self, schema: &Schema, entry: &Entry) -> Tri {
        match self {
            Filter::And(_) | Filter::Or(_) | Filter::Not(_) => self.eval(schema, entry, None),
            Filter::Present(a) => {
                let Some(id) = schema.attr_id(a) else { return Tri::False };
                let found = schema.attr(id).with_subtypes.iter().any(|&s| entry.get(&schema.attr(s).name).is_some());
                if found { Tri::True } else { Tri::False }
            }
            // The stored value is compared in place when it need not be
            // normalised (a listing tests five objectClass values per entry).
            Filter::Equality(a, v) => compare_values(
                schema,
                entry,
                a,
                |attr| attr.equality,
                v,
                |rule, stored, asserted| schema.matches_normalized(rule, stored, asserted),
            ),
            Filter::Approx(a, v) => approximately(schema, entry, a, v),
            Filter::GreaterOrEqual(a, v) => compare_values(
                schema,
                entry,
                a,
                |attr| attr.ordering,
                v,
                |rule, stored, asserted| {
                    schema.normalize(rule, stored).is_ok_and(|n| rule_of(schema, a).compare(&n, asserted).is_ge())
                },
            ),
            Filter::LessOrEqual(a, v) => compare_values(
                schema,
                entry,
                a,
                |attr| attr.ordering,
                v,
                |rule, stored, asserted| {
                    schema.normalize(rule, stored).is_ok_and(|n| rule_of(schema, a).compare(&n, asserted).is_le())
                },
            ),
            Filter::Substrings(a, sub) => substrings(schema, entry, a, sub),
            Filter::Extensible { rule, attr, value, dn_attributes } => {
                extensible(schema, entry, rule.as_deref(), attr.as_deref(), value, *dn_attributes)
            }
        }
    }

    /// Whether an extensible match without an attribute type (which tests
    /// every attribute of the entry) occurs anywhere in the filter.
    pub fn has_typeless_extensible(&self) -> bool {
        match self {
            Filter::And(fs) | Filter::Or(fs) => fs.iter().any(Filter::has_typeless_extensible),
            Filter::Not(f) => f.has_typeless_extensible(),
            Filter::Extensible { attr: None, .. } => true,
            _ => false,
        }
    }

    /// Every attribute name the filter mentions (to know which virtual attributes to compute).
    pub fn attributes(&self, out: &mut Vec<String>) {
        match self {
            Filter::And(fs) | Filter::Or(fs) => fs.iter().for_each(|f| f.attributes(out)),
            Filter::Not(f) => f.attributes(out),
            Filter::Equality(a, _)
            | Filter::Substrings(a, _)
            | Filter::GreaterOrEqual(a, _)
            | Filter::LessOrEqual(a, _)
            | Filter::Present(a)
            | Filter::Approx(a, _) => out.push(a.clone()),
            Filter::Extensible { attr, .. } => out.extend(attr.clone()),
        }
    }
}

fn rule_of(schema: &Schema, a: &str) -> MatchingRule {
    schema.attr_id(a).map(|i| schema.attr(i)).and_then(|attr| attr.ordering).unwrap_or(MatchingRule::OctetString)
}

/// Shared body of equality / ordering assertions: normalise the asserted value
/// by the rule, then `test(rule, stored value, normalised assertion)` each
/// value of the attribute and its subtypes.
fn compare_values(
    schema: &Schema,
    entry: &Entry,
    a: &str,
    pick: fn(&Attr) -> Option<MatchingRule>,
    asserted: &[u8],
    test: impl Fn(MatchingRule, &[u8], &[u8]) -> bool,
) -> Tri {
    let Some(id) = schema.attr_id(a) else {
        return Tri::Undefined;
    };
    let attr = schema.attr(id);
    // RFC 4511 §4.5.1.7: no rule of the kind asked for, Undefined.
    let Some(rule) = pick(attr) else {
        return Tri::Undefined;
    };
    let Ok(asserted) = schema.normalize(rule, asserted) else {
        return Tri::Undefined;
    };
    for &sub in &attr.with_subtypes {
        let sattr = schema.attr(sub);
        if let Some(values) = entry.get(&sattr.name)
            && values.values.iter().any(|v| test(rule, v, &asserted))
        {
            return Tri::True;
        }
    }
    Tri::False
}

/// `~=`: folded strings compared (see `schema::approx`), other syntaxes by
/// their equality rule.
fn approximately(schema: &Schema, entry: &Entry, a: &str, asserted: &[u8]) -> Tri {
    let rule = schema.attr_id(a).and_then(|id| schema.attr(id).equality);
    let Some(rule) = rule.filter(|r| approx::folds(*r)) else {
        return compare_values(
            schema,
            entry,
            a,
            |attr| attr.equality,
            asserted,
            |rule, stored, asserted| schema.matches_normalized(rule, stored, asserted),
        );
    };
    let Ok(n) = schema.normalize(rule, asserted) else { return Tri::Undefined };
    let folded = approx::fold(&n);
    // Nothing but punctuation: like nothing, it approximates nothing.
    if folded.is_empty() {
        return Tri::False;
    }
    compare_values(
        schema,
        entry,
        a,
        |attr| attr.equality,
        asserted,
        |rule, stored, _| schema.normalize(rule, stored).is_ok_and(|s| approx::fold(&s) == folded),
    )
}

/// Normalise a substring component: like the rule's normalisation, but without
/// trimming the spaces at its edges (they are significant inside a value).
pub(crate) fn normalize_component(schema: &Schema, rule: MatchingRule, v: &[u8]) -> Option<Vec<u8>> {
    match rule {
        MatchingRule::CaseIgnore | MatchingRule::CaseIgnoreIa5 | MatchingRule::CaseIgnoreList => {
            std::str::from_utf8(v).ok().map(|s| s.to_lowercase().into_bytes())
        }
        MatchingRule::NumericString | MatchingRule::TelephoneNumber => schema.normalize(rule, v).ok(),
        _ => Some(v.to_vec()),
    }
}

fn substrings(schema: &Schema, entry: &Entry, a: &str, sub: &Substrings) -> Tri {
    let Some(id) = schema.attr_id(a) else {
        return Tri::Undefined;
    };
    let attr = schema.attr(id);
    // RFC 4511 §4.5.1.7.2: an attribute without a SUBSTR rule, Undefined.
    let Some(rule) = attr.substr else {
        return Tri::Undefined;
    };
    let comp = |v: &Vec<u8>| normalize_component(schema, rule, v);
    let Some(initial) = sub.initial.as_ref().map(comp).transpose_opt() else {
        return Tri::Undefined;
    };
    let Some(final_) = sub.final_.as_ref().map(comp).transpose_opt() else {
        return Tri::Undefined;
    };
    let Some(any) = sub.any.iter().map(comp).collect::<Option<Vec<_>>>() else {
        return Tri::Undefined;
    };
    for &s in &attr.with_subtypes {
        let Some(values) = entry.get(&schema.attr(s).name) else {
            continue;
        };
        for v in &values.values {
            let Ok(n) = schema.normalize(rule, v) else { continue };
            if substring_match(&n, initial.as_deref(), &any, final_.as_deref()) {
                return Tri::True;
            }
        }
    }
    Tri::False
}

/// `Option<Option<T>>` → `Option<Option<T>>` where an inner failure fails the whole.
trait TransposeOpt<T> {
    fn transpose_opt(self) -> Option<Option<T>>;
}
impl<T> TransposeOpt<T> for Option<Option<T>> {
    fn transpose_opt(self) -> Option<Option<T>> {
        match self {
            None => Some(None),
            Some(None) => None,
            Some(Some(x)) => Some(Some(x)),
        }
    }
}

/// Match normalised value bytes against normalised components, in order.
pub(crate) fn substring_match(v: &[u8], initial: Option<&[u8]>, any: &[Vec<u8>], final_: Option<&[u8]>) -> bool {
    let mut rest = v;
    if let Some(i) = initial {
        match rest.strip_prefix(i) {
            Some(r) => rest = r,
            None => return false,
        }
    }
    let mut end = rest.len();
    if let Some(f) = final_ {
        if rest.len() < f.len() || !rest.ends_with(f) {
            return false;
        }
        end -= f.len();
    }
    let mut rest = &rest[..end];
    for a in any {
        if a.is_empty() {
            continue;
        }
        match rest.windows(a.len()).position(|w| w == a.as_slice()) {
            Some(p) => rest = &rest[p + a.len()..],
            None => return false,
        }
    }
    true
}

fn extensible(
    schema: &Schema,
    entry: &Entry,
    rule: Option<&str>,
    attr: Option<&str>,
    value: &[u8],
    dn_attributes: bool,
) -> Tri {
    let rule = match rule {
        Some(r) => match MatchingRule::by_oid(r).or_else(|| MatchingRule::from_name(r)) {
            Some(r) => Some(r),
            None => return Tri::Undefined,
        },
        None => None,
    };
    let test_attr = |a: &Attr, values: &mut dyn Iterator<Item = &[u8]>| -> bool {
        let Some(r) = rule.or(a.equality) else { return false };
        let Ok(asserted) = schema.normalize(r, value) else {
            return false;
        };
        for v in values {
            if schema.normalize(r, v).is_ok_and(|n| n == asserted) {
                return true;
            }
        }
        false
    };
    let mut result = Tri::False;
    match attr {
        Some(a) => {
            let Some(id) = schema.attr_id(a) else {
                return Tri::Undefined;
            };
            for &s in &schema.attr(id).with_subtypes {
                let sattr = schema.attr(s);
                if let Some(vals) = entry.get(&sattr.name)
                    && test_attr(sattr, &mut vals.values.iter().map(|v| v.as_slice()))
                {
                    return Tri::True;
                }
            }
        }
        None => {
            // RFC 4511: no type means every attribute the rule applies to.
            let Some(r) = rule else { return Tri::Undefined };
            for a in &entry.attrs {
                if let Some(id) = schema.attr_id(&a.name) {
                    let sattr = schema.attr(id);
                    if sattr.equality == Some(r) && test_attr(sattr, &mut a.values.iter().map(|v| v.as_slice())) {
                        return Tri::True;
                    }
                }
            }
        }
    }
    if dn_attributes {
        for rdn in entry.dn.rdns() {
            for ava in &rdn.avas {
                let Some(id) = schema.attr_id(&ava.attr) else { continue };
                let sattr = schema.attr(id);
                if attr.is_some_and(|a| schema.attr_id(a) != Some(id)) {
                    continue;
                }
                if test_attr(sattr, &mut std::iter::once(ava.value.as_bytes())) {
                    result = Tri::True;
                }
            }
        }
    }
    result
}

/// Escape an assertion value for the RFC 4515 string form.
fn escape(v: &[u8], f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match std::str::from_utf8(v) {
        Ok(s) => {
            for c in s.chars() {
                match c {
                    '*' | '(' | ')' | '\\' | '\0' => write!(f, "\\{:02x}", c as u32)?,
                    c => write!(f, "{c}")?,
                }
            }
            Ok(())
        }
        Err(_) => v.iter().try_for_each(|b| write!(f, "\\{b:02x}")),
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Filter::And(fs) => {
                f.write_str("(&")?;
                fs.iter().try_for_each(|x| write!(f, "{x}"))?;
                f.write_str(")")
            }
            Filter::Or(fs) => {
                f.write_str("(|")?;
                fs.iter().try_for_each(|x| write!(f, "{x}"))?;
                f.write_str(")")
            }
            Filter::Not(x) => write!(f, "(!{x})"),
            Filter::Equality(a, v) => {
                write!(f, "({a}=")?;
                escape(v, f)?;
                f.write_str(")")
            }
            Filter::Approx(a, v) => {
                write!(f, "({a}~=")?;
                escape(v, f)?;
                f.write_str(")")
            }
            Filter::GreaterOrEqual(a, v) => {
                write!(f, "({a}>=")?;
                escape(v, f)?;
                f.write_str(")")
            }
            Filter::LessOrEqual(a, v) => {
                write!(f, "({a}<=")?;
                escape(v, f)?;
                f.write_str(")")
            }
            Filter::Present(a) => write!(f, "({a}=*)"),
            Filter::Substrings(a, s) => {
                write!(f, "({a}=")?;
                if let Some(i) = &s.initial {
                    escape(i, f)?;
                }
                f.write_str("*")?;
                for x in &s.any {
                    escape(x, f)?;
                    f.write_str("*")?;
                }
                if let Some(x) = &s.final_ {
                    escape(x, f)?;
                }
                f.write_str(")")
            }
            Filter::Extensible { rule, attr, value, dn_attributes } => {
                f.write_str("(")?;
                if let Some(a) = attr {
                    f.write_str(a)?;
                }
                if *dn_attributes {
                    f.write_str(":dn")?;
                }
                if let Some(r) = rule {
                    write!(f, ":{r}")?;
                }
                f.write_str(":=")?;
                escape(value, f)?;
                f.write_str(")")
            }
        }
    }
}

/// Deepest nesting accepted from the string form; deeper input is refused, not recursed into.
const MAX_FILTER_DEPTH: usize = 64;

struct FilterParser<'a> {
    b: &'a [u8],
    pos: usize,
    depth: usize,
}

impl FilterParser<'_> {
    fn err(&self, why: &str) -> DirectoryError {
        DirectoryError::Protocol(format!("bad search filter at offset {}: {why}", self.pos))
    }

    fn eat(&mut self, c: u8) -> Result<()> {
        if self.b.get(self.pos) == Some(&c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.err(&format!("expected '{}'", c as char)))
        }
    }

    fn filter(&mut self) -> Result<Filter> {
        self.depth += 1;
        if self.depth > MAX_FILTER_DEPTH {
            return Err(self.err("filter nested too deeply"));
        }
        self.eat(b'(')?;
        let f = match self.b.get(self.pos) {
            Some(b'&') => {
                self.pos += 1;
                Filter::And(self.list()?)
            }
            Some(b'|') => {
                self.pos += 1;
                Filter::Or(self.list()?)
            }
            Some(b'!') => {
                self.pos += 1;
                Filter::Not(Box::new(self.filter()?))
            }
            _ => self.item()?,
        };
        self.eat(b')')?;
        self.depth -= 1;
        Ok(f)
    }

    fn list(&mut self) -> Result<Vec<Filter>> {
        let mut v = Vec::new();
        while self.b.get(self.pos) == Some(&b'(') {
            v.push(self.filter()?);
        }
        Ok(v)
    }

    fn item(&mut self) -> Result<Filter> {
        let start = self.pos;
        while let Some(&c) = self.b.get(self.pos) {
            if c.is_ascii_alphanumeric() || c == b'-' || c == b'.' || c == b';' || c == b':' {
                self.pos += 1;
            } else {
                break;
            }
        }
        let lhs = std::str::from_utf8(&self.b[start..self.pos]).map_err(|_| self.err("bad attribute"))?.to_string();
        let op = match (self.b.get(self.pos), self.b.get(self.pos + 1)) {
            (Some(b'='), _) => 1,
            (Some(b'~' | b'>' | b'<'), Some(b'=')) => 2,
            _ => return Err(self.err("expected a filter operator")),
        };
        let opc = self.b[self.pos];
        self.pos += op;
        if lhs.contains(':') || (opc == b'=' && lhs.ends_with(':')) {
            let value = self.value_until_close()?;
            let mut parts = lhs.split(':');
            let attr = parts.next().filter(|a| !a.is_empty()).map(str::to_string);
            let mut dn_attributes = false;
            let mut rule = None;
            for p in parts {
                if p.eq_ignore_ascii_case("dn") {
                    dn_attributes = true;
                } else if !p.is_empty() {
                    rule = Some(p.to_string());
                }
            }
            if attr.is_none() && rule.is_none() {
                return Err(self.err("extensible match needs a type or a rule"));
            }
            return Ok(Filter::Extensible { rule, attr, value: value.concat(), dn_attributes });
        }
        if lhs.is_empty() {
            return Err(self.err("missing attribute"));
        }
        let parts = self.value_until_close()?;
        Ok(match opc {
            b'~' => Filter::Approx(lhs, parts.concat()),
            b'>' => Filter::GreaterOrEqual(lhs, parts.concat()),
            b'<' => Filter::LessOrEqual(lhs, parts.concat()),
            _ if parts.len() == 1 => Filter::Equality(lhs, parts.concat()),
            _ if parts.len() == 2 && parts.iter().all(|p| p.is_empty()) => Filter::Present(lhs),
            _ => {
                let n = parts.len();
                let mut it = parts.into_iter();
                let initial = it.next().filter(|p| !p.is_empty());
                let mut middle: Vec<Vec<u8>> = it.collect();
                let final_ = middle.pop().filter(|p| !p.is_empty());
                if middle.iter().any(|m| m.is_empty()) && n > 2 {
                    return Err(self.err("empty substring component"));
                }
                Filter::Substrings(lhs, Substrings { initial, any: middle, final_ })
            }
        })
    }

    /// Read an assertion value up to `)`, split at unescaped `*`, with `\XX` decoded.
    fn value_until_close(&mut self) -> Result<Vec<Vec<u8>>> {
        let mut parts = vec![Vec::new()];
        loop {
            match self.b.get(self.pos) {
                None => return Err(self.err("unterminated filter")),
                Some(b')') => break,
                Some(b'(') => return Err(self.err("unescaped '(' in value")),
                Some(b'*') => {
                    parts.push(Vec::new());
                    self.pos += 1;
                }
                Some(b'\\') => {
                    let hex = self.b.get(self.pos + 1..self.pos + 3).ok_or_else(|| self.err("bad escape"))?;
                    let hex = std::str::from_utf8(hex).map_err(|_| self.err("bad escape"))?;
                    let byte = u8::from_str_radix(hex, 16).map_err(|_| self.err("bad escape"))?;
                    if let Some(p) = parts.last_mut() {
                        p.push(byte);
                    }
                    self.pos += 3;
                }
                Some(&c) => {
                    if let Some(p) = parts.last_mut() {
                        p.push(c);
                    }
                    self.pos += 1;
                }
            }
        }
        Ok(parts)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_filter_kind_and_prints_it_back() {
        for s in [
            "(&(objectClass=inetOrgPerson)(|(sn=Dupr*)(!(cn=*Œuvre*))))",
            "(uid=jdupont)",
            "(cn=H*l*ne)",
            "(employeeNumber>=100)",
            "(employeeNumber<=100)",
            "(mail=*)",
            "(sn~=dupre)",
            "(cn:caseExactMatch:=Hélène)",
            "(ou:dn:=agents)",
            "(:2.5.13.2:=x)",
            "(&)",
            "(|)",
            "(cn=a\\2ab)",
        ] {
            let f = Filter::parse(s).unwrap();
            let again = Filter::parse(&f.to_string()).unwrap();
            assert_eq!(f, again, "{s}");
        }
        assert_eq!(Filter::parse("(cn=a\\2ab)").unwrap(), Filter::Equality("cn".into(), b"a*b".to_vec()));
    }

    #[test]
    fn refuses_malformed_filters() {
        for s in ["(cn=a", "cn", "((cn=a))", "(=a)", "(cn=a\\zz)", "(cn=a)(sn=b)"] {
            assert!(Filter::parse(s).is_err(), "{s}");
        }
        let deep = "(!".repeat(100) + "(cn=a)" + &")".repeat(100);
        assert!(Filter::parse(&deep).is_err());
    }

    #[test]
    fn substring_components_match_in_order() {
        assert!(substring_match(b"helene", Some(b"he"), &[b"le".to_vec()], Some(b"ne")));
        assert!(!substring_match(b"helene", Some(b"he"), &[b"ne".to_vec()], Some(b"ne")));
        assert!(!substring_match(b"ab", Some(b"ab"), &[], Some(b"b")));
    }
}
