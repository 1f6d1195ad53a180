//! SCIM filters (RFC 7644 §3.4.2.2, parsed by `scim_v2`) lowered, row by
//! row of the mapping table, into the directory's filter language, so that
//! they use the same indexes as LDAP. A lowered filter is exact, or a
//! superset of the matches that `evaluate` then narrows on the rendered
//! candidates (an email's `type`, a value kept only as JSON).

use scim_v2::filter::{AttrExp, AttrPath, CompValue, CompareOp, Filter as Scim, ValFilter};

use super::ScimError;
use super::mapping::{Attr, Elements, Home, Path, Resource, Source, Type, generalized_time};
use crate::directory::filter::Substrings;
use crate::directory::{Filter, Schema, lifecycle};

/// A SCIM filter in the directory's language.
#[derive(Debug)]
pub struct Lowered {
    pub filter: Filter,
    /// Whether the directory's answer is the answer: otherwise the
    /// candidates are evaluated again on their SCIM documents.
    pub exact: bool,
}

fn exact(filter: Filter) -> Lowered {
    Lowered { filter, exact: true }
}

/// Candidates only: everything this part could match.
fn superset(filter: Filter) -> Lowered {
    Lowered { filter, exact: false }
}

fn everything() -> Filter {
    Filter::And(Vec::new())
}

fn nothing() -> Filter {
    Filter::Or(Vec::new())
}

/// What lowering needs of the directory.
pub struct Context<'a> {
    pub schema: &'a Schema,
    /// The DN of the resource with this id, as the caller sees it.
    pub dn_of: &'a dyn Fn(&str) -> Option<String>,
    /// The DN of the application group named by an entitlement.
    pub application_dn: &'a dyn Fn(&str) -> String,
}

fn and(parts: Vec<Lowered>) -> Lowered {
    let exact = parts.iter().all(|p| p.exact);
    Lowered { filter: Filter::And(parts.into_iter().map(|p| p.filter).collect()), exact }
}

fn or(parts: Vec<Lowered>) -> Lowered {
    let exact = parts.iter().all(|p| p.exact);
    Lowered { filter: Filter::Or(parts.into_iter().map(|p| p.filter).collect()), exact }
}

fn not(inner: Lowered) -> Lowered {
    // The negation of a superset is a subset: only an exact part negates.
    if inner.exact { exact(Filter::Not(Box::new(inner.filter))) } else { superset(everything()) }
}

/// Lower a parsed filter for a resource.
pub fn lower(res: &Resource, f: &Scim, ctx: &Context<'_>) -> Result<Lowered, ScimError> {
    Ok(match f {
        Scim::Attr(e) => attr_exp(res, e, None, ctx)?,
        Scim::ValuePath(vp) => {
            let path = resolve(res, &vp.attr)?;
            if path.attr.ty != Type::Complex || path.sub.is_some() {
                return Err(ScimError::invalid_filter(format!("'{}' takes no value filter", vp.attr.name)));
            }
            let inner = val_filter(res, &vp.filter, &path, ctx)?;
            // An element's sub-attributes together: the directory sees them apart.
            Lowered { exact: false, ..inner }
        }
        Scim::Not(x) => not(lower(res, x, ctx)?),
        Scim::And(xs) => and(xs.iter().map(|x| lower(res, x, ctx)).collect::<Result<_, _>>()?),
        Scim::Or(xs) => or(xs.iter().map(|x| lower(res, x, ctx)).collect::<Result<_, _>>()?),
    })
}

fn val_filter(res: &Resource, f: &ValFilter, parent: &Path, ctx: &Context<'_>) -> Result<Lowered, ScimError> {
    Ok(match f {
        ValFilter::Attr(e) => attr_exp(res, e, Some(parent), ctx)?,
        ValFilter::Not(x) => not(val_filter(res, x, parent, ctx)?),
        ValFilter::And(xs) => and(xs.iter().map(|x| val_filter(res, x, parent, ctx)).collect::<Result<_, _>>()?),
        ValFilter::Or(xs) => or(xs.iter().map(|x| val_filter(res, x, parent, ctx)).collect::<Result<_, _>>()?),
    })
}

