//! An organisation as the console reaches it: found by SIREN, then read as
//! the visitor, so that one the visitor may not read is not found; the
//! home page's figures and the groups page.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::account::read_as;
use super::pages::{self, GroupView, Groups, Home, Nav, OrgSummary, OrgView};
use super::{Console, PageError, Visitor};
use crate::directory::lifecycle::{self, epoch_instant, instant, now_secs};
use crate::directory::{Dn, Entry, Filter, Scope, SearchRequest};

/// Organisations listed with their figures on the home page, at most; past
/// it (an administrator's hundreds) the home page links to them only.
const FIGURES_FOR_AT_MOST: usize = 25;

pub struct Organisation {
    pub dn: Dn,
    pub view: OrgView,
    /// Where its people are: the organisation's `ou=agents`, or for the
    /// individual subscribers `ou=particuliers` itself.
    people: Dn,
}

/// The individual subscribers (`ou=particuliers`), which the console shows
/// as an organisation of their own under this name in its addresses.
pub const PARTICULIERS: &str = "particuliers";

impl Organisation {
    pub fn of(dn: Dn, view: OrgView) -> Organisation {
        Organisation { people: dn.child(crate::directory::Rdn::single("ou", "agents")), dn, view }
    }

    pub fn agents(&self) -> Dn {
        self.people.clone()
    }
}

fn view_of(entry: &Entry, siren: &str) -> OrgView {
    let name = entry.first_str("description").or(entry.first_str("o")).unwrap_or(siren).to_string();
    let mut applications: Vec<String> = entry
        .get("cigApplication")
        .map(|a| a.values.iter().map(|v| String::from_utf8_lossy(v).into_owned()).collect())
        .unwrap_or_default();
    applications.sort();
    OrgView { siren: siren.to_string(), people: format!("Agents de {name}"), name, applications }
}

/// The organisation of this SIREN, if the visitor may read it.
pub fn find(console: &Console, visitor: &Visitor, siren: &str) -> Result<Organisation, PageError> {
    if siren == PARTICULIERS {
        return particuliers(console, visitor);
    }
    if siren.len() != 9 || !siren.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PageError::NotFound);
    }
    let dn = console.directory.find_organisation(siren).map_err(|_| PageError::NotFound)?;
    let entry = read_as(console, visitor, &dn, &["o", "description", "cigSiren", "cigApplication"])?;
    Ok(Organisation::of(dn, view_of(&entry, siren)))
}

/// The individual subscribers, for whoever may read their container; every
/// application may be opened to them.
fn particuliers(console: &Console, visitor: &Visitor) -> Result<Organisation, PageError> {
    let dn = Dn::parse(&format!("ou={PARTICULIERS},{}", console.directory.suffix()))?;
    read_as(console, visitor, &dn, &["ou"])?;
    let mut applications: Vec<String> =
        search_as(console, visitor, console.applications(), Scope::One, Filter::Present("cn".into()), &["cn"])
            .unwrap_or_default()
            .iter()
            .filter_map(|e| e.first_str("cn").map(str::to_string))
            .collect();
    applications.sort();
    let view = OrgView {
        siren: PARTICULIERS.into(),
        name: "abonnés individuels".into(),
        people: "Abonnés individuels".into(),
        applications,
    };
    Ok(Organisation { people: dn.clone(), dn, view })
}

/// Search as the visitor; what it may not read is simply not there.
pub fn search_as(
    console: &Console,
    visitor: &Visitor,
    base: Dn,
    scope: Scope,
    filter: Filter,
    attrs: &[&str],
) -> Result<Vec<Entry>, PageError> {
    let mut req = SearchRequest::new(base, scope, filter);
    req.attrs = attrs.iter().map(|a| a.to_string()).collect();
    let mut out = Vec::new();
    console.directory.search(&visitor.actor.principal, &req, |e| {
        out.push(e);
        Ok(())
    })?;
    Ok(out)
}

