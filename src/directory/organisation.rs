//! An organisation's shape (DESIGN.md): its entry under `ou=organisations`
//! with the `ou=agents` and `ou=groupes` containers and the group of its
//! référents, made in one write so that it exists whole or not at all.

use super::*;

/// What a CIG administrator says of a new organisation.
#[derive(Debug, Clone)]
pub struct NewOrganisation {
    pub siren: String,
    /// Its name, as people read it (`description`).
    pub name: String,
    /// `affiliee`, `non-affiliee` or `abonne-bip` (`cigAffiliation`).
    pub affiliation: String,
    /// The applications it subscribes to (`cigApplication`).
    pub applications: Vec<String>,
}

/// The kinds of organisation the CIG serves.
pub const AFFILIATIONS: &[&str] = &["affiliee", "non-affiliee", "abonne-bip"];

/// A SIREN as INSEE issues them: nine digits whose Luhn sum is a multiple
/// of ten (La Poste's establishments, which break the rule, share one SIREN
/// that is not an employer of this directory).
pub fn siren_is_valid(s: &str) -> bool {
    s.len() == 9
        && s.bytes().all(|b| b.is_ascii_digit())
        && s.bytes()
            .rev()
            .enumerate()
            .map(|(i, b)| {
                let d = u32::from(b - b'0');
                if i % 2 == 1 { if d * 2 > 9 { d * 2 - 9 } else { d * 2 } } else { d }
            })
            .sum::<u32>()
            .is_multiple_of(10)
}

impl Directory {
    /// The changes that create an organisation, for one [`Write`].
    pub fn organisation_changes(&self, o: &NewOrganisation) -> Result<Vec<Change>> {
        if !siren_is_valid(&o.siren) {
            return Err(DirectoryError::InvalidAttributeSyntax(format!("cigSiren: '{}' is not a SIREN", o.siren)));
        }
        if !AFFILIATIONS.contains(&o.affiliation.as_str()) {
            return Err(DirectoryError::InvalidAttributeSyntax(format!(
                "cigAffiliation: '{}' is none of {}",
                o.affiliation,
                AFFILIATIONS.join(", ")
            )));
        }
        let base = Dn::parse(&format!("o={},ou=organisations,{}", o.siren, self.suffix))?;
        let mut org = Entry::new(base.clone())
            .with("objectClass", ["organization", "cigOrganisation"])
            .with("o", [o.siren.as_str()])
            .with("cigSiren", [o.siren.as_str()])
            .with("description", [o.name.as_str()])
            .with("cigAffiliation", [o.affiliation.as_str()]);
        if !o.applications.is_empty() {
            org = org.with("cigApplication", o.applications.iter());
        }
        let container = |ou: &str| {
            Entry::new(base.child(Rdn::single("ou", ou))).with("objectClass", ["organizationalUnit"]).with("ou", [ou])
        };
        // No référent yet: the group holds the empty placeholder member.
        let referents = Entry::new(base.child(Rdn::single("cn", "referents")))
            .with("objectClass", ["groupOfNames"])
            .with("cn", ["referents"])
            .with("member", [EMPTY_GROUP_MEMBER]);
        Ok(vec![
            Change::Add(org),
            Change::Add(container("agents")),
            Change::Add(container("groupes")),
            Change::Add(referents),
        ])
    }

    /// The organisations `who` may read, with the attributes asked for:
    /// every one for an identity the policy does not restrict to some
    /// (a CIG administrator), else those of the groups it is a member of
    /// (a référent is one of its organisation's `cn=referents`).
    pub fn organisations_for(&self, who: &Principal, attrs: &[&str]) -> Result<Vec<Entry>> {
        let r = self.store.read()?;
        let mut candidates: Vec<String> = Vec::new();
        if who.is_admin(self) {
            let mut req = SearchRequest::new(
                self.suffix.clone(),
                Scope::Sub,
                Filter::Equality("objectClass".into(), b"organization".to_vec()),
            );
            req.attrs = vec!["1.1".into()];
            self.search(&Principal::Server, &req, |e| {
                candidates.push(self.normalize_dn(&e.dn)?);
                Ok(())
            })?;
        } else if let Principal::Entry(e) = who {
            candidates.extend(e.roles(self).groups.iter().map(|g| dn::parent_ndn(g).to_string()));
        }
        candidates.sort();
        candidates.dedup();
        let dns: Vec<&str> =
            candidates.iter().filter(|c| self.is_organisation_ndn(&r, c)).map(String::as_str).collect();
        Ok(self.read_many(who, &dns, attrs)?.into_iter().flatten().collect())
    }

    /// The store's figures, for a CIG administrator.
    pub fn stats_as(&self, who: &Principal) -> Result<crate::store::StoreStats> {
        if !who.is_admin(self) {
            return Err(DirectoryError::InsufficientAccess("only CIG administrators see the server's state".into()));
        }
        self.stats()
    }
}

#[cfg(test)]
mod tests {
    use super::siren_is_valid;

    #[test]
    fn a_siren_is_nine_digits_with_a_luhn_key() {
        for good in ["219400280", "217500016", "732829320", "552100554"] {
            assert!(siren_is_valid(good), "{good}");
        }
        for bad in ["219400281", "21940028", "2194002800", "21940028a", ""] {
            assert!(!siren_is_valid(bad), "{bad}");
        }
    }
}
