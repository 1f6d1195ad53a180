//! SCIM 2.0 front end (RFC 7643 / 7644): HTTP ⇄ JSON ⇄ directory calls.
//! Never touches redb; the directory core holds every rule.
//!
//! This first part serves discovery and Users (create, read, list with
//! filters and pagination, replace, patch, delete, ETags) with
//! per-organisation bearer tokens, and Groups under each organisation's
//! `ou=groupes`, and Bulk.

mod admin;
mod bulk;
mod error;
mod filter;
mod groups;
mod handlers;
pub mod https;
mod mapping;
mod patch;
mod query;
mod users;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use handlers::{Groups, Users};
use serde_json::Value;

pub use error::ScimError;

use crate::directory::{Actor, Directory, TokenScope};

/// SCIM media type (RFC 7644 §3.1).
pub const MEDIA_TYPE: &str = "application/scim+json";

/// What every request shares.
pub struct ScimContext {
    pub directory: Arc<Directory>,
    /// `/Schemas` resources, from `scim/schemas/*.json`.
    pub schemas: Vec<Value>,
    pub resource_types: Value,
    pub service_provider_config: Value,
    /// Most resources one list response carries (RFC 7644 §3.4.2.4 `count`).
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
}

const SCHEMA_FILES: &[&str] = &[
    include_str!("../../scim/schemas/User.json"),
    include_str!("../../scim/schemas/EnterpriseUser.json"),
    include_str!("../../scim/schemas/Agent.json"),
    include_str!("../../scim/schemas/Group.json"),
];

impl ScimContext {
    pub fn new(
        directory: Arc<Directory>,
        limits: &crate::config::ScimLimits,
    ) -> Result<ScimContext, serde_json::Error> {
        let schemas = SCHEMA_FILES.iter().map(|s| serde_json::from_str(s)).collect::<Result<_, _>>()?;
        let mut spc: Value = serde_json::from_str(include_str!("../../scim/ServiceProviderConfig.json"))?;
        spc["filter"]["maxResults"] = limits.max_results.into();
        spc["bulk"]["maxOperations"] = limits.bulk_max_operations.into();
        spc["bulk"]["maxPayloadSize"] = limits.bulk_max_payload.into();
        Ok(ScimContext {
            directory,
            schemas,
            resource_types: serde_json::from_str(include_str!("../../scim/ResourceTypes.json"))?,
            service_provider_config: spc,
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
        })
    }
}

/// For the fuzz target: a SCIM filter, parsed and lowered.
pub fn fuzz_filter(s: &str) {
    let _ = filter::parse(s);
}

/// For the fuzz target: a PATCH body applied to a document.
pub fn fuzz_patch(doc: &[u8], body: &[u8]) {
    if let (Ok(mut doc), Ok(body)) = (serde_json::from_slice::<Value>(doc), serde_json::from_slice::<Value>(body)) {
        let _ = patch::apply(&mut doc, &body);
    }
}

/// The routes under `/scim/v2`.
pub fn router(ctx: Arc<ScimContext>) -> Router {
    let log = ctx.log_operations;
    let api = Router::new()
        .route("/ServiceProviderConfig", get(service_provider_config))
        .route("/ResourceTypes", get(resource_types))
        .route("/Schemas", get(schemas))
        .route("/Schemas/{id}", get(schema))
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

/// The client's address, handed to handlers by `axum::serve` for the audit trail.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub std::net::SocketAddr);

impl<'a> axum::extract::connect_info::Connected<axum::serve::IncomingStream<'a, tokio::net::TcpListener>> for PeerAddr {
    fn connect_info(stream: axum::serve::IncomingStream<'a, tokio::net::TcpListener>) -> PeerAddr {
        PeerAddr(*stream.remote_addr())
    }
}

impl<'a> axum::extract::connect_info::Connected<axum::serve::IncomingStream<'a, https::TlsListener>> for PeerAddr {
    fn connect_info(stream: axum::serve::IncomingStream<'a, https::TlsListener>) -> PeerAddr {
        PeerAddr(*stream.remote_addr())
    }
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
                    .get::<axum::extract::ConnectInfo<PeerAddr>>()
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
    scim_json(StatusCode::OK, ctx.service_provider_config.clone())
}

async fn resource_types(_: Caller, axum::extract::State(ctx): axum::extract::State<Arc<ScimContext>>) -> Response {
    list_response(ctx.resource_types.as_array().cloned().unwrap_or_default(), 1)
}

async fn schemas(_: Caller, axum::extract::State(ctx): axum::extract::State<Arc<ScimContext>>) -> Response {
    list_response(ctx.schemas.clone(), 1)
}

async fn schema(
    _: Caller,
    axum::extract::State(ctx): axum::extract::State<Arc<ScimContext>>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Response {
    match ctx.schemas.iter().find(|s| s["id"] == id.as_str()) {
        Some(s) => scim_json(StatusCode::OK, s.clone()),
        None => ScimError::not_found("schema").into_response(),
    }
}

/// RFC 7644 §3.4.2 ListResponse.
pub fn list_response_with_total(resources: Vec<Value>, start_index: usize, total: usize) -> Response {
    let body = serde_json::json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": total,
        "startIndex": start_index,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    });
    scim_json(StatusCode::OK, body)
}

/// RFC 7644 §3.4.2 ListResponse around resources already written out.
pub fn list_response_of_bodies(resources: &[Vec<u8>], start_index: usize, total: usize) -> Response {
    let mut body = Vec::with_capacity(160 + resources.iter().map(|r| r.len() + 1).sum::<usize>());
    body.extend_from_slice(b"{\"schemas\":[\"urn:ietf:params:scim:api:messages:2.0:ListResponse\"],");
    body.extend_from_slice(
        format!("\"totalResults\":{total},\"startIndex\":{start_index},\"itemsPerPage\":{},", resources.len())
            .as_bytes(),
    );
    body.extend_from_slice(b"\"Resources\":[");
    for (i, r) in resources.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(r);
    }
    body.extend_from_slice(b"]}");
    scim_body(StatusCode::OK, body)
}

fn list_response(resources: Vec<Value>, start_index: usize) -> Response {
    let total = resources.len();
    list_response_with_total(resources, start_index, total)
}
