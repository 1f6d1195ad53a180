//! The directory core through its public API, on a real redb store.

use convergences::directory::{
    AddMode, Change, DirectoryError, Entry, Filter, ModOp, Modification, Principal, Rdn, Scope, SearchRequest,
};
use proptest::prelude::*;

use crate::common::*;

fn uids(dir: &convergences::directory::Directory, base: &str, scope: Scope, filter: &str) -> Vec<String> {
    let req = SearchRequest::new(dn(base), scope, Filter::parse(filter).unwrap());
    let mut out = Vec::new();
    dir.search(&Principal::Server, &req, |e| {
        out.push(e.first_str("uid").map(str::to_string).unwrap_or_else(|| e.dn.to_string()));
        Ok(())
    })
    .unwrap();
    out.sort();
    out
}

#[test]
fn schema_violations_get_their_ldap_codes() {
    let (_t, dir) = directory();
    populate(&dir);
    let a = actor();
    let err = |e: Entry| dir.add(&a, e).unwrap_err();

    assert!(matches!(
        err(agent("x1", "A", "B").with("favouriteColour", ["blue"])),
        DirectoryError::UndefinedAttributeType(_)
    ));
    let mut no_sn = agent("x2", "A", "B");
    no_sn.remove("sn");
    assert!(matches!(err(no_sn), DirectoryError::ObjectClassViolation(m) if m.contains("sn")));
    assert!(
        matches!(err(agent("x3", "A", "B").with("cigSiren", ["219400280"])), DirectoryError::ObjectClassViolation(m) if m.contains("not allowed"))
    );
    let aux_only = Entry::new(dn(&format!("uid=x4,{AGENTS}"))).with("objectClass", ["cigAgent"]).with("uid", ["x4"]);
    assert!(matches!(err(aux_only), DirectoryError::ObjectClassViolation(m) if m.contains("structural")));
    assert!(matches!(
        err(agent("x5", "A", "B").with("cigActive", ["TRUE", "FALSE"])),
        DirectoryError::ConstraintViolation(_)
    ));
    assert!(matches!(
        err(agent("x6", "A", "B").with("displayName", ["a", "b"])),
        DirectoryError::ConstraintViolation(_)
    ));
    assert!(matches!(
        err(agent("x7", "A", "B").with("cigActive", ["maybe"])),
        DirectoryError::InvalidAttributeSyntax(_)
    ));
    let bad_member = Entry::new(dn(&format!("cn=g,{GROUPS}")))
        .with("objectClass", ["groupOfNames"])
        .with("cn", ["g"])
        .with("member", ["not a dn"]);
    assert!(matches!(err(bad_member), DirectoryError::InvalidAttributeSyntax(_)));
    let posix = agent("x8", "A", "B")
        .with("objectClass", ["posixAccount"])
        .with("uidNumber", ["12a"])
        .with("gidNumber", ["1"])
        .with("homeDirectory", ["/home/x8"]);
    assert!(matches!(err(posix), DirectoryError::InvalidAttributeSyntax(m) if m.contains("uidNumber")));
    assert!(matches!(
        err(agent("x9", "A", "B").with("objectClass", ["noSuchClass"])),
        DirectoryError::ObjectClassViolation(_)
    ));
    // An import keeps operational attributes, and checks their syntax too.
    let bad_time = agent("x10", "A", "B").with("createTimestamp", ["yesterday"]);
    let r = dir.apply_batch(&a, [Ok(Change::Add(bad_time))], AddMode::Import, |_| {});
    assert!(matches!(r, Err((0, DirectoryError::InvalidAttributeSyntax(m))) if m.contains("createTimestamp")));
    // A client may not write operational attributes.
    assert!(matches!(
        err(agent("x11", "A", "B").with("entryUUID", ["8d49d902-d13f-40c5-8be2-9d39fb8c0bdb"])),
        DirectoryError::ConstraintNoUserModification(_)
    ));
}

