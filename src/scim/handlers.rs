//! The HTTP side of every resource type, written once: each verb parses the
//! request, runs the resource's operation (writes on the blocking pool:
//! they commit with an fsync, and may hash a password), and answers with
//! the SCIM media type, ETag and Location (RFC 7644 §3.3–3.6, §3.14). A
//! create without a password waits for its group commit on its own task,
//! without holding a thread: an HR push is thousands of them at once.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::lookup;
use super::mapping::{self, group::GROUPS, user::USERS};
use super::patch::{self, Operation};
use super::query::{ListParams, Projection, from_search_request};
use super::{Caller, ScimContext, ScimError, groups, scim_json, users};
use crate::directory::{Change, Condition, Directory, Entry, Filter, Write, request};

/// What a SCIM resource type provides to the generic handlers.
pub trait ResourceType: Send + Sync + 'static {
    const MAPPING: &'static mapping::Resource;
    /// The structural class of its entries.
    const CLASS: &'static str;
    /// Whether an entry of that class is one of these resources.
    fn accepts(_entry: &Entry) -> bool {
        true
    }
    /// The resource as the caller sees it; `projection` may spare work.
    fn render(dir: &Directory, caller: &Caller, entry: &Entry, projection: &Projection) -> Value;
    fn version(dir: &Directory, entry: &Entry) -> String;
    /// The changes that create the resource, its entry first, and what to
    /// answer with once stored (`None`: the stored entry, rendered).
    fn create_changes(
        dir: &Directory,
        caller: &Caller,
        body: &Value,
    ) -> Result<(Vec<Change>, Option<Value>), ScimError>;
    /// The resource just created, as a GET would read it back.
    fn created(dir: &Directory, caller: &Caller, stored: &Entry, answer: Option<Value>) -> Value {
        let _ = answer;
        Self::render(dir, caller, stored, &Projection::default())
    }
    fn write_changes(
        dir: &Directory,
        caller: &Caller,
        entry: &Entry,
        doc: &Value,
        complete: bool,
    ) -> Result<Vec<Change>, ScimError>;
    /// A PATCH applied without rendering the whole resource, when it can be.
    fn patch_changes(
        _dir: &Directory,
        _caller: &Caller,
        _entry: &Entry,
        _ops: &[Operation],
    ) -> Result<Option<Vec<Change>>, ScimError> {
        Ok(None)
    }
}

pub struct Users;
pub struct Groups;

impl ResourceType for Users {
    const MAPPING: &'static mapping::Resource = &USERS;
    const CLASS: &'static str = "inetOrgPerson";
    fn render(dir: &Directory, caller: &Caller, entry: &Entry, _: &Projection) -> Value {
        users::render(dir, caller, entry)
    }
    fn version(dir: &Directory, entry: &Entry) -> String {
        users::version_of(dir, entry)
    }
    fn create_changes(
        dir: &Directory,
        caller: &Caller,
        body: &Value,
    ) -> Result<(Vec<Change>, Option<Value>), ScimError> {
        users::create_changes(dir, caller, body).map(|(changes, answer)| (changes, Some(answer)))
    }
    fn created(dir: &Directory, caller: &Caller, stored: &Entry, answer: Option<Value>) -> Value {
        match answer {
            Some(answer) => users::created(dir, stored, answer),
            None => users::render(dir, caller, stored),
        }
    }
    fn write_changes(
        dir: &Directory,
        caller: &Caller,
        entry: &Entry,
        doc: &Value,
        complete: bool,
    ) -> Result<Vec<Change>, ScimError> {
        users::write_changes(dir, caller, entry, doc, complete)
    }
}

impl ResourceType for Groups {
    const MAPPING: &'static mapping::Resource = &GROUPS;
    const CLASS: &'static str = "groupOfNames";
    fn accepts(entry: &Entry) -> bool {
        lookup::is_scim_group_dn(&entry.dn.to_string())
    }
    fn render(dir: &Directory, caller: &Caller, entry: &Entry, projection: &Projection) -> Value {
        groups::render(dir, caller, entry, !projection.leaves_out("members"))
    }
    fn version(dir: &Directory, entry: &Entry) -> String {
        groups::version_of(dir, entry)
    }
    fn create_changes(
        dir: &Directory,
        caller: &Caller,
        body: &Value,
    ) -> Result<(Vec<Change>, Option<Value>), ScimError> {
        groups::create_changes(dir, caller, body).map(|changes| (changes, None))
    }
    fn write_changes(
        dir: &Directory,
        caller: &Caller,
        entry: &Entry,
        doc: &Value,
        complete: bool,
    ) -> Result<Vec<Change>, ScimError> {
        groups::write_changes(dir, caller, entry, doc, complete)
    }
    fn patch_changes(
        dir: &Directory,
        caller: &Caller,
        entry: &Entry,
        ops: &[Operation],
    ) -> Result<Option<Vec<Change>>, ScimError> {
        groups::patch_changes(dir, caller, entry, ops)
    }
}