fn resolve(res: &Resource, p: &AttrPath) -> Result<Path, ScimError> {
    res.resolve(p.uri.as_deref(), &p.name, p.sub_attr.as_deref()).ok_or_else(|| {
        let name = match &p.sub_attr {
            Some(s) => format!("{}.{s}", p.name),
            None => p.name.clone(),
        };
        ScimError::invalid_filter(format!("'{name}' is not an attribute of {}", res.name))
    })
}

fn attr_exp(res: &Resource, e: &AttrExp, parent: Option<&Path>, ctx: &Context<'_>) -> Result<Lowered, ScimError> {
    let (p, cmp) = match e {
        AttrExp::Present(p) => (p, None),
        AttrExp::Comparison(p, op, v) => (p, Some((op, v))),
    };
    let path = match parent {
        // Inside `emails[...]`, names are the parent's sub-attributes.
        Some(par) => {
            let sub = par.attr.sub(&p.name).ok_or_else(|| {
                ScimError::invalid_filter(format!("'{}' is not a sub-attribute of {}", p.name, par.attr.name))
            })?;
            Path { sub: Some(sub), ..*par }
        }
        None => resolve(res, p)?,
    };
    if matches!(cmp, Some((_, CompValue::Null))) {
        return Err(ScimError::invalid_filter("a comparison with null is not supported; use pr"));
    }
    let leaf = path.leaf();
    if let Some((op, _)) = cmp
        && leaf.ty == Type::Boolean
        && !matches!(op, CompareOp::Eq | CompareOp::Ne)
    {
        return Err(ScimError::invalid_filter(format!("{} is a boolean: only eq and ne compare it", leaf.name)));
    }
    if let Some((op, _)) = cmp
        && leaf.ty == Type::Complex
        && !matches!(op, CompareOp::Eq | CompareOp::Ne)
        && path.attr.sub("value").is_none()
    {
        return Err(ScimError::invalid_filter(format!("{} is complex: compare one of its sub-attributes", leaf.name)));
    }
    let sub_name = path.sub.map(|s| s.name);
    Ok(match (path.attr.home, sub_name) {
        (Home::Ldap(ldap), None) => ldap_term(ctx.schema, ldap, leaf, cmp, true)?,
        (Home::Required(ldap, _), None) => Lowered { exact: false, ..ldap_term(ctx.schema, ldap, leaf, cmp, true)? },
        (Home::Active(ldap), None) => active(ldap, cmp),
        (Home::Parts, Some(_)) => match leaf.home {
            Home::Ldap(ldap) => ldap_term(ctx.schema, ldap, leaf, cmp, true)?,
            // A filled value is not the client's: the documents decide.
            Home::Required(ldap, _) => Lowered { exact: false, ..ldap_term(ctx.schema, ldap, leaf, cmp, true)? },
            _ => superset(everything()),
        },
        (Home::Parts, None) => match cmp {
            None => or(path
                .attr
                .subs
                .iter()
                .filter_map(|s| match s.home {
                    Home::Ldap(l) | Home::Required(l, _) => Some(superset(Filter::Present(l.into()))),
                    _ => None,
                })
                .collect()),
            Some(_) => {
                return Err(ScimError::invalid_filter(format!(
                    "{} is complex: compare one of its sub-attributes",
                    path.attr.name
                )));
            }
        },
        (Home::Elements(el), sub) => elements(el, sub.unwrap_or("value"), leaf, cmp, ctx)?,
        (Home::Reference(ldap), None | Some("value")) => match cmp {
            None => exact(Filter::Present(ldap.into())),
            Some((op @ (CompareOp::Eq | CompareOp::Ne), CompValue::Str(id))) => {
                let eq = match (ctx.dn_of)(id) {
                    Some(dn) => Filter::Equality(ldap.into(), dn.into_bytes()),
                    None => nothing(),
                };
                exact(if matches!(op, CompareOp::Ne) { Filter::Not(Box::new(eq)) } else { eq })
            }
            Some(_) => superset(everything()),
        },
        (Home::Server, _) => server(res, &path, cmp, ctx)?,
        _ => superset(everything()),
    })
}

