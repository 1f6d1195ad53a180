//! What a référent does to one agent from its page: suspend and resume,
//! reset the password (shown once), unlock, grant and revoke applications,
//! delete to the recycle bin; and the bin itself, from which agents are
//! restored with their id.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use super::agents::{agent_or_404, display_name, org_and_agent, org_or_404, write};
use super::forms::generalized_to_french;
use super::pages::{self, Bin, BinRow, Nav};
use super::{Console, PageError, Posted, Visitor};
use crate::directory::{Change, DirectoryError, Dn, Entry, ModOp, Modification, Write};

/// One change to an agent, then back to its page with `done` or the refusal.
async fn act(
    console: &Console,
    visitor: &Visitor,
    siren: &str,
    id: &str,
    make: impl FnOnce(&Entry) -> Vec<Modification>,
    done: &str,
) -> Response {
    let (_, agent) = match org_and_agent(console, visitor, siren, id) {
        Ok(found) => found,
        Err(e) => return e.page(Some(visitor)),
    };
    let mods = make(&agent);
    if !mods.is_empty()
        && let Err(e) = write(console, visitor, vec![Change::Modify(agent.dn.clone(), mods)], None).await
    {
        return PageError::from(e).page(Some(visitor));
    }
    console.sessions.set_notice(&visitor.session.id, done.to_string());
    Redirect::to(&format!("/organisations/{siren}/agents/{id}")).into_response()
}

pub async fn set_active(
    State(console): State<Arc<Console>>,
    Path((siren, id)): Path<(String, String)>,
    posted: Posted,
) -> Response {
    let active = posted.fields.get("actif") == "oui";
    let (value, done) =
        if active { ("TRUE", "Le compte a été réactivé.") } else { ("FALSE", "Le compte a été suspendu.") };
    act(&console, &posted.visitor, &siren, &id, |_| vec![Modification::new(ModOp::Replace, "cigActive", [value])], done)
        .await
}

pub async fn unlock(
    State(console): State<Arc<Console>>,
    Path((siren, id)): Path<(String, String)>,
    posted: Posted,
) -> Response {
    let make = |a: &Entry| {
        if a.get("pwdAccountLockedTime").is_some() {
            vec![Modification::new::<&str>(ModOp::Delete, "pwdAccountLockedTime", [])]
        } else {
            Vec::new()
        }
    };
    act(&console, &posted.visitor, &siren, &id, make, "Le compte a été déverrouillé.").await
}

pub async fn reset_password(
    State(console): State<Arc<Console>>,
    Path((siren, id)): Path<(String, String)>,
    posted: Posted,
) -> Response {
    let visitor = posted.visitor;
    let (_, agent) = match org_and_agent(&console, &visitor, &siren, &id) {
        Ok(found) => found,
        Err(e) => return e.page(Some(&visitor)),
    };
    let dir = console.directory.clone();
    let actor = visitor.actor.clone();
    let agent_dn = agent.dn.clone();
    // The new password is hashed (argon2) before the write: off the reactor.
    let outcome = tokio::task::spawn_blocking(move || {
        let password = dir.generate_password()?;
        let m = Modification::new(ModOp::Replace, "userPassword", [password.as_str()]);
        dir.write(&actor, Write::one(Change::Modify(agent.dn.clone(), vec![m]))).map_err(|(_, e)| e)?;
        Ok::<_, DirectoryError>(password)
    })
    .await;
    match outcome {
        Ok(Ok(password)) => {
            // Whoever was signed in with the old password is no longer.
            if let Ok(ndn) = console.directory.normalize_dn(&agent_dn) {
                console.sessions.close_all_of(&ndn, |d| console.directory.normalize_dn(d).ok());
            }
            console.sessions.set_secret(&visitor.session.id, &format!("mot-de-passe:{id}"), password);
            Redirect::to(&format!("/organisations/{siren}/agents/{id}")).into_response()
        }
        Ok(Err(e)) => PageError::from(e).page(Some(&visitor)),
        Err(_) => PageError::Directory(DirectoryError::Internal("task".into())).page(Some(&visitor)),
    }
}

pub async fn set_applications(
    State(console): State<Arc<Console>>,
    Path((siren, id)): Path<(String, String)>,
    posted: Posted,
) -> Response {
    let Posted { visitor, fields } = posted;
    let (org, agent) = match org_and_agent(&console, &visitor, &siren, &id) {
        Ok(found) => found,
        Err(e) => return e.page(Some(&visitor)),
    };
    let wanted = fields.all("application");
    let granted = super::account::applications_of(&console, &agent);
    let mut changes = Vec::new();
    for app in &org.view.applications {
        let (want, has) =
            (wanted.iter().any(|w| w.eq_ignore_ascii_case(app)), granted.iter().any(|g| g.eq_ignore_ascii_case(app)));
        if want == has {
            continue;
        }
        let group = console.application(app);
        let op = if want { ModOp::Add } else { ModOp::Delete };
        changes.push(Change::Modify(group, vec![Modification::new(op, "member", [agent.dn.to_string()])]));
    }
    if !changes.is_empty()
        && let Err(e) = write(&console, &visitor, changes, None).await
    {
        return PageError::from(e).page(Some(&visitor));
    }
    console.sessions.set_notice(&visitor.session.id, "Les applications ont été enregistrées.".into());
    Redirect::to(&format!("/organisations/{siren}/agents/{id}")).into_response()
}

