//! Size-limited searches and pages read their candidates a window at a time
//! (directory/window.rs): what they return must still be exactly the first
//! entries of the same search without a limit, in the server's order, for
//! whoever asks; and a paged search (RFC 2696) must give the same entries,
//! page after page. Every shape of candidates is tried: an index prefix, an
//! exact key, a long list, a union, a conjunction, no index at all, the
//! children of an entry, one organisation's subtree and a larger one.

use ldap3::{Ldap, LdapConnAsync, Scope, SearchEntry, SearchOptions};
use proptest::prelude::*;
use tokio::runtime::Handle;

use crate::common::*;

const OTHER_AGENTS: &str = "ou=agents,o=217500016,ou=organisations,dc=cig,dc=fr";

/// Surnames sharing prefixes, a few of them common enough to fill several
/// posting-list chunks (128 ids each).
fn surname(i: usize) -> String {
    const COMMON: [&str; 4] = ["Dupont", "Dupont", "Durand", "Martin"];
    const SYLLABLES: [&str; 6] = ["du", "pon", "ma", "rin", "le", "ro"];
    if i.is_multiple_of(3) {
        return COMMON[i / 3 % COMMON.len()].to_string();
    }
    let mut s = String::new();
    let mut n = i;
    for _ in 0..3 {
        s.push_str(SYLLABLES[n % SYLLABLES.len()]);
        n /= SYLLABLES.len();
    }
    let mut chars = s.chars();
    chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
}

fn add_agent(rt: &Handle, ldap: &mut Ldap, parent: &str, uid: &str, sn: &str) {
    let cn = format!("Agent {sn}");
    let attrs = vec![
        ("objectClass", ["inetOrgPerson"].into_iter().collect()),
        ("uid", [uid].into_iter().collect()),
        ("cn", [cn.as_str()].into_iter().collect()),
        ("sn", [sn].into_iter().collect()),
    ];
    rt.block_on(ldap.add(&format!("uid={uid},{parent}"), attrs)).unwrap().success().unwrap();
}

/// A search's base, scope and filter.
#[derive(Debug, Clone, Copy)]
struct Query {
    base: &'static str,
    scope: Scope,
    filter: &'static str,
}

const ORGANISATIONS: &str = "ou=organisations,dc=cig,dc=fr";

fn queries() -> Vec<Query> {
    let sub = |base, filter| Query { base, scope: Scope::Subtree, filter };
    let mut out: Vec<Query> = ["D", "Du", "Dup", "Dupont", "Dur", "M", "Ma", "Mar", "Ro", "Le", "Zz"]
        .into_iter()
        .map(|p| sub(SUFFIX, &*format!("(sn={p}*)").leak()))
        .collect();
    out.extend([
        sub(SUFFIX, "(sn=Dupont)"),
        sub(SUFFIX, "(objectClass=inetOrgPerson)"),
        sub(SUFFIX, "(|(sn=Durand)(sn=Ma*))"),
        sub(SUFFIX, "(&(objectClass=inetOrgPerson)(sn=Du*))"),
        sub(SUFFIX, "(&(objectClass=inetOrgPerson)(cn=*pon*))"),
        sub(SUFFIX, "(uid=*)"),
        sub(SUFFIX, "(!(sn=Dupont))"),
        sub(ORGANISATIONS, "(objectClass=inetOrgPerson)"),
        sub(ORGANISATIONS, "(sn=M*)"),
        sub(AGENTS, "(sn=D*)"),
        sub(AGENTS, "(objectClass=*)"),
        Query { base: AGENTS, scope: Scope::OneLevel, filter: "(objectClass=inetOrgPerson)" },
        Query { base: AGENTS, scope: Scope::OneLevel, filter: "(sn=Dupont)" },
        Query { base: AGENTS, scope: Scope::OneLevel, filter: "(!(sn=Ma*))" },
    ]);
    out
}

/// The DNs a search returns, in order, and its result code.
fn search(rt: &Handle, ldap: &mut Ldap, q: Query, limit: i32) -> (Vec<String>, u32) {
    let searched =
        ldap.with_search_options(SearchOptions::new().sizelimit(limit)).search(q.base, q.scope, q.filter, vec!["1.1"]);
    let res = rt.block_on(searched).unwrap();
    let dns = res.0.into_iter().map(|e| SearchEntry::construct(e).dn).collect();
    (dns, res.1.rc)
}

