//! SCIM filters evaluated on rendered documents (RFC 7644 §3.4.2.2), with
//! each attribute's type and `caseExact` from the mapping table: what the
//! directory's indexes cannot decide exactly (an email's `type`, a value
//! kept only as JSON) is decided here, on the candidates they return. Also
//! the sort keys of `sortBy` (§3.4.2.3) and the value filters of PATCH paths.

use std::cmp::Ordering;

use scim_v2::filter::{AttrExp, AttrPath, CompValue, CompareOp, Filter, ValFilter};
use serde_json::{Map, Value};

use super::mapping::{Attr, Path, Resource, Type, generalized_time};
use super::parse::get_ci;

/// The object a path's attribute lives in: the document, or its extension.
fn container<'a>(doc: &'a Value, path: &Path) -> Option<&'a Map<String, Value>> {
    let root = doc.as_object()?;
    match path.extension {
        None => Some(root),
        Some(ext) => get_ci(root, ext.id)?.as_object(),
    }
}

/// The values a path designates in a document: of a multi-valued
/// attribute, each element's sub-attribute (its `value` when the path names
/// none, RFC 7644 §3.4.2.2).
pub fn values_at<'a>(doc: &'a Value, path: &Path) -> Vec<&'a Value> {
    let Some(obj) = container(doc, path) else { return Vec::new() };
    let Some(v) = get_ci(obj, path.attr.name) else { return Vec::new() };
    let sub = path.sub.map(|s| s.name).or((path.attr.ty == Type::Complex).then_some("value"));
    match (v, sub) {
        (Value::Array(items), Some(s)) => {
            items.iter().filter_map(|i| i.as_object().and_then(|o| get_ci(o, s))).collect()
        }
        (Value::Array(items), None) => items.iter().collect(),
        (Value::Object(o), Some(s)) => get_ci(o, s).into_iter().collect(),
        (v, _) => vec![v],
    }
}

fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn comp_text(v: &CompValue) -> Option<String> {
    match v {
        CompValue::Str(s) => Some(s.clone()),
        CompValue::True => Some("true".into()),
        CompValue::False => Some("false".into()),
        CompValue::Number(n) => Some(n.to_string()),
        CompValue::Null => None,
    }
}

/// A value as it compares for its attribute: dateTimes in UTC, strings
/// folded unless caseExact.
fn comparable(attr: &Attr, s: &str) -> String {
    match attr.ty {
        Type::DateTime => generalized_time(s).unwrap_or_else(|| s.to_string()),
        _ if attr.case_exact => s.to_string(),
        _ => s.to_lowercase(),
    }
}

/// One comparison of RFC 7644 §3.4.2.2 Table 3.
pub fn compare(attr: &Attr, actual: &Value, op: &CompareOp, wanted: &CompValue) -> bool {
    if attr.ty == Type::Boolean {
        let a = match actual {
            Value::Bool(b) => Some(*b),
            Value::String(s) => s.parse().ok(),
            _ => None,
        };
        let w = match wanted {
            CompValue::True => Some(true),
            CompValue::False => Some(false),
            CompValue::Str(s) => s.to_ascii_lowercase().parse().ok(),
            _ => None,
        };
        return match op {
            CompareOp::Eq => a.is_some() && a == w,
            CompareOp::Ne => a != w,
            _ => false,
        };
    }
    let (Some(a), Some(w)) = (text_of(actual), comp_text(wanted)) else {
        return matches!(op, CompareOp::Ne);
    };
    let (a, w) = (comparable(attr, &a), comparable(attr, &w));
    match op {
        CompareOp::Eq => a == w,
        CompareOp::Ne => a != w,
        CompareOp::Co => a.contains(&w),
        CompareOp::Sw => a.starts_with(&w),
        CompareOp::Ew => a.ends_with(&w),
        CompareOp::Gt => a > w,
        CompareOp::Ge => a >= w,
        CompareOp::Lt => a < w,
        CompareOp::Le => a <= w,
    }
}

fn present(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        _ => true,
    }
}

fn resolve(res: &Resource, p: &AttrPath) -> Option<Path> {
    res.resolve(p.uri.as_deref(), &p.name, p.sub_attr.as_deref())
}

