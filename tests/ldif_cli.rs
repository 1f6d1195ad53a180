//! `convergences import` / `export` as an operator runs them.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_convergences");

/// What slapcat writes: version line, comments, base64 (`::`) for 8-bit
/// values, folded lines, operational attributes, {SSHA} hashes.
const SLAPCAT_STYLE: &str = "version: 1

# cig.fr
dn: dc=cig,dc=fr
objectClass: top
objectClass: dcObject
objectClass: organization
dc: cig
o: CIG
structuralObjectClass: organization
entryUUID: 0b9e4bb2-6f25-103f-8a1c-d3b5a6b6e0a1
creatorsName: cn=admin,dc=cig,dc=fr
createTimestamp: 20250101120000Z
entryCSN: 20250101120000.000000Z#000000#000#000000
contextCSN: 20250101120000.000000Z#000000#000#000000
modifiersName: cn=admin,dc=cig,dc=fr
modifyTimestamp: 20250101120000Z

dn: ou=organisations,dc=cig,dc=fr
objectClass: organizationalUnit
ou: organisations

dn: o=219400280,ou=organisations,dc=cig,dc=fr
objectClass: organization
o: 219400280
description:: Q29tbXVuZSBkZSBDcsOpdGVpbA==

dn: uid=hdupre,o=219400280,ou=organisations,dc=cig,dc=fr
objectClass: inetOrgPerson
uid: hdupre
cn:: SMOpbMOobmUgRHVwcsOp
sn:: RHVwcsOp
userPassword:: e1NTSEF9WmZoVmNqSXJMVlN5b2Z3Q2V1dEJMa0ZUNEdwV2FsVlI=
description: une description tr
 es longue repliee sur deux lignes
";

fn import(data: &std::path::Path, file: &std::path::Path) -> std::process::Output {
    Command::new(BIN).arg("import").arg("--data").arg(data).arg(file).output().unwrap()
}

fn export(data: &std::path::Path) -> Vec<u8> {
    let out = Command::new(BIN).arg("export").arg("--data").arg(data).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

#[test]
fn a_slapcat_export_imports_and_round_trips_byte_identically() {
    let tmp = tempfile::tempdir().unwrap();
    let ldif = tmp.path().join("slapcat.ldif");
    std::fs::write(&ldif, SLAPCAT_STYLE).unwrap();
    let out = import(&tmp.path().join("a"), &ldif);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("imported 4 entries"));

    let first = export(&tmp.path().join("a"));
    let text = String::from_utf8(first.clone()).unwrap();
    assert!(text.contains("entryUUID: 0b9e4bb2-6f25-103f-8a1c-d3b5a6b6e0a1"), "operational attributes are kept");
    assert!(text.contains("createTimestamp: 20250101120000Z"));
    assert!(text.contains("entryCSN: 20250101120000.000000Z#000000#000#000000"), "slapd's replication state is kept");
    assert!(text.contains("cn:: SMOpbMOobmUgRHVwcsOp"));
    assert!(
        text.contains("userPassword:: e1NTSEF9WmZoVmNqSXJMVlN5b2Z3Q2V1dEJMa0ZUNEdwV2FsVlI="),
        "hashes are stored as they are"
    );
    assert!(text.contains("description: une description tres longue repliee sur deux lignes"));

    let again = tmp.path().join("export.ldif");
    std::fs::write(&again, &first).unwrap();
    let out = import(&tmp.path().join("b"), &again);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(export(&tmp.path().join("b")), first, "export → import → export is byte-identical");
}

#[test]
fn a_bad_import_names_the_line_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let good = tmp.path().join("good.ldif");
    std::fs::write(&good, "dn: dc=cig,dc=fr\nobjectClass: dcObject\nobjectClass: organization\ndc: cig\no: CIG\n")
        .unwrap();
    assert!(import(&tmp.path().join("d"), &good).status.success());
    let before = export(&tmp.path().join("d"));

    let bad = tmp.path().join("bad.ldif");
    std::fs::write(
        &bad,
        "dn: ou=a,dc=cig,dc=fr\nobjectClass: organizationalUnit\nou: a\n\ndn: ou=b,dc=cig,dc=fr\nobjectClass: organizationalUnit\nou: b\nshoeSize: 42\n",
    )
    .unwrap();
    let out = import(&tmp.path().join("d"), &bad);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 5") && err.contains("shoeSize"), "{err}");
    assert_eq!(export(&tmp.path().join("d")), before, "the first, valid record was not kept either");

    let syntax = tmp.path().join("syntax.ldif");
    std::fs::write(
        &syntax,
        "dn: ou=c,dc=cig,dc=fr\nobjectClass: organizationalUnit\nou: c\n\ndn: ou=d,dc=cig,dc=fr\nou:: not-base64!\n",
    )
    .unwrap();
    let out = import(&tmp.path().join("d"), &syntax);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 6"), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(export(&tmp.path().join("d")), before);

    // Entries are prepared ahead of the one being stored: a refusal only the
    // store can see (a missing parent), after many good entries and before
    // a bad one, is the one reported, and nothing is kept.
    let mut late = String::new();
    for i in 0..1500 {
        late.push_str(&format!("dn: ou=u{i},dc=cig,dc=fr\nobjectClass: organizationalUnit\nou: u{i}\n\n"));
    }
    let orphan_line = late.lines().count() + 1;
    late.push_str("dn: ou=x,ou=nowhere,dc=cig,dc=fr\nobjectClass: organizationalUnit\nou: x\n\n");
    late.push_str("dn: ou=y,dc=cig,dc=fr\nobjectClass: organizationalUnit\nou: y\nshoeSize: 42\n");
    let file = tmp.path().join("late.ldif");
    std::fs::write(&file, late).unwrap();
    let out = import(&tmp.path().join("d"), &file);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("line {orphan_line}")) && !err.contains("shoeSize"), "{err}");
    assert_eq!(export(&tmp.path().join("d")), before);
}

#[test]
fn change_records_apply_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("changes.ldif");
    std::fs::write(
        &f,
        "dn: dc=cig,dc=fr\nchangetype: add\nobjectClass: dcObject\nobjectClass: organization\ndc: cig\no: CIG\n\n\
         dn: ou=a,dc=cig,dc=fr\nobjectClass: organizationalUnit\nou: a\n\n\
         dn: ou=a,dc=cig,dc=fr\nchangetype: modify\nadd: description\ndescription: d1\n-\nreplace: ou\nou: a\nou: alias\n-\n\n\
         dn: ou=a,dc=cig,dc=fr\nchangetype: modrdn\nnewrdn: ou=b\ndeleteoldrdn: 1\n\n\
         dn: ou=b,dc=cig,dc=fr\nchangetype: delete\n",
    )
    .unwrap();
    let out = import(&tmp.path().join("d"), &f);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(export(&tmp.path().join("d"))).unwrap();
    assert!(!text.contains("ou=b,"), "{text}");
}

#[test]
fn every_command_explains_itself() {
    for args in [vec!["--help"], vec!["serve", "--help"], vec!["import", "--help"], vec!["export", "--help"]] {
        let out = Command::new(BIN).args(&args).output().unwrap();
        assert!(out.status.success());
        assert!(String::from_utf8_lossy(&out.stdout).contains("Usage"));
    }
}
