//! The mapping tables written out as Markdown: the tables of scim/README.md.

use super::*;

/// Where each attribute of a resource lives, as a Markdown table (the one
/// in scim/README.md, which a test holds to this).
pub fn markdown(res: &Resource) -> String {
    let mut out = String::from("| SCIM attribute | LDAP | mutability | returned |\n|---|---|---|---|\n");
    let mut row = |path: String, attr: &Attr| {
        let home = match attr.home {
            Home::Server => "computed".to_string(),
            Home::Ldap(l) => format!("`{l}`"),
            Home::Required(l, _) => format!("`{l}` (filled when absent, noted in `cigScimFilled`)"),
            Home::Active(l) => format!(
                "`{l}` (`TRUE`/`FALSE`, absent: true); false outside `{}` … `{}`",
                lifecycle::START,
                lifecycle::END
            ),
            Home::Parts => "its sub-attributes".to_string(),
            Home::Password => "`userPassword` (hashed)".to_string(),
            Home::Reference(l) => format!("`{l}`: the DN of the entry whose `entryUUID` is its value"),
            Home::Elements(e) => {
                let mirrors: Vec<String> = e
                    .mirrors
                    .iter()
                    .map(|m| {
                        let to = match m.source {
                            Source::Ldap(l) | Source::Base64(l) | Source::Postal(l) => format!("`{l}`"),
                            Source::Applications => "membership of `cn=<value>,ou=applications`".to_string(),
                        };
                        let which = match (m.when_type, m.first_only) {
                            (Some(t), true) => format!("the first {t} one's"),
                            (Some(t), false) => format!("{t} ones'"),
                            (None, _) => "every one's".to_string(),
                        };
                        format!("{which} {} in {to}", m.sub)
                    })
                    .collect();
                if mirrors.is_empty() {
                    format!("`{}` (JSON)", e.store)
                } else {
                    format!("`{}` (JSON); {}", e.store, mirrors.join("; "))
                }
            }
        };
        out.push_str(&format!(
            "| {path} | {home} | {} | {} |\n",
            mutability_name(attr.mutability),
            returned_name(attr.returned)
        ));
    };
    for schema in std::iter::once(res.core).chain(res.extensions.iter().copied()) {
        let prefix = if std::ptr::eq(schema, res.core) { String::new() } else { format!("{}:", schema.name) };
        let attrs: Vec<&Attr> = if std::ptr::eq(schema, res.core) {
            COMMON_ATTRS.iter().chain(schema.attrs).collect()
        } else {
            schema.attrs.iter().collect()
        };
        for attr in attrs {
            row(format!("{prefix}{}", attr.name), attr);
            if matches!(attr.home, Home::Parts) || attr.name == "meta" {
                for sub in attr.subs {
                    row(format!("{prefix}{}.{}", attr.name, sub.name), sub);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod readme {
    #[test]
    fn the_readme_gives_the_mapping_the_tables_implement() {
        let readme = include_str!("../../../scim/README.md");
        for res in [&super::user::USERS, &super::group::GROUPS] {
            let table = super::markdown(res);
            assert!(
                readme.contains(&table),
                "scim/README.md must give the {} mapping as the code has it:\n{table}",
                res.name
            );
        }
    }
}
