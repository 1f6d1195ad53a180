//! The audit trail in the console: one organisation's for its référents,
//! all of it for CIG administrators, filtered by agent, author, operation
//! and date, newest first. The core decides who reads which.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::forms::date_to_generalized;
use super::organisation::find;
use super::pages::{self, Nav};
use super::{Console, PageError, Visitor};
use crate::directory::AuditQuery;

/// The operations the trail records, as a référent reads them.
const OPERATIONS: &[(&str, &str)] = &[
    ("add", "Création"),
    ("modify", "Modification"),
    ("delete", "Suppression"),
    ("modrdn", "Renommage"),
    ("restore", "Restauration"),
    ("lifecycle", "Fin de validité"),
    ("purge", "Purge de la corbeille"),
    ("token-create", "Jeton SCIM créé"),
    ("token-revoke", "Jeton SCIM révoqué"),
];

/// How an operation of the trail reads.
pub fn operation_label(op: &str) -> String {
    OPERATIONS.iter().find(|(k, _)| *k == op).map(|(_, l)| l.to_string()).unwrap_or_else(|| op.to_string())
}

#[derive(Deserialize, Default)]
pub struct Filters {
    #[serde(default)]
    agent: String,
    #[serde(default)]
    auteur: String,
    #[serde(default)]
    operation: String,
    #[serde(default)]
    depuis: String,
}

struct Row {
    time: String,
    actor: String,
    op: String,
    dn: String,
    attrs: String,
    result: String,
}

#[derive(Template)]
#[template(path = "console/journal.html")]
struct Journal {
    nav: Nav,
    title: String,
    action: String,
    org_siren: String,
    org_name: String,
    agent: String,
    actor: String,
    operation: String,
    since: String,
    since_error: String,
    operations: Vec<(&'static str, &'static str)>,
    rows: Vec<Row>,
    truncated: bool,
}

/// A changelog time as a French reader reads it: `31/12/2026 14:05` (UTC).
pub fn when(t: &str) -> String {
    match (t.get(0..4), t.get(4..6), t.get(6..8), t.get(8..10), t.get(10..12)) {
        (Some(y), Some(m), Some(d), Some(h), Some(mi)) => format!("{d}/{m}/{y} {h}:{mi}"),
        _ => t.to_string(),
    }
}

fn show(console: &Console, visitor: &Visitor, org: Option<(String, String, String)>, f: Filters) -> Response {
    let mut q = AuditQuery::default();
    let mut since_error = String::new();
    if !f.depuis.is_empty() {
        match date_to_generalized(&f.depuis, false) {
            Some(t) => q.since = Some(t),
            None => since_error = "Saisissez une date valide, par exemple 01/12/2026.".into(),
        }
    }
    let (siren, name) = match &org {
        Some((ndn, siren, name)) => {
            q.org_ndn = Some(ndn.clone());
            (siren.clone(), name.clone())
        }
        None => (String::new(), String::new()),
    };
    let keep = console.limits.audit_rows.max(1);
    let (agent, actor) = (f.agent.trim().to_lowercase(), f.auteur.trim().to_lowercase());
    let wanted = |rec: &crate::store::ChangeRecord| {
        (agent.is_empty() || rec.dn.to_lowercase().contains(&agent))
            && (actor.is_empty() || rec.actor.to_lowercase().contains(&actor))
            && (f.operation.is_empty() || rec.op == f.operation)
    };
    let read =
        console.directory.recent_changes_as(&visitor.actor.principal, &q, keep, console.limits.audit_scan, wanted);
    let (rows, truncated) = match &read {
        Ok((records, more)) => (
            records
                .iter()
                .map(|rec| Row {
                    time: when(&rec.time),
                    actor: if rec.actor.is_empty() { "(serveur)".into() } else { rec.actor.clone() },
                    op: operation_label(&rec.op),
                    dn: rec.dn.clone(),
                    attrs: rec.attrs.join(", "),
                    result: if rec.result == "success" {
                        "réussie".into()
                    } else {
                        format!("refusée : {}", rec.result)
                    },
                })
                .collect::<Vec<_>>(),
            *more,
        ),
        Err(_) => (Vec::new(), false),
    };
    if let Err(e) = read {
        // Not theirs to read: as if the page did not exist.
        return match e {
            crate::directory::DirectoryError::InsufficientAccess(_) => PageError::NotFound.page(Some(visitor)),
            e => PageError::from(e).page(Some(visitor)),
        };
    }
    let (title, action) = if siren.is_empty() {
        ("Journal d'audit du CIG".to_string(), "/administration/journal".to_string())
    } else {
        (format!("Journal d'audit de {name}"), format!("/organisations/{siren}/journal"))
    };
    let page = Journal {
        nav: Nav::of(Some(visitor)),
        title,
        action,
        org_siren: siren,
        org_name: name,
        agent: f.agent,
        actor: f.auteur,
        operation: f.operation,
        since: f.depuis,
        since_error,
        operations: OPERATIONS.to_vec(),
        rows,
        truncated,
    };
    pages::render(StatusCode::OK, &page)
}

pub async fn organisation(
    State(console): State<Arc<Console>>,
    visitor: Visitor,
    Path(siren): Path<String>,
    Query(f): Query<Filters>,
) -> Response {
    let org = match find(&console, &visitor, &siren) {
        Ok(o) => o,
        Err(e) => return e.page(Some(&visitor)),
    };
    let ndn = match console.directory.normalize_dn(&org.dn) {
        Ok(n) => n,
        Err(e) => return PageError::from(e).page(Some(&visitor)),
    };
    show(&console, &visitor, Some((ndn, org.view.siren, org.view.name)), f)
}

pub async fn everything(State(console): State<Arc<Console>>, visitor: Visitor, Query(f): Query<Filters>) -> Response {
    if !visitor.admin {
        return PageError::NotFound.page(Some(&visitor));
    }
    show(&console, &visitor, None, f)
}
