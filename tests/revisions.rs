//! The core's one write entry point: revisions that move at every write,
//! preconditions checked inside the write's own transaction, externalId
//! uniqueness, and posting lists kept in line with the configuration.

use std::sync::{Arc, Barrier};

use convergences::app;
use convergences::config::Config;
use convergences::directory::request::{revision, version};
use convergences::directory::{
    Change, Condition, Directory, DirectoryError, Entry, Filter, ModOp, Modification, Principal, Rdn, Scope,
    SearchRequest, Write,
};

use crate::common::*;

fn read(dir: &Directory, dn_text: &str) -> Entry {
    dir.get(&dn(dn_text)).unwrap().unwrap()
}

fn found(dir: &Directory, filter: &str) -> Vec<String> {
    let req = SearchRequest::new(dn(SUFFIX), Scope::Sub, Filter::parse(filter).unwrap());
    let mut out = Vec::new();
    dir.search(&Principal::Server, &req, |e| {
        out.push(e.dn.to_string());
        Ok(())
    })
    .unwrap();
    out.sort();
    out
}

#[test]
fn every_write_to_an_entry_moves_its_revision() {
    let (_t, dir) = directory();
    populate(&dir);
    let jdupont = format!("uid=jdupont,{AGENTS}");
    let bip = format!("cn=bip,ou=applications,{SUFFIX}");
    assert_eq!(revision(&read(&dir, &jdupont)), 1, "a new entry is at revision 1");
    let before_group = revision(&read(&dir, &bip));

    // Two modifies within the same second still give two revisions.
    for title in ["Rédacteur", "Attaché"] {
        dir.modify(&actor(), &dn(&jdupont), &[Modification::new(ModOp::Replace, "title", [title])]).unwrap();
    }
    assert_eq!(revision(&read(&dir, &jdupont)), 3);

    // A rename moves the entry's revision, and the referential integrity it
    // causes moves the revision of the group that names it.
    dir.rename(&actor(), &dn(&jdupont), &Rdn::single("uid", "jdupont2"), true, None).unwrap();
    let renamed = format!("uid=jdupont2,{AGENTS}");
    assert_eq!(revision(&read(&dir, &renamed)), 4);
    assert_eq!(revision(&read(&dir, &bip)), before_group + 1);

    // The version SCIM shows changes with the revision and with the groups.
    let e = read(&dir, &renamed);
    assert_ne!(version(&e, &[]), version(&e, std::slice::from_ref(&bip)));
    assert_eq!(version(&e, std::slice::from_ref(&bip)), version(&e, &[bip.to_uppercase()]));
}

#[test]
fn a_guarded_write_applies_only_when_its_precondition_holds() {
    let (_t, dir) = directory();
    populate(&dir);
    let target = dn(&format!("uid=omartin,{AGENTS}"));
    let retitle =
        |title: &str| Change::Modify(target.clone(), vec![Modification::new(ModOp::Replace, "title", [title])]);
    let current = revision(&dir.get(&target).unwrap().unwrap());

    // A stale revision is refused and changes nothing.
    let stale = Write::one(retitle("Refusé")).guarded(target.clone(), Condition::Revision(current + 1));
    assert!(matches!(dir.write(&actor(), stale), Err((0, DirectoryError::PreconditionFailed(_)))));
    assert!(dir.get(&target).unwrap().unwrap().get("title").is_none());

    // The current revision applies.
    let fresh = Write::one(retitle("Accepté")).guarded(target.clone(), Condition::Revision(current));
    dir.write(&actor(), fresh).unwrap();

    // An assertion filter, tested on the entry in the transaction.
    let holds = Write::one(retitle("Encore"))
        .guarded(target.clone(), Condition::Matches(Filter::parse("(title=accepté)").unwrap()));
    dir.write(&actor(), holds).unwrap();
    let fails = Write::one(retitle("Jamais"))
        .guarded(target.clone(), Condition::Matches(Filter::parse("(title=accepté)").unwrap()));
    assert!(matches!(dir.write(&actor(), fails), Err((_, DirectoryError::PreconditionFailed(_)))));
    assert_eq!(dir.get(&target).unwrap().unwrap().first_str("title"), Some("Encore"));

    // A version list with the current version, or `*`, applies; another does not.
    let e = dir.get(&target).unwrap().unwrap();
    let v = version(&e, &[]);
    let ok = Write::one(retitle("Versionné")).guarded(target.clone(), Condition::Version(vec!["W/\"0\"".into(), v]));
    dir.write(&actor(), ok).unwrap();
    let any = Write::one(retitle("Toujours")).guarded(target.clone(), Condition::Version(vec!["*".into()]));
    dir.write(&actor(), any).unwrap();
    let old = Write::one(retitle("Perdu")).guarded(target.clone(), Condition::Version(vec![version(&e, &[])]));
    assert!(matches!(dir.write(&actor(), old), Err((_, DirectoryError::PreconditionFailed(_)))));

    // A precondition on an entry that does not exist: noSuchObject.
    let ghost = dn(&format!("uid=personne,{AGENTS}"));
    let w = Write::one(retitle("x")).guarded(ghost, Condition::Version(vec!["*".into()]));
    assert!(matches!(dir.write(&actor(), w), Err((_, DirectoryError::NoSuchObject { .. }))));
}