#[test]
fn uid_is_unique_across_the_directory() {
    let (_t, dir) = directory();
    populate(&dir);
    let twin = Entry::new(dn(&format!("uid=HDUPRE,ou=particuliers,{SUFFIX}")))
        .with("objectClass", ["inetOrgPerson"])
        .with("uid", ["HDUPRE"])
        .with("cn", ["x"])
        .with("sn", ["x"]);
    assert!(matches!(dir.add(&actor(), twin), Err(DirectoryError::NotUnique(_))));
    let m = Modification::new(ModOp::Add, "uid", ["jdupont"]);
    assert!(matches!(
        dir.modify(&actor(), &dn(&format!("uid=hdupre,{AGENTS}")), &[m]),
        Err(DirectoryError::NotUnique(_))
    ));
}

#[test]
fn write_errors_follow_rfc_4511() {
    let (_t, dir) = directory();
    populate(&dir);
    let a = actor();
    let hd = dn(&format!("uid=hdupre,{AGENTS}"));
    assert!(matches!(dir.add(&a, agent("hdupre", "H", "D")), Err(DirectoryError::AlreadyExists(_))));
    let orphan = Entry::new(dn(&format!("uid=z,ou=nowhere,{ORG}"))).with("objectClass", ["account"]).with("uid", ["z"]);
    match dir.add(&a, orphan) {
        Err(DirectoryError::NoSuchObject { matched, .. }) => assert_eq!(matched, ORG),
        other => panic!("{other:?}"),
    }
    assert!(matches!(dir.delete(&a, &dn(AGENTS)), Err(DirectoryError::NotAllowedOnNonLeaf(_))));
    let exists = Modification::new(ModOp::Add, "mail", ["hdupre@creteil.example.fr"]);
    assert!(matches!(dir.modify(&a, &hd, &[exists]), Err(DirectoryError::AttributeOrValueExists(_))));
    let missing = Modification::new(ModOp::Delete, "title", Vec::<&str>::new());
    assert!(matches!(dir.modify(&a, &hd, &[missing]), Err(DirectoryError::NoSuchAttribute(_))));
    let rdn = Modification::new(ModOp::Delete, "uid", ["hdupre"]);
    assert!(matches!(dir.modify(&a, &hd, &[rdn]), Err(DirectoryError::NotAllowedOnRdn(_))));
    // All or nothing: the valid first change is not applied when the second fails.
    let ok = Modification::new(ModOp::Replace, "title", ["Directrice"]);
    let bad = Modification::new(ModOp::Add, "bogusAttr", ["x"]);
    assert!(dir.modify(&a, &hd, &[ok, bad]).is_err());
    assert!(dir.get(&hd).unwrap().unwrap().get("title").is_none());
    // Increment (RFC 4525).
    let jd = dn(&format!("uid=jdupont,{AGENTS}"));
    dir.modify(&a, &jd, &[Modification::new(ModOp::Replace, "employeeNumber", ["41"])]).unwrap();
    let ok = dir.modify(&a, &dn(ORG), &[Modification::new(ModOp::Add, "cigApplication", ["snapi-cap"])]);
    ok.unwrap();
    let before = dir.get(&hd).unwrap().unwrap();
    assert!(before.first_str("modifyTimestamp").is_some());
    assert_eq!(before.first_str("creatorsName"), Some("cn=admin,dc=cig,dc=fr"));
}

