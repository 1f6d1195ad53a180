//! The one mapping from directory errors to LDAP results (RFC 4511 Appendix A).

use ldap3_proto::proto::{LdapResult, LdapResultCode};

use crate::directory::DirectoryError;

/// An LDAP result with a code and a message.
pub fn result(code: LdapResultCode, message: impl Into<String>) -> LdapResult {
    LdapResult { code, matcheddn: String::new(), message: message.into(), referral: Vec::new() }
}

pub fn success() -> LdapResult {
    result(LdapResultCode::Success, "")
}

/// Map a directory error once, here.
pub fn from_error(e: &DirectoryError) -> LdapResult {
    use LdapResultCode as C;
    let code = match e {
        DirectoryError::NoSuchObject { matched, .. } => {
            return LdapResult {
                code: C::NoSuchObject,
                matcheddn: matched.clone(),
                message: e.to_string(),
                referral: Vec::new(),
            };
        }
        DirectoryError::Referral(url) => {
            return LdapResult {
                code: C::Referral,
                matcheddn: String::new(),
                message: e.to_string(),
                referral: vec![url.clone()],
            };
        }
        DirectoryError::AlreadyExists(_) => C::EntryAlreadyExists,
        DirectoryError::InvalidDn(_) => C::InvalidDNSyntax,
        DirectoryError::UndefinedAttributeType(_) => C::UndefinedAttributeType,
        DirectoryError::ObjectClassViolation(_) => C::ObjectClassViolation,
        DirectoryError::ConstraintViolation(_)
        | DirectoryError::NotUnique(_)
        | DirectoryError::ConstraintNoUserModification(_)
        | DirectoryError::PasswordRefused(..) => C::ConstraintViolation,
        DirectoryError::PreconditionFailed(_) => C::AssertionFailed,
        DirectoryError::InvalidAttributeSyntax(_) => C::InvalidAttributeSyntax,
        DirectoryError::AttributeOrValueExists(_) => C::AttributeOrValueExists,
        DirectoryError::NoSuchAttribute(_) => C::NoSuchAttribute,
        DirectoryError::NotAllowedOnRdn(_) => C::NotALlowedOnRDN,
        DirectoryError::NotAllowedOnNonLeaf(_) => C::NotAllowedOnNonLeaf,
        DirectoryError::NamingViolation(_) => C::NamingViolation,
        DirectoryError::InappropriateMatching(_) => C::InappropriateMatching,
        DirectoryError::Protocol(_) => C::ProtocolError,
        DirectoryError::InvalidCredentials => C::InvalidCredentials,
        DirectoryError::InsufficientAccess(_) => C::InsufficentAccessRights,
        DirectoryError::Unwilling(_) => C::UnwillingToPerform,
        DirectoryError::SizeLimitExceeded => C::SizeLimitExceeded,
        DirectoryError::TimeLimitExceeded => C::TimeLimitExceeded,
        DirectoryError::AdminLimitExceeded(_) => C::AdminLimitExceeded,
        DirectoryError::Abandoned => C::Canceled,
        DirectoryError::Store(_) | DirectoryError::Internal(_) => {
            tracing::error!("internal error: {e}");
            C::Other
        }
    };
    result(code, e.to_string())
}
