//! Every object identifier the LDAP front end names: the controls and
//! extended operations it implements (advertised in the root DSE), and the
//! ones it recognises in order to refuse them.

/// RFC 2696 Simple Paged Results.
pub const PAGED_RESULTS: &str = "1.2.840.113556.1.4.319";
/// RFC 2891 Server Side Sorting, request and response.
pub const SORT_REQUEST: &str = "1.2.840.113556.1.4.473";
pub const SORT_RESPONSE: &str = "1.2.840.113556.1.4.474";
/// RFC 3296 ManageDsaIT: there are no referral objects, so it changes nothing.
pub const MANAGE_DSA_IT: &str = "2.16.840.1.113730.3.4.2";
/// RFC 4528 Assertion.
pub const ASSERTION: &str = "1.3.6.1.1.12";
/// RFC 4527 Pre-Read and Post-Read.
pub const PRE_READ: &str = "1.3.6.1.1.13.1";
pub const POST_READ: &str = "1.3.6.1.1.13.2";
/// RFC 4525 Modify-Increment: a feature, advertised in `supportedFeatures`.
pub const MODIFY_INCREMENT: &str = "1.3.6.1.1.14";
/// RFC 4533 §2.2 Sync Request, §2.3 Sync State, §2.4 Sync Done controls and
/// §2.5 the Sync Info intermediate response.
pub const SYNC_REQUEST: &str = "1.3.6.1.4.1.4203.1.9.1.1";
pub const SYNC_STATE: &str = "1.3.6.1.4.1.4203.1.9.1.2";
pub const SYNC_DONE: &str = "1.3.6.1.4.1.4203.1.9.1.3";
pub const SYNC_INFO: &str = "1.3.6.1.4.1.4203.1.9.1.4";

/// draft-behera-ldap-password-policy §6: the Password Policy control.
pub const PASSWORD_POLICY: &str = "1.3.6.1.4.1.42.2.27.8.5.1";

/// RFC 4532 Who am I?
pub const WHOAMI: &str = "1.3.6.1.4.1.4203.1.11.3";
/// RFC 3062 Password Modify.
pub const PASSWORD_MODIFY: &str = "1.3.6.1.4.1.4203.1.11.1";
/// RFC 4511 §4.14.1 StartTLS.
pub const STARTTLS: &str = "1.3.6.1.4.1.1466.20037";
/// RFC 4511 §4.4.1 Notice of Disconnection.
pub const NOTICE_OF_DISCONNECTION: &str = "1.3.6.1.4.1.1466.20036";

/// RFC 4512 §5.1 features: all operational attributes (`+`, RFC 3673),
/// attributes by object class (`@class`, RFC 4529), absolute true and false
/// filters (RFC 4526), Modify-Increment (RFC 4525).
pub const FEATURES: &[&str] =
    &["1.3.6.1.4.1.4203.1.5.1", "1.3.6.1.4.1.4203.1.5.2", "1.3.6.1.4.1.4203.1.5.3", MODIFY_INCREMENT];

/// The controls the server acts on, as the root DSE lists them.
pub const CONTROLS: &[&str] =
    &[PAGED_RESULTS, SORT_REQUEST, MANAGE_DSA_IT, ASSERTION, PRE_READ, POST_READ, PASSWORD_POLICY, SYNC_REQUEST];

/// The project's administration command (`crate::commands`).
pub const COMMAND: &str = crate::commands::OID;

/// The project's recycle bin: restore a deleted agent by its entryUUID
/// (request value), answered with its DN (response value).
pub const RESTORE: &str = "2.25.8454349690524137459045039418936221212.3.2";
/// The project's recycle bin: the deleted agents the identity may restore
/// (request value: nothing, or an organisation's DN or SIREN), one per
/// line of the response value: entryUUID, deletion, purge, DN, tab-separated.
pub const RECYCLE_BIN: &str = "2.25.8454349690524137459045039418936221212.3.3";

/// The extended operations the server answers.
pub const EXTENSIONS: &[&str] = &[WHOAMI, PASSWORD_MODIFY, STARTTLS, COMMAND, RESTORE, RECYCLE_BIN];