pub async fn delete(
    State(console): State<Arc<Console>>,
    Path((siren, id)): Path<(String, String)>,
    posted: Posted,
) -> Response {
    let Posted { visitor, fields } = posted;
    let (_, agent) = match org_and_agent(&console, &visitor, &siren, &id) {
        Ok(found) => found,
        Err(e) => return e.page(Some(&visitor)),
    };
    if fields.get("confirmer") != "oui" {
        console
            .sessions
            .set_notice(&visitor.session.id, "Cochez la case de confirmation pour supprimer l'agent.".into());
        return Redirect::to(&format!("/organisations/{siren}/agents/{id}")).into_response();
    }
    if let Err(e) = write(&console, &visitor, vec![Change::Delete(agent.dn.clone())], None).await {
        return PageError::from(e).page(Some(&visitor));
    }
    console
        .sessions
        .set_notice(&visitor.session.id, format!("{} a été placé dans la corbeille.", display_name(&agent)));
    Redirect::to(&format!("/organisations/{siren}/agents")).into_response()
}

pub async fn bin(State(console): State<Arc<Console>>, visitor: Visitor, Path(siren): Path<String>) -> Response {
    let org = match org_or_404(&console, &visitor, &siren) {
        Ok(o) => o,
        Err(e) => return e.page(Some(&visitor)),
    };
    let ndn = console.directory.normalize_dn(&org.dn).unwrap_or_default();
    let deleted = match console.directory.deleted_agents(&visitor.actor.principal, Some(&ndn)) {
        Ok(d) => d,
        Err(e) => return PageError::from(e).page(Some(&visitor)),
    };
    let rows = deleted
        .into_iter()
        .map(|d| BinRow {
            name: Dn::parse(&d.dn)
                .ok()
                .and_then(|dn| dn.rdn().and_then(|r| r.avas.first()).map(|a| a.value.clone()))
                .unwrap_or(d.dn),
            id: d.uuid,
            deleted: generalized_to_french(&d.deleted),
            purge: generalized_to_french(&d.purge_at),
        })
        .collect();
    let notice = console.sessions.take_notice(&visitor.session.id);
    let title = format!("Corbeille de {}", org.view.name);
    pages::render(StatusCode::OK, &Bin { nav: Nav::of(Some(&visitor)).with_notice(notice), title, org: org.view, rows })
}

pub async fn restore(
    State(console): State<Arc<Console>>,
    Path((siren, id)): Path<(String, String)>,
    posted: Posted,
) -> Response {
    let visitor = posted.visitor;
    if let Err(e) = org_or_404(&console, &visitor, &siren) {
        return e.page(Some(&visitor));
    }
    let (dir, actor, uuid) = (console.directory.clone(), visitor.actor.clone(), id.clone());
    match tokio::task::spawn_blocking(move || dir.restore(&actor, &uuid)).await {
        Ok(Ok(_)) => {
            console.sessions.set_notice(&visitor.session.id, "L'agent a été restauré.".into());
            Redirect::to(&format!("/organisations/{siren}/agents/{id}")).into_response()
        }
        Ok(Err(DirectoryError::InvalidAttributeSyntax(_))) => PageError::NotFound.page(Some(&visitor)),
        Ok(Err(e)) => PageError::from(e).page(Some(&visitor)),
        Err(_) => PageError::Directory(DirectoryError::Internal("task".into())).page(Some(&visitor)),
    }
}

/// One application opened to (or withdrawn from) the agents ticked in the
/// list, in one write: all of them or none.
pub async fn set_application_for_many(
    State(console): State<Arc<Console>>,
    Path(siren): Path<String>,
    posted: Posted,
) -> Response {
    let Posted { visitor, fields } = posted;
    let org = match org_or_404(&console, &visitor, &siren) {
        Ok(o) => o,
        Err(e) => return e.page(Some(&visitor)),
    };
    let app = fields.get("application");
    let grant = fields.get("action") != "retirer";
    let list = format!("/organisations/{siren}/agents");
    if !org.view.applications.iter().any(|a| a.eq_ignore_ascii_case(app)) {
        return PageError::NotFound.page(Some(&visitor));
    }
    let mut members = Vec::new();
    for id in fields.all("agent") {
        let agent = match agent_or_404(&console, &visitor, &org, id) {
            Ok(a) => a,
            Err(e) => return e.page(Some(&visitor)),
        };
        let has = super::account::applications_of(&console, &agent).iter().any(|g| g.eq_ignore_ascii_case(app));
        if has != grant {
            members.push(agent.dn.to_string());
        }
    }
    if fields.all("agent").is_empty() {
        console.sessions.set_notice(&visitor.session.id, "Cochez d'abord les agents concernés.".into());
        return Redirect::to(&list).into_response();
    }
    if !members.is_empty() {
        let group = console.application(app);
        let op = if grant { ModOp::Add } else { ModOp::Delete };
        let change = Change::Modify(group, vec![Modification::new(op, "member", members.iter())]);
        if let Err(e) = write(&console, &visitor, vec![change], None).await {
            return PageError::from(e).page(Some(&visitor));
        }
    }
    let n = fields.all("agent").len();
    let done = if grant {
        format!("{app} est ouverte à {n} agent(s).")
    } else {
        format!("{app} est retirée à {n} agent(s).")
    };
    console.sessions.set_notice(&visitor.session.id, done);
    Redirect::to(&list).into_response()
}