/// The caller's resource with this id; another organisation's is a 404, as if absent.
pub(super) fn find<R: ResourceType>(dir: &Directory, caller: &Caller, id: &str) -> Result<Entry, ScimError> {
    lookup::find(dir, caller, id, R::CLASS)?.filter(R::accepts).ok_or_else(|| ScimError::not_found(R::MAPPING.name))
}

pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ScimError> + Send + 'static,
) -> Result<T, ScimError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| ScimError::new(StatusCode::INTERNAL_SERVER_ERROR, None, "the operation failed"))?
}

pub(super) fn parse_body(body: &Bytes) -> Result<Value, ScimError> {
    serde_json::from_slice(body).map_err(|e| ScimError::invalid_syntax(format!("the body is not valid JSON: {e}")))
}

/// A write the core refused: it has already recorded the refusal in the audit trail.
pub(super) fn refused((_, e): (usize, crate::directory::DirectoryError)) -> ScimError {
    ScimError { audited: true, ..e.into() }
}

/// A SCIM write refused before it reached the directory (unknown id, bad
/// PATCH, an id the caller cannot see …) goes in the audit trail too; the
/// core records its own refusals.
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

/// RFC 7643 §3: `schemas` lists the resource's core schema. A schema this
/// server does not know is refused when the body carries attributes under
/// it (they would be dropped silently), and tolerated otherwise: Entra ID
/// lists Microsoft's ADSCIM Group schema with no attribute of it, and a
/// misspelt enterprise URN beside the right one. When `schemas` is left
/// out, the core schema is assumed, as some clients do.
pub(super) fn check_schemas(res: &mapping::Resource, body: &Value) -> Result<(), ScimError> {
    let Some(obj) = body.as_object() else {
        return Err(ScimError::invalid_syntax(format!("a {} is a JSON object", res.name)));
    };
    for (key, v) in obj {
        let looks_like_schema = key.to_ascii_lowercase().starts_with("urn:") || key.contains("://");
        if looks_like_schema && v.is_object() && res.schema(key).is_none() {
            return Err(ScimError::invalid_syntax(format!(
                "schema {key} is not supported for {}: its attributes would be lost",
                res.name
            )));
        }
    }
    let Some(listed) = body.get("schemas") else { return Ok(()) };
    let listed = listed.as_array().ok_or_else(|| ScimError::invalid_syntax("schemas must be an array of URNs"))?;
    let mut has_core = false;
    for urn in listed {
        let urn = urn.as_str().ok_or_else(|| ScimError::invalid_syntax("schemas must be an array of URNs"))?;
        if res.schema(urn).is_some_and(|s| std::ptr::eq(s, res.core)) {
            has_core = true;
        }
    }
    if !has_core {
        return Err(ScimError::invalid_syntax(format!("schemas must include {}", res.core.id)));
    }
    Ok(())
}

/// A resource response with its ETag (and Location when created).
fn respond<R: ResourceType>(
    dir: &Directory,
    caller: &Caller,
    status: StatusCode,
    entry: &Entry,
    projection: &Projection,
) -> Response {
    respond_with::<R>(status, R::render(dir, caller, entry, projection), projection)
}

fn respond_with<R: ResourceType>(status: StatusCode, doc: Value, projection: &Projection) -> Response {
    let version = doc["meta"]["version"].as_str().map(str::to_string);
    let location = doc["meta"]["location"].as_str().and_then(|l| HeaderValue::from_str(l).ok());
    let mut r = scim_json(status, projection.apply(R::MAPPING, doc));
    if let Some(v) = version.and_then(|v| HeaderValue::from_str(&v).ok()) {
        r.headers_mut().insert(header::ETAG, v);
    }
    if status == StatusCode::CREATED
        && let Some(loc) = location
    {
        r.headers_mut().insert(header::LOCATION, loc);
    }
    r
}

/// The versions an `If-Match` header accepts (RFC 7232 §3.1), or `None`.
fn if_match(headers: &HeaderMap) -> Option<Vec<String>> {
    let v = headers.get(header::IF_MATCH)?.to_str().ok()?;
    Some(v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect())
}

