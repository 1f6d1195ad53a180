//! The policy file: an ordered list of rules, each granting rights to some
//! identities over some entries and attributes. Rules only grant; what no
//! rule grants is refused. Places may be relative to the directory suffix
//! (`{suffix}`), to the organisation an entry belongs to (`{org}`), or to the
//! identity's own entry (`{self}`), so a new organisation needs no edit.

use serde::Deserialize;

use super::{Attrs, Place, Reach, Rights, Rule, Who};
use crate::directory::{DirectoryError, Dn, Filter, Result, Schema};

/// The two policies shipped with the server (DESIGN.md "Access").
pub const BUILTIN: &[(&str, &str)] = &[
    ("cig", include_str!("../../../schema/policy/cig.toml")),
    ("baseline", include_str!("../../../schema/policy/baseline.toml")),
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    name: String,
    #[serde(default)]
    #[allow(dead_code)]
    description: String,
    #[serde(default, rename = "rule")]
    rules: Vec<RuleFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    #[serde(default)]
    description: String,
    who: Vec<String>,
    target: String,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    filter: Option<String>,
    #[serde(default)]
    attrs: Option<Vec<String>>,
    #[serde(default)]
    except: Vec<String>,
    rights: Vec<String>,
    #[serde(default)]
    org: Option<String>,
    #[serde(default)]
    values: Option<String>,
    #[serde(default)]
    subscribed: Option<String>,
}

/// A compiled policy.
#[derive(Debug)]
pub struct Policy {
    pub name: String,
    pub(super) rules: Vec<Rule>,
}

impl Policy {
    /// Every attribute a rule's filter tests, as the filters name them: what
    /// a search must read of an entry to decide whether it may be seen.
    pub fn filter_attributes(&self) -> Vec<String> {
        let mut out = Vec::new();
        for f in self.rules.iter().filter_map(|r| r.filter.as_ref()) {
            f.attributes(&mut out);
        }
        out
    }
}

impl Policy {
    /// A shipped policy by name, or a TOML file by path.
    pub fn load(name_or_path: &str, schema: &Schema, suffix: &Dn) -> Result<Policy> {
        let text = match BUILTIN.iter().find(|(n, _)| *n == name_or_path) {
            Some((_, text)) => (*text).to_string(),
            None => std::fs::read_to_string(name_or_path).map_err(|e| {
                DirectoryError::Internal(format!(
                    "access policy '{name_or_path}': not a shipped policy (cig, baseline) and not a readable file: {e}"
                ))
            })?,
        };
        Policy::parse(&text, schema, suffix).map_err(|e| match e {
            DirectoryError::Internal(m) => DirectoryError::Internal(format!("access policy '{name_or_path}': {m}")),
            other => other,
        })
    }

