//! One rule engine: the same change asked over LDAP and over SCIM by
//! identities the access policy treats alike gets the same outcome, for both
//! shipped policies. SCIM holds no rule of its own: under `baseline`, a
//! CIG-wide token does what an LDAP administrator does.

use ldap3::{LdapConnAsync, Mod};
use serde_json::{Value, json};

use crate::common::*;
use convergences::directory::{Entry, TokenScope};

const A: &str = "o=219400280,ou=organisations,dc=cig,dc=fr";
const B: &str = "o=217500016,ou=organisations,dc=cig,dc=fr";
const APPS: &str = "ou=applications,dc=cig,dc=fr";
const ADMIN: &str = "cn=admin,dc=cig,dc=fr";
const REFERENTE_A: &str = "uid=hdupre,ou=agents,o=219400280,ou=organisations,dc=cig,dc=fr";

/// The changes, each asked both ways.
const CHANGES: &[&str] = &[
    "grant a subscribed application to an agent of A",
    "grant an application A does not subscribe to",
    "add an agent of A to a group of A",
    "add an agent of B to a group of A",
    "add an agent of A to a group of B",
    "create an agent in A",
    "create an agent in B",
    "change the title of an agent of B",
    "delete an agent of A",
];

fn patch(ops: Value) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops})
}

/// Fresh targets for one cell: an agent of A, one of B, a group in each.
struct Targets {
    agent_a: String,
    agent_b: String,
    group_a: String,
    group_b: String,
    tag: String,
}

fn targets(srv: &TestServer, tag: &str) -> Targets {
    let dir = srv.directory();
    let person = |org: &str, uid: &str| {
        let d = format!("uid={uid},ou=agents,{org}");
        dir.add(
            &actor(),
            Entry::new(dn(&d))
                .with("objectClass", ["inetOrgPerson", "cigAgent"])
                .with("uid", [uid])
                .with("cn", [uid])
                .with("sn", [uid]),
        )
        .unwrap();
        d
    };
    let agent_a = person(A, &format!("a{tag}"));
    let agent_b = person(B, &format!("b{tag}"));
    let group = |org: &str, cn: &str, member: &str| {
        let d = format!("cn={cn},ou=groupes,{org}");
        dir.add(
            &actor(),
            Entry::new(dn(&d))
                .with("objectClass", ["groupOfNames", "cigGroup"])
                .with("cn", [cn])
                .with("member", [member]),
        )
        .unwrap();
        d
    };
    let group_a = group(A, &format!("ga{tag}"), &agent_a);
    let group_b = group(B, &format!("gb{tag}"), &agent_b);
    // The groups start with their own agent: the one added is another.
    let extra = person(A, &format!("x{tag}"));
    let _ = extra;
    Targets { agent_a, agent_b, group_a, group_b, tag: tag.to_string() }
}

fn uuid(srv: &TestServer, d: &str) -> String {
    srv.directory().get(&dn(d)).unwrap().unwrap().first_str("entryUUID").unwrap().to_string()
}

fn members(srv: &TestServer, group: &str) -> Vec<String> {
    srv.directory()
        .get(&dn(group))
        .unwrap()
        .map(|g| {
            g.get("member")
                .map(|a| a.values.iter().map(|v| String::from_utf8_lossy(v).to_lowercase()).collect())
                .unwrap_or_default()
        })
        .unwrap_or_default()
}

/// Whether the change is in the directory now.
fn applied(srv: &TestServer, change: &str, t: &Targets) -> bool {
    let x = format!("uid=x{},ou=agents,{A}", t.tag).to_lowercase();
    let dir = srv.directory();
    match change {
        "grant a subscribed application to an agent of A" => {
            members(srv, &format!("cn=snapi-cap,{APPS}")).contains(&t.agent_a.to_lowercase())
        }
        "grant an application A does not subscribe to" => {
            members(srv, &format!("cn=comite-medical,{APPS}")).contains(&t.agent_a.to_lowercase())
        }
        "add an agent of A to a group of A" => members(srv, &t.group_a).contains(&x),
        "add an agent of B to a group of A" => members(srv, &t.group_a).contains(&t.agent_b.to_lowercase()),
        "add an agent of A to a group of B" => members(srv, &t.group_b).contains(&x),
        "create an agent in A" => dir.get(&dn(&format!("uid=n{},ou=agents,{A}", t.tag))).unwrap().is_some(),
        "create an agent in B" => dir.get(&dn(&format!("uid=n{},ou=agents,{B}", t.tag))).unwrap().is_some(),
        "change the title of an agent of B" => {
            dir.get(&dn(&t.agent_b)).unwrap().unwrap().first_str("title") == Some("Nouveau")
        }
        "delete an agent of A" => dir.get(&dn(&t.agent_a)).unwrap().is_none(),
        other => panic!("{other}"),
    }
}

