//! The root DSE (RFC 4512 §5.1) and the subschema subentry (RFC 4512 §4.2),
//! readable anonymously so that generic tools can discover the server.

use crate::directory::{Directory, Dn, Entry};

pub const SUBSCHEMA_DN: &str = "cn=Subschema";
pub const OID_WHOAMI: &str = "1.3.6.1.4.1.4203.1.11.3";

pub fn root_dse(dir: &Directory) -> Entry {
    Entry::new(Dn::root())
        .with("objectClass", ["top"])
        .with("namingContexts", [dir.suffix().to_string()])
        .with("supportedLDAPVersion", ["3"])
        .with("supportedExtension", [OID_WHOAMI])
        .with(
            "supportedFeatures",
            [
                "1.3.6.1.4.1.4203.1.5.1",
                "1.3.6.1.4.1.4203.1.5.2",
                "1.3.6.1.4.1.4203.1.5.3",
            ],
        )
        .with("subschemaSubentry", [SUBSCHEMA_DN])
        .with("vendorName", ["Convergences"])
        .with("vendorVersion", [concat!("Convergences ", env!("CARGO_PKG_VERSION"))])
}

pub fn subschema(dir: &Directory) -> Entry {
    let schema = dir.schema();
    let mut e = Entry::new(Dn::root().child(crate::directory::Rdn::single("cn", "Subschema")))
        .with("objectClass", ["top", "subentry", "subschema", "extensibleObject"])
        .with("cn", ["Subschema"]);
    // `subentry` may be missing from the shipped schema; keep only known classes.
    if schema.class_id("subentry").is_none() {
        e.set(
            "objectClass",
            vec![b"top".to_vec(), b"subschema".to_vec(), b"extensibleObject".to_vec()],
        );
    }
    e.set(
        "attributeTypes",
        schema.attrs().iter().map(|a| a.def.to_string().into_bytes()).collect(),
    );
    e.set(
        "objectClasses",
        schema
            .classes()
            .iter()
            .map(|c| c.def.to_string().into_bytes())
            .collect(),
    );
    e
}
