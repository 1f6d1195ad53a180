//! A référent's agents: the list, creation and edits, suspension, the
//! password reset, unlocking, applications, deletion and the recycle bin.
//! Every change is one write to the core as the visitor; what it refuses is
//! shown next to its field, with what was typed kept.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::forms::{FieldErrors, Fields, date_to_generalized, generalized_to_date, generalized_to_french};
use super::organisation::{Organisation, find, search_as};
use super::pages::{self, AgentForm, AgentRow, AgentView, Application, FormField, Nav};
use super::visitor::encode_query;
use super::{Console, PageError, Posted, Visitor};
use crate::directory::lifecycle::{self, standing};
use crate::directory::{
    Change, Condition, DirectoryError, Dn, Entry, Filter, ModOp, Modification, Rdn, Scope, Write, request,
};

/// The attributes the agent pages read.
const READ: &[&str] = &[
    "uid",
    "cn",
    "sn",
    "givenName",
    "mail",
    "telephoneNumber",
    "title",
    "employeeNumber",
    "cigActive",
    "pwdAccountLockedTime",
    lifecycle::START,
    lifecycle::END,
    "pwdLastSuccess",
    "entryUUID",
    "cigRevision",
    "memberOf",
];

/// The editable fields: form name, label, input type, LDAP attribute.
const FIELDS: &[(&str, &str, &str, &str)] = &[
    ("prenom", "Prénom", "text", "givenName"),
    ("nom", "Nom", "text", "sn"),
    ("courriel", "Courriel professionnel", "email", "mail"),
    ("telephone", "Téléphone professionnel", "tel", "telephoneNumber"),
    ("fonction", "Fonction", "text", "title"),
    ("matricule", "Matricule", "text", "employeeNumber"),
    ("debut", "Valide à partir du", "date", lifecycle::START),
    ("fin", "Valide jusqu'au (inclus)", "date", lifecycle::END),
];

pub(super) fn text(e: &Entry, a: &str) -> String {
    e.first_str(a).unwrap_or("").to_string()
}

pub(super) fn id_of(e: &Entry) -> String {
    text(e, "entryUUID")
}

/// How an agent's standing reads in French.
fn state(e: &Entry) -> String {
    let s = match standing(e) {
        "suspended" => "Suspendu",
        "notYetValid" => "Pas encore valide",
        "ended" => "Fin de validité",
        _ => "Actif",
    };
    if e.get("pwdAccountLockedTime").is_some() { format!("{s}, verrouillé") } else { s.to_string() }
}

pub(super) fn display_name(e: &Entry) -> String {
    match (e.first_str("givenName"), e.first_str("sn")) {
        (Some(g), Some(s)) => format!("{s} {g}"),
        _ => text(e, "cn"),
    }
}