fn attr_exp(res: &Resource, doc: &Value, e: &AttrExp) -> bool {
    let (p, cmp) = match e {
        AttrExp::Present(p) => (p, None),
        AttrExp::Comparison(p, op, v) => (p, Some((op, v))),
    };
    let Some(path) = resolve(res, p) else { return false };
    let leaf = match (path.sub, path.attr.ty) {
        (Some(s), _) => s,
        (None, Type::Complex) => path.attr.sub("value").unwrap_or(path.attr),
        (None, _) => path.attr,
    };
    let values = values_at(doc, &path);
    match cmp {
        None => values.iter().any(|v| present(v)),
        // "ne" holds when no value is equal (also when there is none).
        Some((CompareOp::Ne, w)) => !values.iter().any(|v| compare(leaf, v, &CompareOp::Eq, w)),
        Some((op, w)) => values.iter().any(|v| compare(leaf, v, op, w)),
    }
}

/// Whether one element of a multi-valued attribute matches a value filter.
pub fn element_matches(parent: &Attr, elem: &Value, f: &ValFilter) -> bool {
    match f {
        ValFilter::Not(x) => !element_matches(parent, elem, x),
        ValFilter::And(xs) => xs.iter().all(|x| element_matches(parent, elem, x)),
        ValFilter::Or(xs) => xs.iter().any(|x| element_matches(parent, elem, x)),
        ValFilter::Attr(e) => {
            let (p, cmp) = match e {
                AttrExp::Present(p) => (p, None),
                AttrExp::Comparison(p, op, v) => (p, Some((op, v))),
            };
            let Some(sub) = parent.sub(&p.name) else { return false };
            let actual = elem.as_object().and_then(|o| get_ci(o, sub.name));
            match (cmp, actual) {
                (None, a) => a.is_some_and(present),
                (Some((CompareOp::Ne, w)), a) => !a.is_some_and(|a| compare(sub, a, &CompareOp::Eq, w)),
                (Some((op, w)), Some(a)) => compare(sub, a, op, w),
                (Some(_), None) => false,
            }
        }
    }
}

/// Whether a rendered resource matches a filter.
pub fn matches(res: &Resource, doc: &Value, f: &Filter) -> bool {
    match f {
        Filter::Attr(e) => attr_exp(res, doc, e),
        Filter::ValuePath(vp) => {
            let Some(path) = resolve(res, &vp.attr) else { return false };
            let Some(obj) = container(doc, &path) else { return false };
            match get_ci(obj, path.attr.name) {
                Some(Value::Array(items)) => items.iter().any(|i| element_matches(path.attr, i, &vp.filter)),
                Some(v @ Value::Object(_)) => element_matches(path.attr, v, &vp.filter),
                _ => false,
            }
        }
        Filter::Not(x) => !matches(res, doc, x),
        Filter::And(xs) => xs.iter().all(|x| matches(res, doc, x)),
        Filter::Or(xs) => xs.iter().any(|x| matches(res, doc, x)),
    }
}

/// What a resource sorts by (RFC 7644 §3.4.2.3): the path's value, of a
/// multi-valued attribute its primary element's (else the first).
pub fn sort_key(doc: &Value, path: &Path) -> Option<String> {
    let obj = container(doc, path)?;
    let v = get_ci(obj, path.attr.name)?;
    let sub = path.sub.map(|s| s.name).or((path.attr.ty == Type::Complex).then_some("value"));
    let v = match (v, sub) {
        (Value::Array(items), s) => {
            let first = items.iter().find(|i| i.get("primary") == Some(&Value::Bool(true))).or(items.first())?;
            match s {
                Some(s) => get_ci(first.as_object()?, s)?,
                None => first,
            }
        }
        (Value::Object(o), Some(s)) => get_ci(o, s)?,
        (v, _) => v,
    };
    text_of(v).map(|t| comparable(path.leaf(), &t))
}

/// Order two sort keys; resources without one go last (§3.4.2.3).
pub fn order(a: &Option<String>, b: &Option<String>, descending: bool) -> Ordering {
    match (a, b) {
        (Some(x), Some(y)) => {
            if descending {
                y.cmp(x)
            } else {
                x.cmp(y)
            }
        }
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}
