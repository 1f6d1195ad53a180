//! Bulk (RFC 7644 §3.7): many operations in one request, each applied on its
//! own (a failure does not undo the others), `bulkId:` references resolved
//! to the ids of resources created earlier in the same request, and
//! `failOnErrors` honoured.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::handlers::{self, Groups, ResourceType, Users, blocking, parse_body};
use super::{Caller, ScimContext, ScimError, patch, scim_json};
use crate::directory::{Write, request};

const BULK_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
const BULK_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:BulkResponse";

/// Replace every `"bulkId:X"` string by the id X was given; `Err(X)` for an unknown one.
fn resolve(v: &mut Value, ids: &HashMap<String, String>) -> Result<(), String> {
    match v {
        Value::String(s) => {
            if let Some(b) = s.strip_prefix("bulkId:") {
                *s = ids.get(b).cloned().ok_or_else(|| b.to_string())?;
            }
            Ok(())
        }
        Value::Array(items) => items.iter_mut().try_for_each(|i| resolve(i, ids)),
        Value::Object(o) => o.values_mut().try_for_each(|i| resolve(i, ids)),
        _ => Ok(()),
    }
}

enum Kind {
    Users,
    Groups,
}

/// One operation: (status, location, version, response body).
fn run_one(
    ctx: &ScimContext,
    caller: &Caller,
    op: &Value,
    ids: &mut HashMap<String, String>,
) -> Result<(u16, Option<String>, Option<String>), ScimError> {
    let method = op.get("method").and_then(Value::as_str).map(str::to_ascii_uppercase).unwrap_or_default();
    let path = op.get("path").and_then(Value::as_str).unwrap_or_default().trim_start_matches('/').to_string();
    let (kind, id) = match path.split_once('/') {
        Some(("Users", id)) => (Kind::Users, Some(id.to_string())),
        Some(("Groups", id)) => (Kind::Groups, Some(id.to_string())),
        None if path == "Users" => (Kind::Users, None),
        None if path == "Groups" => (Kind::Groups, None),
        _ => return Err(ScimError::invalid_value(format!("bulk path '{path}' names no resource"))),
    };
    // `/Users/bulkId:u1` names a resource created earlier in this request.
    let id = match id {
        Some(i) => match i.strip_prefix("bulkId:") {
            Some(b) => Some(ids.get(b).cloned().ok_or_else(|| {
                ScimError::new(StatusCode::CONFLICT, Some("invalidValue"), format!("unknown bulkId {b}"))
            })?),
            None => Some(i),
        },
        None => None,
    };
    let mut data = op.get("data").cloned().unwrap_or(Value::Null);
    // bulkId references inside data (e.g. a group's members) name earlier creations.
    resolve(&mut data, ids)
        .map_err(|b| ScimError::new(StatusCode::CONFLICT, Some("invalidValue"), format!("unknown bulkId {b}")))?;
    let location = |kind: &Kind, id: &str| match kind {
        Kind::Users => format!("/scim/v2/Users/{id}"),
        Kind::Groups => format!("/scim/v2/Groups/{id}"),
    };
    // RFC 7644 §3.7: an operation's `version` is its If-Match.
    let versions = op.get("version").and_then(Value::as_str).map(|v| vec![v.to_string()]);
    match (method.as_str(), id) {
        ("POST", None) => {
            let (new_id, version) = match kind {
                Kind::Users => create::<Users>(ctx, caller, &data)?,
                Kind::Groups => create::<Groups>(ctx, caller, &data)?,
            };
            if let Some(b) = op.get("bulkId").and_then(Value::as_str) {
                ids.insert(b.to_string(), new_id.clone());
            }
            Ok((201, Some(location(&kind, &new_id)), Some(version)))
        }
        (m @ ("PUT" | "PATCH"), Some(id)) => {
            let ops = if m == "PATCH" {
                check_patch_paths(&data, &ctx.filter_limits)?;
                Some(patch::operations(&data)?)
            } else {
                None
            };
            let version = match kind {
                Kind::Users => Users::version(
                    &ctx.directory,
                    &handlers::update::<Users>(ctx, caller, &id, &data, ops.as_deref(), versions)?,
                ),
                Kind::Groups => Groups::version(
                    &ctx.directory,
                    &handlers::update::<Groups>(ctx, caller, &id, &data, ops.as_deref(), versions)?,
                ),
            };
            Ok((200, Some(location(&kind, &id)), Some(version)))
        }
        ("DELETE", Some(id)) => {
            match kind {
                Kind::Users => handlers::delete::<Users>(&ctx.directory, caller, &id, versions)?,
                Kind::Groups => handlers::delete::<Groups>(&ctx.directory, caller, &id, versions)?,
            }
            Ok((204, Some(location(&kind, &id)), None))
        }
        (m, _) => Err(ScimError::invalid_value(format!("bulk method {m} does not fit path /{path}"))),
    }
}

