//! Sign-in and sign-out. A sign-in is a simple bind through the core's
//! bind path: the same lockout, validity window, re-hash and refusals as
//! LDAP, and the same answer for an unknown name as for a wrong password.

use std::sync::Arc;

use axum::extract::{ConnectInfo, Form, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::pages::{self, Nav, SignIn};
use super::session::{random_token, same_token};
use super::{Console, Posted, Visitor};
use crate::directory::ppolicy::PasswordProblem;

#[derive(Deserialize, Default)]
pub struct Next {
    #[serde(default)]
    suite: String,
}

/// Where to go after signing in: a path of this site only (never
/// `//elsewhere` or a full URL, which would make the form an open redirect).
fn safe_next(next: &str) -> String {
    // Browsers drop tabs and line breaks and read `\` as `/`: `/\t/host` is `//host`.
    let plain = next.bytes().all(|b| b > 0x20 && b != 0x7f && b != b'\\');
    if plain && next.starts_with('/') && !next.starts_with("//") && !next.starts_with("/connexion") {
        next.to_string()
    } else {
        "/accueil".into()
    }
}

fn pre_cookie_name(console: &Console) -> &'static str {
    if console.secure { "__Host-convergences-connexion" } else { "convergences-connexion" }
}

/// The sign-in form. Before any session, its anti-forgery token is a
/// cookie the form repeats (double submit): another site can post the form
/// but cannot read or set the cookie.
fn form_page(console: &Console, status: StatusCode, next: &str, name: &str, error: String) -> Response {
    let token = random_token();
    let cookie = console.set_cookie(pre_cookie_name(console), Some(&token));
    let page = SignIn {
        nav: Nav::default(),
        title: "Connexion".into(),
        csrf: token,
        next: safe_next(next),
        name: name.to_string(),
        error,
    };
    let mut r = pages::render(status, &page);
    if let Ok(v) = cookie.parse() {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

pub async fn form(State(console): State<Arc<Console>>, visitor: Option<Visitor>, Query(q): Query<Next>) -> Response {
    if visitor.is_some() {
        return Redirect::to(&safe_next(&q.suite)).into_response();
    }
    form_page(&console, StatusCode::OK, &q.suite, "", String::new())
}

#[derive(Deserialize)]
pub struct Credentials {
    #[serde(default)]
    identifiant: String,
    #[serde(default)]
    mot_de_passe: String,
    #[serde(default)]
    jeton: String,
    #[serde(default)]
    suite: String,
}

pub async fn submit(
    State(console): State<Arc<Console>>,
    ConnectInfo(peer): ConnectInfo<crate::https::PeerAddr>,
    headers: HeaderMap,
    Form(c): Form<Credentials>,
) -> Response {
    let expected = super::visitor::cookie(&headers, pre_cookie_name(&console)).unwrap_or_default().to_string();
    if !same_token(&c.jeton, &expected) {
        return form_page(
            &console,
            StatusCode::FORBIDDEN,
            &c.suite,
            &c.identifiant,
            "Le formulaire de connexion a expiré : saisissez à nouveau votre mot de passe.".into(),
        );
    }
    let dir = console.directory.clone();
    let (name, password, peer) = (c.identifiant.clone(), c.mot_de_passe.clone(), peer.0.to_string());
    // A bind hashes (argon2): off the reactor, as LDAP binds are.
    let outcome = tokio::task::spawn_blocking(move || {
        let Some(dn) = dir.login_dn(&name)? else {
            // The same work as a wrong password (RFC 4513 §6.2: no oracle).
            let (r, n) = dir.authenticate_with_policy(None, password.as_bytes(), &peer);
            return Ok((None, r, n));
        };
        let account = dir.account(&dn)?;
        let (r, n) = dir.authenticate_with_policy(account, password.as_bytes(), &peer);
        Ok::<_, crate::directory::DirectoryError>((Some(dn), r, n))
    })
    .await;
    let refused =
        |message: &str| form_page(&console, StatusCode::UNAUTHORIZED, &c.suite, &c.identifiant, message.into());
    let (dn, result, notice) = match outcome {
        Ok(Ok(o)) => o,
        // A name that is no DN the directory knows (an unknown attribute …):
        // as a wrong password, not a page of its own.
        Ok(Err(e)) => {
            tracing::debug!("console sign-in: {e}");
            return refused("Identifiant ou mot de passe incorrect.");
        }
        Err(_) => return refused("Le serveur n'a pas pu vérifier le mot de passe ; réessayez dans un instant."),
    };
    let (Some(dn), Ok(principal)) = (dn, result) else {
        // What the policy says is told only to whoever typed the right password.
        return refused(match notice.problem {
            Some(PasswordProblem::AccountLocked) => {
                "Ce compte est verrouillé après trop d'essais : attendez, ou demandez à votre référent de le déverrouiller."
            }
            Some(PasswordProblem::Expired) => {
                "Votre mot de passe a expiré : demandez à votre référent de le réinitialiser."
            }
            _ => "Identifiant ou mot de passe incorrect.",
        });
    };
    let must_change = notice.problem == Some(PasswordProblem::ChangeAfterReset);
    let name = console
        .directory
        .get(&dn)
        .ok()
        .flatten()
        .and_then(|e| e.first_str("displayName").or(e.first_str("cn")).map(str::to_string))
        .unwrap_or_else(|| dn.to_string());
    let Some(session) = console.sessions.open(principal, dn, name, must_change) else {
        return refused("Le serveur n'a pas pu ouvrir de session ; réessayez dans un instant.");
    };
    let to = if must_change { "/compte/mot-de-passe".to_string() } else { safe_next(&c.suite) };
    let mut r = Redirect::to(&to).into_response();
    for cookie in [console.session_cookie(&session.id), console.set_cookie(pre_cookie_name(&console), None)] {
        if let Ok(v) = cookie.parse() {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    r
}

pub async fn sign_out(State(console): State<Arc<Console>>, posted: Posted) -> Response {
    console.sessions.close(&posted.visitor.session.id);
    let mut r = Redirect::to("/connexion").into_response();
    if let Ok(v) = console.expired_cookie().parse() {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}
