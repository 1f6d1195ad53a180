//! SCIM 2.0 front end (RFC 7643 / 7644, RFC 9865 cursors): HTTP ⇄ JSON ⇄
//! directory calls. Never touches redb; the directory core holds every rule,
//! access included: a request acts as its token's identity.
//!
//! Users are an organisation's agents (`ou=agents`), Groups its groups
//! (`ou=groupes`); one mapping table per resource (`mapping/`) drives
//! rendering, parsing, PATCH paths, filters, sorting and `/Schemas`.

mod admin;
mod bulk;
mod cursor;
mod elements;
mod error;
mod evaluate;
mod filter;
mod groups;
mod handlers;
mod listing;
mod lookup;
pub mod mapping;
mod parse;
mod patch;
mod query;
mod render;
mod users;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use handlers::{Groups, Users};
use serde_json::{Value, json};

pub use error::ScimError;

use crate::directory::{Actor, Directory, TokenScope};
use mapping::{group::GROUPS, user::USERS};

/// SCIM media type (RFC 7644 §3.1).
pub const MEDIA_TYPE: &str = "application/scim+json";

/// What every request shares.
pub struct ScimContext {
    pub directory: Arc<Directory>,
    /// Most resources one list response carries (RFC 7644 §3.4.2.4 `count`,
    /// RFC 9865 `maxPageSize`).
    pub max_results: usize,
    /// Bulk limits (RFC 7644 §3.7.4), advertised in ServiceProviderConfig.
    pub bulk_max_operations: usize,
    pub bulk_max_payload: usize,
    pub max_body_bytes: usize,
    pub filter_limits: query::FilterLimits,
    /// One log line per request (`log_operations`).
    pub log_operations: bool,
    pub max_concurrent_requests: usize,
    in_flight: std::sync::atomic::AtomicUsize,
    /// An online backup or export whose client stops reading this long is abandoned.
    pub stall_limit: std::time::Duration,
    /// Seals and opens RFC 9865 cursors.
    cursors: cursor::Cursors,
    /// Times a PATCH overtaken by another write is computed again.
    patch_retries: usize,
}

/// The resource types served, in `/ResourceTypes` order.
const RESOURCES: [&mapping::Resource; 2] = [&USERS, &GROUPS];

impl ScimContext {
    pub fn new(
        directory: Arc<Directory>,
        limits: &crate::config::ScimLimits,
    ) -> Result<ScimContext, serde_json::Error> {
        Ok(ScimContext {
            directory,
            max_results: limits.max_results,
            bulk_max_operations: limits.bulk_max_operations,
            bulk_max_payload: limits.bulk_max_payload,
            max_body_bytes: limits.max_body_bytes,
            filter_limits: query::FilterLimits {
                max_length: limits.max_filter_length,
                max_depth: limits.max_filter_depth,
            },
            log_operations: true,
            max_concurrent_requests: limits.max_concurrent_requests.max(1),
            in_flight: std::sync::atomic::AtomicUsize::new(0),
            stall_limit: std::time::Duration::from_secs(limits.stall_secs.max(1)),
            cursors: cursor::Cursors::new(limits.cursor_timeout_secs),
            patch_retries: limits.patch_retries,
        })
    }

    /// RFC 7643 §5, as this server behaves: every feature it says it has, it has.
    fn service_provider_config(&self) -> Value {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
            "documentationUri": "https://www.rfc-editor.org/rfc/rfc7644",
            "patch": {"supported": true},
            "bulk": {"supported": true, "maxOperations": self.bulk_max_operations, "maxPayloadSize": self.bulk_max_payload},
            "filter": {"supported": true, "maxResults": self.max_results},
            "changePassword": {"supported": true},
            "sort": {"supported": true},
            "etag": {"supported": true},
            "pagination": {
                "cursor": true,
                "index": true,
                "defaultPaginationMethod": "index",
                "defaultPageSize": self.max_results,
                "maxPageSize": self.max_results,
                "cursorTimeout": self.cursors.timeout_secs(),
            },
            "authenticationSchemes": [{
                "type": "oauthbearertoken",
                "name": "OAuth Bearer Token",
                "description": "Bearer token issued per organisation with `convergences token create`",
                "specUri": "https://www.rfc-editor.org/info/rfc6750",
                "primary": true,
            }],
            "meta": {"resourceType": "ServiceProviderConfig", "location": "/scim/v2/ServiceProviderConfig"},
        })
    }

    /// Every schema of every resource type, as `/Schemas` gives them: the
    /// entitlements' canonical values are the applications the caller's
    /// organisation subscribes to.
    fn schemas(&self, caller: &Caller) -> Vec<Value> {
        let applications = self.subscribed_applications(caller);
        let canonical = |path: &str| -> Option<Vec<String>> {
            (path == "entitlements.value" && !applications.is_empty()).then(|| applications.clone())
        };
        RESOURCES
            .iter()
            .flat_map(|r| std::iter::once(r.core).chain(r.extensions.iter().copied()))
            .map(|s| s.describe(&canonical))
            .collect()
    }

    /// The applications an organisation's token may grant (its
    /// `cigApplication`); for a CIG token, every application.
    fn subscribed_applications(&self, caller: &Caller) -> Vec<String> {
        let dir = &self.directory;
        let mut out: Vec<String> = match &caller.0 {
            TokenScope::Organisation(dn) => dir
                .read_many(&caller.1.principal, &[&dn.to_string()], &["cigApplication"])
                .ok()
                .and_then(|mut v| v.pop().flatten())
                .and_then(|e| {
                    e.get("cigApplication")
                        .map(|a| a.values.iter().map(|v| String::from_utf8_lossy(v).to_lowercase()).collect())
                })
                .unwrap_or_default(),
            TokenScope::Cig => {
                let base = dir.suffix().child(crate::directory::Rdn::single("ou", "applications"));
                let req = crate::directory::SearchRequest::new(
                    base,
                    crate::directory::Scope::One,
                    crate::directory::Filter::everything(),
                );
                let mut apps = Vec::new();
                let _ = dir.search(&caller.1.principal, &req, |e| {
                    if let Some(cn) = e.first_str("cn") {
                        apps.push(cn.to_lowercase());
                    }
                    Ok(())
                });
                apps
            }
        };
        out.sort();
        out.dedup();
        out
    }
}