pub async fn create<R: ResourceType>(
    caller: Caller,
    State(ctx): State<Arc<ScimContext>>,
    body: Bytes,
) -> Result<Response, ScimError> {
    let body = parse_body(&body)?;
    let dir = ctx.directory.clone();
    let prepared = check_schemas(R::MAPPING, &body).and_then(|()| R::create_changes(&dir, &caller, &body));
    let (changes, answer) = match prepared {
        Ok((changes, answer)) => (Ok(changes), answer),
        Err(e) => (Err(e), None),
    };
    let written = match changes {
        // A password is checked and hashed on the blocking pool (argon2 takes milliseconds).
        Ok(changes) if body.get("password").is_some() => {
            let (d, c) = (dir.clone(), caller.clone());
            blocking(move || d.write(&c.1, Write::new(changes)).map_err(refused)).await
        }
        // Without one, the create waits for its group commit on this task.
        Ok(changes) => dir.write_async(&caller.1, Write::new(changes)).await.map_err(refused),
        Err(e) => Err(e),
    };
    let stored = match written {
        Ok(request::Written { added: Some(stored) }) => stored,
        Ok(_) => return Err(ScimError::not_found(R::MAPPING.name)),
        // Recording the refusal writes to the store: on the blocking pool.
        Err(e) => {
            let d = dir.clone();
            return blocking(move || audit_refusal(&d, &caller, "add", "", Err(e))).await;
        }
    };
    // The entry as stored, operational attributes included: what a GET reads
    // back (its memberships, written in the same transaction, are read by the render).
    let doc = R::created(&dir, &caller, &stored, answer);
    Ok(respond_with::<R>(StatusCode::CREATED, doc, &Projection::default()))
}

pub async fn read<R: ResourceType>(
    caller: Caller,
    State(ctx): State<Arc<ScimContext>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ScimError> {
    blocking(move || {
        let dir = &ctx.directory;
        let entry = find::<R>(dir, &caller, &id)?;
        // RFC 7644 §3.14: an unchanged resource is 304 Not Modified.
        let current = R::version(dir, &entry);
        if let Some(seen) = headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok())
            && seen.split(',').map(str::trim).any(|s| s == current || s == "*")
        {
            let mut r = StatusCode::NOT_MODIFIED.into_response();
            if let Ok(v) = HeaderValue::from_str(&current) {
                r.headers_mut().insert(header::ETAG, v);
            }
            return Ok(r);
        }
        Ok(respond::<R>(dir, &caller, StatusCode::OK, &entry, &Projection::from_query(&q)))
    })
    .await
}

