//! SASL EXTERNAL (RFC 4422 Appendix A, RFC 4513 §5.2.3): the identity is the
//! subject of the client's TLS certificate, read as a DN.

use ldap3_lber::common::TagClass;
use ldap3_lber::structure::{PL, StructureTag};

use crate::directory::dn::{Ava, Dn, Rdn};

/// Deepest nesting walked in a certificate.
const MAX_DEPTH: usize = 32;

/// Short names of the attribute types found in certificate subjects.
fn attribute_name(oid: &str) -> String {
    match oid {
        "2.5.4.3" => "cn",
        "2.5.4.4" => "sn",
        "2.5.4.5" => "serialNumber",
        "2.5.4.6" => "c",
        "2.5.4.7" => "l",
        "2.5.4.8" => "st",
        "2.5.4.9" => "street",
        "2.5.4.10" => "o",
        "2.5.4.11" => "ou",
        "2.5.4.12" => "title",
        "0.9.2342.19200300.100.1.1" => "uid",
        "0.9.2342.19200300.100.1.25" => "dc",
        "1.2.840.113549.1.9.1" => "emailAddress",
        other => return other.to_string(),
    }
    .to_string()
}

fn decode_oid(b: &[u8]) -> Option<String> {
    let (&first, rest) = b.split_first()?;
    let mut parts = vec![u64::from(first / 40).min(2), u64::from(first) - 40 * u64::from(first / 40).min(2)];
    let mut cur: u64 = 0;
    for &x in rest {
        cur = cur.checked_mul(128)? | u64::from(x & 0x7f);
        if x & 0x80 == 0 {
            parts.push(cur);
            cur = 0;
        }
    }
    Some(parts.iter().map(u64::to_string).collect::<Vec<_>>().join("."))
}

fn seq(t: StructureTag) -> Option<Vec<StructureTag>> {
    match t.payload {
        PL::C(v) => Some(v),
        PL::P(_) => None,
    }
}

/// The subject of a DER certificate as an LDAP DN (X.509 lists RDNs from the
/// top down; LDAP's string form starts with the entry's own RDN).
pub fn subject_dn(der: &[u8]) -> Option<Dn> {
    let (_, cert) = ldap3_lber::parse::parse_tag(der, MAX_DEPTH).ok()?;
    let tbs = seq(cert)?.into_iter().next()?;
    let mut fields = seq(tbs)?.into_iter();
    let mut first = fields.next()?;
    // [0] EXPLICIT version is optional.
    if first.class == TagClass::Context {
        first = fields.next()?;
    }
    let _serial = first;
    let _signature = fields.next()?;
    let _issuer = fields.next()?;
    let _validity = fields.next()?;
    let subject = fields.next()?;
    let mut rdns = Vec::new();
    for set in seq(subject)? {
        let mut avas = Vec::new();
        for atv in seq(set)? {
            let mut parts = seq(atv)?.into_iter();
            let oid = decode_oid(&parts.next()?.expect_primitive()?)?;
            let value = String::from_utf8(parts.next()?.expect_primitive()?).ok()?;
            avas.push(Ava { attr: attribute_name(&oid), value });
        }
        rdns.push(Rdn { avas });
    }
    rdns.reverse();
    Some(Dn::from_rdns(rdns))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_subject_of_a_certificate() {
        let mut params = rcgen::CertificateParams::new(vec!["client".to_string()]).unwrap();
        let uid = rcgen::DnType::CustomDnType(vec![0, 9, 2342, 19200300, 100, 1, 1]);
        let dc = rcgen::DnType::CustomDnType(vec![0, 9, 2342, 19200300, 100, 1, 25]);
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(dc, "fr");
        params.distinguished_name.push(rcgen::DnType::OrganizationName, "219400280");
        params.distinguished_name.push(rcgen::DnType::OrganizationalUnitName, "agents");
        params.distinguished_name.push(uid, "hdupré");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let dn = subject_dn(cert.der()).unwrap();
        assert_eq!(dn.to_string(), "uid=hdupré,ou=agents,o=219400280,dc=fr");
    }
}