#[test]
fn every_filter_kind_matches_french_names() {
    let (_t, dir) = directory();
    populate(&dir);
    let sub = |f: &str| uids(&dir, SUFFIX, Scope::Sub, f);
    assert_eq!(sub("(cn=hélène dupré)"), ["hdupre"]);
    assert_eq!(sub("(cn=HÉLÈNE   DUPRÉ)"), ["hdupre"]);
    assert_eq!(sub("(sn=Dupr*)"), ["hdupre"]);
    assert_eq!(sub("(sn=dup*)"), ["hdupre", "jdupont"]);
    assert_eq!(sub("(cn=*œuvre*)"), ["floeuvre", "omartin"]);
    assert_eq!(sub("(cn=*ŒUVRE)"), ["floeuvre"]);
    assert_eq!(sub("(givenName=H*l*ne)"), ["hdupre"]);
    // employeeNumber has no ORDERING rule: >= and <= are Undefined (RFC 4511 §4.5.1.7), as in slapd.
    assert!(sub("(&(objectClass=inetOrgPerson)(employeeNumber>=3))").is_empty());
    assert!(sub("(&(objectClass=person)(employeeNumber<=2))").is_empty());
    assert_eq!(sub("(&(uid=*)(createTimestamp>=19700101000000Z))").len(), 4);
    assert!(sub("(&(uid=*)(createTimestamp<=19700101000000Z))").is_empty());
    // No SUBSTR rule on objectClass: a substring assertion is Undefined too.
    assert!(sub("(objectClass=inet*)").is_empty());
    assert_eq!(sub("(&(uid=*)(!(sn=Dupr*)))"), ["floeuvre", "jdupont", "omartin"]);
    assert_eq!(sub("(|(uid=hdupre)(sn=Martin))"), ["hdupre", "omartin"]);
    assert_eq!(sub("(sn~=dupont)"), ["jdupont"]);
    // ~= folds case, accents and punctuation (schema::approx).
    assert_eq!(sub("(sn~=dupre)"), ["hdupre"]);
    assert_eq!(sub("(cn~=HELENE-DUPRE)"), ["hdupre"]);
    assert_eq!(sub("(&(uid=*)(sn~=DUPRÉ))"), ["hdupre"]);
    assert_eq!(sub("(cn:caseExactMatch:=Hélène Dupré)"), ["hdupre"]);
    assert!(sub("(cn:caseExactMatch:=hélène dupré)").is_empty());
    assert_eq!(sub("(&(uid=*)(ou:dn:=agents))").len(), 4);
    assert_eq!(sub("(name=Lœuvre)"), ["floeuvre"]);
    assert_eq!(sub("(memberOf=cn=bip,ou=applications,dc=cig,dc=fr)"), ["hdupre", "jdupont"]);
    assert_eq!(sub("(&(uid=jdupont)(memberOf=CN=BIP,ou=applications,dc=cig,dc=fr))"), ["jdupont"]);
    assert!(sub("(description=*)").is_empty());
    assert!(sub("(unknownAttr=x)").is_empty());
    assert_eq!(sub("(!(unknownAttr=x))").len(), 0, "NOT of Undefined is Undefined (RFC 4511 §4.5.1.7)");
    assert_eq!(sub("(&)").len(), sub("(objectClass=*)").len(), "absolute true (RFC 4526)");
    assert!(sub("(|)").is_empty());
    assert_eq!(uids(&dir, AGENTS, Scope::One, "(objectClass=*)").len(), 4);
    assert_eq!(uids(&dir, ORG, Scope::One, "(objectClass=*)").len(), 2);
    assert_eq!(uids(&dir, ORG, Scope::Children, "(ou=*)").len(), 2);
    assert_eq!(uids(&dir, ORG, Scope::Base, "(objectClass=*)").len(), 1);
}

#[test]
fn search_honours_size_limit_and_attribute_selection() {
    let (_t, dir) = directory();
    populate(&dir);
    let mut req = SearchRequest::new(dn(SUFFIX), Scope::Sub, Filter::parse("(uid=*)").unwrap());
    req.size_limit = 2;
    let mut n = 0;
    assert!(matches!(
        dir.search(&Principal::Server, &req, |_| {
            n += 1;
            Ok(())
        }),
        Err(DirectoryError::SizeLimitExceeded)
    ));
    assert_eq!(n, 2);

    let one = |attrs: &[&str]| {
        let mut req = SearchRequest::new(dn(&format!("uid=hdupre,{AGENTS}")), Scope::Base, Filter::everything());
        req.attrs = attrs.iter().map(|s| s.to_string()).collect();
        let mut got = None;
        dir.search(&Principal::Server, &req, |e| {
            got = Some(e);
            Ok(())
        })
        .unwrap();
        got.unwrap()
    };
    let all = one(&[]);
    assert!(all.get("cn").is_some() && all.get("entryUUID").is_none());
    let ops = one(&["+"]);
    assert!(ops.get("cn").is_none());
    for op in [
        "entryUUID",
        "createTimestamp",
        "modifyTimestamp",
        "creatorsName",
        "modifiersName",
        "entryDN",
        "structuralObjectClass",
        "hasSubordinates",
        "numSubordinates",
        "memberOf",
    ] {
        assert!(ops.get(op).is_some(), "{op} missing");
    }
    assert_eq!(ops.first_str("structuralObjectClass"), Some("inetOrgPerson"));
    assert_eq!(ops.get("memberOf").unwrap().values.len(), 2);
    assert!(one(&["1.1"]).attrs.is_empty());
    let named = one(&["commonName", "memberOf"]);
    assert_eq!(named.attrs.len(), 2);
    let by_super = one(&["name"]);
    assert!(by_super.get("cn").is_some() && by_super.get("sn").is_some());
    let org = {
        let mut req = SearchRequest::new(dn(AGENTS), Scope::Base, Filter::everything());
        req.attrs = vec!["hasSubordinates".into(), "numSubordinates".into()];
        let mut got = None;
        dir.search(&Principal::Server, &req, |e| {
            got = Some(e);
            Ok(())
        })
        .unwrap();
        got.unwrap()
    };
    assert_eq!(org.first_str("hasSubordinates"), Some("TRUE"));
    assert_eq!(org.first_str("numSubordinates"), Some("4"));
    match dir.search(
        &Principal::Server,
        &SearchRequest::new(dn(&format!("uid=nobody,{AGENTS}")), Scope::Base, Filter::everything()),
        |_| Ok(()),
    ) {
        Err(DirectoryError::NoSuchObject { matched, .. }) => assert_eq!(matched, AGENTS),
        other => panic!("{other:?}"),
    }
}

