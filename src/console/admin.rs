//! A CIG administrator's pages: the server's state, the organisations
//! (created whole, with a checked SIREN), their référents and their HR
//! software's SCIM tokens. Whoever is not an administrator finds none of
//! these pages; what they change, the core judges again.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::error::french;
use super::forms::{FieldErrors, Fields, generalized_to_french};
use super::organisation::{Organisation, find, search_as};
use super::pages::{self, Application, Nav, OrgView};
use super::{Console, PageError, Posted, Visitor};
use crate::directory::organisation::{AFFILIATIONS, NewOrganisation, siren_is_valid};
use crate::directory::{
    Change, DirectoryError, Dn, Filter, ModOp, Modification, Rdn, Scope, TokenScope, Write, keep_placeholder_member,
};

/// How each kind of organisation reads (issue 22).
const KINDS: &[(&str, &str)] = &[
    ("affiliee", "Collectivité affiliée"),
    ("non-affiliee", "Collectivité non affiliée"),
    ("abonne-bip", "Abonné BIP"),
];

fn kind_label(k: &str) -> String {
    KINDS.iter().find(|(v, _)| v.eq_ignore_ascii_case(k)).map(|(_, l)| l.to_string()).unwrap_or_else(|| k.to_string())
}

/// Not an administrator: these pages do not exist.
fn administrator(visitor: &Visitor) -> Result<(), PageError> {
    if visitor.admin { Ok(()) } else { Err(PageError::NotFound) }
}