/// One creation of a Bulk request: its id and version.
fn create<R: ResourceType>(ctx: &ScimContext, caller: &Caller, data: &Value) -> Result<(String, String), ScimError> {
    let dir = &ctx.directory;
    let created = handlers::check_schemas(R::MAPPING, data)
        .and_then(|()| R::create_changes(dir, caller, data))
        .and_then(|(changes, _)| dir.write(&caller.1, Write::new(changes)).map_err(handlers::refused));
    let created = handlers::audit_refusal(dir, caller, "add", R::MAPPING.endpoint, created)?;
    let request::Written { added: Some(stored) } = created else { return Err(ScimError::not_found(R::MAPPING.name)) };
    let id = stored.first_str("entryUUID").unwrap_or_default().to_string();
    let entry = handlers::find::<R>(dir, caller, &id).unwrap_or(stored);
    Ok((id, R::version(dir, &entry)))
}

/// A PATCH operation's `path` may hold a value filter (`emails[type eq
/// "work"]`): the same length and depth limits as a `filter` apply, before
/// the parser sees it.
pub(super) fn check_patch_paths(body: &Value, limits: &super::query::FilterLimits) -> Result<(), ScimError> {
    let ops = body.get("Operations").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    for op in ops {
        if let Some(path) = op.get("path").and_then(Value::as_str) {
            limits.check(path)?;
        }
        // A path-less value's keys are paths too (`name.givenName`).
        for key in op.get("value").and_then(Value::as_object).into_iter().flat_map(|o| o.keys()) {
            limits.check(key)?;
        }
    }
    Ok(())
}

pub async fn bulk(caller: Caller, State(ctx): State<Arc<ScimContext>>, body: Bytes) -> Result<Response, ScimError> {
    if body.len() > ctx.bulk_max_payload {
        return Err(ScimError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            None,
            format!("a bulk request may carry {} bytes at most", ctx.bulk_max_payload),
        ));
    }
    let req = parse_body(&body)?;
    let schemas_ok = req.get("schemas").and_then(Value::as_array).is_some_and(|s| s.iter().any(|x| x == BULK_REQUEST));
    if !schemas_ok {
        return Err(ScimError::new(
            StatusCode::BAD_REQUEST,
            Some("invalidSyntax"),
            format!("schemas must list {BULK_REQUEST}"),
        ));
    }
    let ops = req.get("Operations").and_then(Value::as_array).cloned().unwrap_or_default();
    if ops.len() > ctx.bulk_max_operations {
        return Err(ScimError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            Some("tooMany"),
            format!("a bulk request may carry {} operations at most", ctx.bulk_max_operations),
        ));
    }
    let fail_on_errors = req.get("failOnErrors").and_then(Value::as_u64).map(|n| n as usize);
    blocking(move || {
        let mut ids = HashMap::new();
        let mut results = Vec::new();
        let mut errors = 0usize;
        for op in &ops {
            let mut out = json!({"method": op.get("method").cloned().unwrap_or(Value::Null)});
            if let Some(b) = op.get("bulkId") {
                out["bulkId"] = b.clone();
            }
            match run_one(&ctx, &caller, op, &mut ids) {
                Ok((status, location, version)) => {
                    out["status"] = json!(status.to_string());
                    if let Some(l) = location {
                        out["location"] = json!(l);
                    }
                    if let Some(v) = version {
                        out["version"] = json!(v);
                    }
                }
                Err(e) => {
                    errors += 1;
                    out["status"] = json!(e.status.as_u16().to_string());
                    out["response"] = e.body();
                }
            }
            results.push(out);
            if fail_on_errors.is_some_and(|max| max > 0 && errors >= max) {
                break;
            }
        }
        Ok(scim_json(StatusCode::OK, json!({"schemas": [BULK_RESPONSE], "Operations": results})))
    })
    .await
}