    pub fn parse(text: &str, schema: &Schema, suffix: &Dn) -> Result<Policy> {
        let file: File = toml::from_str(text).map_err(|e| DirectoryError::Internal(e.to_string()))?;
        let suffix_ndn = schema.normalize_dn(suffix)?;
        let mut rules = Vec::with_capacity(file.rules.len());
        for (i, r) in file.rules.into_iter().enumerate() {
            let bad = |why: String| DirectoryError::Internal(format!("rule {}: {why}", i + 1));
            let who = r.who.iter().map(|w| who(w, schema, &suffix_ndn).map_err(bad)).collect::<Result<Vec<_>>>()?;
            let target = place(&r.target, schema, &suffix_ndn).map_err(bad)?;
            let scope = match r.scope.as_deref() {
                None | Some("subtree") => Reach::Subtree,
                Some("base") => Reach::Base,
                Some("children") => Reach::Children,
                Some("ancestors") => Reach::Ancestors,
                Some(other) => return Err(bad(format!("unknown scope '{other}'"))),
            };
            let filter = r.filter.as_deref().map(Filter::parse).transpose()?;
            let names = |list: &[String]| -> Result<Vec<String>> {
                list.iter()
                    .map(|a| {
                        schema
                            .attr_of(a)
                            .map(|(_, at)| at.lname.clone())
                            .map_err(|_| bad(format!("unknown attribute '{a}'")))
                    })
                    .collect()
            };
            let attrs = match &r.attrs {
                None => Attrs { all: true, names: Vec::new(), except: names(&r.except)? },
                Some(list) if list.iter().any(|a| a == "*") => {
                    Attrs { all: true, names: Vec::new(), except: names(&r.except)? }
                }
                Some(list) => Attrs { all: false, names: names(list)?, except: names(&r.except)? },
            };
            let mut rights = Rights::NONE;
            for right in &r.rights {
                rights = rights.with(match right.as_str() {
                    "read" => Rights::READ.with(Rights::BROWSE),
                    "browse" => Rights::BROWSE,
                    "write" => Rights::WRITE,
                    "add" => Rights::ADD,
                    "delete" => Rights::DELETE,
                    other => return Err(bad(format!("unknown right '{other}'"))),
                });
            }
            let org_from_value = match r.org.as_deref() {
                None | Some("target") => false,
                Some("value") => true,
                Some(other) => return Err(bad(format!("org must be 'target' or 'value', not '{other}'"))),
            };
            let values = r.values.as_deref().map(|v| place(v, schema, &suffix_ndn).map_err(bad)).transpose()?;
            let subscribed = r
                .subscribed
                .as_deref()
                .map(|a| {
                    schema
                        .attr_of(a)
                        .map(|(_, at)| at.lname.clone())
                        .map_err(|_| bad(format!("unknown attribute '{a}'")))
                })
                .transpose()?;
            rules.push(Rule {
                description: r.description,
                who,
                target,
                scope,
                filter,
                attrs,
                rights,
                org_from_value,
                values,
                subscribed,
            });
        }
        Ok(Policy { name: file.name, rules })
    }
}

fn relative(s: &str, schema: &Schema) -> Result<String, String> {
    let s = s.trim().trim_end_matches(',');
    if s.is_empty() {
        return Ok(String::new());
    }
    let dn = Dn::parse(s).map_err(|e| e.to_string())?;
    schema.normalize_dn(&dn).map_err(|e| e.to_string())
}

fn join(head: &str, tail: &str) -> String {
    match (head.is_empty(), tail.is_empty()) {
        (true, _) => tail.to_string(),
        (_, true) => head.to_string(),
        _ => format!("{head},{tail}"),
    }
}

/// `*`, `{self}`, `{outside-org}`, `<dn>,{org}`, `<dn>,{suffix}` or an absolute DN.
fn place(s: &str, schema: &Schema, suffix_ndn: &str) -> Result<Place, String> {
    let s = s.trim();
    Ok(match s {
        "*" => Place::Any,
        "{self}" => Place::Own,
        "{outside-org}" => Place::OutsideOrg,
        _ => {
            if let Some(head) = s.strip_suffix("{org}") {
                Place::Org(relative(head, schema)?)
            } else if let Some(head) = s.strip_suffix("{suffix}") {
                Place::Absolute(join(&relative(head, schema)?, suffix_ndn))
            } else {
                Place::Absolute(relative(s, schema)?)
            }
        }
    })
}

fn who(s: &str, schema: &Schema, suffix_ndn: &str) -> Result<Who, String> {
    let s = s.trim();
    let dn_of = |rest: &str| match place(rest, schema, suffix_ndn)? {
        Place::Absolute(ndn) => Ok(ndn),
        _ => Err(format!("'{s}' needs a DN")),
    };
    Ok(match s {
        "anonymous" => Who::Anonymous,
        "authenticated" => Who::Authenticated,
        "admin" => Who::Admin,
        "self" => Who::Own,
        "token:cig" => Who::CigToken,
        "token:org" => Who::OrgToken,
        _ => {
            if let Some(rest) = s.strip_prefix("org-member:") {
                Who::OrgMember(relative(rest, schema)?)
            } else if let Some(rest) = s.strip_prefix("member:") {
                Who::Member(dn_of(rest)?)
            } else if let Some(rest) = s.strip_prefix("under:") {
                Who::Under(dn_of(rest)?)
            } else {
                return Err(format!("unknown identity '{s}'"));
            }
        }
    })
}
