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

use super::handlers::{Groups, Resource, Users};
use super::{Caller, ScimContext, ScimError, mapping, scim_json, users};

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
    let version = op.get("version").and_then(Value::as_str);
    let dir = &ctx.directory;
    let location = |kind: &Kind, id: &str| match kind {
        Kind::Users => format!("/scim/v2/Users/{id}"),
        Kind::Groups => format!("/scim/v2/Groups/{id}"),
    };
    match (method.as_str(), id) {
        ("POST", None) => {
            let created = match kind {
                Kind::Users => Users::create(dir, caller, &data),
                Kind::Groups => Groups::create(dir, caller, &data),
            };
            let created = super::handlers::audit_refusal(dir, caller, "add", &path, created)?;
            let new_id = created.first_str("entryUUID").unwrap_or_default().to_string();
            if let Some(b) = op.get("bulkId").and_then(Value::as_str) {
                ids.insert(b.to_string(), new_id.clone());
            }
            Ok((201, Some(location(&kind, &new_id)), Some(mapping::version(&created))))
        }
        (m @ ("PUT" | "PATCH"), Some(id)) => {
            let patch = m == "PATCH";
            if patch {
                super::handlers::check_patch_paths(&data, &ctx.filter_limits)?;
            }
            let updated = match kind {
                Kind::Users => Users::update(dir, caller, &id, &data, patch, version)?,
                Kind::Groups => Groups::update(dir, caller, &id, &data, patch, version)?,
            };
            Ok((200, Some(location(&kind, &id)), Some(mapping::version(&updated))))
        }
        ("DELETE", Some(id)) => {
            match kind {
                Kind::Users => Users::delete(dir, caller, &id, version)?,
                Kind::Groups => Groups::delete(dir, caller, &id, version)?,
            }
            Ok((204, Some(location(&kind, &id)), None))
        }
        (m, _) => Err(ScimError::invalid_value(format!("bulk method {m} does not fit path /{path}"))),
    }
}

pub async fn bulk(caller: Caller, State(ctx): State<Arc<ScimContext>>, body: Bytes) -> Result<Response, ScimError> {
    if body.len() > ctx.bulk_max_payload {
        return Err(ScimError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            None,
            format!("a bulk request may carry {} bytes at most", ctx.bulk_max_payload),
        ));
    }
    let req = users::parse_body(&body)?;
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
    users::blocking(move || {
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
