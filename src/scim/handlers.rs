//! The HTTP side of every resource type, written once: each verb parses the
//! request, runs the resource's operation on the blocking pool (writes
//! commit with an fsync), and answers with the SCIM media type, ETag and
//! Location (RFC 7644 §3.3–3.6, §3.14). A create without a password runs on
//! its own task and waits for its group commit without holding a thread:
//! an HR push is thousands of them at once.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::query::{ListParams, Projection, from_search_request};
use super::users::{apply, blocking, check_version, parse_body};
use super::{Caller, ScimContext, ScimError, groups, mapping, scim_body, users};
use crate::directory::{Change, Directory, Entry};

/// What a SCIM resource type provides to the generic handlers.
pub trait Resource: Send + Sync + 'static {
    fn find(dir: &Directory, caller: &Caller, id: &str) -> Result<Entry, ScimError>;
    fn list(dir: &Directory, caller: &Caller, filter: Option<&str>) -> Result<Vec<Entry>, ScimError>;
    fn render(dir: &Directory, entry: &Entry) -> Value;
    /// The resource as a response body, whole, and its location.
    fn render_body(dir: &Directory, entry: &Entry) -> (Vec<u8>, Option<String>) {
        let doc = Self::render(dir, entry);
        let location = location_of(&doc);
        (serde_json::to_vec(&doc).unwrap_or_default(), location)
    }
    /// The changes that create the resource, its entry first.
    fn create_changes(dir: &Directory, caller: &Caller, body: &Value) -> Result<Vec<Change>, ScimError>;
    /// Whether [`Resource::create_changes`] is quick enough for an async
    /// task (no password to hash).
    fn create_is_quick(_body: &Value) -> bool {
        true
    }
    /// The resource as answered once its entry is stored.
    fn created(_dir: &Directory, _caller: &Caller, stored: Entry) -> Result<Entry, ScimError> {
        Ok(stored)
    }
    /// Create the resource and return it as stored (for Bulk, on the blocking pool).
    fn create(dir: &Directory, caller: &Caller, body: &Value) -> Result<Entry, ScimError> {
        let changes = Self::create_changes(dir, caller, body)?;
        let written =
            dir.write(&users::actor_of(caller), crate::directory::Write::new(changes)).map_err(users::refused)?;
        let stored = written.added.ok_or_else(|| ScimError::not_found("resource"))?;
        Self::created(dir, caller, stored)
    }
    /// Make the entry say what the resource JSON says, in one transaction.
    fn write(dir: &Directory, caller: &Caller, entry: &Entry, body: &Value) -> Result<(), ScimError>;

    /// PUT (`patch` false) or PATCH (RFC 7644 §3.5.2: the operations apply to
    /// the current JSON document, which is then written like a PUT — all or nothing).
    fn update(
        dir: &Directory,
        caller: &Caller,
        id: &str,
        body: &Value,
        patch: bool,
        version: Option<&str>,
    ) -> Result<Entry, ScimError> {
        let entry = audit_refusal(dir, caller, "modify", id, Self::find(dir, caller, id))?;
        let written = check_version(version, &entry).and_then(|()| {
            if patch {
                let mut doc = Self::render(dir, &entry);
                super::patch::apply(&mut doc, body)?;
                Self::write(dir, caller, &entry, &doc)
            } else {
                Self::write(dir, caller, &entry, body)
            }
        });
        audit_refusal(dir, caller, "modify", &entry.dn.to_string(), written)?;
        Self::find(dir, caller, id)
    }

    /// DELETE: referential integrity removes the entry from every group in the same transaction.
    fn delete(dir: &Directory, caller: &Caller, id: &str, version: Option<&str>) -> Result<(), ScimError> {
        let entry = audit_refusal(dir, caller, "delete", id, Self::find(dir, caller, id))?;
        let deleted =
            check_version(version, &entry).and_then(|()| apply(dir, caller, vec![Change::Delete(entry.dn.clone())]));
        audit_refusal(dir, caller, "delete", &entry.dn.to_string(), deleted)
    }
}

/// A SCIM write refused before it reached the directory (unknown id, bad
/// PATCH, version mismatch, an application the organisation does not
/// subscribe to …) goes in the audit trail too; the core records its own.
pub(super) fn audit_refusal<T>(
    dir: &Directory,
    caller: &Caller,
    op: &str,
    target: &str,
    outcome: Result<T, ScimError>,
) -> Result<T, ScimError> {
    outcome.map_err(|mut e| {
        if !e.audited {
            dir.record_refusal(&caller.1, op, target, &format!("{} {}", e.status.as_u16(), e.detail));
            e.audited = true;
        }
        e
    })
}

pub struct Users;
pub struct Groups;