/// For the fuzz target: a SCIM filter, parsed and lowered.
pub fn fuzz_filter(s: &str) {
    let _ = filter::parse(s);
}

/// For the fuzz target: a PATCH body applied to a User document.
pub fn fuzz_patch(doc: &[u8], body: &[u8]) {
    if let (Ok(mut doc), Ok(body)) = (serde_json::from_slice::<Value>(doc), serde_json::from_slice::<Value>(body))
        && let Ok(ops) = patch::operations(&body)
    {
        let _ = patch::apply(&USERS, &mut doc, &ops);
    }
}

/// The routes under `/scim/v2`.
pub fn router(ctx: Arc<ScimContext>) -> Router {
    let log = ctx.log_operations;
    let api = Router::new()
        .route("/ServiceProviderConfig", get(service_provider_config))
        .route("/ResourceTypes", get(resource_types))
        .route("/ResourceTypes/{id}", get(resource_type))
        .route("/Schemas", get(schemas))
        .route("/Schemas/{id}", get(schema))
        .route("/.search", post(handlers::search_all))
        .route("/Users", get(handlers::list::<Users>).post(handlers::create::<Users>))
        .route("/Users/.search", post(handlers::search::<Users>))
        .route(
            "/Users/{id}",
            get(handlers::read::<Users>)
                .put(handlers::replace::<Users>)
                .patch(handlers::patch::<Users>)
                .delete(handlers::remove::<Users>),
        )
        .route("/Groups", get(handlers::list::<Groups>).post(handlers::create::<Groups>))
        .route("/Groups/.search", post(handlers::search::<Groups>))
        .route(
            "/Groups/{id}",
            get(handlers::read::<Groups>)
                .put(handlers::replace::<Groups>)
                .patch(handlers::patch::<Groups>)
                .delete(handlers::remove::<Groups>),
        )
        // A Bulk body has its own, larger limit (RFC 7644 §3.7.4 maxPayloadSize),
        // checked again with its SCIM error once read.
        .route("/Bulk", post(bulk::bulk).layer(DefaultBodyLimit::max(ctx.bulk_max_payload.saturating_add(1))))
        .fallback(|| async { ScimError::not_found("endpoint") })
        .layer(DefaultBodyLimit::max(ctx.max_body_bytes))
        .layer(axum::middleware::map_response(as_scim_error))
        .layer(axum::middleware::from_fn_with_state(ctx.clone(), admit))
        .layer(axum::middleware::from_fn(move |req, next| crate::metrics::count_scim(log, req, next)));
    let operations = crate::metrics::routes(ctx.directory.clone());
    Router::new()
        .nest("/scim/v2", api)
        .route("/admin/backup", get(admin::backup))
        .route("/admin/export", get(admin::export))
        .route("/admin/command", post(admin::command))
        .with_state(ctx)
        .merge(operations)
}

/// RFC 6585 §4: past `max_concurrent_requests`, 429 and a Retry-After, as a
/// SCIM error, rather than a queue that grows without bound. The request runs
/// in its own task holding the slot: a client that disconnects does not free
/// the slot while the work it started (on the blocking pool) still runs.
async fn admit(
    axum::extract::State(ctx): axum::extract::State<Arc<ScimContext>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    use std::sync::atomic::Ordering;
    struct Slot(Arc<ScimContext>);
    impl Drop for Slot {
        fn drop(&mut self) {
            self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
        }
    }
    let running = ctx.in_flight.fetch_add(1, Ordering::AcqRel);
    let slot = Slot(ctx.clone());
    if running >= ctx.max_concurrent_requests {
        drop(slot);
        tracing::warn!(running, "SCIM request refused: too many at once");
        let mut r = ScimError::new(StatusCode::TOO_MANY_REQUESTS, None, "too many requests at once; retry shortly")
            .into_response();
        r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return r;
    }
    let work = tokio::spawn(async move {
        let _slot = slot;
        next.run(req).await
    });
    match work.await {
        Ok(resp) => resp,
        Err(_) => ScimError::new(StatusCode::INTERNAL_SERVER_ERROR, None, "the request failed").into_response(),
    }
}