fn summary(console: &Console, visitor: &Visitor, org: &Organisation, figures: bool) -> Result<OrgSummary, PageError> {
    let mut s = OrgSummary {
        siren: org.view.siren.clone(),
        name: org.view.name.clone(),
        agents: 0,
        suspended: 0,
        locked: 0,
        ending: 0,
        unused: 0,
        recent: Vec::new(),
    };
    if !figures {
        return Ok(s);
    }
    let attrs = ["cigActive", "pwdAccountLockedTime", lifecycle::END, "pwdLastSuccess", "createTimestamp"];
    let agents = search_as(console, visitor, org.agents(), Scope::One, Filter::Present("objectClass".into()), &attrs)?;
    let now = now_secs() as i64;
    let (today, in_30_days) = (epoch_instant(now), epoch_instant(now + 30 * 86_400));
    let a_year_ago = epoch_instant(now - 365 * 86_400);
    let date = |e: &Entry, a: &str| e.get(a).and_then(|v| v.values.first()).and_then(|v| instant(v));
    for e in &agents {
        s.agents += 1;
        if e.first_str("cigActive").is_some_and(|v| v.eq_ignore_ascii_case("FALSE")) {
            s.suspended += 1;
        }
        if e.get("pwdAccountLockedTime").is_some() {
            s.locked += 1;
        }
        if date(e, lifecycle::END).is_some_and(|end| end >= today && end <= in_30_days) {
            s.ending += 1;
        }
        if date(e, "pwdLastSuccess").or_else(|| date(e, "createTimestamp")).is_some_and(|t| t < a_year_ago) {
            s.unused += 1;
        }
    }
    let ndn = console.directory.normalize_dn(&org.dn)?;
    let limits = &console.limits;
    // Whoever may not read the trail sees the figures without it.
    let q = crate::directory::AuditQuery { org_ndn: Some(ndn), since: None };
    let recent = console.directory.recent_changes_as(
        &visitor.actor.principal,
        &q,
        limits.recent_changes,
        limits.recent_scan,
        |_| true,
    );
    if let Ok((recent, _)) = recent {
        s.recent = recent
            .into_iter()
            .map(|r| {
                let what = super::journal::operation_label(&r.op);
                let who = if r.actor.is_empty() { "(serveur)".to_string() } else { r.actor };
                let target =
                    Dn::parse(&r.dn).ok().and_then(|d| d.rdn().and_then(|x| x.avas.first()).map(|a| a.value.clone()));
                (super::journal::when(&r.time), who, what, target.unwrap_or(r.dn))
            })
            .collect();
    }
    Ok(s)
}

pub async fn home(State(console): State<Arc<Console>>, visitor: Visitor) -> Response {
    let notice = console.sessions.take_notice(&visitor.session.id);
    let found = console
        .directory
        .organisations_for(&visitor.actor.principal, &["o", "description", "cigSiren", "cigApplication"]);
    let entries = match found {
        Ok(e) => e,
        Err(e) => return PageError::from(e).page(Some(&visitor)),
    };
    let figures = entries.len() <= FIGURES_FOR_AT_MOST;
    let mut organisations = Vec::new();
    for e in &entries {
        let org = Organisation::of(e.dn.clone(), view_of(e, &siren_of(e)));
        match summary(&console, &visitor, &org, figures) {
            Ok(s) => organisations.push(s),
            Err(e) => return e.page(Some(&visitor)),
        }
    }
    organisations.sort_by(|a, b| a.name.cmp(&b.name));
    let page = Home { nav: Nav::of(Some(&visitor)).with_notice(notice), title: "Accueil".into(), organisations };
    pages::render(StatusCode::OK, &page)
}

/// An organisation's SIREN: `cigSiren`, or its `o` (the tree names it by it).
pub fn siren_of(e: &Entry) -> String {
    e.first_str("cigSiren").or(e.first_str("o")).unwrap_or("").to_string()
}

pub async fn groups(State(console): State<Arc<Console>>, visitor: Visitor, Path(siren): Path<String>) -> Response {
    let org = match find(&console, &visitor, &siren) {
        Ok(o) => o,
        Err(e) => return e.page(Some(&visitor)),
    };
    let base = org.dn.child(crate::directory::Rdn::single("ou", "groupes"));
    let entries = match search_as(&console, &visitor, base, Scope::One, Filter::Present("cn".into()), &["cn", "member"])
    {
        Ok(e) => e,
        Err(PageError::NotFound) => Vec::new(),
        Err(e) => return e.page(Some(&visitor)),
    };
    let mut groups: Vec<GroupView> = entries
        .iter()
        .map(|g| GroupView {
            name: g.first_str("cn").unwrap_or("").to_string(),
            members: g
                .get("member")
                .map(|a| {
                    a.values
                        .iter()
                        .filter_map(|v| Dn::parse(&String::from_utf8_lossy(v)).ok())
                        .filter_map(|dn| dn.rdn().and_then(|r| r.avas.first()).map(|a| a.value.clone()))
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect();
    groups.sort_by(|a, b| a.name.cmp(&b.name));
    let title = format!("Groupes de {}", org.view.name);
    pages::render(StatusCode::OK, &Groups { nav: Nav::of(Some(&visitor)), title, org: org.view, groups })
}
