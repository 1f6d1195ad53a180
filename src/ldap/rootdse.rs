//! The root DSE (RFC 4512 §5.1) and the subschema subentry (RFC 4512 §4.2),
//! readable anonymously so that generic tools can discover the server.

use super::oids;
use crate::directory::{Directory, Dn, Entry, Rdn};

pub const SUBSCHEMA_DN: &str = "cn=Subschema";

pub fn root_dse(dir: &Directory, sasl_mechanisms: &[&str]) -> Entry {
    let mut e = Entry::new(Dn::root())
        .with("objectClass", ["top"])
        .with("namingContexts", [dir.suffix().to_string()])
        .with("supportedLDAPVersion", ["3"])
        .with("supportedControl", oids::CONTROLS.iter().copied())
        .with("supportedExtension", oids::EXTENSIONS.iter().copied())
        .with("supportedFeatures", oids::FEATURES.iter().copied())
        .with("subschemaSubentry", [SUBSCHEMA_DN])
        .with("vendorName", ["Convergences"])
        .with("vendorVersion", [concat!("Convergences ", env!("CARGO_PKG_VERSION"))]);
    if !sasl_mechanisms.is_empty() {
        e = e.with("supportedSASLMechanisms", sasl_mechanisms.iter().copied());
    }
    e
}

/// The syntaxes the server knows, RFC 4517 §3.3 (OID, description).
const SYNTAXES: &[(&str, &str)] = &[
    ("1.3.6.1.4.1.1466.115.121.1.3", "Attribute Type Description"),
    ("1.3.6.1.4.1.1466.115.121.1.5", "Binary"),
    ("1.3.6.1.4.1.1466.115.121.1.6", "Bit String"),
    ("1.3.6.1.4.1.1466.115.121.1.7", "Boolean"),
    ("1.3.6.1.4.1.1466.115.121.1.8", "Certificate"),
    ("1.3.6.1.4.1.1466.115.121.1.11", "Country String"),
    ("1.3.6.1.4.1.1466.115.121.1.12", "DN"),
    ("1.3.6.1.4.1.1466.115.121.1.15", "Directory String"),
    ("1.3.6.1.4.1.1466.115.121.1.22", "Facsimile Telephone Number"),
    ("1.3.6.1.4.1.1466.115.121.1.24", "Generalized Time"),
    ("1.3.6.1.4.1.1466.115.121.1.26", "IA5 String"),
    ("1.3.6.1.4.1.1466.115.121.1.27", "INTEGER"),
    ("1.3.6.1.4.1.1466.115.121.1.28", "JPEG"),
    ("1.3.6.1.4.1.1466.115.121.1.34", "Name And Optional UID"),
    ("1.3.6.1.4.1.1466.115.121.1.36", "Numeric String"),
    ("1.3.6.1.4.1.1466.115.121.1.37", "Object Class Description"),
    ("1.3.6.1.4.1.1466.115.121.1.38", "OID"),
    ("1.3.6.1.4.1.1466.115.121.1.40", "Octet String"),
    ("1.3.6.1.4.1.1466.115.121.1.41", "Postal Address"),
    ("1.3.6.1.4.1.1466.115.121.1.44", "Printable String"),
    ("1.3.6.1.4.1.1466.115.121.1.50", "Telephone Number"),
    ("1.3.6.1.4.1.1466.115.121.1.54", "LDAP Syntax Description"),
    ("1.3.6.1.1.16.1", "UUID"),
];

/// The matching rules the server implements (RFC 4517 §4.2, RFC 4530): OID, name, syntax.
const MATCHING_RULES: &[(&str, &str, &str)] = &[
    ("2.5.13.0", "objectIdentifierMatch", "1.3.6.1.4.1.1466.115.121.1.38"),
    ("2.5.13.1", "distinguishedNameMatch", "1.3.6.1.4.1.1466.115.121.1.12"),
    ("2.5.13.2", "caseIgnoreMatch", "1.3.6.1.4.1.1466.115.121.1.15"),
    ("2.5.13.3", "caseIgnoreOrderingMatch", "1.3.6.1.4.1.1466.115.121.1.15"),
    ("2.5.13.4", "caseIgnoreSubstringsMatch", "1.3.6.1.4.1.1466.115.121.1.58"),
    ("2.5.13.5", "caseExactMatch", "1.3.6.1.4.1.1466.115.121.1.15"),
    ("2.5.13.6", "caseExactOrderingMatch", "1.3.6.1.4.1.1466.115.121.1.15"),
    ("2.5.13.7", "caseExactSubstringsMatch", "1.3.6.1.4.1.1466.115.121.1.58"),
    ("2.5.13.8", "numericStringMatch", "1.3.6.1.4.1.1466.115.121.1.36"),
    ("2.5.13.9", "numericStringOrderingMatch", "1.3.6.1.4.1.1466.115.121.1.36"),
    ("2.5.13.10", "numericStringSubstringsMatch", "1.3.6.1.4.1.1466.115.121.1.58"),
    ("2.5.13.13", "booleanMatch", "1.3.6.1.4.1.1466.115.121.1.7"),
    ("2.5.13.14", "integerMatch", "1.3.6.1.4.1.1466.115.121.1.27"),
    ("2.5.13.15", "integerOrderingMatch", "1.3.6.1.4.1.1466.115.121.1.27"),
    ("2.5.13.17", "octetStringMatch", "1.3.6.1.4.1.1466.115.121.1.40"),
    ("2.5.13.18", "octetStringOrderingMatch", "1.3.6.1.4.1.1466.115.121.1.40"),
    ("2.5.13.20", "telephoneNumberMatch", "1.3.6.1.4.1.1466.115.121.1.50"),
    ("2.5.13.21", "telephoneNumberSubstringsMatch", "1.3.6.1.4.1.1466.115.121.1.58"),
    ("2.5.13.23", "uniqueMemberMatch", "1.3.6.1.4.1.1466.115.121.1.34"),
    ("2.5.13.27", "generalizedTimeMatch", "1.3.6.1.4.1.1466.115.121.1.24"),
    ("2.5.13.28", "generalizedTimeOrderingMatch", "1.3.6.1.4.1.1466.115.121.1.24"),
    ("1.3.6.1.4.1.1466.109.114.1", "caseExactIA5Match", "1.3.6.1.4.1.1466.115.121.1.26"),
    ("1.3.6.1.4.1.1466.109.114.2", "caseIgnoreIA5Match", "1.3.6.1.4.1.1466.115.121.1.26"),
    ("1.3.6.1.4.1.1466.109.114.3", "caseIgnoreIA5SubstringsMatch", "1.3.6.1.4.1.1466.115.121.1.58"),
    ("1.3.6.1.1.16.2", "uuidMatch", "1.3.6.1.1.16.1"),
    ("1.3.6.1.1.16.3", "uuidOrderingMatch", "1.3.6.1.1.16.1"),
];