/// A comparison on one LDAP attribute.
fn ldap_term(
    schema: &Schema,
    ldap: &str,
    leaf: &Attr,
    cmp: Option<(&CompareOp, &CompValue)>,
    is_exact: bool,
) -> Result<Lowered, ScimError> {
    let Some((op, v)) = cmp else { return Ok(Lowered { filter: Filter::Present(ldap.into()), exact: is_exact }) };
    // An LDAP attribute without an ORDERING or SUBSTR rule evaluates such an
    // assertion to Undefined (RFC 4511 §4.5.1.7): the documents decide then.
    let rules = schema.attr_id(ldap).map(|i| schema.attr(i));
    let ordering = matches!(op, CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le);
    let substrings = matches!(op, CompareOp::Co | CompareOp::Sw | CompareOp::Ew);
    if (ordering && rules.is_none_or(|a| a.ordering.is_none()))
        || (substrings && rules.is_none_or(|a| a.substr.is_none()))
    {
        return Ok(superset(Filter::Present(ldap.into())));
    }
    let value = match v {
        CompValue::Str(s) if leaf.ty == Type::DateTime => generalized_time(s)
            .ok_or_else(|| ScimError::invalid_filter(format!("'{s}' is not a dateTime (RFC 3339)")))?
            .into_bytes(),
        CompValue::Str(s) => s.clone().into_bytes(),
        CompValue::True => b"TRUE".to_vec(),
        CompValue::False => b"FALSE".to_vec(),
        CompValue::Number(n) => n.to_string().into_bytes(),
        CompValue::Null => return Err(ScimError::invalid_filter("a comparison with null is not supported")),
    };
    let a = ldap.to_string();
    let sub = |s: Substrings| Filter::Substrings(a.clone(), s);
    let filter = match op {
        CompareOp::Eq => Filter::Equality(a, value),
        CompareOp::Ne => Filter::Not(Box::new(Filter::Equality(a, value))),
        CompareOp::Co => sub(Substrings { initial: None, any: vec![value], final_: None }),
        CompareOp::Sw => sub(Substrings { initial: Some(value), any: vec![], final_: None }),
        CompareOp::Ew => sub(Substrings { initial: None, any: vec![], final_: Some(value) }),
        CompareOp::Ge => Filter::GreaterOrEqual(a, value),
        CompareOp::Le => Filter::LessOrEqual(a, value),
        CompareOp::Gt => Filter::And(vec![
            Filter::GreaterOrEqual(a.clone(), value.clone()),
            Filter::Not(Box::new(Filter::Equality(a, value))),
        ]),
        CompareOp::Lt => Filter::And(vec![
            Filter::LessOrEqual(a.clone(), value.clone()),
            Filter::Not(Box::new(Filter::Equality(a, value))),
        ]),
    };
    // Strings compare by SCIM's rules, the directory's by its matching rules:
    // the same for the mapped attributes, but ordering is the documents' call.
    Ok(Lowered { filter, exact: is_exact && (!ordering || leaf.ty == Type::DateTime) })
}

/// A Boolean kept as TRUE / FALSE, absent meaning `default`.
/// `active`: the flag's filter, a superset when the window of validity can
/// make the answer false (the documents decide then).
fn active(ldap: &str, cmp: Option<(&CompareOp, &CompValue)>) -> Lowered {
    let Some((op, v)) = cmp else { return exact(everything()) };
    let wanted = match v {
        CompValue::True => true,
        CompValue::False => false,
        CompValue::Str(s) if s.eq_ignore_ascii_case("true") => true,
        CompValue::Str(s) if s.eq_ignore_ascii_case("false") => false,
        _ => return exact(nothing()),
    };
    let wanted = if matches!(op, CompareOp::Ne) { !wanted } else { wanted };
    let suspended = Filter::Equality(ldap.into(), b"FALSE".to_vec());
    superset(if wanted {
        Filter::Not(Box::new(suspended))
    } else {
        Filter::Or(vec![suspended, Filter::Present(lifecycle::START.into()), Filter::Present(lifecycle::END.into())])
    })
}