/// What axum refuses on its own (a body over the limit: 413, a wrong
/// content type: 415, a method a route lacks: 405) still reaches the client
/// as a SCIM error body (RFC 7644 §3.12).
async fn as_scim_error(resp: Response) -> Response {
    let status = resp.status();
    let is_scim = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/scim+json"));
    if !(status.is_client_error() || status.is_server_error()) || is_scim {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    let detail = match String::from_utf8_lossy(&text).trim() {
        "" => status.canonical_reason().unwrap_or("error").to_string(),
        t => t.to_string(),
    };
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        tracing::warn!("SCIM request refused: {detail}");
    }
    let scim_type = (status == StatusCode::BAD_REQUEST).then_some("invalidSyntax");
    let mut out = ScimError::new(status, scim_type, detail).into_response();
    // Headers the refusal carried (Allow on a 405, say) stay.
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out
}

/// A SCIM JSON response with the SCIM media type.
/// A response whose JSON body is already written out.
pub fn scim_body(status: StatusCode, body: Vec<u8>) -> Response {
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static(MEDIA_TYPE))], body).into_response()
}

pub fn scim_json(status: StatusCode, body: Value) -> Response {
    let mut r = (status, axum::Json(body)).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(MEDIA_TYPE));
    r
}

/// The authenticated caller: what its bearer token reaches, and the actor
/// (principal and peer address) the core judges and records.
#[derive(Clone)]
pub struct Caller(pub TokenScope, pub Actor);

impl FromRequestParts<Arc<ScimContext>> for Caller {
    type Rejection = ScimError;

    async fn from_request_parts(parts: &mut Parts, ctx: &Arc<ScimContext>) -> Result<Caller, ScimError> {
        let unauthorized = || ScimError::new(StatusCode::UNAUTHORIZED, None, "a valid bearer token is required");
        let header = parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).ok_or_else(unauthorized)?;
        let (scheme, token) = header.split_once(' ').ok_or_else(unauthorized)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(unauthorized());
        }
        match ctx.directory.check_token(token.trim())? {
            Some(grant) => {
                let peer = parts
                    .extensions
                    .get::<axum::extract::ConnectInfo<crate::https::PeerAddr>>()
                    .map(|c| c.0.0.to_string())
                    .unwrap_or_default();
                if let Some(c) = parts.extensions.get::<crate::metrics::RequestCaller>()
                    && let Ok(mut who) = c.0.lock()
                {
                    *who = grant.label.to_string();
                }
                let actor = grant.actor(peer);
                Ok(Caller(grant.scope, actor))
            }
            None => Err(unauthorized()),
        }
    }
}

async fn service_provider_config(
    _: Caller,
    axum::extract::State(ctx): axum::extract::State<Arc<ScimContext>>,
) -> Response {
    scim_json(StatusCode::OK, ctx.service_provider_config())
}

async fn resource_types(_: Caller) -> Response {
    list_response(RESOURCES.iter().map(|r| r.describe()).collect())
}

/// RFC 7644 §4: one resource type by its id.
async fn resource_type(_: Caller, axum::extract::Path(id): axum::extract::Path<String>) -> Response {
    match RESOURCES.iter().find(|r| r.name.eq_ignore_ascii_case(&id)) {
        Some(r) => scim_json(StatusCode::OK, r.describe()),
        None => ScimError::not_found("resource type").into_response(),
    }
}

async fn schemas(caller: Caller, axum::extract::State(ctx): axum::extract::State<Arc<ScimContext>>) -> Response {
    list_response(ctx.schemas(&caller))
}

/// RFC 7644 §4: one schema by its URN.
async fn schema(
    caller: Caller,
    axum::extract::State(ctx): axum::extract::State<Arc<ScimContext>>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Response {
    match ctx.schemas(&caller).into_iter().find(|s| s["id"].as_str().is_some_and(|s| s.eq_ignore_ascii_case(&id))) {
        Some(s) => scim_json(StatusCode::OK, s),
        None => ScimError::not_found("schema").into_response(),
    }
}

/// An agent's entry as SCIM shows it to a CIG-wide token: what the RGPD
/// exports (`convergences export --org / --person`) give for the agents.
pub fn user_document(dir: &Directory, entry: &crate::directory::Entry) -> Value {
    let caller = Caller(TokenScope::Cig, Actor::new(crate::directory::lifecycle::SERVER_ACTOR));
    users::render(dir, &caller, entry)
}

/// Users as one ListResponse (RFC 7644 §3.4.2), all on one page.
pub fn user_list(users: Vec<Value>) -> Value {
    let total = users.len();
    query::list_response(users, &query::Paging::Index { start: 1 }, total, None, None)
}

/// A ListResponse of discovery resources, all on one page.
fn list_response(resources: Vec<Value>) -> Response {
    let total = resources.len();
    scim_json(StatusCode::OK, query::list_response(resources, &query::Paging::Index { start: 1 }, total, None, None))
}
