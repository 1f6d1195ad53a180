//! SCIM filters (RFC 7644 §3.4.2.2, parsed by `scim_v2`) lowered into the
//! directory's filter language, so that they use the same indexes as LDAP.

use scim_v2::filter::{AttrExp, AttrPath, CompValue, CompareOp, Filter as Scim, ValFilter};

use super::ScimError;
use super::mapping::{AGENT, ENTERPRISE, USER};
use crate::directory::filter::Substrings;
use crate::directory::{Directory, Filter, Scope, SearchRequest};

/// The LDAP attribute(s) a User attribute path names.
fn user_attr(path: &AttrPath) -> Option<Vec<&'static str>> {
    let uri = path.uri.as_deref().map(str::to_ascii_lowercase);
    let name = path.name.to_ascii_lowercase();
    let sub = path.sub_attr.as_deref().map(str::to_ascii_lowercase);
    let attrs: &[&str] = match (uri.as_deref(), name.as_str(), sub.as_deref()) {
        (Some(u), n, _) if u == ENTERPRISE.to_ascii_lowercase() => match n {
            "employeenumber" => &["employeeNumber"],
            "department" => &["departmentNumber"],
            _ => return None,
        },
        (Some(u), _, _) if u == AGENT.to_ascii_lowercase() => return None,
        (Some(u), _, _) if u != USER.to_ascii_lowercase() => return None,
        (_, "id", None) => &["entryUUID"],
        (_, "username", None) => &["uid"],
        (_, "externalid", None) => &["cigExternalId"],
        (_, "displayname", None) => &["displayName"],
        (_, "title", None) => &["title"],
        (_, "active", None) => &["cigActive"],
        (_, "name", Some("givenname")) => &["givenName"],
        (_, "name", Some("familyname")) => &["sn"],
        (_, "name", Some("formatted")) => &["cn"],
        (_, "emails", None | Some("value")) => &["mail"],
        (_, "phonenumbers", None | Some("value")) => &["telephoneNumber", "mobile"],
        (_, "meta", Some("created")) => &["createTimestamp"],
        (_, "meta", Some("lastmodified")) => &["modifyTimestamp"],
        _ => return None,
    };
    Some(attrs.to_vec())
}

/// `2026-11-23T21:30:00Z` → `20261123213000Z`, for comparisons on meta times.
fn generalized(iso: &str) -> String {
    iso.chars().filter(|c| c.is_ascii_digit()).take(14).collect::<String>() + "Z"
}

fn value(attr: &str, v: &CompValue) -> Result<Vec<u8>, ScimError> {
    Ok(match v {
        CompValue::Str(s) if attr.ends_with("Timestamp") => generalized(s).into_bytes(),
        CompValue::Str(s) => s.clone().into_bytes(),
        CompValue::True => b"TRUE".to_vec(),
        CompValue::False => b"FALSE".to_vec(),
        CompValue::Number(n) => n.to_string().into_bytes(),
        CompValue::Null => return Err(ScimError::invalid_filter("comparison with null is not supported")),
    })
}

fn comparison(attr: &str, op: &CompareOp, v: &CompValue) -> Result<Filter, ScimError> {
    let a = attr.to_string();
    let val = value(attr, v)?;
    let sub = |s: Substrings| Filter::Substrings(a.clone(), s);
    Ok(match op {
        CompareOp::Eq => Filter::Equality(a, val),
        CompareOp::Ne => Filter::Not(Box::new(Filter::Equality(a, val))),
        CompareOp::Co => sub(Substrings { initial: None, any: vec![val], final_: None }),
        CompareOp::Sw => sub(Substrings { initial: Some(val), any: vec![], final_: None }),
        CompareOp::Ew => sub(Substrings { initial: None, any: vec![], final_: Some(val) }),
        CompareOp::Ge => Filter::GreaterOrEqual(a, val),
        CompareOp::Le => Filter::LessOrEqual(a, val),
        CompareOp::Gt => Filter::And(vec![
            Filter::GreaterOrEqual(a.clone(), val.clone()),
            Filter::Not(Box::new(Filter::Equality(a, val))),
        ]),
        CompareOp::Lt => Filter::And(vec![
            Filter::LessOrEqual(a.clone(), val.clone()),
            Filter::Not(Box::new(Filter::Equality(a, val))),
        ]),
    })
}

fn attr_exp(e: &AttrExp, parent: Option<&AttrPath>) -> Result<Filter, ScimError> {
    let (path, op) = match e {
        AttrExp::Present(p) => (p, None),
        AttrExp::Comparison(p, op, v) => (p, Some((op, v))),
    };
    // Inside a value path (`emails[type eq "work"]`), names are sub-attributes of the parent.
    let full = match parent {
        Some(par) => {
            let sub = path.name.to_ascii_lowercase();
            if sub == "type" || sub == "primary" || sub == "display" {
                // Every value is of the kinds we store; these select nothing away.
                return Ok(Filter::And(Vec::new()));
            }
            AttrPath { uri: par.uri.clone(), name: par.name.clone(), sub_attr: Some(path.name.clone()) }
        }
        None => path.clone(),
    };
    let attrs =
        user_attr(&full).ok_or_else(|| ScimError::invalid_filter(format!("cannot filter on '{}'", path.name)))?;
    let mut each = Vec::new();
    for a in attrs {
        each.push(match op {
            None => Filter::Present(a.to_string()),
            Some((op, v)) => comparison(a, op, v)?,
        });
    }
    Ok(if each.len() == 1 { each.remove(0) } else { Filter::Or(each) })
}

