//! SCIM errors (RFC 7644 §3.12): the one mapping from directory errors to
//! HTTP statuses and `scimType`s, and the error body.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::directory::DirectoryError;

/// An error answer: status, optional scimType, a detail a person can act on.
#[derive(Debug)]
pub struct ScimError {
    pub status: StatusCode,
    pub scim_type: Option<&'static str>,
    pub detail: String,
    /// The directory core already recorded this refusal in the audit trail.
    pub audited: bool,
}

impl ScimError {
    pub fn new(status: StatusCode, scim_type: Option<&'static str>, detail: impl Into<String>) -> ScimError {
        ScimError { status, scim_type, detail: detail.into(), audited: false }
    }

    pub fn not_found(what: &str) -> ScimError {
        ScimError::new(StatusCode::NOT_FOUND, None, format!("{what} not found"))
    }

    pub fn invalid_value(detail: impl Into<String>) -> ScimError {
        ScimError::new(StatusCode::BAD_REQUEST, Some("invalidValue"), detail)
    }

    pub fn invalid_syntax(detail: impl Into<String>) -> ScimError {
        ScimError::new(StatusCode::BAD_REQUEST, Some("invalidSyntax"), detail)
    }

    pub fn invalid_path(detail: impl Into<String>) -> ScimError {
        ScimError::new(StatusCode::BAD_REQUEST, Some("invalidPath"), detail)
    }

    pub fn mutability(detail: impl Into<String>) -> ScimError {
        ScimError::new(StatusCode::BAD_REQUEST, Some("mutability"), detail)
    }

    pub fn invalid_filter(detail: impl Into<String>) -> ScimError {
        ScimError::new(StatusCode::BAD_REQUEST, Some("invalidFilter"), detail)
    }
}

impl From<DirectoryError> for ScimError {
    fn from(e: DirectoryError) -> ScimError {
        use DirectoryError as E;
        let (status, scim_type) = match &e {
            E::NoSuchObject { .. } => (StatusCode::NOT_FOUND, None),
            E::AlreadyExists(_) => (StatusCode::CONFLICT, Some("uniqueness")),
            E::NotUnique(_) => (StatusCode::CONFLICT, Some("uniqueness")),
            E::PreconditionFailed(_) => (StatusCode::PRECONDITION_FAILED, None),
            E::ConstraintNoUserModification(_) => (StatusCode::BAD_REQUEST, Some("mutability")),
            E::InvalidDn(_)
            | E::UndefinedAttributeType(_)
            | E::ObjectClassViolation(_)
            | E::ConstraintViolation(_)
            | E::PasswordRefused(..)
            | E::InvalidAttributeSyntax(_)
            | E::AttributeOrValueExists(_)
            | E::NoSuchAttribute(_)
            | E::NotAllowedOnRdn(_)
            | E::NamingViolation(_)
            | E::InappropriateMatching(_)
            | E::Protocol(_) => (StatusCode::BAD_REQUEST, Some("invalidValue")),
            E::NotAllowedOnNonLeaf(_) | E::Unwilling(_) => (StatusCode::BAD_REQUEST, None),
            E::InvalidCredentials => (StatusCode::UNAUTHORIZED, None),
            E::InsufficientAccess(_) => (StatusCode::FORBIDDEN, None),
            E::SizeLimitExceeded | E::AdminLimitExceeded(_) => (StatusCode::BAD_REQUEST, Some("tooMany")),
            E::TimeLimitExceeded | E::Abandoned | E::Referral(_) => (StatusCode::SERVICE_UNAVAILABLE, None),
            E::Store(_) | E::Internal(_) => {
                tracing::error!("internal error: {e}");
                (StatusCode::INTERNAL_SERVER_ERROR, None)
            }
        };
        ScimError { status, scim_type, detail: e.to_string(), audited: false }
    }
}

impl ScimError {
    /// The RFC 7644 §3.12 error body.
    pub fn body(&self) -> serde_json::Value {
        let mut body = json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
            "status": self.status.as_u16().to_string(),
            "detail": self.detail,
        });
        if let Some(t) = self.scim_type {
            body["scimType"] = json!(t);
        }
        body
    }
}

impl IntoResponse for ScimError {
    fn into_response(self) -> Response {
        super::scim_json(self.status, self.body())
    }
}
