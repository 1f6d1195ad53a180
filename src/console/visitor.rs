//! Who is asking: the signed-in session of the request's cookie, and for a
//! form, its fields once the session's anti-forgery token is checked.

use std::sync::Arc;

use axum::extract::{ConnectInfo, Form, FromRequest, FromRequestParts, OptionalFromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{Method, header};
use axum::response::{IntoResponse, Redirect, Response};

use super::Console;
use super::error::PageError;
use super::forms::Fields;
use super::session::{Session, same_token};
use crate::directory::Actor;

/// A signed-in request: its session and the actor the core judges.
pub struct Visitor {
    pub session: Session,
    pub actor: Actor,
    /// A CIG administrator, as the core tells (for the pages to offer).
    pub admin: bool,
}

/// The pages a session whose password was reset may still reach.
const WHILE_MUST_CHANGE: &[&str] = &["/compte/mot-de-passe", "/deconnexion", "/accessibilite", "/static/console.css"];

/// `s` as a URL query value (RFC 3986 §2.1: everything but the unreserved
/// characters percent-encoded).
pub fn encode_query(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A cookie's value in the `Cookie` headers (RFC 6265 §5.4).
pub fn cookie<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

impl Visitor {
    fn resolve(parts: &Parts, console: &Console) -> Option<Visitor> {
        let id = cookie(&parts.headers, console.cookie_name())?;
        let session = console.sessions.touch(id)?;
        // Suspended, locked, past its validity or deleted since sign-in:
        // the session ends now, as the next LDAP bind would fail.
        if !console.directory.may_stay_signed_in(&session.dn).unwrap_or(false) {
            console.sessions.close(&session.id);
            return None;
        }
        let peer = parts
            .extensions
            .get::<ConnectInfo<crate::https::PeerAddr>>()
            .map(|c| c.0.0.to_string())
            .unwrap_or_default();
        // The groups are read again: a référent removed a minute ago is no
        // longer one.
        let principal = console.directory.refresh(&session.principal).ok()?;
        let admin = principal.is_admin(&console.directory);
        Some(Visitor { actor: Actor::client(principal, peer), session, admin })
    }

    pub fn csrf(&self) -> &str {
        &self.session.csrf
    }
}

impl FromRequestParts<Arc<Console>> for Visitor {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, console: &Arc<Console>) -> Result<Visitor, Response> {
        let Some(v) = Visitor::resolve(parts, console) else {
            // Signed out or expired: sign in, then come back to what was asked
            // (a form's page rather than its POST).
            let wanted = if parts.method == Method::GET {
                parts.uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".into())
            } else {
                parts.uri.path().to_string()
            };
            return Err(Redirect::to(&format!("/connexion?suite={}", encode_query(&wanted))).into_response());
        };
        if v.session.must_change && !WHILE_MUST_CHANGE.contains(&parts.uri.path()) {
            return Err(Redirect::to("/compte/mot-de-passe").into_response());
        }
        Ok(v)
    }
}

impl OptionalFromRequestParts<Arc<Console>> for Visitor {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, console: &Arc<Console>) -> Result<Option<Visitor>, Self::Rejection> {
        Ok(Visitor::resolve(parts, console))
    }
}

/// A form posted by a signed-in visitor, its anti-forgery token checked.
pub struct Posted {
    pub visitor: Visitor,
    pub fields: Fields,
}

impl FromRequest<Arc<Console>> for Posted {
    type Rejection = Response;

    async fn from_request(req: Request, console: &Arc<Console>) -> Result<Posted, Response> {
        let (mut parts, body) = req.into_parts();
        let visitor = <Visitor as FromRequestParts<Arc<Console>>>::from_request_parts(&mut parts, console).await?;
        let req = Request::from_parts(parts, body);
        let Form(pairs) = Form::<Vec<(String, String)>>::from_request(req, console)
            .await
            .map_err(|e| PageError::BadForm(e.body_text()).page(Some(&visitor)))?;
        let fields = Fields::new(pairs);
        if !same_token(fields.get("jeton"), visitor.csrf()) {
            return Err(PageError::Forged.page(Some(&visitor)));
        }
        Ok(Posted { visitor, fields })
    }
}