fn val_filter(f: &ValFilter, parent: &AttrPath) -> Result<Filter, ScimError> {
    Ok(match f {
        ValFilter::Attr(e) => attr_exp(e, Some(parent))?,
        ValFilter::Not(x) => Filter::Not(Box::new(val_filter(x, parent)?)),
        ValFilter::And(xs) => Filter::And(xs.iter().map(|x| val_filter(x, parent)).collect::<Result<_, _>>()?),
        ValFilter::Or(xs) => Filter::Or(xs.iter().map(|x| val_filter(x, parent)).collect::<Result<_, _>>()?),
    })
}

/// Lower a SCIM User filter.
pub fn lower(f: &Scim) -> Result<Filter, ScimError> {
    Ok(match f {
        Scim::Attr(e) => attr_exp(e, None)?,
        Scim::ValuePath(vp) => val_filter(&vp.filter, &vp.attr)?,
        Scim::Not(x) => Filter::Not(Box::new(lower(x)?)),
        Scim::And(xs) => Filter::And(xs.iter().map(lower).collect::<Result<_, _>>()?),
        Scim::Or(xs) => Filter::Or(xs.iter().map(lower).collect::<Result<_, _>>()?),
    })
}

/// Parse and lower the `filter` query parameter.
pub fn parse(s: &str) -> Result<Filter, ScimError> {
    lower(&parse_scim(s)?)
}

/// Parse a SCIM filter. `attr eq "value"` — what Entra ID and Okta send before
/// every provisioning write — is read directly: the general parser costs tens
/// of microseconds a call, more than the lookup it serves.
fn parse_scim(s: &str) -> Result<Scim, ScimError> {
    if let Some(simple) = simple_equality(s) {
        return Ok(simple);
    }
    s.parse().map_err(|e| ScimError::invalid_filter(format!("bad filter '{s}': {e}")))
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

/// The LDAP attribute a Group attribute path names.
fn group_attr(path: &AttrPath) -> Option<Vec<&'static str>> {
    let name = path.name.to_ascii_lowercase();
    match (name.as_str(), path.sub_attr.as_deref()) {
        ("id", None) => Some(vec!["entryUUID"]),
        ("displayname", None) => Some(vec!["cn"]),
        ("members", None) | ("members", Some("value")) => Some(vec!["member"]),
        _ => None,
    }
}

/// `members[.value] eq "<user id>"`: the member's DN, looked up by its id.
fn member_equality(dir: &Directory, v: &CompValue) -> Result<Filter, ScimError> {
    let CompValue::Str(id) = v else { return Err(ScimError::invalid_filter("members are compared with a user id")) };
    let mut req = SearchRequest::new(
        dir.suffix().clone(),
        Scope::Sub,
        Filter::Equality("entryUUID".into(), id.clone().into_bytes()),
    );
    req.attrs = vec!["1.1".into()];
    let mut dns = Vec::new();
    // Only turns an id into a DN: what the caller may see is decided by the search it goes in.
    dir.search(&crate::directory::Principal::Server, &req, |e| {
        dns.push(e.dn.to_string());
        Ok(())
    })?;
    Ok(match dns.pop() {
        Some(dn) => Filter::Equality("member".into(), dn.into_bytes()),
        // No such user: nothing matches (an unknown attribute is Undefined).
        None => Filter::Or(Vec::new()),
    })
}

fn lower_group(f: &Scim, dir: &Directory) -> Result<Filter, ScimError> {
    Ok(match f {
        Scim::Attr(AttrExp::Comparison(p, CompareOp::Eq, v)) if p.name.eq_ignore_ascii_case("members") => {
            member_equality(dir, v)?
        }
        Scim::ValuePath(vp) if vp.attr.name.eq_ignore_ascii_case("members") => match vp.filter.as_ref() {
            ValFilter::Attr(AttrExp::Comparison(p, CompareOp::Eq, v)) if p.name.eq_ignore_ascii_case("value") => {
                member_equality(dir, v)?
            }
            _ => return Err(ScimError::invalid_filter("members[...] supports value eq \"<id>\"")),
        },
        Scim::Attr(e) => {
            let (path, op) = match e {
                AttrExp::Present(p) => (p, None),
                AttrExp::Comparison(p, op, v) => (p, Some((op, v))),
            };
            if path.name.eq_ignore_ascii_case("members") && op.is_some() {
                return Err(ScimError::invalid_filter("members are compared with eq and a user id"));
            }
            let attrs = group_attr(path)
                .ok_or_else(|| ScimError::invalid_filter(format!("cannot filter groups on '{}'", path.name)))?;
            let mut each = Vec::new();
            for a in attrs {
                each.push(match op {
                    None => Filter::Present(a.to_string()),
                    Some((op, v)) => comparison(a, op, v)?,
                });
            }
            if each.len() == 1 { each.remove(0) } else { Filter::Or(each) }
        }
        Scim::ValuePath(_) => return Err(ScimError::invalid_filter("this value path is not supported on groups")),
        Scim::Not(x) => Filter::Not(Box::new(lower_group(x, dir)?)),
        Scim::And(xs) => Filter::And(xs.iter().map(|x| lower_group(x, dir)).collect::<Result<_, _>>()?),
        Scim::Or(xs) => Filter::Or(xs.iter().map(|x| lower_group(x, dir)).collect::<Result<_, _>>()?),
    })
}

/// Parse and lower a Group `filter` (id, displayName, members / members.value).
pub fn parse_group(s: &str, dir: &Directory) -> Result<Filter, ScimError> {
    lower_group(&parse_scim(s)?, dir)
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
