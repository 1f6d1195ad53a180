//! Finding resources as the caller sees them: every read runs through the
//! directory core with the caller's identity, so that a token reaches only
//! what the access policy lets it read (another organisation's id is a 404,
//! as if absent).

use super::{Caller, ScimError};
use crate::directory::{Directory, Dn, Entry, Filter, Scope, SearchRequest, TokenScope};

/// Where a caller's resources live: its organisation, or the whole tree for the CIG.
pub fn base_of(dir: &Directory, caller: &Caller) -> Dn {
    match &caller.0 {
        TokenScope::Cig => dir.suffix().clone(),
        TokenScope::Organisation(dn) => dn.clone(),
    }
}

/// The entries under the caller's base matching `filter`, with the
/// attributes named (`*` and `+`: their stored and operational ones).
pub fn search(dir: &Directory, caller: &Caller, filter: Filter, attrs: &[&str]) -> Result<Vec<Entry>, ScimError> {
    let mut req = SearchRequest::new(base_of(dir, caller), Scope::Sub, filter);
    req.attrs = attrs.iter().map(|a| a.to_string()).collect();
    let mut out = Vec::new();
    dir.search(&caller.1.principal, &req, |e| {
        out.push(e);
        Ok(())
    })?;
    Ok(out)
}

/// The entry at `dn` again, with its stored and operational attributes, if it still
/// matches `filter` for the caller (it may have changed since it was listed).
pub fn reread(dir: &Directory, caller: &Caller, dn: &Dn, filter: Filter) -> Result<Option<Entry>, ScimError> {
    let mut req = SearchRequest::new(dn.clone(), Scope::Base, filter);
    req.attrs = vec!["*".into(), "+".into()];
    let mut found = None;
    match dir.search(&caller.1.principal, &req, |e| {
        found = Some(e);
        Ok(())
    }) {
        Ok(_) => Ok(found),
        // Deleted since it was listed.
        Err(crate::directory::DirectoryError::NoSuchObject { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn by_id(id: &str) -> Filter {
    Filter::Equality("entryUUID".into(), id.as_bytes().to_vec())
}

/// The entry with this SCIM id that the caller sees, of the given class,
/// with every stored attribute it may read (through the UUID table).
pub fn find(dir: &Directory, caller: &Caller, id: &str, class: &str) -> Result<Option<Entry>, ScimError> {
    let Some(e) = dir.read_by_uuid(&caller.1.principal, id, &["*"])? else { return Ok(None) };
    let base = dir.normalize_dn(&base_of(dir, caller))?;
    let within = dir.normalize_dn(&e.dn).is_ok_and(|n| crate::directory::dn::is_under(&n, &base));
    Ok((within && has_class(&e, class)).then_some(e))
}

/// The DN and object classes of the entry with this SCIM id the caller sees
/// (a member, a manager, a group in a filter).
pub fn dn_of(dir: &Directory, caller: &Caller, id: &str) -> Result<Option<(Dn, Vec<String>)>, ScimError> {
    let mut req = SearchRequest::new(base_of(dir, caller), Scope::Sub, by_id(id));
    req.attrs = vec!["objectClass".into()];
    let mut found = None;
    dir.search(&caller.1.principal, &req, |e| {
        let classes =
            e.get("objectClass").map(|a| a.values.iter().map(|v| String::from_utf8_lossy(v).into_owned()).collect());
        found = Some((e.dn, classes.unwrap_or_default()));
        Ok(())
    })?;
    Ok(found)
}

/// Whether an entry has this object class.
pub fn has_class(entry: &Entry, class: &str) -> bool {
    entry.get("objectClass").is_some_and(|a| a.values.iter().any(|v| v.eq_ignore_ascii_case(class.as_bytes())))
}

/// The groups (DNs) an entry is a direct member of, and among them the
/// applications (the cn of the groups under `ou=applications`).
pub struct Memberships {
    pub groups: Vec<String>,
    pub applications: Vec<String>,
}

impl Memberships {
    pub fn of(dir: &Directory, entry: &Entry) -> Memberships {
        Memberships::of_ndn(dir, dir.normalize_dn(&entry.dn).ok().as_deref())
    }

    /// [`Memberships::of`] the entry whose normalised DN is known.
    pub fn of_ndn(dir: &Directory, ndn: Option<&str>) -> Memberships {
        let groups = ndn.and_then(|ndn| dir.member_of(ndn).ok()).unwrap_or_default();
        if groups.is_empty() {
            return Memberships { groups, applications: Vec::new() };
        }
        let apps_suffix = format!(",ou=applications,{}", dir.suffix()).to_lowercase();
        let mut applications: Vec<String> = groups
            .iter()
            .filter(|g| g.to_lowercase().ends_with(&apps_suffix))
            .filter_map(|g| Dn::parse(g).ok())
            .filter_map(|d| d.rdn().and_then(|r| r.avas.first()).map(|a| a.value.clone()))
            .collect();
        applications.sort();
        Memberships { groups, applications }
    }

    /// The groups that are SCIM Groups: those under an organisation's `ou=groupes`.
    pub fn scim_groups(&self) -> Vec<&str> {
        self.groups.iter().filter(|g| is_scim_group_dn(g)).map(String::as_str).collect()
    }
}

/// Whether a DN is that of a SCIM Group (the entry right below an `ou=groupes`).
pub fn is_scim_group_dn(dn: &str) -> bool {
    Dn::parse(dn).is_ok_and(|d| {
        d.parent()
            .rdn()
            .and_then(|r| r.avas.first())
            .is_some_and(|a| a.attr.eq_ignore_ascii_case("ou") && a.value.eq_ignore_ascii_case("groupes"))
    })
}

/// The DN of an application's group.
pub fn application_dn(dir: &Directory, app: &str) -> Dn {
    dir.suffix()
        .child(crate::directory::Rdn::single("ou", "applications"))
        .child(crate::directory::Rdn::single("cn", app))
}

/// The organisation a new resource goes to: an organisation's token's own
/// (naming another is asking for what the token may not do: 403), or, for
/// a CIG-wide token, the one whose SIREN the document names.
pub fn organisation_for(
    dir: &Directory,
    caller: &Caller,
    named: Option<&str>,
    what: &str,
    extension: &str,
) -> Result<Dn, ScimError> {
    match &caller.0 {
        TokenScope::Organisation(own) => {
            if let Some(siren) = named
                && dir
                    .find_organisation(siren)
                    .ok()
                    .is_none_or(|n| dir.normalize_dn(&n).ok() != dir.normalize_dn(own).ok())
            {
                return Err(ScimError::new(
                    axum::http::StatusCode::FORBIDDEN,
                    None,
                    format!("an organisation's token creates in its own organisation, not in {siren}"),
                ));
            }
            Ok(own.clone())
        }
        TokenScope::Cig => {
            let siren = named.ok_or_else(|| {
                ScimError::invalid_value(format!("a CIG token must say where the {what} goes: {extension}:siren"))
            })?;
            Ok(dir.find_organisation(siren)?)
        }
    }
}