pub fn subschema(dir: &Directory) -> Entry {
    let schema = dir.schema();
    let mut e = Entry::new(Dn::root().child(Rdn::single("cn", "Subschema")))
        .with("objectClass", ["top", "subschema", "extensibleObject"])
        .with("cn", ["Subschema"]);
    e.set("attributeTypes", schema.attrs().iter().map(|a| a.def.to_string().into_bytes()).collect());
    e.set("objectClasses", schema.classes().iter().map(|c| c.def.to_string().into_bytes()).collect());
    e.set("ldapSyntaxes", SYNTAXES.iter().map(|(oid, d)| format!("( {oid} DESC '{d}' )").into_bytes()).collect());
    e.set(
        "matchingRules",
        MATCHING_RULES.iter().map(|(oid, n, syn)| format!("( {oid} NAME '{n}' SYNTAX {syn} )").into_bytes()).collect(),
    );
    e.set("matchingRuleUse", matching_rule_use(dir));
    // The schema is read at start and changes only with a restart: clients
    // that cache it (Apache Directory Studio) compare these to know.
    let loaded = SCHEMA_LOADED.get_or_init(crate::directory::schema::syntax::now_generalized).clone();
    e.set("createTimestamp", vec![loaded.clone().into_bytes()]);
    e.set("modifyTimestamp", vec![loaded.into_bytes()]);
    e
}

/// When this process first published its schema.
static SCHEMA_LOADED: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// RFC 4512 §4.1.4: for each matching rule, the attribute types it applies
/// to (by their EQUALITY, ORDERING or SUBSTR, inherited from SUP).
fn matching_rule_use(dir: &Directory) -> Vec<Vec<u8>> {
    let schema = dir.schema();
    let rule_of = |a: &crate::directory::schema::Attr,
                   pick: fn(&crate::directory::schema::AttributeType) -> Option<&String>| {
        let mut cur = Some(a);
        for _ in 0..16 {
            let at = cur?;
            if let Some(r) = pick(&at.def) {
                return Some(r.to_ascii_lowercase());
            }
            cur = at.def.sup.as_deref().and_then(|s| schema.attr_id(s)).map(|i| schema.attr(i));
        }
        None
    };
    let mut out = Vec::new();
    for (oid, name, _) in MATCHING_RULES {
        let lname = name.to_ascii_lowercase();
        let applies: Vec<&str> = schema
            .attrs()
            .iter()
            .filter(|a| {
                [
                    rule_of(a, |d| d.equality.as_ref()),
                    rule_of(a, |d| d.ordering.as_ref()),
                    rule_of(a, |d| d.substr.as_ref()),
                ]
                .iter()
                .any(|r| r.as_deref() == Some(lname.as_str()) || r.as_deref() == Some(*oid))
            })
            .map(|a| a.name.as_str())
            .collect();
        let list = match applies.as_slice() {
            [] => continue,
            [one] => (*one).to_string(),
            many => format!("( {} )", many.join(" $ ")),
        };
        out.push(format!("( {oid} NAME '{name}' APPLIES {list} )").into_bytes());
    }
    out
}

/// Attribute selection for these two special entries. Their attributes
/// are operational (RFC 4512 §5.1, §4.2) but for `objectClass` and the
/// subschema's `cn`: no list or `*` gives those, `+` every operational one,
/// `1.1` nothing, names those — what slapd answers.
pub fn select(mut e: Entry, attrs: &[String], types_only: bool) -> Entry {
    let user = |name: &str| name.eq_ignore_ascii_case("objectClass") || name.eq_ignore_ascii_case("cn");
    let all_user = attrs.is_empty() || attrs.iter().any(|a| a == "*");
    let all_operational = attrs.iter().any(|a| a == "+");
    e.attrs.retain(|a| {
        let by_kind = if user(&a.name) { all_user } else { all_operational };
        by_kind || attrs.iter().any(|want| want.eq_ignore_ascii_case(&a.name))
    });
    if types_only {
        for a in &mut e.attrs {
            a.values.clear();
        }
    }
    e
}
