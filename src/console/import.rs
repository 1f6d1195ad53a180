//! CSV import of agents (a dry run first: every error with its line; then
//! all of the file or nothing, in one write) and CSV export of an
//! organisation's agents.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Multipart, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

use super::agents::{display_name, org_or_404, text};
use super::csv;
use super::error::french;
use super::forms::{date_to_generalized, generalized_to_date};
use super::organisation::search_as;
use super::pages::{self, Nav, OrgView};
use super::session::same_token;
use super::{Console, PageError, Posted, Visitor};
use crate::directory::lifecycle;
use crate::directory::schema::approx::fold;
use crate::directory::{Actor, Change, Dn, Entry, Filter, ModOp, Modification, Rdn, Scope};

/// The columns a file may have: its header's name (unaccented, lower
/// case), and the LDAP attribute (empty: handled apart).
const COLUMNS: &[(&str, &str)] = &[
    ("identifiant", "uid"),
    ("prenom", "givenName"),
    ("nom", "sn"),
    ("courriel", "mail"),
    ("telephone", "telephoneNumber"),
    ("fonction", "title"),
    ("matricule", "employeeNumber"),
    ("debut", lifecycle::START),
    ("fin", lifecycle::END),
    ("applications", ""),
];

#[derive(Template)]
#[template(path = "console/import.html")]
struct ImportPage {
    nav: Nav,
    title: String,
    org: OrgView,
    columns: Vec<&'static str>,
    max_rows: usize,
    /// Line and message of each error.
    errors: Vec<(usize, String)>,
    /// After a dry run without error: how many agents the file creates.
    ready: usize,
}

fn page(console: &Console, visitor: &Visitor, org: OrgView, errors: Vec<(usize, String)>, ready: usize) -> Response {
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::BAD_REQUEST };
    let page = ImportPage {
        nav: Nav::of(Some(visitor)).with_notice(console.sessions.take_notice(&visitor.session.id)),
        title: format!("Importer des agents de {}", org.name),
        org,
        columns: COLUMNS.iter().map(|(c, _)| *c).collect(),
        max_rows: console.limits.import_max_rows,
        errors,
        ready,
    };
    pages::render(status, &page)
}

pub async fn form(State(console): State<Arc<Console>>, visitor: Visitor, Path(siren): Path<String>) -> Response {
    match org_or_404(&console, &visitor, &siren) {
        Ok(org) => page(&console, &visitor, org.view, Vec::new(), 0),
        Err(e) => e.page(Some(&visitor)),
    }
}

/// The changes a file makes, each with its line; or every error found.
struct Plan {
    changes: Vec<Change>,
    lines: Vec<usize>,
    /// Each agent's changes (its add, then its applications), for the dry run of one row.
    rows: Vec<(usize, std::ops::Range<usize>)>,
    /// What the console alone found wrong, by line (those rows are left out).
    errors: Vec<(usize, String)>,
}