#[derive(Template)]
#[template(path = "console/admin_home.html")]
struct AdminHome {
    nav: Nav,
    title: String,
    figures: Vec<(&'static str, String)>,
}

pub async fn home(State(console): State<Arc<Console>>, visitor: Visitor) -> Response {
    if let Err(e) = administrator(&visitor) {
        return e.page(Some(&visitor));
    }
    let stats = match console.directory.stats_as(&visitor.actor.principal) {
        Ok(s) => s,
        Err(e) => return PageError::from(e).page(Some(&visitor)),
    };
    let m = crate::metrics::METRICS.summary();
    let mib = |b: u64| format!("{:.1} Mio", b as f64 / (1024.0 * 1024.0));
    let figures = vec![
        ("Entrées de l'annuaire", stats.entries.to_string()),
        ("Taille de la base", mib(stats.store_bytes)),
        ("Journal de reprise", mib(stats.redo_bytes)),
        ("Connexions LDAP ouvertes", m.open_connections.to_string()),
        ("Connexions LDAP depuis le démarrage", m.connections.to_string()),
        ("Opérations LDAP", m.ldap_operations.to_string()),
        ("Opérations LDAP refusées", m.ldap_failures.to_string()),
        ("Échecs d'authentification", m.bind_failures.to_string()),
        ("Requêtes SCIM", m.scim_requests.to_string()),
        ("Requêtes SCIM en erreur", m.scim_failures.to_string()),
    ];
    let nav = Nav::of(Some(&visitor)).with_notice(console.sessions.take_notice(&visitor.session.id));
    pages::render(StatusCode::OK, &AdminHome { nav, title: "Administration".into(), figures })
}

struct OrgLine {
    siren: String,
    name: String,
    kind: String,
    applications: String,
}

#[derive(Template)]
#[template(path = "console/admin_orgs.html")]
struct AdminOrgs {
    nav: Nav,
    title: String,
    q: String,
    rows: Vec<OrgLine>,
}

#[derive(Deserialize, Default)]
pub struct Search {
    #[serde(default)]
    q: String,
}

pub async fn organisations(State(console): State<Arc<Console>>, visitor: Visitor, Query(s): Query<Search>) -> Response {
    if let Err(e) = administrator(&visitor) {
        return e.page(Some(&visitor));
    }
    let q = s.q.trim().to_string();
    let attrs = ["o", "cigSiren", "description", "cigAffiliation", "cigApplication"];
    let entries = match console.directory.organisations_for(&visitor.actor.principal, &attrs) {
        Ok(e) => e,
        Err(e) => return PageError::from(e).page(Some(&visitor)),
    };
    let needle = q.to_lowercase();
    let mut rows: Vec<OrgLine> = entries
        .iter()
        .map(|e| OrgLine {
            siren: super::organisation::siren_of(e),
            name: e.first_str("description").unwrap_or("").into(),
            kind: kind_label(e.first_str("cigAffiliation").unwrap_or("")),
            applications: e
                .get("cigApplication")
                .map(|a| {
                    a.values.iter().map(|v| String::from_utf8_lossy(v).into_owned()).collect::<Vec<_>>().join(", ")
                })
                .unwrap_or_default(),
        })
        .filter(|r| needle.is_empty() || r.name.to_lowercase().contains(&needle) || r.siren.contains(&needle))
        .collect();
    rows.sort_by_cached_key(|r| r.name.to_lowercase());
    let nav = Nav::of(Some(&visitor)).with_notice(console.sessions.take_notice(&visitor.session.id));
    pages::render(StatusCode::OK, &AdminOrgs { nav, title: "Organisations".into(), q, rows })
}

#[derive(Template)]
#[template(path = "console/org_form.html")]
struct OrgForm {
    nav: Nav,
    title: String,
    action: String,
    submit: String,
    creating: bool,
    siren: String,
    name: String,
    kind: String,
    kinds: Vec<(&'static str, &'static str)>,
    applications: Vec<Application>,
    errors: FieldErrors,
}

/// The applications of the directory (`ou=applications`), ticked when chosen.
fn application_choices(console: &Console, visitor: &Visitor, chosen: &[String]) -> Vec<Application> {
    let found = search_as(
        console,
        visitor,
        console.applications(),
        Scope::One,
        Filter::Present("cn".into()),
        &["cn", "description"],
    );
    let mut apps: Vec<Application> = found
        .unwrap_or_default()
        .iter()
        .filter_map(|e| {
            let name = e.first_str("cn")?.to_string();
            Some(Application {
                label: e.first_str("description").map(str::to_string).unwrap_or_else(|| name.to_uppercase()),
                granted: chosen.iter().any(|c| c.eq_ignore_ascii_case(&name)),
                name,
            })
        })
        .collect();
    apps.sort_by(|a, b| a.name.cmp(&b.name));
    apps
}

#[allow(clippy::too_many_arguments)]
fn org_form(
    console: &Console,
    visitor: &Visitor,
    editing: Option<&OrgView>,
    name: &str,
    kind: &str,
    siren: &str,
    chosen: &[String],
    errors: FieldErrors,
    status: StatusCode,
) -> Response {
    let (title, action, submit) = match editing {
        Some(o) => (
            format!("Modifier {}", o.name),
            format!("/administration/organisations/{}/modifier", o.siren),
            "Enregistrer",
        ),
        None => {
            ("Créer une organisation".to_string(), "/administration/organisations".to_string(), "Créer l'organisation")
        }
    };
    let page = OrgForm {
        nav: Nav::of(Some(visitor)),
        title,
        action,
        submit: submit.into(),
        creating: editing.is_none(),
        siren: siren.into(),
        name: name.into(),
        kind: kind.into(),
        kinds: KINDS.to_vec(),
        applications: application_choices(console, visitor, chosen),
        errors,
    };
    pages::render(status, &page)
}

pub async fn new_organisation(State(console): State<Arc<Console>>, visitor: Visitor) -> Response {
    if let Err(e) = administrator(&visitor) {
        return e.page(Some(&visitor));
    }
    org_form(&console, &visitor, None, "", "affiliee", "", &[], FieldErrors::default(), StatusCode::OK)
}

fn chosen_applications(fields: &Fields) -> Vec<String> {
    fields.all("application").into_iter().filter(|a| !a.is_empty()).map(str::to_string).collect()
}

pub async fn create_organisation(State(console): State<Arc<Console>>, posted: Posted) -> Response {
    let Posted { visitor, fields } = posted;
    if let Err(e) = administrator(&visitor) {
        return e.page(Some(&visitor));
    }
    let (siren, name, kind) = (fields.get("siren"), fields.get("nom"), fields.get("type"));
    let applications = chosen_applications(&fields);
    let mut errors = FieldErrors::default();
    if !siren_is_valid(siren) {
        errors.add("siren", "Ce n'est pas un SIREN : neuf chiffres dont le dernier est la clé de contrôle.");
    }
    if name.is_empty() {
        errors.add("nom", "Le champ « Nom » est obligatoire.");
    }
    if !AFFILIATIONS.contains(&kind) {
        errors.add("formulaire", "Choisissez le type de l'organisation.");
    }
    let refuse = |errors, status| org_form(&console, &visitor, None, name, kind, siren, &applications, errors, status);
    if !errors.is_empty() {
        return refuse(errors, StatusCode::BAD_REQUEST);
    }
    let new = NewOrganisation {
        siren: siren.into(),
        name: name.into(),
        affiliation: kind.into(),
        applications: applications.clone(),
    };
    let changes = match console.directory.organisation_changes(&new) {
        Ok(c) => c,
        Err(e) => return PageError::from(e).page(Some(&visitor)),
    };
    match console.directory.write_async(&visitor.actor, Write::new(changes)).await {
        Ok(_) => {
            console.sessions.set_notice(&visitor.session.id, format!("L'organisation {name} a été créée."));
            Redirect::to(&format!("/administration/organisations/{siren}")).into_response()
        }
        Err((_, e)) => {
            let mut errors = FieldErrors::default();
            let field = if matches!(e, DirectoryError::AlreadyExists(_)) { "siren" } else { "formulaire" };
            let message = if field == "siren" { "Une organisation a déjà ce SIREN.".to_string() } else { french(&e) };
            errors.add(field, message);
            refuse(errors, StatusCode::CONFLICT)
        }
    }
}

fn admin_org(console: &Console, visitor: &Visitor, siren: &str) -> Result<Organisation, PageError> {
    administrator(visitor)?;
    find(console, visitor, siren)
}

pub async fn edit_organisation(
    State(console): State<Arc<Console>>,
    visitor: Visitor,
    Path(siren): Path<String>,
) -> Response {
    let org = match admin_org(&console, &visitor, &siren) {
        Ok(o) => o,
        Err(e) => return e.page(Some(&visitor)),
    };
    let entry = match super::account::read_as(&console, &visitor, &org.dn, &["cigAffiliation"]) {
        Ok(e) => e,
        Err(e) => return e.page(Some(&visitor)),
    };
    let kind = entry.first_str("cigAffiliation").unwrap_or("").to_string();
    let (name, apps) = (org.view.name.clone(), org.view.applications.clone());
    org_form(&console, &visitor, Some(&org.view), &name, &kind, &siren, &apps, FieldErrors::default(), StatusCode::OK)
}

pub async fn update_organisation(
    State(console): State<Arc<Console>>,
    Path(siren): Path<String>,
    posted: Posted,
) -> Response {
    let Posted { visitor, fields } = posted;
    let org = match admin_org(&console, &visitor, &siren) {
        Ok(o) => o,
        Err(e) => return e.page(Some(&visitor)),
    };
    let (name, kind) = (fields.get("nom"), fields.get("type"));
    let applications = chosen_applications(&fields);
    let mut errors = FieldErrors::default();
    if name.is_empty() {
        errors.add("nom", "Le champ « Nom » est obligatoire.");
    }
    if !AFFILIATIONS.contains(&kind) {
        errors.add("formulaire", "Choisissez le type de l'organisation.");
    }
    if !errors.is_empty() {
        let view = &org.view;
        return org_form(
            &console,
            &visitor,
            Some(view),
            name,
            kind,
            &siren,
            &applications,
            errors,
            StatusCode::BAD_REQUEST,
        );
    }
    let mods = vec![
        Modification::new(ModOp::Replace, "description", [name]),
        Modification::new(ModOp::Replace, "cigAffiliation", [kind]),
        Modification::new(ModOp::Replace, "cigApplication", applications.iter()),
    ];
    let mut changes = vec![Change::Modify(org.dn.clone(), mods)];
    // An application the organisation no longer subscribes to is closed to
    // its agents in the same write: its référents could no longer do it.
    let org_ndn = console.directory.normalize_dn(&org.dn).unwrap_or_default();
    for dropped in org.view.applications.iter().filter(|a| !applications.iter().any(|n| n.eq_ignore_ascii_case(a))) {
        let group = console.application(dropped);
        let members = super::account::read_as(&console, &visitor, &group, &["member"])
            .ok()
            .and_then(|g| g.get("member").map(|a| a.values.clone()))
            .unwrap_or_default();
        let theirs: Vec<String> = members
            .iter()
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .filter(|m| {
                Dn::parse(m)
                    .ok()
                    .and_then(|d| console.directory.normalize_dn(&d).ok())
                    .is_some_and(|n| n.ends_with(&format!(",{org_ndn}")))
            })
            .collect();
        if !theirs.is_empty() {
            let mods = vec![keep_placeholder_member(), Modification::new(ModOp::Delete, "member", theirs.iter())];
            changes.push(Change::Modify(group, mods));
        }
    }
    if let Err((_, e)) = console.directory.write_async(&visitor.actor, Write::new(changes)).await {
        return PageError::from(e).page(Some(&visitor));
    }
    console.sessions.set_notice(&visitor.session.id, "L'organisation a été enregistrée.".into());
    Redirect::to(&format!("/administration/organisations/{siren}")).into_response()
}

struct TokenLine {
    id: String,
    name: String,
    created: String,
    last_used: String,
}

#[derive(Template)]
#[template(path = "console/admin_org.html")]
struct AdminOrg {
    nav: Nav,
    title: String,
    org: OrgView,
    kind: String,
    /// DN and name of each référent.
    referents: Vec<(String, String)>,
    referent_error: String,
    tokens: Vec<TokenLine>,
    secret: String,
}

fn referents_group(org: &Organisation) -> Dn {
    org.dn.child(Rdn::single("cn", "referents"))
}

pub async fn organisation(
    State(console): State<Arc<Console>>,
    visitor: Visitor,
    Path(siren): Path<String>,
) -> Response {
    let org = match admin_org(&console, &visitor, &siren) {
        Ok(o) => o,
        Err(e) => return e.page(Some(&visitor)),
    };
    organisation_page(&console, &visitor, org, String::new())
}

fn organisation_page(console: &Console, visitor: &Visitor, org: Organisation, referent_error: String) -> Response {
    let status = if referent_error.is_empty() { StatusCode::OK } else { StatusCode::BAD_REQUEST };
    let kind = super::account::read_as(console, visitor, &org.dn, &["cigAffiliation"])
        .ok()
        .and_then(|e| e.first_str("cigAffiliation").map(kind_label))
        .unwrap_or_default();
    let members = super::account::read_as(console, visitor, &referents_group(&org), &["member"])
        .ok()
        .and_then(|g| g.get("member").map(|a| a.values.clone()))
        .unwrap_or_default();
    let referents = members
        .iter()
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .filter(|dn| !dn.is_empty())
        .map(|dn| {
            let name = Dn::parse(&dn)
                .ok()
                .and_then(|d| console.directory.get(&d).ok().flatten())
                .and_then(|e| e.first_str("cn").map(str::to_string))
                .unwrap_or_else(|| dn.clone());
            (dn, name)
        })
        .collect();
    let tokens = match console.directory.list_tokens_as(&visitor.actor.principal, Some(&org.dn)) {
        Ok(t) => t,
        Err(e) => return PageError::from(e).page(Some(visitor)),
    };
    let tokens = tokens
        .into_iter()
        .map(|t| TokenLine {
            id: t.id,
            name: t.name,
            created: generalized_to_french(&t.created),
            last_used: if t.last_used.is_empty() { "jamais".into() } else { generalized_to_french(&t.last_used) },
        })
        .collect();
    let secret =
        console.sessions.take_secret(&visitor.session.id, &format!("jeton:{}", org.view.siren)).unwrap_or_default();
    let nav = Nav::of(Some(visitor)).with_notice(console.sessions.take_notice(&visitor.session.id));
    let page =
        AdminOrg { nav, title: org.view.name.clone(), org: org.view, kind, referents, referent_error, tokens, secret };
    pages::render(status, &page)
}

pub async fn designate_referent(
    State(console): State<Arc<Console>>,
    Path(siren): Path<String>,
    posted: Posted,
) -> Response {
    let Posted { visitor, fields } = posted;
    let org = match admin_org(&console, &visitor, &siren) {
        Ok(o) => o,
        Err(e) => return e.page(Some(&visitor)),
    };
    let uid = fields.get("identifiant");
    let agent = Dn::parse(&format!("uid={uid},{}", org.agents()))
        .ok()
        .filter(|_| !uid.is_empty())
        .filter(|dn| console.directory.get(dn).ok().flatten().is_some());
    let Some(agent) = agent else {
        let message = format!("{} n'a pas d'agent d'identifiant « {uid} ».", org.view.name);
        return organisation_page(&console, &visitor, org, message);
    };
    let group = referents_group(&org);
    let exists = console.directory.get(&group).ok().flatten().is_some();
    let change = if exists {
        Change::Modify(group, vec![Modification::new(ModOp::Add, "member", [agent.to_string()])])
    } else {
        Change::Add(
            crate::directory::Entry::new(group)
                .with("objectClass", ["groupOfNames"])
                .with("cn", ["referents"])
                .with("member", [agent.to_string()]),
        )
    };
    match console.directory.write_async(&visitor.actor, Write::one(change)).await {
        Ok(_) => {
            console
                .sessions
                .set_notice(&visitor.session.id, format!("{uid} est désormais référent de {}.", org.view.name));
            Redirect::to(&format!("/administration/organisations/{siren}")).into_response()
        }
        Err((_, DirectoryError::AttributeOrValueExists(_))) => {
            let message = format!("{uid} est déjà référent.");
            organisation_page(&console, &visitor, org, message)
        }
        Err((_, e)) => PageError::from(e).page(Some(&visitor)),
    }
}

pub async fn remove_referent(
    State(console): State<Arc<Console>>,
    Path(siren): Path<String>,
    posted: Posted,
) -> Response {
    let Posted { visitor, fields } = posted;
    let org = match admin_org(&console, &visitor, &siren) {
        Ok(o) => o,
        Err(e) => return e.page(Some(&visitor)),
    };
    // The placeholder keeps the group valid when its last référent leaves.
    let mods = vec![keep_placeholder_member(), Modification::new(ModOp::Delete, "member", [fields.get("dn")])];
    if let Err((_, e)) =
        console.directory.write_async(&visitor.actor, Write::one(Change::Modify(referents_group(&org), mods))).await
    {
        return PageError::from(e).page(Some(&visitor));
    }
    console.sessions.set_notice(&visitor.session.id, "Le référent a été retiré.".into());
    Redirect::to(&format!("/administration/organisations/{siren}")).into_response()
}

pub async fn create_token(State(console): State<Arc<Console>>, Path(siren): Path<String>, posted: Posted) -> Response {
    let Posted { visitor, fields } = posted;
    let org = match admin_org(&console, &visitor, &siren) {
        Ok(o) => o,
        Err(e) => return e.page(Some(&visitor)),
    };
    let name = match fields.get("nom") {
        "" => "logiciel RH",
        n => n,
    };
    let scope = TokenScope::Organisation(org.dn.clone());
    match console.directory.create_token_as(&visitor.actor, &scope, name) {
        Ok((_, secret)) => {
            console.sessions.set_secret(&visitor.session.id, &format!("jeton:{siren}"), secret);
            Redirect::to(&format!("/administration/organisations/{siren}")).into_response()
        }
        Err(e) => PageError::from(e).page(Some(&visitor)),
    }
}

pub async fn revoke_token(
    State(console): State<Arc<Console>>,
    Path((siren, id)): Path<(String, String)>,
    posted: Posted,
) -> Response {
    let visitor = posted.visitor;
    let org = match admin_org(&console, &visitor, &siren) {
        Ok(o) => o,
        Err(e) => return e.page(Some(&visitor)),
    };
    // Only a token of this organisation, through this organisation's page.
    let ours =
        console.directory.list_tokens_as(&visitor.actor.principal, Some(&org.dn)).map(|t| t.iter().any(|t| t.id == id));
    match ours {
        Ok(true) => {}
        Ok(false) => return PageError::NotFound.page(Some(&visitor)),
        Err(e) => return PageError::from(e).page(Some(&visitor)),
    }
    match console.directory.revoke_token_as(&visitor.actor, &id) {
        Ok(_) => {
            console.sessions.set_notice(&visitor.session.id, "Le jeton a été révoqué : il ne donne plus accès.".into());
            Redirect::to(&format!("/administration/organisations/{siren}")).into_response()
        }
        Err(e) => PageError::from(e).page(Some(&visitor)),
    }
}
