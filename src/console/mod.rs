//! The web console (issue 22): pages in French, rendered on the server, for
//! the référents of an organisation, CIG administrators and agents.
//!
//! It holds no access rule: every page reads and writes through the
//! directory core as the signed-in identity, which the same policy engine
//! as LDAP and SCIM judges. What another organisation's référent may not
//! see is not found, so every route answers 404 for it.

mod account;
mod actions;
mod admin;
mod agents;
mod csv;
mod error;
mod forms;
mod import;
mod journal;
mod organisation;
mod pages;
pub mod session;
mod signin;
mod visitor;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::config::ConsoleLimits;
use crate::directory::Directory;
pub use error::PageError;
pub use session::Sessions;
pub use visitor::{Posted, Visitor};

/// What every console request needs.
pub struct Console {
    pub directory: Arc<Directory>,
    pub sessions: Arc<Sessions>,
    pub limits: ConsoleLimits,
    /// Served over HTTPS: cookies are `Secure` and `__Host-` named.
    pub secure: bool,
    /// One log line per request (`log_operations`), as LDAP and SCIM have.
    pub log_operations: bool,
}

impl Console {
    pub fn cookie_name(&self) -> &'static str {
        if self.secure { "__Host-convergences" } else { "convergences" }
    }

    /// `Set-Cookie` for one of the console's cookies: unreadable by
    /// scripts, never sent by another site's request (RFC 6265bis
    /// SameSite=Strict); `None` forgets it.
    pub fn set_cookie(&self, name: &str, value: Option<&str>) -> String {
        let secure = if self.secure { "; Secure" } else { "" };
        match value {
            Some(v) => format!("{name}={v}; Path=/; HttpOnly; SameSite=Strict{secure}"),
            None => format!("{name}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}"),
        }
    }

    /// `Set-Cookie` for a session.
    pub fn session_cookie(&self, id: &str) -> String {
        self.set_cookie(self.cookie_name(), Some(id))
    }

    /// `ou=applications` under the suffix: the application groups.
    pub fn applications(&self) -> crate::directory::Dn {
        self.directory.suffix().child(crate::directory::Rdn::single("ou", "applications"))
    }

    /// The group of one application (its members may use it).
    pub fn application(&self, app: &str) -> crate::directory::Dn {
        self.applications().child(crate::directory::Rdn::single("cn", app))
    }

    pub fn expired_cookie(&self) -> String {
        self.set_cookie(self.cookie_name(), None)
    }
}

const STYLESHEET: &str = include_str!("../../templates/console/console.css");

/// The console's routes on one listener.
pub fn router(console: Arc<Console>) -> Router {
    let limit = console.limits.max_body_bytes;
    let secure = console.secure;
    let log = console.log_operations;
    Router::new()
        .route("/", get(|| async { axum::response::Redirect::to("/accueil") }))
        .route("/connexion", get(signin::form).post(signin::submit))
        .route("/deconnexion", post(signin::sign_out))
        .route("/accueil", get(organisation::home))
        .route("/accessibilite", get(pages::accessibility))
        .route("/compte", get(account::show))
        .route("/compte/mot-de-passe", get(account::password_form).post(account::change_password))
        .route("/organisations/{siren}/agents", get(agents::list).post(agents::create))
        .route("/organisations/{siren}/agents/nouveau", get(agents::new_form))
        .route("/organisations/{siren}/agents/applications", post(actions::set_application_for_many))
        .route("/organisations/{siren}/agents/{id}", get(agents::show).post(agents::update))
        .route("/organisations/{siren}/agents/{id}/etat", post(actions::set_active))
        .route("/organisations/{siren}/agents/{id}/mot-de-passe", post(actions::reset_password))
        .route("/organisations/{siren}/agents/{id}/deverrouiller", post(actions::unlock))
        .route("/organisations/{siren}/agents/{id}/applications", post(actions::set_applications))
        .route("/organisations/{siren}/agents/{id}/supprimer", post(actions::delete))
        .route("/organisations/{siren}/corbeille", get(actions::bin))
        .route("/organisations/{siren}/corbeille/{id}/restaurer", post(actions::restore))
        .route("/organisations/{siren}/groupes", get(organisation::groups))
        .route("/organisations/{siren}/journal", get(journal::organisation))
        .route("/organisations/{siren}/import", get(import::form).post(import::check))
        .route("/organisations/{siren}/import/confirmer", post(import::confirm))
        .route("/organisations/{siren}/export.csv", get(import::export))
        .route("/administration/journal", get(journal::everything))
        .route("/administration", get(admin::home))
        .route("/administration/organisations", get(admin::organisations).post(admin::create_organisation))
        .route("/administration/organisations/nouvelle", get(admin::new_organisation))
        .route("/administration/organisations/{siren}", get(admin::organisation))
        .route(
            "/administration/organisations/{siren}/modifier",
            get(admin::edit_organisation).post(admin::update_organisation),
        )
        .route("/administration/organisations/{siren}/referents", post(admin::designate_referent))
        .route("/administration/organisations/{siren}/referents/retirer", post(admin::remove_referent))
        .route("/administration/organisations/{siren}/jetons", post(admin::create_token))
        .route("/administration/organisations/{siren}/jetons/{id}/revoquer", post(admin::revoke_token))
        .route("/static/console.css", get(stylesheet))
        .fallback(|visitor: Option<Visitor>| async move { PageError::NotFound.page(visitor.as_ref()) })
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::map_response(move |r: Response| async move { protect(r, secure) }))
        .layer(axum::middleware::from_fn(move |req, next| logged(log, req, next)))
        .with_state(console)
}

/// The request's log line: method, path (never a query: it may hold a
/// name searched for), status, duration. Who did what is the audit trail's.
async fn logged(log: bool, req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    if !log {
        return next.run(req).await;
    }
    let started = std::time::Instant::now();
    let (method, path) = (req.method().as_str().to_string(), req.uri().path().to_string());
    let resp = next.run(req).await;
    crate::oplog::Line::new("console")
        .text("method", &method)
        .text("path", &path)
        .unsigned("status", u64::from(resp.status().as_u16()))
        .unsigned("us", started.elapsed().as_micros() as u64)
        .write();
    resp
}

async fn stylesheet() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "max-age=3600")], STYLESHEET)
        .into_response()
}

/// The headers every answer carries: no script at all, no framing
/// (clickjacking), no sniffing, no caching of pages that show personal data.
fn protect(mut r: Response, secure: bool) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if secure {
        h.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000"));
    }
    r
}