impl Resource for Users {
    fn find(dir: &Directory, caller: &Caller, id: &str) -> Result<Entry, ScimError> {
        users::find_user(dir, caller, id)
    }
    fn list(dir: &Directory, caller: &Caller, filter: Option<&str>) -> Result<Vec<Entry>, ScimError> {
        users::list_entries(dir, caller, filter)
    }
    fn render(dir: &Directory, entry: &Entry) -> Value {
        users::render(dir, entry)
    }
    fn render_body(dir: &Directory, entry: &Entry) -> (Vec<u8>, Option<String>) {
        // Serialised from the entry: no JSON value built only to be written out.
        let context = users::Context::of(dir, entry);
        let doc = context.doc(entry);
        (doc.to_bytes(), Some(doc.location().to_string()))
    }
    fn create_changes(dir: &Directory, caller: &Caller, body: &Value) -> Result<Vec<Change>, ScimError> {
        check_schemas(body, mapping::USER, &[mapping::ENTERPRISE, mapping::AGENT])?;
        users::create_changes(dir, caller, body)
    }
    fn create_is_quick(body: &Value) -> bool {
        body.get("password").is_none()
    }
    fn write(dir: &Directory, caller: &Caller, entry: &Entry, body: &Value) -> Result<(), ScimError> {
        check_schemas(body, mapping::USER, &[mapping::ENTERPRISE, mapping::AGENT])?;
        users::write_user(dir, caller, entry, body)
    }
}

impl Resource for Groups {
    fn find(dir: &Directory, caller: &Caller, id: &str) -> Result<Entry, ScimError> {
        groups::find(dir, caller, id)
    }
    fn list(dir: &Directory, caller: &Caller, filter: Option<&str>) -> Result<Vec<Entry>, ScimError> {
        groups::list_entries(dir, caller, filter)
    }
    fn render(dir: &Directory, entry: &Entry) -> Value {
        groups::render(dir, entry)
    }
    fn create_changes(dir: &Directory, caller: &Caller, body: &Value) -> Result<Vec<Change>, ScimError> {
        check_schemas(body, groups::GROUP, &[])?;
        groups::create_changes(dir, caller, body)
    }
    fn created(dir: &Directory, caller: &Caller, stored: Entry) -> Result<Entry, ScimError> {
        groups::created(dir, caller, stored)
    }
    fn write(dir: &Directory, caller: &Caller, entry: &Entry, body: &Value) -> Result<(), ScimError> {
        check_schemas(body, groups::GROUP, &[])?;
        groups::write_group(dir, caller, entry, body)
    }
}

/// A PATCH operation's `path` may hold a value filter (`emails[type eq
/// "work"]`): the same length and depth limits as a `filter` apply, before
/// the parser sees it.
pub(super) fn check_patch_paths(body: &Value, limits: &super::query::FilterLimits) -> Result<(), ScimError> {
    let ops = body.get("Operations").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    for path in ops.iter().filter_map(|op| op.get("path").and_then(Value::as_str)) {
        limits.check(path)?;
    }
    Ok(())
}

/// RFC 7643 §3: `schemas` lists the resource's core schema and only schemas
/// this server knows; attributes of an unknown schema would be dropped
/// silently. When left out, the core schema is assumed, as some clients do.
fn check_schemas(body: &Value, core: &str, extensions: &[&str]) -> Result<(), ScimError> {
    let Some(listed) = body.get("schemas") else { return Ok(()) };
    let invalid = |why: String| ScimError::new(StatusCode::BAD_REQUEST, Some("invalidSyntax"), why);
    let listed = listed.as_array().ok_or_else(|| invalid("schemas must be an array of URNs".into()))?;
    let mut has_core = false;
    for urn in listed {
        let urn = urn.as_str().ok_or_else(|| invalid("schemas must be an array of URNs".into()))?;
        if urn.eq_ignore_ascii_case(core) {
            has_core = true;
        } else if !extensions.iter().any(|e| e.eq_ignore_ascii_case(urn)) {
            return Err(invalid(format!("schema {urn} is not supported here")));
        }
    }
    if !has_core {
        return Err(invalid(format!("schemas must include {core}")));
    }
    Ok(())
}

/// `meta.location` of a rendered resource.
fn location_of(doc: &Value) -> Option<String> {
    doc["meta"]["location"].as_str().map(str::to_string)
}

/// A resource response with its ETag (and Location when created).
fn respond<R: Resource>(dir: &Directory, status: StatusCode, entry: &Entry, projection: &Projection) -> Response {
    let (body, location) = if projection.is_whole() {
        R::render_body(dir, entry)
    } else {
        let doc = R::render(dir, entry);
        let location = location_of(&doc);
        (serde_json::to_vec(&projection.apply(doc)).unwrap_or_default(), location)
    };
    let location = location.and_then(|l| HeaderValue::from_str(&l).ok());
    let mut r = scim_body(status, body);
    if let Ok(v) = HeaderValue::from_str(&mapping::version(entry)) {
        r.headers_mut().insert(header::ETAG, v);
    }
    if status == StatusCode::CREATED
        && let Some(loc) = location
    {
        r.headers_mut().insert(header::LOCATION, loc);
    }
    r
}