/// The DNs of the same search read in pages of `size` (RFC 2696), in order.
fn paged(rt: &Handle, ldap: &mut Ldap, q: Query, size: i32) -> Vec<String> {
    use ldap3::controls::{Control, ControlType, PagedResults, RawControl};
    let mut dns = Vec::new();
    let mut cookie = Vec::new();
    loop {
        let page = vec![RawControl::from(PagedResults { size, cookie })];
        let res = rt.block_on(ldap.with_controls(page).search(q.base, q.scope, q.filter, vec!["1.1"])).unwrap();
        assert_eq!(res.1.rc, 0, "{:?}", res.1);
        let got = res.0.len();
        assert!(got <= size as usize, "{got} entries in a page of {size}");
        dns.extend(res.0.into_iter().map(|e| SearchEntry::construct(e).dn));
        cookie = res
            .1
            .ctrls
            .iter()
            .find_map(|Control(kind, raw)| match kind {
                Some(ControlType::PagedResults) => Some(raw.parse::<PagedResults>().cookie),
                _ => None,
            })
            .expect("a paged results control");
        if cookie.is_empty() {
            return dns;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn size_limited_and_paged_searches_return_the_first_entries_of_the_unlimited_one() {
    let srv = TestServer::start().await;
    let url = srv.url.clone();
    let rt = Handle::current();
    let connect = move |dn: String, password: &'static str| {
        let url = url.clone();
        async move {
            let (conn, mut ldap) = LdapConnAsync::new(&url).await.unwrap();
            ldap3::drive!(conn);
            ldap.simple_bind(&dn, password).await.unwrap().success().unwrap();
            ldap
        }
    };
    let mut admin = connect("cn=admin,dc=cig,dc=fr".into(), ADMIN_PASSWORD).await;
    let mut referent = connect(format!("uid=hdupre,{AGENTS}"), convergences::seed::DEMO_PASSWORD).await;
    tokio::task::spawn_blocking(move || {
        // Two organisations interleaved: a référent sees every other candidate.
        for i in 0..1200 {
            let parent = if i % 2 == 0 { AGENTS } else { OTHER_AGENTS };
            add_agent(&rt, &mut admin, parent, &format!("limit-{i}"), &surname(i));
        }
        // A removal writes the deferred postings to the table; the adds
        // after it stay deferred, merged by readers (store/deferred.rs).
        for i in (0..1200).step_by(7) {
            let parent = if i % 2 == 0 { AGENTS } else { OTHER_AGENTS };
            rt.block_on(admin.delete(&format!("uid=limit-{i},{parent}"))).unwrap().success().unwrap();
        }
        for i in 1200..1260 {
            let parent = if i % 2 == 0 { AGENTS } else { OTHER_AGENTS };
            add_agent(&rt, &mut admin, parent, &format!("limit-{i}"), &surname(i));
        }

        let mut runner =
            proptest::test_runner::TestRunner::new(proptest::test_runner::Config { cases: 128, ..Default::default() });
        runner
            .run(&(prop::sample::select(queries()), 1i32..420, any::<bool>()), |(q, limit, as_referent)| {
                let mut ldap = if as_referent { referent.clone() } else { admin.clone() };
                let ldap = &mut ldap;
                let (all, rc) = search(&rt, ldap, q, 0);
                prop_assert_eq!(rc, 0);
                let (first, rc) = search(&rt, ldap, q, limit);
                let limit = limit as usize;
                if all.len() > limit {
                    prop_assert_eq!(rc, 4, "sizeLimitExceeded for {} of {}", limit, all.len());
                    prop_assert_eq!(&first[..], &all[..limit], "{:?} limited to {}", q, limit);
                } else {
                    prop_assert_eq!(rc, 0);
                    prop_assert_eq!(&first, &all, "{:?} limited to {}", q, limit);
                }
                let size = limit % 97 + 1;
                let pages = paged(&rt, ldap, q, size as i32);
                prop_assert_eq!(&pages, &all, "{:?} in pages of {}", q, size);
                Ok(())
            })
            .unwrap();
        // The audit trail's changelog pages too, in its own order.
        let changelog = Query { base: "cn=changelog", scope: Scope::OneLevel, filter: "(objectClass=changeLogEntry)" };
        let (trail, rc) = search(&rt, &mut admin, changelog, 0);
        assert!(rc == 0 && trail.len() > 1400, "{rc}: {} changes", trail.len());
        assert_eq!(paged(&rt, &mut admin, changelog, 50), trail);
        // The référent's searches did go through candidates it may not see.
        let dupont = Query { base: SUFFIX, scope: Scope::Subtree, filter: "(sn=Dupont*)" };
        let (seen, _) = search(&rt, &mut referent, dupont, 0);
        let (everyone, _) = search(&rt, &mut admin, dupont, 0);
        assert!(
            everyone.len() > 160 && seen.len() > 60 && seen.len() < everyone.len() - 60,
            "{} of {}",
            seen.len(),
            everyone.len()
        );
    })
    .await
    .unwrap();
}
