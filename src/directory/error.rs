//! The one domain error. Front ends map it once: `ldap::result` to LDAP result
//! codes, and later `scim::error` to SCIM error bodies. No front end invents codes.

use crate::store::StoreError;

/// Everything a directory operation can refuse, with a message a person can act on.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// RFC 4511 §4.1.9 noSuchObject; `matched` is the deepest existing ancestor.
    #[error("no such object: {dn}")]
    NoSuchObject { dn: String, matched: String },
    #[error("entry already exists: {0}")]
    AlreadyExists(String),
    #[error("invalid DN syntax: {0}")]
    InvalidDn(String),
    #[error("undefined attribute type: {0}")]
    UndefinedAttributeType(String),
    #[error("object class violation: {0}")]
    ObjectClassViolation(String),
    #[error("constraint violation: {0}")]
    ConstraintViolation(String),
    /// A value that must be unique (uid in the directory, externalId in an
    /// organisation) is already held by another entry: LDAP
    /// constraintViolation, SCIM 409 `uniqueness`.
    #[error("constraint violation: {0}")]
    NotUnique(String),
    /// A write's precondition does not hold in its transaction: an LDAP
    /// Assertion control (RFC 4528 assertionFailed), a SCIM `If-Match`
    /// (RFC 7644 §3.14, 412).
    #[error("precondition failed: {0}")]
    PreconditionFailed(String),
    #[error("invalid attribute syntax: {0}")]
    InvalidAttributeSyntax(String),
    #[error("attribute or value exists: {0}")]
    AttributeOrValueExists(String),
    #[error("no such attribute: {0}")]
    NoSuchAttribute(String),
    #[error("not allowed on RDN: {0}")]
    NotAllowedOnRdn(String),
    #[error("not allowed on non-leaf: {0}")]
    NotAllowedOnNonLeaf(String),
    #[error("naming violation: {0}")]
    NamingViolation(String),
    #[error("inappropriate matching: {0}")]
    InappropriateMatching(String),
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error("insufficient access rights: {0}")]
    InsufficientAccess(String),
    #[error("unwilling to perform: {0}")]
    Unwilling(String),
    #[error("size limit exceeded")]
    SizeLimitExceeded,
    #[error("time limit exceeded")]
    TimeLimitExceeded,
    #[error("administrative limit exceeded: {0}")]
    AdminLimitExceeded(String),
    #[error("no user modification allowed: {0}")]
    ConstraintNoUserModification(String),
    /// A new password the password policy refuses (LDAP constraintViolation,
    /// with the draft's error in the Password Policy response control).
    #[error("constraint violation: {1}")]
    PasswordRefused(super::ppolicy::PasswordProblem, String),
    /// This server is a read replica: writes go to its provider, whose URL
    /// this is (RFC 4511 §4.1.10 referral).
    #[error("this server is a read replica: write to {0}")]
    Referral(String),
    /// The client abandoned the operation (RFC 4511 §4.11): nothing is sent.
    #[error("operation abandoned")]
    Abandoned,
    #[error("store error: {0}")]
    Store(#[from] StoreError),
    #[error("internal error: {0}")]
    Internal(String),
}

pub type Result<T, E = DirectoryError> = std::result::Result<T, E>;

/// How the audit trail records a refused write.
pub fn result_name(e: &DirectoryError) -> String {
    e.to_string()
}