/// RFC 4515 §3: a typed value inside a filter.
fn escape_filter(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '*' | '(' | ')' | '\\' | '\0' => out.push_str(&format!("\\{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

pub(super) fn org_or_404(console: &Console, visitor: &Visitor, siren: &str) -> Result<Organisation, PageError> {
    find(console, visitor, siren)
}

/// The agent of this entryUUID in this organisation, as the visitor reads it.
pub(super) fn agent_or_404(
    console: &Console,
    visitor: &Visitor,
    org: &Organisation,
    id: &str,
) -> Result<Entry, PageError> {
    let found = console.directory.read_by_uuid(&visitor.actor.principal, id, &["1.1"])?;
    let agents = console.directory.normalize_dn(&org.agents())?;
    match found {
        // Read again by DN: a search computes memberOf, which is not stored.
        Some(e) if console.directory.normalize_dn(&e.dn.parent()).ok() == Some(agents) => {
            super::account::read_as(console, visitor, &e.dn, READ)
        }
        _ => Err(PageError::NotFound),
    }
}

/// The organisation of this SIREN and its agent of this id, as the visitor reads them.
pub(super) fn org_and_agent(
    console: &Console,
    visitor: &Visitor,
    siren: &str,
    id: &str,
) -> Result<(Organisation, Entry), PageError> {
    let org = org_or_404(console, visitor, siren)?;
    let agent = agent_or_404(console, visitor, &org, id)?;
    Ok((org, agent))
}

#[derive(Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    tri: String,
    #[serde(default)]
    page: Option<usize>,
}

pub async fn list(
    State(console): State<Arc<Console>>,
    visitor: Visitor,
    Path(siren): Path<String>,
    Query(lq): Query<ListQuery>,
) -> Response {
    let org = match org_or_404(&console, &visitor, &siren) {
        Ok(o) => o,
        Err(e) => return e.page(Some(&visitor)),
    };
    let q = lq.q.trim().to_string();
    let filter = if q.is_empty() {
        Filter::Present("objectClass".into())
    } else {
        let v = escape_filter(&q);
        match Filter::parse(&format!("(|(uid=*{v}*)(mail=*{v}*)(cn=*{v}*)(sn={v}*)(givenName={v}*))")) {
            Ok(f) => f,
            Err(e) => return PageError::from(e).page(Some(&visitor)),
        }
    };
    let attrs = [
        "uid",
        "cn",
        "sn",
        "givenName",
        "mail",
        "cigActive",
        "pwdAccountLockedTime",
        lifecycle::START,
        lifecycle::END,
        "entryUUID",
    ];
    let mut agents = match search_as(&console, &visitor, org.agents(), Scope::One, filter, &attrs) {
        Ok(a) => a,
        Err(e) => return e.page(Some(&visitor)),
    };
    let (sort, sort_label) = match lq.tri.as_str() {
        "identifiant" => ("identifiant", "identifiant"),
        "courriel" => ("courriel", "courriel"),
        _ => ("nom", "nom"),
    };
    let key = |e: &Entry| -> String {
        match sort {
            "identifiant" => text(e, "uid"),
            "courriel" => text(e, "mail"),
            _ => display_name(e),
        }
        .to_lowercase()
    };
    agents.sort_by_cached_key(key);
    let size = console.limits.page_size.max(1);
    let total = agents.len();
    let pages = total.div_ceil(size).max(1);
    let page = lq.page.unwrap_or(1).clamp(1, pages);
    let rows = agents
        .iter()
        .skip((page - 1) * size)
        .take(size)
        .map(|e| AgentRow {
            id: id_of(e),
            name: display_name(e),
            uid: text(e, "uid"),
            mail: text(e, "mail"),
            state: state(e),
        })
        .collect();
    let notice = console.sessions.take_notice(&visitor.session.id);
    let page = pages::Agents {
        nav: Nav::of(Some(&visitor)).with_notice(notice),
        title: org.view.people.clone(),
        org: org.view,
        q_url: encode_query(&q),
        q,
        sort: sort.into(),
        sort_label: sort_label.into(),
        rows,
        total,
        page,
        pages,
    };
    pages::render(StatusCode::OK, &page)
}

/// The agent form, filled with `values` (what was stored or typed).
fn form_page(
    visitor: &Visitor,
    org: Organisation,
    editing: Option<(&Entry, &str)>,
    values: &dyn Fn(&str) -> String,
    errors: FieldErrors,
    status: StatusCode,
) -> Response {
    let mut fields = Vec::new();
    if editing.is_none() {
        fields.push(FormField {
            name: "identifiant",
            label: "Identifiant de connexion",
            kind: "text",
            help: "Laissé vide, il est proposé à partir du prénom et du nom (Hélène Dupré : hdupre) ; il doit être \
                   unique dans tout l'annuaire."
                .into(),
            value: values("identifiant"),
            error: errors.of("identifiant").into(),
            required: false,
            autocomplete: "off",
        });
    }
    for (name, label, kind, _) in FIELDS {
        fields.push(FormField {
            name,
            label,
            kind,
            help: if *kind == "date" {
                "Une date (31/12/2026) ; laissée vide, sans limite.".into()
            } else {
                String::new()
            },
            value: values(name),
            error: errors.of(name).into(),
            required: matches!(*name, "prenom" | "nom"),
            autocomplete: "off",
        });
    }
    if let Some((_, revision)) = editing {
        fields.push(FormField {
            name: "revision",
            label: "Version de la fiche",
            kind: "hidden",
            help: String::new(),
            value: revision.to_string(),
            error: String::new(),
            required: false,
            autocomplete: "",
        });
    }
    let (title, action, submit) = match editing {
        Some((e, _)) => (
            format!("Modifier {}", display_name(e)),
            format!("/organisations/{}/agents/{}", org.view.siren, id_of(e)),
            "Enregistrer les modifications",
        ),
        None => (
            format!("Créer un agent de {}", org.view.name),
            format!("/organisations/{}/agents", org.view.siren),
            "Créer l'agent",
        ),
    };
    let page =
        AgentForm { nav: Nav::of(Some(visitor)), title, org: org.view, action, submit: submit.into(), fields, errors };
    pages::render(status, &page)
}

pub async fn new_form(State(console): State<Arc<Console>>, visitor: Visitor, Path(siren): Path<String>) -> Response {
    match org_or_404(&console, &visitor, &siren) {
        Ok(org) => form_page(&visitor, org, None, &|_| String::new(), FieldErrors::default(), StatusCode::OK),
        Err(e) => e.page(Some(&visitor)),
    }
}

/// What the form's fields say, checked for what the console can tell
/// alone (required names, dates); the directory checks the rest.
fn read_fields(fields: &Fields, errors: &mut FieldErrors) -> Vec<(&'static str, Vec<String>)> {
    let mut out = Vec::new();
    for (name, label, kind, attr) in FIELDS {
        let v = fields.get(name);
        if v.is_empty() {
            if matches!(*name, "prenom" | "nom") {
                errors.add(name, format!("Le champ « {label} » est obligatoire."));
            }
            out.push((*attr, Vec::new()));
        } else if *kind == "date" {
            match date_to_generalized(v, *name == "fin") {
                Some(t) => out.push((*attr, vec![t])),
                None => errors.add(name, "Saisissez une date valide, par exemple 31/12/2026."),
            }
        } else {
            out.push((*attr, vec![v.to_string()]));
        }
    }
    out
}

/// The field a refusal of the directory is about, by the attribute it names.
fn field_of(e: &DirectoryError) -> &'static str {
    if matches!(e, DirectoryError::NotUnique(_) | DirectoryError::AlreadyExists(_)) {
        return "identifiant";
    }
    let said = e.to_string().to_ascii_lowercase();
    FIELDS
        .iter()
        .find(|(_, _, _, attr)| said.contains(&attr.to_ascii_lowercase()))
        .map(|(name, ..)| *name)
        .unwrap_or("formulaire")
}

pub(super) async fn write(
    console: &Console,
    visitor: &Visitor,
    changes: Vec<Change>,
    guard: Option<(Dn, Condition)>,
) -> Result<(), DirectoryError> {
    let mut w = Write::new(changes);
    if let Some((dn, c)) = guard {
        w = w.guarded(dn, c);
    }
    console.directory.write_async(&visitor.actor, w).await.map(|_| ()).map_err(|(_, e)| e)
}

pub async fn create(State(console): State<Arc<Console>>, Path(siren): Path<String>, posted: Posted) -> Response {
    let Posted { visitor, fields } = posted;
    let org = match org_or_404(&console, &visitor, &siren) {
        Ok(o) => o,
        Err(e) => return e.page(Some(&visitor)),
    };
    let mut errors = FieldErrors::default();
    let values = read_fields(&fields, &mut errors);
    let typed = |name: &str| fields.get(name).to_string();
    if !errors.is_empty() {
        return form_page(&visitor, org, None, &typed, errors, StatusCode::BAD_REQUEST);
    }
    let uid = match fields.get("identifiant") {
        "" => match console.directory.propose_uid(fields.get("prenom"), fields.get("nom"), &[]) {
            Ok(u) => u,
            Err(e) => return PageError::from(e).page(Some(&visitor)),
        },
        u => u.to_string(),
    };
    let dn = org.agents().child(Rdn::single("uid", &uid));
    let mut entry = Entry::new(dn.clone())
        .with("objectClass", ["inetOrgPerson", "cigAgent"])
        .with("uid", [uid.as_str()])
        .with("cn", [format!("{} {}", fields.get("prenom"), fields.get("nom"))])
        .with("cigActive", ["TRUE"]);
    for (attr, vs) in values {
        if !vs.is_empty() {
            entry = entry.with(attr, vs);
        }
    }
    match write(&console, &visitor, vec![Change::Add(entry)], None).await {
        Ok(()) => {
            let id = console.directory.get(&dn).ok().flatten().map(|e| id_of(&e)).unwrap_or_default();
            console.sessions.set_notice(&visitor.session.id, format!("L'agent {uid} a été créé."));
            Redirect::to(&format!("/organisations/{siren}/agents/{id}")).into_response()
        }
        Err(e) => {
            let mut errors = FieldErrors::default();
            errors.add(field_of(&e), super::error::french(&e));
            form_page(&visitor, org, None, &typed, errors, StatusCode::CONFLICT)
        }
    }
}

/// Each application's name and how people know it (its `description`).
fn application_labels(console: &Console, visitor: &Visitor) -> Vec<(String, String)> {
    search_as(
        console,
        visitor,
        console.applications(),
        Scope::One,
        Filter::Present("cn".into()),
        &["cn", "description"],
    )
    .unwrap_or_default()
    .iter()
    .filter_map(|e| Some((e.first_str("cn")?.to_string(), e.first_str("description")?.to_string())))
    .collect()
}

#[derive(Deserialize, Default)]
pub struct ShowQuery {
    #[serde(default)]
    modifier: Option<String>,
}

pub async fn show(
    State(console): State<Arc<Console>>,
    visitor: Visitor,
    Path((siren, id)): Path<(String, String)>,
    Query(sq): Query<ShowQuery>,
) -> Response {
    let (org, agent) = match org_and_agent(&console, &visitor, &siren, &id) {
        Ok(found) => found,
        Err(e) => return e.page(Some(&visitor)),
    };
    if sq.modifier.is_some() {
        let stored = |name: &str| -> String {
            match FIELDS.iter().find(|(n, ..)| *n == name) {
                Some((_, _, "date", attr)) => generalized_to_date(&text(&agent, attr)),
                Some((.., attr)) => text(&agent, attr),
                None => String::new(),
            }
        };
        let revision = request::revision(&agent).to_string();
        return form_page(&visitor, org, Some((&agent, &revision)), &stored, FieldErrors::default(), StatusCode::OK);
    }
    let granted = super::account::applications_of(&console, &agent);
    let labels = application_labels(&console, &visitor);
    let applications = org
        .view
        .applications
        .iter()
        .map(|a| Application {
            name: a.clone(),
            label: labels
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(a))
                .map(|(_, l)| l.clone())
                .unwrap_or_else(|| a.to_uppercase()),
            granted: granted.iter().any(|g| g.eq_ignore_ascii_case(a)),
        })
        .collect();
    let date = |a: &str| agent.first_str(a).map(generalized_to_french).unwrap_or_else(|| "—".into());
    let view = AgentView {
        id: id_of(&agent),
        name: display_name(&agent),
        uid: text(&agent, "uid"),
        mail: text(&agent, "mail"),
        state: state(&agent),
        suspended: agent.first_str("cigActive").is_some_and(|v| v.eq_ignore_ascii_case("FALSE")),
        locked: agent.get("pwdAccountLockedTime").is_some(),
        valid_from: date(lifecycle::START),
        valid_until: date(lifecycle::END),
        last_bind: agent.first_str("pwdLastSuccess").map(generalized_to_french).unwrap_or_else(|| "jamais".into()),
    };
    let notice = console.sessions.take_notice(&visitor.session.id);
    let password =
        console.sessions.take_secret(&visitor.session.id, &format!("mot-de-passe:{}", view.id)).unwrap_or_default();
    let page = pages::Agent {
        nav: Nav::of(Some(&visitor)).with_notice(notice),
        title: view.name.clone(),
        org: org.view,
        agent: view,
        applications,
        password,
        bin_days: console.directory.recycle_bin_days_of(&org.dn).unwrap_or(0),
    };
    pages::render(StatusCode::OK, &page)
}

