//! Request controls carried as opaque values by ldap3_proto that we decode
//! ourselves: Assertion (RFC 4528) and Pre-/Post-read (RFC 4527).

use ldap3_proto::control::LdapControl;
use ldap3_proto::proto::LdapFilter;

use super::{convert, oids};
use crate::directory::Filter;

/// Deepest BER nesting accepted inside a control value.
const MAX_DEPTH: usize = 64;

/// The controls of one update or compare request that change its handling.
#[derive(Default, Clone)]
pub struct WriteControls {
    /// RFC 4528: the operation happens only if the target matches.
    pub assertion: Option<Filter>,
    /// RFC 4527: attributes to return from the entry before / after the change.
    pub pre_read: Option<Vec<String>>,
    pub post_read: Option<Vec<String>>,
}

/// Decode what we act on; a malformed value of a control we support is a
/// protocol error (RFC 4528 §3, RFC 4527 §3).
pub fn write_controls(ctrls: &[LdapControl]) -> Result<WriteControls, String> {
    let mut out = WriteControls::default();
    for c in ctrls {
        let LdapControl::Unknown { oid, value, .. } = c else {
            continue;
        };
        match oid.as_str() {
            oids::ASSERTION => {
                let v = value.as_deref().ok_or("assertion control without a filter")?;
                let (_, tag) =
                    ldap3_lber::parse::parse_tag(v, MAX_DEPTH).map_err(|_| "assertion control value is not BER")?;
                let f = LdapFilter::try_from(tag).map_err(|_| "assertion control value is not a filter")?;
                out.assertion = Some(convert::filter(&f));
            }
            oids::PRE_READ | oids::POST_READ => {
                let attrs = match value.as_deref() {
                    None => Vec::new(),
                    Some(v) => {
                        let (_, tag) = ldap3_lber::parse::parse_tag(v, MAX_DEPTH)
                            .map_err(|_| "read entry control value is not BER")?;
                        let items = tag.expect_constructed().ok_or("read entry control value is not a sequence")?;
                        items
                            .into_iter()
                            .map(|t| t.expect_primitive().and_then(|b| String::from_utf8(b).ok()))
                            .collect::<Option<Vec<_>>>()
                            .ok_or("read entry control holds a bad attribute name")?
                    }
                };
                if oid == oids::PRE_READ {
                    out.pre_read = Some(attrs);
                } else {
                    out.post_read = Some(attrs);
                }
            }
            _ => {}
        }
    }
    Ok(out)
}