#[test]
fn compare_answers_true_false_or_no_such_attribute() {
    let (_t, dir) = directory();
    populate(&dir);
    let hd = dn(&format!("uid=hdupre,{AGENTS}"));
    assert!(dir.compare(&Principal::Server, &hd, "sn", "DUPRÉ".as_bytes()).unwrap());
    assert!(!dir.compare(&Principal::Server, &hd, "sn", b"Martin").unwrap());
    assert!(dir.compare(&Principal::Server, &hd, "memberOf", b"cn=bip,ou=applications,dc=cig,dc=fr").unwrap());
    assert!(matches!(dir.compare(&Principal::Server, &hd, "title", b"x"), Err(DirectoryError::NoSuchAttribute(_))));
    assert!(matches!(
        dir.compare(&Principal::Server, &hd, "bogus", b"x"),
        Err(DirectoryError::UndefinedAttributeType(_))
    ));
}

#[test]
fn member_of_and_referential_integrity_follow_deletes_renames_and_moves() {
    let (_t, dir) = directory();
    populate(&dir);
    let a = actor();
    let bip = dn(&format!("cn=bip,ou=applications,{SUFFIX}"));
    let rh = dn(&format!("cn=rh,{GROUPS}"));
    let members = |g: &convergences::directory::Dn| -> Vec<String> {
        let mut v: Vec<String> = dir
            .get(g)
            .unwrap()
            .unwrap()
            .get("member")
            .map(|m| m.values.iter().map(|x| String::from_utf8(x.clone()).unwrap()).collect())
            .unwrap_or_default();
        v.sort();
        v
    };

    // Add: a new agent granted BIP shows memberOf at once.
    dir.add(&a, agent("nouveau", "Noé", "Nouveau")).unwrap();
    dir.modify(&a, &bip, &[Modification::new(ModOp::Add, "member", [format!("uid=nouveau,{AGENTS}")])]).unwrap();
    assert_eq!(
        uids(&dir, SUFFIX, Scope::Sub, "(memberOf=cn=bip,ou=applications,dc=cig,dc=fr)"),
        ["hdupre", "jdupont", "nouveau"]
    );

    // Delete: the member value goes with the entry.
    dir.delete(&a, &dn(&format!("uid=jdupont,{AGENTS}"))).unwrap();
    assert_eq!(members(&bip), [format!("uid=hdupre,{AGENTS}"), format!("uid=nouveau,{AGENTS}")]);

    // Rename: the member value follows, memberOf too.
    dir.rename(&a, &dn(&format!("uid=hdupre,{AGENTS}")), &Rdn::single("uid", "hdupre2"), true, None).unwrap();
    assert_eq!(members(&bip), [format!("uid=hdupre2,{AGENTS}"), format!("uid=nouveau,{AGENTS}")]);
    assert!(members(&rh).contains(&format!("uid=hdupre2,{AGENTS}")));
    let renamed = dir.get(&dn(&format!("uid=hdupre2,{AGENTS}"))).unwrap().unwrap();
    assert_eq!(renamed.get("uid").unwrap().values, [b"hdupre2".to_vec()], "deleteoldrdn removed the old value");
    assert_eq!(uids(&dir, SUFFIX, Scope::Sub, "(uid=hdupre)"), Vec::<String>::new());

    // Subtree move: ou=agents goes under ou=particuliers with its children;
    // every DN below changes and every group follows.
    let new_parent = dn(&format!("ou=particuliers,{SUFFIX}"));
    dir.rename(&a, &dn(AGENTS), &Rdn::single("ou", "agents"), false, Some(&new_parent)).unwrap();
    let moved = format!("ou=agents,ou=particuliers,{SUFFIX}");
    assert_eq!(members(&bip), [format!("uid=hdupre2,{moved}"), format!("uid=nouveau,{moved}")]);
    assert_eq!(
        uids(&dir, &moved, Scope::One, "(objectClass=inetOrgPerson)"),
        ["floeuvre", "hdupre2", "nouveau", "omartin"]
    );
    assert!(uids(&dir, ORG, Scope::Sub, "(objectClass=inetOrgPerson)").is_empty());
    assert_eq!(
        uids(&dir, SUFFIX, Scope::Sub, "(memberOf=cn=rh,ou=groupes,o=219400280,ou=organisations,dc=cig,dc=fr)"),
        ["floeuvre", "hdupre2"]
    );
    let e = dir.get(&dn(&format!("uid=floeuvre,{moved}"))).unwrap().unwrap();
    assert_eq!(e.dn.to_string(), format!("uid=floeuvre,{moved}"));
    // Moving an entry below itself is refused.
    let inside = dn(&format!("uid=floeuvre,{moved}"));
    assert!(matches!(
        dir.rename(&a, &dn(&moved), &Rdn::single("ou", "x"), false, Some(&inside)),
        Err(DirectoryError::Unwilling(_))
    ));
    // A group whose last member is deleted keeps existing, with the empty-DN placeholder.
    dir.delete(&a, &dn(&format!("uid=floeuvre,{moved}"))).unwrap();
    dir.delete(&a, &dn(&format!("uid=hdupre2,{moved}"))).unwrap();
    assert_eq!(members(&rh), [String::new()]);
}