/// An element's sub-attribute: the mirrors that hold it, and the JSON store.
fn elements(
    el: &Elements,
    sub: &str,
    leaf: &Attr,
    cmp: Option<(&CompareOp, &CompValue)>,
    ctx: &Context<'_>,
) -> Result<Lowered, ScimError> {
    let mirrors: Vec<_> = el.mirrors.iter().filter(|m| m.sub.eq_ignore_ascii_case(sub)).collect();
    // A sub-attribute no mirror holds may be the default of elements that are
    // not stored as JSON (an email's type "work"): nothing narrows it here.
    if mirrors.is_empty() {
        return Ok(superset(everything()));
    }
    let mut parts = Vec::new();
    for m in mirrors {
        match m.source {
            Source::Ldap(ldap) | Source::Postal(ldap) => {
                let usable = match cmp {
                    // Where the asserted value cannot be stored, the store alone may hold it.
                    Some((CompareOp::Eq, CompValue::Str(s))) => ctx
                        .schema
                        .attr_of(ldap)
                        .is_ok_and(|(id, _)| ctx.schema.check_values(id, &[s.clone().into_bytes()]).is_ok()),
                    Some((CompareOp::Co | CompareOp::Sw | CompareOp::Ew, _)) | None => true,
                    Some(_) => false,
                };
                if usable {
                    parts.push(ldap_term(ctx.schema, ldap, leaf, cmp, false)?);
                }
            }
            Source::Base64(ldap) => parts.push(superset(Filter::Present(ldap.into()))),
            Source::Applications => match cmp {
                Some((CompareOp::Eq, CompValue::Str(app))) => {
                    parts.push(superset(Filter::Equality("memberOf".into(), (ctx.application_dn)(app).into_bytes())))
                }
                _ => return Ok(superset(everything())),
            },
        }
    }
    // The JSON store: a value it holds appears in it as a JSON string.
    let store = match cmp {
        Some((CompareOp::Eq | CompareOp::Co | CompareOp::Sw | CompareOp::Ew, CompValue::Str(s)))
            if !s.is_empty() && !s.contains(['"', '\\']) && !s.chars().any(char::is_control) =>
        {
            Filter::Substrings(
                el.store.into(),
                Substrings { initial: None, any: vec![s.clone().into_bytes()], final_: None },
            )
        }
        Some((CompareOp::Ne, _)) => return Ok(superset(everything())),
        _ => Filter::Present(el.store.into()),
    };
    parts.push(superset(store));
    Ok(superset(or(parts).filter))
}

/// Attributes the server computes.
fn server(
    res: &Resource,
    path: &Path,
    cmp: Option<(&CompareOp, &CompValue)>,
    ctx: &Context<'_>,
) -> Result<Lowered, ScimError> {
    let sub = path.sub.map(|s| s.name);
    let by_id = |attr: &str| -> Result<Lowered, ScimError> {
        Ok(match cmp {
            None => exact(Filter::Present(attr.into())),
            Some((CompareOp::Eq, CompValue::Str(id))) => match (ctx.dn_of)(id) {
                Some(dn) => exact(Filter::Equality(attr.into(), dn.into_bytes())),
                None => exact(nothing()),
            },
            Some(_) => superset(everything()),
        })
    };
    Ok(match (path.attr.name, sub) {
        ("id", None) => match cmp {
            None => exact(everything()),
            Some((CompareOp::Eq, CompValue::Str(id))) => {
                exact(Filter::Equality("entryUUID".into(), id.clone().into_bytes()))
            }
            Some((CompareOp::Ne, CompValue::Str(id))) => {
                exact(Filter::Not(Box::new(Filter::Equality("entryUUID".into(), id.clone().into_bytes()))))
            }
            Some(_) => superset(everything()),
        },
        ("meta", Some("created")) => ldap_term(ctx.schema, "createTimestamp", path.leaf(), cmp, true)?,
        ("meta", Some("lastModified")) => ldap_term(ctx.schema, "modifyTimestamp", path.leaf(), cmp, true)?,
        ("groups", None | Some("value")) => by_id("memberOf")?,
        ("members", None | Some("value")) => by_id("member")?,
        ("applications", None) if res.name == "User" => match cmp {
            Some((CompareOp::Eq, CompValue::Str(app))) => {
                superset(Filter::Equality("memberOf".into(), (ctx.application_dn)(app).into_bytes()))
            }
            _ => superset(everything()),
        },
        _ => superset(everything()),
    })
}

