//! "Mon compte": a person's own entry, applications and password, for every
//! signed-in identity (an agent, an individual subscriber, a référent).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use super::error::french;
use super::forms::FieldErrors;
use super::pages::{self, Nav, PasswordForm};
use super::{Console, PageError, Posted, Visitor};
use crate::directory::{DirectoryError, Entry, Filter, Scope, SearchRequest};

/// One entry read as the visitor, with the attributes asked (`*` and named
/// operational ones); not found when the visitor may not read it.
pub fn read_as(
    console: &Console,
    visitor: &Visitor,
    dn: &crate::directory::Dn,
    attrs: &[&str],
) -> Result<Entry, PageError> {
    let mut req = SearchRequest::new(dn.clone(), Scope::Base, Filter::Present("objectClass".into()));
    req.attrs = attrs.iter().map(|a| a.to_string()).collect();
    let mut found = None;
    console.directory.search(&visitor.actor.principal, &req, |e| {
        found = Some(e);
        Ok(())
    })?;
    found.ok_or(PageError::NotFound)
}

/// The applications an entry is in, by their `memberOf` under `ou=applications`.
pub fn applications_of(console: &Console, entry: &Entry) -> Vec<String> {
    let apps = format!(",ou=applications,{}", console.directory.suffix()).to_ascii_lowercase();
    let mut out: Vec<String> = entry
        .get("memberOf")
        .map(|a| a.values.iter().map(|v| String::from_utf8_lossy(v).into_owned()).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .filter(|dn| dn.to_ascii_lowercase().ends_with(&apps))
        .filter_map(|dn| crate::directory::Dn::parse(&dn).ok())
        .filter_map(|dn| dn.rdn().and_then(|r| r.avas.first()).map(|a| a.value.clone()))
        .collect();
    out.sort();
    out
}

pub async fn show(State(console): State<Arc<Console>>, visitor: Visitor) -> Response {
    let notice = console.sessions.take_notice(&visitor.session.id);
    let entry = match read_as(&console, &visitor, &visitor.session.dn, &["*", "memberOf"]) {
        Ok(e) => e,
        Err(e) => return e.page(Some(&visitor)),
    };
    let text = |a: &str| entry.first_str(a).unwrap_or("").to_string();
    let page = pages::Account {
        nav: Nav::of(Some(&visitor)).with_notice(notice),
        title: "Mon compte".into(),
        display_name: entry.first_str("displayName").or(entry.first_str("cn")).unwrap_or("").to_string(),
        uid: text("uid"),
        mail: text("mail"),
        dn: visitor.session.dn.to_string(),
        applications: applications_of(&console, &entry),
    };
    pages::render(StatusCode::OK, &page)
}

/// The password policy, as a person reads it before typing.
fn rules(console: &Console) -> Vec<String> {
    let p = console.directory.password_policy();
    let mut r = vec![format!("Au moins {} caractères.", p.min_length)];
    if p.min_classes > 1 {
        r.push(format!(
            "Au moins {} sortes de caractères parmi : minuscules, majuscules, chiffres, autres caractères.",
            p.min_classes
        ));
    }
    if p.history > 0 {
        r.push(format!("Différent de vos {} derniers mots de passe.", p.history));
    }
    if p.max_age_secs > 0 {
        r.push(format!("Il faudra le changer tous les {} jours.", p.max_age_secs / 86_400));
    }
    r
}

fn form(console: &Console, visitor: &Visitor, status: StatusCode, errors: FieldErrors) -> Response {
    let page = PasswordForm {
        nav: Nav::of(Some(visitor)),
        title: "Changer mon mot de passe".into(),
        forced: visitor.session.must_change,
        rules: rules(console),
        errors,
    };
    pages::render(status, &page)
}

pub async fn password_form(State(console): State<Arc<Console>>, visitor: Visitor) -> Response {
    form(&console, &visitor, StatusCode::OK, FieldErrors::default())
}

pub async fn change_password(State(console): State<Arc<Console>>, posted: Posted) -> Response {
    let Posted { visitor, fields } = posted;
    let (current, new, again) = (fields.raw("actuel"), fields.raw("nouveau"), fields.raw("confirmation"));
    let mut errors = FieldErrors::default();
    if current.is_empty() {
        errors.add("actuel", "Saisissez votre mot de passe actuel.");
    }
    if new.is_empty() {
        errors.add("nouveau", "Saisissez le nouveau mot de passe.");
    } else if new != again {
        errors.add("confirmation", "La confirmation ne reprend pas le nouveau mot de passe.");
    }
    if !errors.is_empty() {
        return form(&console, &visitor, StatusCode::BAD_REQUEST, errors);
    }
    let dir = console.directory.clone();
    let (dn, actor) = (visitor.session.dn.clone(), visitor.actor.clone());
    let (current, new) = (current.to_string(), new.to_string());
    // The current password proves it is the person (a session left open is
    // not enough); both steps hash, off the reactor.
    let outcome = tokio::task::spawn_blocking(move || {
        let account = dir.account(&dn)?;
        if dir.authenticate(account, current.as_bytes(), &actor.peer).is_err() {
            return Ok(Err("actuel"));
        }
        dir.change_password(&actor, &dn, new.as_bytes()).map(Ok)
    })
    .await;
    match outcome {
        Ok(Ok(Ok(()))) => {
            console.sessions.changed_password(&visitor.session.id);
            console.sessions.set_notice(&visitor.session.id, "Votre mot de passe a été changé.".into());
            Redirect::to("/compte").into_response()
        }
        Ok(Ok(Err(field))) => {
            errors.add(field, "Le mot de passe actuel est incorrect.");
            form(&console, &visitor, StatusCode::BAD_REQUEST, errors)
        }
        Ok(Err(e @ (DirectoryError::PasswordRefused(..) | DirectoryError::ConstraintViolation(_)))) => {
            errors.add("nouveau", french(&e));
            form(&console, &visitor, StatusCode::BAD_REQUEST, errors)
        }
        Ok(Err(e)) => PageError::from(e).page(Some(&visitor)),
        Err(_) => PageError::Directory(DirectoryError::Internal("task".into())).page(Some(&visitor)),
    }
}