pub async fn list<R: ResourceType>(
    caller: Caller,
    State(ctx): State<Arc<ScimContext>>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ScimError> {
    let params = ListParams::from_query(&q, ctx.max_results, &ctx.filter_limits)?;
    blocking(move || super::listing::list::<R>(&ctx, &caller, &params)).await
}

/// POST `/.search` (RFC 7644 §3.4.3): the list query in a JSON body.
pub async fn search<R: ResourceType>(
    caller: Caller,
    State(ctx): State<Arc<ScimContext>>,
    body: Bytes,
) -> Result<Response, ScimError> {
    let q = from_search_request(&parse_body(&body)?)?;
    list::<R>(caller, State(ctx), Query(q)).await
}

/// POST `/.search` at the root (RFC 7644 §3.4.3): every resource type.
pub async fn search_all(
    caller: Caller,
    State(ctx): State<Arc<ScimContext>>,
    body: Bytes,
) -> Result<Response, ScimError> {
    let q = from_search_request(&parse_body(&body)?)?;
    let params = ListParams::from_query(&q, ctx.max_results, &ctx.filter_limits)?;
    blocking(move || super::listing::search_all(&ctx, &caller, &params)).await
}

/// PUT (`ops` None) or PATCH: the changes computed from the resource as
/// read, applied under a precondition checked in their transaction. With
/// `If-Match`, the client's versions; without, the revision read: a PATCH
/// that another write overtook is computed again from the new state, so
/// that two clients adding members at once both get theirs.
pub(super) fn update<R: ResourceType>(
    ctx: &ScimContext,
    caller: &Caller,
    id: &str,
    body: &Value,
    ops: Option<&[Operation]>,
    versions: Option<Vec<String>>,
) -> Result<Entry, ScimError> {
    let dir = &ctx.directory;
    for _ in 0..=ctx.patch_retries {
        let entry = audit_refusal(dir, caller, "modify", id, find::<R>(dir, caller, id))?;
        let changes = match ops {
            None => check_schemas(R::MAPPING, body).and_then(|()| R::write_changes(dir, caller, &entry, body, false)),
            Some(ops) => match R::patch_changes(dir, caller, &entry, ops) {
                Ok(Some(changes)) => Ok(changes),
                Ok(None) => {
                    let mut doc = R::render(dir, caller, &entry, &Projection::default());
                    patch::apply(R::MAPPING, &mut doc, ops)
                        .and_then(|()| R::write_changes(dir, caller, &entry, &doc, true))
                }
                Err(e) => Err(e),
            },
        };
        let changes = audit_refusal(dir, caller, "modify", &entry.dn.to_string(), changes)?;
        let condition = match &versions {
            Some(v) => Condition::Version(v.clone()),
            None => Condition::Revision(request::revision(&entry)),
        };
        if changes.is_empty() && versions.is_none() {
            return Ok(entry);
        }
        match dir.write(&caller.1, Write::new(changes).guarded(entry.dn.clone(), condition)) {
            Ok(_) => return find::<R>(dir, caller, id),
            // Overtaken between the read and the write: read again.
            Err((_, crate::directory::DirectoryError::PreconditionFailed(_))) if versions.is_none() => continue,
            Err(e) => return Err(refused(e)),
        }
    }
    Err(ScimError::new(
        StatusCode::CONFLICT,
        None,
        format!("the resource changed {} times while this request was applied; send it again", ctx.patch_retries + 1),
    ))
}

async fn update_handler<R: ResourceType>(
    caller: Caller,
    ctx: Arc<ScimContext>,
    id: String,
    headers: HeaderMap,
    body: Bytes,
    is_patch: bool,
) -> Result<Response, ScimError> {
    let body = parse_body(&body)?;
    let ops = if is_patch {
        super::bulk::check_patch_paths(&body, &ctx.filter_limits)?;
        Some(patch::operations(&body)?)
    } else {
        None
    };
    let versions = if_match(&headers);
    blocking(move || {
        let updated = update::<R>(&ctx, &caller, &id, &body, ops.as_deref(), versions)?;
        Ok(respond::<R>(&ctx.directory, &caller, StatusCode::OK, &updated, &Projection::default()))
    })
    .await
}

pub async fn replace<R: ResourceType>(
    caller: Caller,
    State(ctx): State<Arc<ScimContext>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ScimError> {
    update_handler::<R>(caller, ctx, id, headers, body, false).await
}

/// PATCH (RFC 7644 §3.5.2).
pub async fn patch<R: ResourceType>(
    caller: Caller,
    State(ctx): State<Arc<ScimContext>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ScimError> {
    update_handler::<R>(caller, ctx, id, headers, body, true).await
}

/// DELETE: referential integrity removes the entry from every group in the same transaction.
pub(super) fn delete<R: ResourceType>(
    dir: &Directory,
    caller: &Caller,
    id: &str,
    versions: Option<Vec<String>>,
) -> Result<(), ScimError> {
    let entry = audit_refusal(dir, caller, "delete", id, find::<R>(dir, caller, id))?;
    let mut write = Write::one(Change::Delete(entry.dn.clone()));
    if let Some(v) = versions {
        write = write.guarded(entry.dn.clone(), Condition::Version(v));
    }
    dir.write(&caller.1, write).map(|_| ()).map_err(refused)
}

pub async fn remove<R: ResourceType>(
    caller: Caller,
    State(ctx): State<Arc<ScimContext>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ScimError> {
    let versions = if_match(&headers);
    blocking(move || {
        delete::<R>(&ctx.directory, &caller, &id, versions)?;
        Ok(StatusCode::NO_CONTENT.into_response())
    })
    .await
}

/// The resources of a type the caller sees that match a directory filter.
pub(super) fn entries<R: ResourceType>(
    dir: &Directory,
    caller: &Caller,
    filter: Filter,
) -> Result<Vec<Entry>, ScimError> {
    entries_with::<R>(dir, caller, filter, &["*", "+"])
}

/// The same, each entry with only the attributes named.
pub(super) fn entries_with<R: ResourceType>(
    dir: &Directory,
    caller: &Caller,
    filter: Filter,
    attrs: &[&str],
) -> Result<Vec<Entry>, ScimError> {
    Ok(lookup::search(dir, caller, of_type::<R>(filter), attrs)?.into_iter().filter(R::accepts).collect())
}

/// `filter` restricted to the resource type's class.
pub(super) fn of_type<R: ResourceType>(filter: Filter) -> Filter {
    Filter::And(vec![Filter::Equality("objectClass".into(), R::CLASS.as_bytes().to_vec()), filter])
}