async fn over_ldap(srv: &TestServer, who: &str, change: &str, t: &Targets) -> bool {
    let (conn, mut ldap) = LdapConnAsync::new(&srv.url).await.unwrap();
    ldap3::drive!(conn);
    let pw = if who == ADMIN { ADMIN_PASSWORD } else { convergences::seed::DEMO_PASSWORD };
    ldap.simple_bind(who, pw).await.unwrap().success().unwrap();
    let x = format!("uid=x{},ou=agents,{A}", t.tag);
    let add_member =
        |group: String, member: String| (group, vec![Mod::Add("member".to_string(), [member].into_iter().collect())]);
    let res = match change {
        "grant a subscribed application to an agent of A" => {
            let (g, m) = add_member(format!("cn=snapi-cap,{APPS}"), t.agent_a.clone());
            ldap.modify(&g, m).await
        }
        "grant an application A does not subscribe to" => {
            let (g, m) = add_member(format!("cn=comite-medical,{APPS}"), t.agent_a.clone());
            ldap.modify(&g, m).await
        }
        "add an agent of A to a group of A" => ldap.modify(&t.group_a, add_member(String::new(), x).1).await,
        "add an agent of B to a group of A" => {
            ldap.modify(&t.group_a, add_member(String::new(), t.agent_b.clone()).1).await
        }
        "add an agent of A to a group of B" => ldap.modify(&t.group_b, add_member(String::new(), x).1).await,
        "create an agent in A" | "create an agent in B" => {
            let org = if change.ends_with('A') { A } else { B };
            let uid = format!("n{}", t.tag);
            let attrs = vec![
                ("objectClass", ["inetOrgPerson", "cigAgent"].into_iter().collect()),
                ("uid", [uid.as_str()].into_iter().collect()),
                ("cn", [uid.as_str()].into_iter().collect()),
                ("sn", [uid.as_str()].into_iter().collect()),
            ];
            ldap.add(&format!("uid={uid},ou=agents,{org}"), attrs).await
        }
        "change the title of an agent of B" => {
            ldap.modify(&t.agent_b, vec![Mod::Replace("title", ["Nouveau"].into_iter().collect())]).await
        }
        "delete an agent of A" => ldap.delete(&t.agent_a).await,
        other => panic!("{other}"),
    };
    res.unwrap().rc == 0
}

async fn over_scim(srv: &TestServer, token: &str, change: &str, t: &Targets) -> bool {
    let scim = Scim::new(srv);
    let x = format!("uid=x{},ou=agents,{A}", t.tag);
    let add_member = |group: &str, member: &str| {
        (
            format!("/Groups/{}", uuid(srv, group)),
            patch(json!([{"op": "add", "path": "members", "value": [{"value": uuid(srv, member)}]}])),
        )
    };
    let grant = |app: &str| {
        (
            format!("/Users/{}", uuid(srv, &t.agent_a)),
            patch(json!([{"op": "add", "path": "entitlements", "value": [{"value": app}]}])),
        )
    };
    let (method, path, body) = match change {
        "grant a subscribed application to an agent of A" => {
            let (p, b) = grant("snapi-cap");
            ("PATCH", p, Some(b))
        }
        "grant an application A does not subscribe to" => {
            let (p, b) = grant("comite-medical");
            ("PATCH", p, Some(b))
        }
        "add an agent of A to a group of A" => {
            let (p, b) = add_member(&t.group_a, &x);
            ("PATCH", p, Some(b))
        }
        "add an agent of B to a group of A" => {
            let (p, b) = add_member(&t.group_a, &t.agent_b);
            ("PATCH", p, Some(b))
        }
        "add an agent of A to a group of B" => {
            let (p, b) = add_member(&t.group_b, &x);
            ("PATCH", p, Some(b))
        }
        "create an agent in A" | "create an agent in B" => {
            let siren = if change.ends_with('A') { "219400280" } else { "217500016" };
            let body = json!({"userName": format!("n{}", t.tag),
                              "urn:convergences:params:scim:schemas:extension:cig:2.0:Agent": {"siren": siren}});
            ("POST", "/Users".to_string(), Some(body))
        }
        "change the title of an agent of B" => {
            let body = patch(json!([{"op": "replace", "path": "title", "value": "Nouveau"}]));
            ("PATCH", format!("/Users/{}", uuid(srv, &t.agent_b)), Some(body))
        }
        "delete an agent of A" => ("DELETE", format!("/Users/{}", uuid(srv, &t.agent_a)), None),
        other => panic!("{other}"),
    };
    let (status, _, _) = scim.call(token, method, &path, body.as_ref()).await;
    (200..300).contains(&status)
}

/// Run every change both ways for a pair of identities; returns the
/// outcomes (applied or not), checked against the directory.
async fn outcomes(policy: &str, ldap_who: &str, scope: TokenScope) -> Vec<bool> {
    let policy = policy.to_string();
    let srv = TestServer::start_with(move |c| c.access_policy = policy).await;
    let token = token(&srv, scope);
    let mut out = Vec::new();
    for (i, change) in CHANGES.iter().enumerate() {
        let (tl, ts) = (targets(&srv, &format!("l{i}")), targets(&srv, &format!("s{i}")));
        let by_ldap = over_ldap(&srv, ldap_who, change, &tl).await;
        let by_scim = over_scim(&srv, &token, change, &ts).await;
        assert_eq!(by_ldap, applied(&srv, change, &tl), "LDAP {ldap_who}: {change}: the answer is what happened");
        assert_eq!(by_scim, applied(&srv, change, &ts), "SCIM: {change}: the answer is what happened");
        assert_eq!(by_ldap, by_scim, "{change}: LDAP as {ldap_who} and SCIM give the same outcome");
        out.push(by_ldap);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_the_cig_policy_ldap_and_scim_answer_alike() {
    // A référent of A and A's token: what DESIGN.md gives them.
    let org = outcomes("cig", REFERENTE_A, TokenScope::Organisation(dn(A))).await;
    assert_eq!(org, vec![true, false, true, false, false, true, false, false, true]);
    // An administrator and a CIG-wide token: everything.
    let cig = outcomes("cig", ADMIN, TokenScope::Cig).await;
    assert_eq!(cig, vec![true; CHANGES.len()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_the_baseline_policy_a_cig_token_does_what_an_administrator_does() {
    let cig = outcomes("baseline", ADMIN, TokenScope::Cig).await;
    assert_eq!(cig, vec![true; CHANGES.len()]);
}