pub async fn update(
    State(console): State<Arc<Console>>,
    Path((siren, id)): Path<(String, String)>,
    posted: Posted,
) -> Response {
    let Posted { visitor, fields } = posted;
    let (org, agent) = match org_and_agent(&console, &visitor, &siren, &id) {
        Ok(found) => found,
        Err(e) => return e.page(Some(&visitor)),
    };
    let mut errors = FieldErrors::default();
    let values = read_fields(&fields, &mut errors);
    let typed = |name: &str| fields.get(name).to_string();
    let revision = fields.get("revision").to_string();
    if !errors.is_empty() {
        return form_page(&visitor, org, Some((&agent, &revision)), &typed, errors, StatusCode::BAD_REQUEST);
    }
    let mut mods: Vec<Modification> =
        values.into_iter().map(|(attr, vs)| Modification::new(ModOp::Replace, attr, vs)).collect();
    mods.push(Modification::new(ModOp::Replace, "cn", [format!("{} {}", fields.get("prenom"), fields.get("nom"))]));
    // What was read when the form was shown: a change made since by someone
    // else is refused rather than overwritten.
    let guard = revision.parse().ok().map(|r| (agent.dn.clone(), Condition::Revision(r)));
    match write(&console, &visitor, vec![Change::Modify(agent.dn.clone(), mods)], guard).await {
        Ok(()) => {
            console.sessions.set_notice(&visitor.session.id, "La fiche a été enregistrée.".into());
            Redirect::to(&format!("/organisations/{siren}/agents/{id}")).into_response()
        }
        Err(e) => {
            let mut errors = FieldErrors::default();
            errors.add(field_of(&e), super::error::french(&e));
            form_page(&visitor, org, Some((&agent, &revision)), &typed, errors, StatusCode::CONFLICT)
        }
    }
}