/// Parse a SCIM filter. `attr eq "value"` — what Entra ID and Okta send before
/// every provisioning write — is read directly: the general parser costs tens
/// of microseconds a call, more than the lookup it serves.
pub fn parse(s: &str) -> Result<Scim, ScimError> {
    if let Some(simple) = simple_equality(s) {
        return Ok(simple);
    }
    match s.parse() {
        Ok(f) => Ok(f),
        Err(e) => match lenient(s) {
            Some(rewritten) => {
                rewritten.parse().map_err(|_| ScimError::invalid_filter(format!("bad filter '{s}': {e}")))
            }
            None => Err(ScimError::invalid_filter(format!("bad filter '{s}': {e}"))),
        },
    }
}

const OPERATORS: [&str; 10] = ["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le", "pr"];

/// Forms real clients send that RFC 7644's grammar lacks, written as the
/// grammar has them: Entra ID's `emails[type eq "work"].value eq "x"`
/// (`emails[type eq "work" and value eq "x"]`), and a comparison value
/// without quotes (`externalId eq jyoung`, in Microsoft's own examples).
/// `None` when there is nothing to rewrite.
fn lenient(s: &str) -> Option<String> {
    let tokens = tokens(s);
    let mut out = String::with_capacity(s.len() + 16);
    let mut changed = false;
    let mut i = 0;
    while i < tokens.len() {
        let t = tokens[i];
        // `attr[…].sub op value` → `attr[… and sub op value]`
        if t == "]"
            && let Some(rest) = tokens.get(i + 1).and_then(|n| n.strip_prefix('.'))
            && let Some(op) = tokens.get(i + 2).filter(|o| OPERATORS.iter().any(|x| x.eq_ignore_ascii_case(o)))
        {
            out.push_str(" and ");
            out.push_str(rest);
            out.push(' ');
            out.push_str(op);
            let mut next = i + 3;
            if !op.eq_ignore_ascii_case("pr")
                && let Some(v) = tokens.get(i + 3)
            {
                out.push(' ');
                out.push_str(&quoted(v));
                next += 1;
            }
            out.push(']');
            changed = true;
            i = next;
            continue;
        }
        // `attr op bareword` → `attr op "bareword"`
        if i >= 1
            && OPERATORS.iter().any(|x| x.eq_ignore_ascii_case(tokens[i - 1]) && *x != "pr")
            && !t.starts_with('"')
            && quoted(t) != t
        {
            out.push_str(&quoted(t));
            out.push(' ');
            changed = true;
            i += 1;
            continue;
        }
        out.push_str(t);
        if !matches!(t, "(" | "[") && !tokens.get(i + 1).is_some_and(|n| matches!(*n, ")" | "]") || n.starts_with('.'))
        {
            out.push(' ');
        }
        i += 1;
    }
    changed.then(|| out.trim().to_string())
}

