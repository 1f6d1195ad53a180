//! ldap3_proto types ⇄ directory types.

use ldap3_proto::proto::LdapFilter;

use crate::directory::Filter;
use crate::directory::filter::Substrings;

/// Lower an LDAP filter into the directory's filter language.
pub fn filter(f: &LdapFilter) -> Filter {
    let b = |s: &String| s.as_bytes().to_vec();
    match f {
        LdapFilter::And(v) => Filter::And(v.iter().map(filter).collect()),
        LdapFilter::Or(v) => Filter::Or(v.iter().map(filter).collect()),
        LdapFilter::Not(x) => Filter::Not(Box::new(filter(x))),
        LdapFilter::Equality(a, v) => Filter::Equality(a.clone(), b(v)),
        LdapFilter::Substring(a, s) => Filter::Substrings(
            a.clone(),
            Substrings {
                initial: s.initial.as_ref().map(b),
                any: s.any.iter().map(b).collect(),
                final_: s.final_.as_ref().map(b),
            },
        ),
        LdapFilter::GreaterOrEqual(a, v) => Filter::GreaterOrEqual(a.clone(), b(v)),
        LdapFilter::LessOrEqual(a, v) => Filter::LessOrEqual(a.clone(), b(v)),
        LdapFilter::Present(a) => Filter::Present(a.clone()),
        LdapFilter::Approx(a, v) => Filter::Approx(a.clone(), b(v)),
        LdapFilter::Extensible(m) => Filter::Extensible {
            rule: m.matching_rule.clone(),
            attr: m.type_.clone(),
            value: m.match_value.as_bytes().to_vec(),
            dn_attributes: m.dn_attributes,
        },
    }
}