fn plan(console: &Console, agents: &Dn, subscribed: &[String], text: &str) -> Result<Plan, Vec<(usize, String)>> {
    let rows = csv::rows(text).map_err(|line| vec![(line, "Un guillemet ouvert n'est jamais fermé.".to_string())])?;
    let Some(((_, header), body)) = rows.split_first() else {
        return Err(vec![(1, "Le fichier est vide.".into())]);
    };
    let mut columns = Vec::new();
    let mut errors = Vec::new();
    for name in header {
        let folded = String::from_utf8_lossy(&fold(name.trim().as_bytes())).into_owned();
        match COLUMNS.iter().position(|(c, _)| *c == folded) {
            Some(i) => columns.push(i),
            None => errors.push((1, format!("Colonne inconnue : « {name} ».", name = name.trim()))),
        }
    }
    for required in ["prenom", "nom"] {
        if !columns.iter().any(|&i| COLUMNS[i].0 == required) {
            errors.push((1, format!("La colonne « {required} » manque.")));
        }
    }
    if body.len() > console.limits.import_max_rows {
        errors.push((
            1,
            format!("Le fichier a {} lignes ; au plus {} à la fois.", body.len(), console.limits.import_max_rows),
        ));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut plan = Plan { changes: Vec::new(), lines: Vec::new(), rows: Vec::new(), errors: Vec::new() };
    let mut uids: Vec<String> = Vec::new();
    let mut grants: std::collections::BTreeMap<String, Vec<String>> = std::collections::BTreeMap::new();
    for (line, cells) in body {
        let value = |col: &str| -> &str {
            columns
                .iter()
                .position(|&i| COLUMNS[i].0 == col)
                .and_then(|p| cells.get(p))
                .map(|s| csv::unguarded(s.trim()))
                .unwrap_or("")
        };
        let (given, family) = (value("prenom"), value("nom"));
        if given.is_empty() || family.is_empty() {
            errors.push((*line, "Le prénom et le nom sont obligatoires.".into()));
            continue;
        }
        let uid = match value("identifiant") {
            // Two rows of the same name in one file: the next free number.
            "" => match console.directory.propose_uid(given, family, &uids) {
                Ok(u) => u,
                Err(e) => {
                    errors.push((*line, french(&e)));
                    continue;
                }
            },
            u => u.to_string(),
        };
        if uids.contains(&uid) {
            errors.push((*line, format!("L'identifiant « {uid} » figure déjà plus haut dans le fichier.")));
            continue;
        }
        uids.push(uid.clone());
        let dn = agents.child(Rdn::single("uid", &uid));
        let mut entry = Entry::new(dn.clone())
            .with("objectClass", ["inetOrgPerson", "cigAgent"])
            .with("uid", [uid.as_str()])
            .with("cn", [format!("{given} {family}")])
            .with("cigActive", ["TRUE"]);
        let mut bad = false;
        for (col, attr) in COLUMNS.iter().filter(|(c, a)| !a.is_empty() && *c != "identifiant") {
            let v = value(col);
            if v.is_empty() {
                continue;
            }
            let v = if matches!(*col, "debut" | "fin") {
                match date_to_generalized(v, *col == "fin") {
                    Some(t) => t,
                    None => {
                        errors.push((*line, format!("« {v} » n'est pas une date (31/12/2026).")));
                        bad = true;
                        continue;
                    }
                }
            } else {
                v.to_string()
            };
            entry = entry.with(attr, [v]);
        }
        if bad {
            continue;
        }
        let first = plan.changes.len();
        plan.changes.push(Change::Add(entry));
        plan.lines.push(*line);
        for app in value("applications").split(['|', ',']).map(str::trim).filter(|a| !a.is_empty()) {
            match subscribed.iter().find(|s| s.eq_ignore_ascii_case(app)) {
                Some(s) => grants.entry(s.clone()).or_default().push(dn.to_string()),
                None => {
                    errors.push((
                        *line,
                        format!("« {app} » n'est pas une application à laquelle l'organisation est abonnée."),
                    ));
                    bad = true;
                }
            }
        }
        if bad {
            plan.changes.pop();
            plan.lines.pop();
            continue;
        }
        plan.rows.push((*line, first..first + 1));
    }
    // One modify per application for the whole file: a group spans the
    // CIG, and each modify rewrites it.
    for (app, members) in grants {
        let line = plan.lines.last().copied().unwrap_or(0);
        let grant = Modification::new(ModOp::Add, "member", members.iter());
        plan.changes.push(Change::Modify(console.application(&app), vec![grant]));
        plan.lines.push(line);
    }
    plan.errors = errors;
    Ok(plan)
}

/// Each row judged alone, as the visitor, then the whole file together:
/// every error with its line, nothing written.
fn rehearse(console: &Console, actor: &Actor, plan: &Plan) -> Vec<(usize, String)> {
    let mut errors = plan.errors.clone();
    for (line, range) in &plan.rows {
        if let Err((_, e)) = console.directory.dry_run(actor, plan.changes[range.clone()].to_vec()) {
            errors.push((*line, french(&e)));
        }
    }
    if errors.is_empty()
        && let Err((i, e)) = console.directory.dry_run(actor, plan.changes.clone())
    {
        errors.push((plan.lines.get(i).copied().unwrap_or(0), french(&e)));
    }
    errors.sort_by_key(|(line, _)| *line);
    errors
}

pub async fn check(
    State(console): State<Arc<Console>>,
    visitor: Visitor,
    Path(siren): Path<String>,
    mut form: Multipart,
) -> Response {
    let org = match org_or_404(&console, &visitor, &siren) {
        Ok(o) => o,
        Err(e) => return e.page(Some(&visitor)),
    };
    let (mut token, mut file) = (String::new(), Vec::new());
    loop {
        match form.next_field().await {
            Ok(Some(field)) => {
                let name = field.name().unwrap_or("").to_string();
                let Ok(bytes) = field.bytes().await else {
                    return PageError::BadForm("fichier".into()).page(Some(&visitor));
                };
                match name.as_str() {
                    "jeton" => token = String::from_utf8_lossy(&bytes).into_owned(),
                    "fichier" => file = bytes.to_vec(),
                    _ => {}
                }
            }
            Ok(None) => break,
            Err(e) => return PageError::BadForm(e.body_text()).page(Some(&visitor)),
        }
    }
    if !same_token(&token, visitor.csrf()) {
        return PageError::Forged.page(Some(&visitor));
    }
    let text = csv::decode(&file);
    let (dir, actor, agents, subscribed) =
        (console.clone(), visitor.actor.clone(), org.agents(), org.view.applications.clone());
    // Every row is judged in a transaction of its own: off the reactor.
    let judged = tokio::task::spawn_blocking(move || match plan(&dir, &agents, &subscribed, &text) {
        Ok(p) => (rehearse(&dir, &actor, &p), p.rows.len(), text),
        Err(errors) => (errors, 0, text),
    })
    .await;
    let view = org.view;
    let Ok((errors, rows, text)) = judged else {
        return PageError::Directory(crate::directory::DirectoryError::Internal("task".into())).page(Some(&visitor));
    };
    if errors.is_empty() {
        // Kept in the session for the confirmation, which imports this very file.
        console.sessions.set_secret(&visitor.session.id, &format!("import:{siren}"), text);
        return page(&console, &visitor, view, Vec::new(), rows);
    }
    page(&console, &visitor, view, errors, 0)
}

pub async fn confirm(State(console): State<Arc<Console>>, Path(siren): Path<String>, posted: Posted) -> Response {
    let visitor = posted.visitor;
    let org = match org_or_404(&console, &visitor, &siren) {
        Ok(o) => o,
        Err(e) => return e.page(Some(&visitor)),
    };
    let Some(text) = console.sessions.take_secret(&visitor.session.id, &format!("import:{siren}")) else {
        console
            .sessions
            .set_notice(&visitor.session.id, "Vérifiez d'abord le fichier (essai), puis importez-le.".into());
        return Redirect::to(&format!("/organisations/{siren}/import")).into_response();
    };
    let p = match plan(&console, &org.agents(), &org.view.applications, &text) {
        Ok(p) if p.errors.is_empty() => p,
        Ok(p) => return page(&console, &visitor, org.view, p.errors, 0),
        Err(errors) => return page(&console, &visitor, org.view, errors, 0),
    };
    let n = p.rows.len();
    // All of the file in one write, or nothing (something changed since the dry run).
    match console.directory.write_async(&visitor.actor, crate::directory::Write::new(p.changes)).await {
        Ok(_) => {
            console.sessions.set_notice(&visitor.session.id, format!("{n} agents ont été importés."));
            Redirect::to(&format!("/organisations/{siren}/agents")).into_response()
        }
        Err((i, e)) => page(&console, &visitor, org.view, vec![(p.lines.get(i).copied().unwrap_or(0), french(&e))], 0),
    }
}

pub async fn export(State(console): State<Arc<Console>>, visitor: Visitor, Path(siren): Path<String>) -> Response {
    let org = match org_or_404(&console, &visitor, &siren) {
        Ok(o) => o,
        Err(e) => return e.page(Some(&visitor)),
    };
    let attrs: Vec<&str> = COLUMNS.iter().map(|(_, a)| *a).filter(|a| !a.is_empty()).chain(["memberOf"]).collect();
    let mut agents =
        match search_as(&console, &visitor, org.agents(), Scope::One, Filter::Present("objectClass".into()), &attrs) {
            Ok(a) => a,
            Err(e) => return e.page(Some(&visitor)),
        };
    agents.sort_by_cached_key(|e| display_name(e).to_lowercase());
    // A byte-order mark and `;`: what French Excel opens as it should.
    let mut out = String::from("\u{feff}");
    out.push_str(&COLUMNS.iter().map(|(c, _)| *c).collect::<Vec<_>>().join(";"));
    out.push_str("\r\n");
    for e in &agents {
        let cells: Vec<String> = COLUMNS
            .iter()
            .map(|(col, attr)| match *col {
                "applications" => super::account::applications_of(&console, e).join("|"),
                "debut" | "fin" => {
                    let d = generalized_to_date(&text(e, attr));
                    match d.split('-').collect::<Vec<_>>()[..] {
                        [y, m, d] => format!("{d}/{m}/{y}"),
                        _ => String::new(),
                    }
                }
                _ => text(e, attr),
            })
            .map(|v| csv::cell(&v))
            .collect();
        out.push_str(&cells.join(";"));
        out.push_str("\r\n");
    }
    let disposition = format!("attachment; filename=\"agents-{siren}.csv\"");
    ([(header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()), (header::CONTENT_DISPOSITION, disposition)], out)
        .into_response()
}