#[test]
fn concurrent_writes_commit_together_and_a_refused_one_leaves_the_others_whole() {
    concurrent_writes_with_one_refused(false);
}

#[test]
fn concurrent_writes_through_the_writer_thread_commit_together_and_a_refused_one_leaves_the_others_whole() {
    concurrent_writes_with_one_refused(true);
}

fn concurrent_writes_with_one_refused(writer: bool) {
    let (_tmp, dir) = directory();
    populate(&dir);
    let dir = std::sync::Arc::new(dir);
    if writer {
        dir.start_writer().unwrap();
    }
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(16));
    let handles: Vec<_> = (0..16)
        .map(|i| {
            let (dir, barrier) = (dir.clone(), barrier.clone());
            std::thread::spawn(move || {
                // Thread 7's entry also claims an existing uid: refused, alone.
                let e = agent(&format!("nouveau{i}"), "Nouvel", "Agent");
                let e = if i == 7 { e.with("uid", ["hdupre"]) } else { e };
                barrier.wait();
                dir.add(&actor(), e)
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    for (i, r) in results.iter().enumerate() {
        if i == 7 {
            assert!(matches!(r, Err(DirectoryError::NotUnique(_))), "{r:?}");
        } else {
            assert!(r.is_ok(), "{i}: {r:?}");
        }
    }
    let found = uids(&dir, SUFFIX, Scope::Sub, "(uid=nouveau*)");
    assert_eq!(found.len(), 15, "{found:?}");
}

#[test]
fn a_directory_whose_writer_thread_runs_closes_its_store_when_dropped() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = convergences::config::Config::for_test(tmp.path());
    {
        let dir = std::sync::Arc::new(convergences::app::open_directory(&cfg).unwrap());
        dir.start_writer().unwrap();
        populate(&dir);
    }
    // The writer held no reference: the store file is free to open again.
    let dir = convergences::app::open_directory(&cfg).unwrap();
    assert_eq!(uids(&dir, AGENTS, Scope::One, "(uid=hdupre)"), ["hdupre"]);
}

#[test]
fn a_write_survives_closing_and_reopening_the_store() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = convergences::config::Config::for_test(tmp.path());
    {
        let dir = convergences::app::open_directory(&cfg).unwrap();
        populate(&dir);
        dir.modify(
            &actor(),
            &dn(&format!("uid=hdupre,{AGENTS}")),
            &[Modification::new(ModOp::Replace, "title", ["Directrice"])],
        )
        .unwrap();
    }
    let dir = convergences::app::open_directory(&cfg).unwrap();
    let e = dir.get(&dn(&format!("uid=hdupre,{AGENTS}"))).unwrap().unwrap();
    assert_eq!(e.first_str("title"), Some("Directrice"));
    assert_eq!(uids(&dir, SUFFIX, Scope::Sub, "(title=directrice)"), ["hdupre"]);
}

#[test]
fn entry_uuid_is_found_through_the_uuid_table_and_old_posting_lists_are_dropped() {
    use convergences::store::{IndexKind, Reader, Store, index_key};
    let tmp = tempfile::tempdir().unwrap();
    let cfg = convergences::config::Config::for_test(tmp.path());
    let uuid = {
        let dir = convergences::app::open_directory(&cfg).unwrap();
        populate(&dir);
        let e = dir.get(&dn(&format!("uid=hdupre,{AGENTS}"))).unwrap().unwrap();
        e.first_str("entryUUID").unwrap().to_string()
    };
    // What a format-3 build kept: entryUUID lists and objectClass presence.
    let old_lists = [
        index_key(IndexKind::Equality, "entryuuid", uuid.as_bytes()),
        index_key(IndexKind::Presence, "entryuuid", b""),
        index_key(IndexKind::Presence, "objectclass", b""),
    ];
    {
        let store = Store::open(&cfg.store_path(), 1 << 20, 1 << 20).unwrap();
        let txn = store.write().unwrap();
        let mut w = txn.tables().unwrap();
        w.index(&old_lists, 5, true).unwrap();
        let staged = w.finish().unwrap();
        txn.commit(staged).unwrap();
        store.checkpoint().unwrap();
        assert_eq!(store.read().unwrap().postings(&old_lists[0]).unwrap(), [5]);
    }
    let dir = convergences::app::open_directory(&cfg).unwrap();
    let report = dir.check().unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(uids(&dir, SUFFIX, Scope::Sub, &format!("(entryUUID={})", uuid.to_uppercase())), ["hdupre"]);
    assert_eq!(uids(&dir, SUFFIX, Scope::Sub, &format!("(&(entryUUID={uuid})(uid=nobody))")), Vec::<String>::new());
    assert_eq!(uids(&dir, SUFFIX, Scope::Sub, "(entryUUID=not-a-uuid)"), Vec::<String>::new());
    assert_eq!(uids(&dir, AGENTS, Scope::One, "(entryUUID=*)").len(), 4);
}

#[test]
fn an_organisation_s_siren_is_read_afresh_after_it_changes() {
    let (_t, dir) = directory();
    populate(&dir);
    let hdupre = format!("uid=hdupre,{}", AGENTS.to_lowercase());
    assert_eq!(dir.organisation_siren(&hdupre).unwrap().as_deref(), Some("219400280"));
    // Creations of agents leave what is remembered in place…
    dir.add(&actor(), agent("newcomer", "Nina", "Nouvelle")).unwrap();
    assert_eq!(dir.organisation_siren(&hdupre).unwrap().as_deref(), Some("219400280"));
    // …a change to the organisation does not.
    dir.modify(&actor(), &dn(ORG), &[Modification::new(ModOp::Replace, "cigSiren", ["219400281"])]).unwrap();
    assert_eq!(dir.organisation_siren(&hdupre).unwrap().as_deref(), Some("219400281"));
    // An organisation that did not exist yet when first asked for.
    let other = "o=200054781,ou=organisations,dc=cig,dc=fr";
    let stranger = format!("uid=x,ou=agents,{other}");
    assert_eq!(dir.organisation_siren(&stranger).unwrap(), None);
    dir.add(
        &actor(),
        Entry::new(dn(other))
            .with("objectClass", ["organization", "cigOrganisation"])
            .with("o", ["200054781"])
            .with("cigSiren", ["200054781"]),
    )
    .unwrap();
    assert_eq!(dir.organisation_siren(&stranger).unwrap().as_deref(), Some("200054781"));
}

#[test]
fn a_rule_filter_on_an_attribute_not_asked_for_still_decides_what_is_seen() {
    let tmp = tempfile::tempdir().unwrap();
    let policy = tmp.path().join("policy.toml");
    std::fs::write(
        &policy,
        r#"name = "numbered"
[[rule]]
who = ["authenticated"]
target = "{suffix}"
rights = ["browse"]

[[rule]]
who = ["authenticated"]
target = "{suffix}"
filter = "(employeeNumber=2)"
rights = ["read"]
"#,
    )
    .unwrap();
    let mut cfg = convergences::config::Config::for_test(tmp.path());
    cfg.access_policy = policy.display().to_string();
    let dir = convergences::app::open_directory(&cfg).unwrap();
    populate(&dir);
    let who = dir.principal_of(&dn(&format!("uid=hdupre,{AGENTS}"))).unwrap();
    for attrs in [vec!["uid".to_string()], vec!["1.1".to_string()], vec![]] {
        let mut req = SearchRequest::new(dn(SUFFIX), Scope::Sub, Filter::parse("(objectClass=inetOrgPerson)").unwrap());
        req.attrs = attrs.clone();
        let mut seen = Vec::new();
        dir.search(&who, &req, |e| {
            seen.push(e.dn.to_string());
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, [format!("uid=floeuvre,{AGENTS}")], "{attrs:?}");
    }
}

/// Filters over the fixture's stored attributes, to compare the planner with a scan.
fn filter_strategy() -> impl Strategy<Value = Filter> {
    let attrs = prop::sample::select(vec![
        "uid",
        "cn",
        "sn",
        "givenName",
        "mail",
        "employeeNumber",
        "objectClass",
        "title",
        "name",
        "ou",
    ]);
    let values = prop::sample::select(vec![
        "hdupre",
        "Dupré",
        "dupont",
        "Hélène",
        "œuvre",
        "Œuvre Martin",
        "1",
        "3",
        "person",
        "inetOrgPerson",
        "agents",
        "jean",
        "lœ",
        "e",
        "re",
    ]);
    let leaf = (attrs, values, 0..6u8).prop_map(|(a, v, kind)| {
        let (a, v) = (a.to_string(), v.as_bytes().to_vec());
        match kind {
            0 => Filter::Equality(a, v),
            1 => Filter::Present(a),
            2 => Filter::Substrings(
                a,
                convergences::directory::filter::Substrings { initial: Some(v), any: vec![], final_: None },
            ),
            3 => Filter::Substrings(
                a,
                convergences::directory::filter::Substrings { initial: None, any: vec![v], final_: None },
            ),
            4 => Filter::Substrings(
                a,
                convergences::directory::filter::Substrings { initial: None, any: vec![], final_: Some(v) },
            ),
            _ => Filter::GreaterOrEqual(a, v),
        }
    });
    leaf.prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Filter::And),
            prop::collection::vec(inner.clone(), 0..3).prop_map(Filter::Or),
            inner.prop_map(|f| Filter::Not(Box::new(f))),
        ]
    })
}

#[test]
fn index_answers_agree_with_a_full_scan() {
    let (_t, dir) = directory();
    populate(&dir);
    let mut all = Vec::new();
    dir.for_each_entry(|e| {
        all.push(e.clone());
        Ok(())
    })
    .unwrap();
    let schema = dir.schema().clone();
    let mut runner =
        proptest::test_runner::TestRunner::new(proptest::test_runner::Config { cases: 256, ..Default::default() });
    runner
        .run(&filter_strategy(), |f| {
            let mut scanned: Vec<String> = all
                .iter()
                .filter(|e| f.evaluate(&schema, e) == convergences::directory::filter::Tri::True)
                .map(|e| e.dn.to_string())
                .collect();
            scanned.sort();
            let mut planned = Vec::new();
            dir.search(&Principal::Server, &SearchRequest::new(dn(SUFFIX), Scope::Sub, f.clone()), |e| {
                planned.push(e.dn.to_string());
                Ok(())
            })
            .unwrap();
            planned.sort();
            prop_assert_eq!(planned, scanned, "filter {}", f);
            Ok(())
        })
        .unwrap();
}