/// A comparison value as the grammar wants it: literals as they are, a bare word quoted.
fn quoted(v: &str) -> String {
    let literal = v.starts_with('"')
        || ["true", "false", "null"].iter().any(|l| l.eq_ignore_ascii_case(v))
        || v.parse::<f64>().is_ok();
    if literal { v.to_string() } else { format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")) }
}

/// Words, string literals (kept whole) and brackets of a filter.
fn tokens(s: &str) -> Vec<&str> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            c if c.is_ascii_whitespace() => i += 1,
            b'(' | b')' | b'[' | b']' => {
                out.push(&s[i..i + 1]);
                i += 1;
            }
            b'"' => {
                let start = i;
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i = (i + 1).min(b.len());
                out.push(&s[start..i]);
            }
            _ => {
                let start = i;
                while i < b.len() && !b[i].is_ascii_whitespace() && !matches!(b[i], b'(' | b')' | b'[' | b']' | b'"') {
                    i += 1;
                }
                out.push(&s[start..i]);
            }
        }
    }
    out
}

/// `name[.sub] eq "value"` with a plain attribute name and a string holding no
/// escape, exactly as the general parser would read it; `None` for anything else.
fn simple_equality(s: &str) -> Option<Scim> {
    let s = s.trim();
    let (path, rest) = s.split_once(char::is_whitespace)?;
    let rest = rest.trim_start();
    let op = rest.get(..2)?;
    if !op.eq_ignore_ascii_case("eq") {
        return None;
    }
    let rest = rest.get(2..)?;
    if !rest.starts_with(char::is_whitespace) {
        return None;
    }
    let value = rest.trim_start().strip_prefix('"')?.strip_suffix('"')?;
    if value.contains(['"', '\\']) || value.chars().any(char::is_control) {
        return None;
    }
    let plain = |n: &str| {
        let mut chars = n.chars();
        chars.next().is_some_and(|c| c.is_ascii_alphabetic())
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    let (name, sub) = match path.split_once('.') {
        Some((name, sub)) => (name, Some(sub)),
        None => (path, None),
    };
    if !plain(name) || !sub.is_none_or(plain) {
        return None;
    }
    let attr = AttrPath { uri: None, name: name.to_string(), sub_attr: sub.map(str::to_string) };
    Some(Scim::Attr(AttrExp::Comparison(attr, CompareOp::Eq, CompValue::Str(value.to_string()))))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_equality_fast_path_reads_filters_as_the_general_parser_does() {
        for s in [
            r#"userName eq "jdupont""#,
            r#"  userName   EQ   "Jean Dupont"  "#,
            r#"name.familyName eq "Dupré""#,
            r#"externalId eq """#,
            r#"emails.value eq "a@b.fr""#,
        ] {
            let general: Scim = s.parse().unwrap();
            assert_eq!(simple_equality(s), Some(general), "{s}");
        }
    }

    #[test]
    fn the_forms_entra_id_sends_outside_the_grammar_are_read_as_it_means_them() {
        let read = |s: &str| parse(s).unwrap();
        assert_eq!(
            read(r#"emails[type eq "work"].value eq "a@b.fr""#),
            read(r#"emails[type eq "work" and value eq "a@b.fr"]"#)
        );
        assert_eq!(
            read(r#"userName eq "x" and emails[type eq "work"].value co "@b.fr""#),
            read(r#"userName eq "x" and emails[type eq "work" and value co "@b.fr"]"#)
        );
        assert_eq!(read("externalId eq jyoung"), read(r#"externalId eq "jyoung""#));
        assert_eq!(read("active eq true"), read("active eq true"));
        assert!(parse("userName eq").is_err());
        assert!(parse(r#"emails[type eq "work"].value"#).is_err());
    }

    #[test]
    fn anything_but_a_plain_equality_goes_to_the_general_parser() {
        for s in [
            r#"userName eq "a\"b""#,
            r#"userName eq "a\\b""#,
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName eq "x""#,
            r#"userName eq "x" and active eq true"#,
            r#"userName eq"x""#,
            r#"userName ne "x""#,
            r#"active eq true"#,
            r#"userName eq "x"#,
        ] {
            assert_eq!(simple_equality(s), None, "{s}");
        }
    }
}