#[test]
fn of_concurrent_writes_guarded_by_the_same_revision_exactly_one_applies() {
    let (_t, dir) = directory();
    populate(&dir);
    let dir = Arc::new(dir);
    let target = dn(&format!("uid=floeuvre,{AGENTS}"));
    for round in 0..10 {
        let seen = revision(&dir.get(&target).unwrap().unwrap());
        let barrier = Arc::new(Barrier::new(4));
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let (dir, target, barrier) = (dir.clone(), target.clone(), barrier.clone());
                std::thread::spawn(move || {
                    let title = format!("r{round}c{i}");
                    let change =
                        Change::Modify(target.clone(), vec![Modification::new(ModOp::Replace, "title", [title])]);
                    barrier.wait();
                    dir.write(&actor(), Write::one(change).guarded(target, Condition::Revision(seen)))
                })
            })
            .collect();
        let outcomes: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let applied = outcomes.iter().filter(|o| o.is_ok()).count();
        assert_eq!(applied, 1, "round {round}: {outcomes:?}");
        assert!(outcomes.iter().all(|o| matches!(o, Ok(_) | Err((_, DirectoryError::PreconditionFailed(_))))));
        assert_eq!(revision(&dir.get(&target).unwrap().unwrap()), seen + 1);
    }
}

#[test]
fn an_external_id_is_unique_among_the_entries_of_one_container() {
    let (_t, dir) = directory();
    populate(&dir);
    let with_id = |uid: &str, id: &str| agent(uid, "A", "B").with("cigExternalId", [id]);
    dir.add(&actor(), with_id("ext1", "RH-001")).unwrap();
    assert!(matches!(dir.add(&actor(), with_id("ext2", "RH-001")), Err(DirectoryError::NotUnique(_))));
    // externalId is case-exact (RFC 7643 §3.1): another case is another id.
    dir.add(&actor(), with_id("ext3", "rh-001")).unwrap();
    // A modify that would duplicate it is refused too.
    let m = Modification::new(ModOp::Replace, "cigExternalId", ["RH-001"]);
    assert!(matches!(
        dir.modify(&actor(), &dn(&format!("uid=ext3,{AGENTS}")), &[m]),
        Err(DirectoryError::NotUnique(_))
    ));
    // The same id in another container (the organisation's groups) is another resource's.
    let group = Entry::new(dn(&format!("cn=paie,{GROUPS}")))
        .with("objectClass", ["groupOfNames", "cigGroup"])
        .with("cn", ["paie"])
        .with("member", [format!("uid=ext1,{AGENTS}")])
        .with("cigExternalId", ["RH-001"]);
    dir.add(&actor(), group).unwrap();
    assert_eq!(found(&dir, "(cigExternalId=RH-001)").len(), 2);
}

#[test]
fn posting_lists_follow_the_indexed_attributes_from_one_start_to_the_next() {
    let tmp = tempfile::tempdir().unwrap();
    let open = |title_indexed: bool| {
        let mut cfg = Config::for_test(tmp.path());
        if title_indexed {
            cfg.index.push("title".into());
        }
        app::open_directory(&cfg).unwrap()
    };
    let jdupont = dn(&format!("uid=jdupont,{AGENTS}"));
    let retitle = |dir: &Directory, title: &str| {
        dir.modify(&actor(), &jdupont, &[Modification::new(ModOp::Replace, "title", [title])]).unwrap()
    };
    {
        let dir = open(false);
        populate(&dir);
        retitle(&dir, "Ingénieur");
    }
    {
        // Newly indexed: its lists are built from the entries at the start.
        let dir = open(true);
        assert_eq!(found(&dir, "(title=ingénieur)"), vec![jdupont.to_string()]);
        let report = dir.check().unwrap();
        assert!(report.problems.is_empty(), "{:?}", report.problems);
    }
    {
        // No longer indexed: its lists go, and a change made meanwhile ...
        let dir = open(false);
        retitle(&dir, "Technicien");
    }
    {
        // ... is in the lists built when it is indexed again.
        let dir = open(true);
        assert_eq!(found(&dir, "(title=technicien)"), vec![jdupont.to_string()]);
        assert!(found(&dir, "(title=ingénieur)").is_empty());
        let report = dir.check().unwrap();
        assert!(report.problems.is_empty(), "{:?}", report.problems);
    }
}