fn if_match(headers: &HeaderMap) -> Option<String> {
    headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok()).map(str::to_string)
}

pub async fn create<R: Resource>(
    caller: Caller,
    State(ctx): State<Arc<ScimContext>>,
    body: Bytes,
) -> Result<Response, ScimError> {
    let body = parse_body(&body)?;
    let dir = ctx.directory.clone();
    // A create without a password to hash runs on this task, and waits for
    // its group commit without holding a thread.
    let changes = if R::create_is_quick(&body) {
        R::create_changes(&dir, &caller, &body)
    } else {
        let (dir, caller) = (dir.clone(), caller.clone());
        blocking(move || R::create_changes(&dir, &caller, &body)).await
    };
    let created = match changes {
        Ok(changes) => match dir.write_async(&users::actor_of(&caller), crate::directory::Write::new(changes)).await {
            Ok(crate::directory::Written { added: Some(stored) }) => R::created(&dir, &caller, stored),
            Ok(_) => Err(ScimError::not_found("resource")),
            Err(refusal) => Err(users::refused(refusal)),
        },
        Err(e) => Err(e),
    };
    let created = match created {
        Ok(created) => created,
        // Recording the refusal writes to the store: on the blocking pool.
        Err(e) => {
            let dir = dir.clone();
            return blocking(move || audit_refusal(&dir, &caller, "add", "", Err(e))).await;
        }
    };
    Ok(respond::<R>(&dir, StatusCode::CREATED, &created, &Projection::default()))
}

pub async fn read<R: Resource>(
    caller: Caller,
    State(ctx): State<Arc<ScimContext>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ScimError> {
    let dir = &ctx.directory;
    let entry = R::find(dir, &caller, &id)?;
    // RFC 7644 §3.14: an unchanged resource is 304 Not Modified.
    let current = mapping::version(&entry);
    if let Some(seen) = headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok())
        && seen.split(',').map(str::trim).any(|s| s == current || s == "*")
    {
        let mut r = StatusCode::NOT_MODIFIED.into_response();
        if let Ok(v) = HeaderValue::from_str(&current) {
            r.headers_mut().insert(header::ETAG, v);
        }
        return Ok(r);
    }
    Ok(respond::<R>(dir, StatusCode::OK, &entry, &Projection::from_query(&q)))
}

pub async fn list<R: Resource>(
    caller: Caller,
    State(ctx): State<Arc<ScimContext>>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ScimError> {
    let params = ListParams::from_query(&q, ctx.max_results, &ctx.filter_limits)?;
    blocking(move || {
        let dir = &ctx.directory;
        let matches = R::list(dir, &caller, params.filter.as_deref())?;
        if params.is_plain() {
            // Only the page is rendered, straight to bytes.
            let page: Vec<Vec<u8>> = matches
                .iter()
                .skip(params.start.saturating_sub(1))
                .take(params.count)
                .map(|e| R::render_body(dir, e).0)
                .collect();
            return Ok(super::list_response_of_bodies(&page, params.start, matches.len()));
        }
        let all: Vec<Value> = matches.iter().map(|e| R::render(dir, e)).collect();
        Ok(params.respond(all))
    })
    .await
}

/// POST `/.search` (RFC 7644 §3.4.3): the list query in a JSON body.
pub async fn search<R: Resource>(
    caller: Caller,
    State(ctx): State<Arc<ScimContext>>,
    body: Bytes,
) -> Result<Response, ScimError> {
    let q = from_search_request(&parse_body(&body)?)?;
    list::<R>(caller, State(ctx), Query(q)).await
}

async fn update<R: Resource>(
    caller: Caller,
    ctx: Arc<ScimContext>,
    id: String,
    headers: HeaderMap,
    body: Bytes,
    patch: bool,
) -> Result<Response, ScimError> {
    let body = parse_body(&body)?;
    if patch {
        check_patch_paths(&body, &ctx.filter_limits)?;
    }
    let version = if_match(&headers);
    blocking(move || {
        let dir = &ctx.directory;
        let updated = R::update(dir, &caller, &id, &body, patch, version.as_deref())?;
        Ok(respond::<R>(dir, StatusCode::OK, &updated, &Projection::default()))
    })
    .await
}

pub async fn replace<R: Resource>(
    caller: Caller,
    State(ctx): State<Arc<ScimContext>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ScimError> {
    update::<R>(caller, ctx, id, headers, body, false).await
}

/// PATCH (RFC 7644 §3.5.2).
pub async fn patch<R: Resource>(
    caller: Caller,
    State(ctx): State<Arc<ScimContext>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ScimError> {
    update::<R>(caller, ctx, id, headers, body, true).await
}

pub async fn remove<R: Resource>(
    caller: Caller,
    State(ctx): State<Arc<ScimContext>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ScimError> {
    let version = if_match(&headers);
    blocking(move || {
        R::delete(&ctx.directory, &caller, &id, version.as_deref())?;
        Ok(StatusCode::NO_CONTENT.into_response())
    })
    .await
}
