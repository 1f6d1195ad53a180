//! SCIM over HTTP with reqwest (and curl for HTTPS and conditional
//! requests), and the same people over LDAP.

use convergences::directory::TokenScope;
use serde_json::{Value, json};

use crate::common::*;

const CRETEIL: &str = "o=219400280,ou=organisations,dc=cig,dc=fr";
const VITRY: &str = "o=217500016,ou=organisations,dc=cig,dc=fr";

fn user(name: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": name,
        "name": {"givenName": "Marie", "familyName": "Durand"},
        "emails": [{"value": format!("{name}@creteil.example.fr"), "type": "work", "primary": true}],
        "active": true
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_and_errors_follow_rfc_7644() {
    let srv = TestServer::start().await;
    let scim = Scim::new(&srv);
    let t = token(&srv, TokenScope::Organisation(dn(CRETEIL)));
    let (status, head, spc) = scim.call(&t, "GET", "/ServiceProviderConfig", None).await;
    assert_eq!(status, 200);
    assert!(head.to_lowercase().contains("content-type: application/scim+json"), "{head}");
    assert_eq!(spc["filter"]["supported"], true);
    let (_, _, schemas) = scim.call(&t, "GET", "/Schemas", None).await;
    assert!(
        schemas["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["id"] == "urn:ietf:params:scim:schemas:core:2.0:User")
    );
    let (_, _, types) = scim.call(&t, "GET", "/ResourceTypes", None).await;
    assert_eq!(types["totalResults"], 2);

    let (status, _, err) = scim.call("cvg_nope", "GET", "/Users", None).await;
    assert_eq!((status, err["status"].as_str()), (401, Some("401")));
    assert_eq!(err["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:Error");
    // A token is refused as soon as it is revoked, though it was just used.
    let (id, revoked) = srv.directory().create_token(&TokenScope::Organisation(dn(CRETEIL)), "revoked").unwrap();
    assert_eq!(scim.call(&revoked, "GET", "/Users", None).await.0, 200);
    assert!(srv.directory().revoke_token(&id).unwrap());
    assert_eq!(scim.call(&revoked, "GET", "/Users", None).await.0, 401);
    assert_eq!(scim.call(&t, "GET", "/Users", None).await.0, 200, "other tokens still work");
    let (status, _, err) = scim.call(&t, "GET", "/Users?filter=userName%20eq", None).await;
    assert_eq!((status, err["scimType"].as_str()), (400, Some("invalidFilter")));
    for bad in [json!({"userName": "   "}), json!({"userName": "z", "active": "maybe"}), json!({"userName": "a\u{0}b"})]
    {
        let (status, _, err) = scim.call(&t, "POST", "/Users", Some(&bad)).await;
        assert_eq!((status, err["scimType"].as_str()), (400, Some("invalidValue")), "{bad}: {err}");
    }
    let (status, _, err) = scim.call(&t, "POST", "/Users", Some(&json!("not an object"))).await;
    assert_eq!((status, err["scimType"].as_str()), (400, Some("invalidSyntax")));
    let (status, _, err) = scim.call(&t, "POST", "/Users", Some(&user("hdupre"))).await;
    assert_eq!((status, err["scimType"].as_str()), (409, Some("uniqueness")), "{err}");
    let mut u = user("nouveau");
    u["entitlements"] = json!([{"value": "comite-medical"}]);
    let (status, _, err) = scim.call(&t, "POST", "/Users", Some(&u)).await;
    // The access policy refuses it, as it refuses the same change over LDAP.
    assert_eq!(status, 403, "Créteil does not subscribe to it: {err}");
    let (status, _, _) = scim.call(&t, "GET", "/Users?filter=userName%20eq%20%22nouveau%22", None).await;
    assert_eq!(status, 200);
    let (_, _, list) = scim.call(&t, "GET", "/Users?filter=userName%20eq%20%22nouveau%22", None).await;
    assert_eq!(list["totalResults"], 0, "the refused request left nothing behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_organisation_sees_only_its_own_users() {
    let srv = TestServer::start().await;
    let scim = Scim::new(&srv);
    let creteil = token(&srv, TokenScope::Organisation(dn(CRETEIL)));
    let vitry = token(&srv, TokenScope::Organisation(dn(VITRY)));
    let cig = token(&srv, TokenScope::Cig);

    let (_, _, mine) = scim.call(&creteil, "GET", "/Users", None).await;
    assert_eq!(mine["totalResults"], 3);
    let (_, _, all) = scim.call(&cig, "GET", "/Users", None).await;
    assert_eq!(all["totalResults"], 6, "five agents and one individual subscriber");
    // Okta's connection test.
    let (_, _, page) = scim.call(&cig, "GET", "/Users?startIndex=1&count=2", None).await;
    assert_eq!(
        (page["startIndex"].as_u64(), page["itemsPerPage"].as_u64(), page["totalResults"].as_u64()),
        (Some(1), Some(2), Some(6))
    );

    let (status, _, created) = scim.call(&creteil, "POST", "/Users", Some(&user("mdurand"))).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    for verb in ["GET", "PUT", "DELETE"] {
        let body = (verb == "PUT").then(|| user("mdurand"));
        let (status, _, _) = scim.call(&vitry, verb, &format!("/Users/{id}"), body.as_ref()).await;
        assert_eq!(status, 404, "{verb} of another organisation's user looks like absence");
    }
    let (status, _, _) = scim.call(&cig, "GET", &format!("/Users/{id}"), None).await;
    assert_eq!(status, 200);
    // A CIG token says where a new user goes.
    let mut u = user("cigcreated");
    u["urn:convergences:params:scim:schemas:extension:cig:2.0:Agent"] = json!({"siren": "217500016"});
    let (status, _, created) = scim.call(&cig, "POST", "/Users", Some(&u)).await;
    assert_eq!(status, 201, "{created}");
    let (_, _, theirs) = scim.call(&vitry, "GET", "/Users?filter=userName%20eq%20%22cigcreated%22", None).await;
    assert_eq!(theirs["totalResults"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_provisioned_by_scim_logs_in_over_ldap() {
    if !have("ldapwhoami") {
        return;
    }
    let srv = TestServer::start().await;
    let scim = Scim::new(&srv);
    let t = token(&srv, TokenScope::Organisation(dn(CRETEIL)));
    let mut u = user("mdurand");
    u["password"] = json!("Premier-Secret-1");
    u["entitlements"] = json!([{"value": "bip"}]);
    let (status, head, created) = scim.call(&t, "POST", "/Users", Some(&u)).await;
    assert_eq!(status, 201, "{created}");
    assert!(head.to_lowercase().contains("location: /scim/v2/users/"), "{head}");
    assert!(created.get("password").is_none(), "password is never returned");
    let id = created["id"].as_str().unwrap().to_string();
    let agent = format!("uid=mdurand,ou=agents,{CRETEIL}");

    // The BIP service account finds it with memberOf, and it binds.
    let svc = ("cn=bip,ou=services,dc=cig,dc=fr", convergences::seed::DEMO_PASSWORD);
    let url = srv.url.clone();
    let (code, out, _) = run(
        "ldapsearch",
        &[
            "-x",
            "-LLL",
            "-H",
            &url,
            "-D",
            svc.0,
            "-w",
            svc.1,
            "-b",
            SUFFIX,
            "(&(uid=mdurand)(memberOf=cn=bip,ou=applications,dc=cig,dc=fr))",
            "1.1",
        ],
        None,
    )
    .await;
    assert_eq!(code, 0);
    assert!(out.contains(&format!("dn: {agent}")), "{out}");
    let (code, _, _) = run("ldapwhoami", &["-x", "-H", &url, "-D", &agent, "-w", "Premier-Secret-1"], None).await;
    assert_eq!(code, 0);

    // Deactivated as Entra ID does it (capitalised op, boolean as a string): the entry stays, binds fail.
    let off = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                     "Operations": [{"op": "Replace", "path": "active", "value": "False"}]});
    let (status, _, body) = scim.call(&t, "PATCH", &format!("/Users/{id}"), Some(&off)).await;
    assert_eq!((status, body["active"].as_bool()), (200, Some(false)), "{body}");
    assert_eq!(body["entitlements"][0]["value"], "bip", "the rest of the user is untouched");
    let (code, _, _) = run("ldapwhoami", &["-x", "-H", &url, "-D", &agent, "-w", "Premier-Secret-1"], None).await;
    assert_eq!(code, 49);

    // A change made with ldapmodify shows in the next SCIM GET, with a new version.
    let (_, _, before) = scim.call(&t, "GET", &format!("/Users/{id}"), None).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let change = format!("dn: {agent}\nchangetype: modify\nreplace: mail\nmail: marie.durand@creteil.example.fr\n-\n");
    let (code, _, err) =
        run("ldapmodify", &["-x", "-H", &url, "-D", "cn=admin,dc=cig,dc=fr", "-w", ADMIN_PASSWORD], Some(&change))
            .await;
    assert_eq!(code, 0, "{err}");
    let (_, head, after) = scim.call(&t, "GET", &format!("/Users/{id}"), None).await;
    assert_eq!(after["emails"][0]["value"], "marie.durand@creteil.example.fr");
    assert_ne!(after["meta"]["version"], before["meta"]["version"]);
    assert!(head.to_lowercase().contains("etag: w/"), "{head}");

    // Filters reach the same indexes as LDAP.
    let (_, _, found) =
        scim.call(&t, "GET", "/Users?filter=emails%20co%20%22marie.durand%22%20and%20active%20eq%20false", None).await;
    assert_eq!(found["totalResults"], 1, "{found}");

    // DELETE removes the entry and its application membership.
    let (status, _, _) = scim.call(&t, "DELETE", &format!("/Users/{id}"), None).await;
    assert_eq!(status, 204);
    let (status, _, _) = scim.call(&t, "GET", &format!("/Users/{id}"), None).await;
    assert_eq!(status, 404);
    let bip = srv.directory().get(&dn("cn=bip,ou=applications,dc=cig,dc=fr")).unwrap().unwrap();
    assert!(!bip.get("member").unwrap().values.iter().any(|m| String::from_utf8_lossy(m).contains("mdurand")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_created_user_is_answered_as_it_reads_back() {
    let srv = TestServer::start().await;
    let scim = Scim::new(&srv);
    let t = token(&srv, TokenScope::Organisation(dn(CRETEIL)));
    let mut u = user("jmartin");
    u["entitlements"] = json!([{"value": "bip"}]);
    u["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"] = json!({"employeeNumber": "A-1234"});
    let (status, head, created) = scim.call(&t, "POST", "/Users", Some(&u)).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap();
    let (status, _, read) = scim.call(&t, "GET", &format!("/Users/{id}"), None).await;
    assert_eq!(status, 200);
    assert_eq!(created, read, "the 201 body is the stored user, operational attributes included");
    let etag = format!("etag: {}", read["meta"]["version"].as_str().unwrap()).to_lowercase();
    assert!(head.to_lowercase().contains(&etag), "{head}");
    assert_eq!(read["entitlements"][0]["value"], "bip");
    assert_eq!(read["urn:convergences:params:scim:schemas:extension:cig:2.0:Agent"]["siren"], "219400280");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_guard_concurrent_changes() {
    if !have("curl") {
        return;
    }
    let srv = TestServer::start().await;
    let scim = Scim::new(&srv);
    let t = token(&srv, TokenScope::Organisation(dn(CRETEIL)));
    let (_, _, created) = scim.call(&t, "POST", "/Users", Some(&user("mdurand"))).await;
    let id = created["id"].as_str().unwrap().to_string();
    let version = created["meta"]["version"].as_str().unwrap().to_string();
    let url = format!("{}/Users/{id}", scim.base);
    let auth = format!("Authorization: Bearer {t}");
    // If-None-Match with the current version: 304.
    let inm = format!("If-None-Match: {version}");
    let (_, out, _) =
        run("curl", &["-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", &auth, "-H", &inm, &url], None).await;
    assert_eq!(out, "304");
    // If-Match with a stale version: 412, and nothing changes.
    let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                       "Operations": [{"op": "replace", "value": {"title": "Cheffe"}}]})
    .to_string();
    // A PATCH with an If-Match header, as curl sends it: the HTTP status.
    let conditional_patch = |if_match: String| {
        let (auth, url, patch) = (auth.clone(), url.clone(), patch.clone());
        async move {
            let header = format!("If-Match: {if_match}");
            let args = [
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "-X",
                "PATCH",
                "-H",
                &auth,
                "-H",
                &header,
                "-H",
                "Content-Type: application/scim+json",
                "--data-binary",
                &patch,
                &url,
            ];
            run("curl", &args, None).await.1
        }
    };
    assert_eq!(conditional_patch("W/\"19700101000000Z-00000000\"".into()).await, "412");
    assert_eq!(conditional_patch(version.clone()).await, "200");
    let (_, _, now) = scim.call(&t, "GET", &format!("/Users/{id}"), None).await;
    assert_eq!(now["title"], "Cheffe");
    // Okta's path-less deactivation.
    let okta = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                      "Operations": [{"op": "replace", "value": {"active": false}}]});
    let (status, _, body) = scim.call(&t, "PATCH", &format!("/Users/{id}"), Some(&okta)).await;
    assert_eq!((status, body["active"].as_bool()), (200, Some(false)));
    // An operation on a read-only attribute is refused, and nothing of the request applies.
    let bad = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                     "Operations": [{"op": "replace", "path": "title", "value": "X"}, {"op": "replace", "path": "id", "value": "x"}]});
    let (status, _, err) = scim.call(&t, "PATCH", &format!("/Users/{id}"), Some(&bad)).await;
    assert_eq!((status, err["scimType"].as_str()), (400, Some("mutability")));
    let (_, _, now) = scim.call(&t, "GET", &format!("/Users/{id}"), None).await;
    assert_eq!(now["title"], "Cheffe");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_hold_only_the_organisation_s_own_users() {
    let srv = TestServer::start().await;
    let scim = Scim::new(&srv);
    let creteil = token(&srv, TokenScope::Organisation(dn(CRETEIL)));
    let vitry = token(&srv, TokenScope::Organisation(dn(VITRY)));
    let id_of = |list: &Value, name: &str| -> String {
        list["Resources"].as_array().unwrap().iter().find(|u| u["userName"] == name).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (_, _, mine) = scim.call(&creteil, "GET", "/Users", None).await;
    let (_, _, theirs) = scim.call(&vitry, "GET", "/Users", None).await;
    let (hdupre, jdupont, nbenali) = (id_of(&mine, "hdupre"), id_of(&mine, "jdupont"), id_of(&theirs, "nbenali"));

    // An empty group, as Entra ID creates them.
    let (status, _, g) = scim
        .call(
            &creteil,
            "POST",
            "/Groups",
            Some(&json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Paie"})),
        )
        .await;
    assert_eq!(status, 201, "{g}");
    assert!(g.get("members").is_none(), "no members: unassigned (RFC 7643 §2.5): {g}");
    let gid = g["id"].as_str().unwrap().to_string();
    // Entra ID adds members with PATCH.
    let add = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                     "Operations": [{"op": "Add", "path": "members", "value": [{"value": hdupre}, {"value": jdupont}]}]});
    let (status, _, g) = scim.call(&creteil, "PATCH", &format!("/Groups/{gid}"), Some(&add)).await;
    assert_eq!((status, g["members"].as_array().map(Vec::len)), (200, Some(2)), "{g}");
    // The same group over LDAP: memberOf.
    let agents = srv.directory();
    let ndn = agents.normalize_dn(&dn(&format!("uid=hdupre,ou=agents,{CRETEIL}"))).unwrap();
    assert!(agents.member_of(&ndn).unwrap().iter().any(|g| g.starts_with("cn=Paie,ou=groupes,")));
    // Another organisation's user cannot be put in.
    let foreign = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                         "Operations": [{"op": "add", "path": "members", "value": [{"value": nbenali}]}]});
    let (status, _, _) = scim.call(&creteil, "PATCH", &format!("/Groups/{gid}"), Some(&foreign)).await;
    assert_eq!(status, 400);
    // Remove one with a filtered path.
    let remove = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                        "Operations": [{"op": "Remove", "path": format!("members[value eq \"{jdupont}\"]")}]});
    let (_, _, g) = scim.call(&creteil, "PATCH", &format!("/Groups/{gid}"), Some(&remove)).await;
    assert_eq!(g["members"].as_array().map(Vec::len), Some(1));
    // Vitry cannot see it; a filter finds it for Créteil.
    let (status, _, _) = scim.call(&vitry, "GET", &format!("/Groups/{gid}"), None).await;
    assert_eq!(status, 404);
    let (_, _, found) = scim.call(&creteil, "GET", "/Groups?filter=displayName%20eq%20%22paie%22", None).await;
    assert_eq!(found["totalResults"], 1);
    // Which groups is a user in? (Entra ID asks this way.)
    let (_, _, with) =
        scim.call(&creteil, "GET", &format!("/Groups?filter=members%5Bvalue%20eq%20%22{hdupre}%22%5D"), None).await;
    assert_eq!(with["totalResults"], 2, "ressources-humaines and Paie: {with}");
    let (_, _, without) = scim
        .call(
            &creteil,
            "GET",
            &format!("/Groups?filter=members%20eq%20%22{jdupont}%22%20and%20displayName%20eq%20%22Paie%22"),
            None,
        )
        .await;
    assert_eq!(without["totalResults"], 0);
    let (status, _, _) = scim.call(&creteil, "DELETE", &format!("/Groups/{gid}"), None).await;
    assert_eq!(status, 204);
    assert!(!agents.member_of(&ndn).unwrap().iter().any(|g| g.starts_with("cn=Paie,")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scim_is_served_over_https_with_the_ldaps_certificate() {
    if !have("curl") {
        return;
    }
    let srv = TestServer::start().await;
    let h = srv.handle.as_ref().unwrap();
    let ca = h.tls.ca.as_ref().unwrap().display().to_string();
    let t = token(&srv, TokenScope::Organisation(dn(CRETEIL)));
    let url = format!("https://127.0.0.1:{}/scim/v2/Users?filter=userName%20eq%20%22hdupre%22", h.scim_addr.port());
    let auth = format!("Authorization: Bearer {t}");
    let (code, out, err) = run("curl", &["-s", "--fail", "--cacert", &ca, "-H", &auth, &url], None).await;
    assert_eq!(code, 0, "{err}");
    let body: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(body["totalResults"], 1);
    // A client that does not trust the CA refuses it.
    let (code, _, _) = run("curl", &["-s", "--fail", "-H", &auth, &url], None).await;
    assert_ne!(code, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_requests_resolve_bulk_ids_and_stop_on_errors() {
    let srv = TestServer::start().await;
    let scim = Scim::new(&srv);
    let t = token(&srv, TokenScope::Organisation(dn(CRETEIL)));
    let req = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
        "Operations": [
            {"method": "POST", "path": "/Users", "bulkId": "u1", "data": user("bulk1")},
            {"method": "POST", "path": "/Groups", "bulkId": "g1",
             "data": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Bulk", "members": [{"value": "bulkId:u1"}]}},
            {"method": "PATCH", "path": "/Users/bulkId:u1",
             "data": {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "replace", "value": {"title": "Agent"}}]}},
            {"method": "DELETE", "path": "/Users/00000000-0000-0000-0000-000000000000"},
            {"method": "POST", "path": "/Users", "data": user("hdupre")}
        ]
    });
    let (status, _, resp) = scim.call(&t, "POST", "/Bulk", Some(&req)).await;
    assert_eq!(status, 200, "{resp}");
    let statuses: Vec<&str> =
        resp["Operations"].as_array().unwrap().iter().map(|o| o["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["201", "201", "200", "404", "409"]);
    let (_, _, g) = scim
        .call(&t, "GET", resp["Operations"][1]["location"].as_str().unwrap().trim_start_matches("/scim/v2"), None)
        .await;
    assert_eq!(g["members"].as_array().map(Vec::len), Some(1), "{g}");
    // failOnErrors: 1 stops after the first error.
    let mut req2 = req.clone();
    req2["failOnErrors"] = json!(1);
    req2["Operations"] = json!([
        {"method": "DELETE", "path": "/Users/00000000-0000-0000-0000-000000000000"},
        {"method": "POST", "path": "/Users", "data": user("bulk2")}
    ]);
    let (_, _, resp) = scim.call(&t, "POST", "/Bulk", Some(&req2)).await;
    assert_eq!(resp["Operations"].as_array().map(Vec::len), Some(1));
    // Over the advertised maximum: 413.
    let mut big = req.clone();
    big["Operations"] = json!(vec![json!({"method": "DELETE", "path": "/Users/x"}); 1001]);
    let (status, _, _) = scim.call(&t, "POST", "/Bulk", Some(&big)).await;
    assert_eq!(status, 413);
}

/// Every endpoint and verb, with the tokens of two organisations and of the
/// CIG, on an organisation's own and another's resources.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenancy_matrix() {
    let srv = TestServer::start().await;
    let scim = Scim::new(&srv);
    let creteil = token(&srv, TokenScope::Organisation(dn(CRETEIL)));
    let vitry = token(&srv, TokenScope::Organisation(dn(VITRY)));
    let cig = token(&srv, TokenScope::Cig);
    let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                       "Operations": [{"op": "replace", "value": {"title": "X"}}]});
    let group = |name: &str| json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": name});

    for (who, tok, own_ok) in [("creteil", &creteil, true), ("vitry", &vitry, false), ("cig", &cig, true)] {
        // Fresh resources of Créteil for each round (the previous round may have deleted them).
        let (_, _, u) = scim.call(&creteil, "POST", "/Users", Some(&user(&format!("m{who}")))).await;
        let (_, _, g) = scim.call(&creteil, "POST", "/Groups", Some(&group(&format!("g{who}")))).await;
        let (uid, gid) = (u["id"].as_str().unwrap().to_string(), g["id"].as_str().unwrap().to_string());
        let mut body = user(&format!("m{who}"));
        body["title"] = json!("Y");
        let cases: Vec<(&str, String, Option<Value>, u16)> = vec![
            ("GET", format!("/Users/{uid}"), None, 200),
            ("PUT", format!("/Users/{uid}"), Some(body), 200),
            ("PATCH", format!("/Users/{uid}"), Some(patch.clone()), 200),
            ("GET", format!("/Groups/{gid}"), None, 200),
            ("PUT", format!("/Groups/{gid}"), Some(group(&format!("g{who}"))), 200),
            (
                "PATCH",
                format!("/Groups/{gid}"),
                Some(
                    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "replace", "path": "displayName", "value": format!("g{who}2")}]}),
                ),
                200,
            ),
            ("DELETE", format!("/Groups/{gid}"), None, 204),
            ("DELETE", format!("/Users/{uid}"), None, 204),
        ];
        for (verb, path, body, ok) in cases {
            let (status, _, resp) = scim.call(tok, verb, &path, body.as_ref()).await;
            let expected = if own_ok { ok } else { 404 };
            assert_eq!(status, expected, "{who} {verb} {path}: {resp}");
        }
        // Lists and searches never show another organisation's resources.
        let search = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": "userName eq \"hdupre\""});
        let (status, _, found) = scim.call(tok, "POST", "/Users/.search", Some(&search)).await;
        assert_eq!(status, 200);
        assert_eq!(found["totalResults"], if own_ok { 1 } else { 0 }, "{who}");
        let (_, _, groups) =
            scim.call(tok, "GET", "/Groups?filter=displayName%20eq%20%22ressources-humaines%22", None).await;
        assert_eq!(groups["totalResults"], if who == "cig" { 2 } else { 1 }, "{who}");
    }
}

/// A refused create is in the audit trail, whether the directory refused it
/// (a userName taken) or SCIM did before (an application not subscribed to).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_creates_are_in_the_audit_trail() {
    let mut srv = TestServer::start().await;
    let scim = Scim::new(&srv);
    let t = token(&srv, TokenScope::Organisation(dn(CRETEIL)));
    let (status, _, _) = scim.call(&t, "POST", "/Users", Some(&user("hdupre"))).await;
    assert_eq!(status, 409);
    let mut u = user("abonnement");
    u["entitlements"] = json!([{"value": "comite-medical"}]);
    let (status, _, _) = scim.call(&t, "POST", "/Users", Some(&u)).await;
    assert_eq!(status, 403);
    let data = srv.tmp.path().display().to_string();
    if let Some(h) = srv.handle.take() {
        h.shutdown().await;
    }
    let bin = env!("CARGO_BIN_EXE_convergences");
    let (code, out, err) = run(bin, &["audit", "--data", &data, "--since", "2020-01-01"], None).await;
    assert_eq!(code, 0, "{err}");
    let refused: Vec<&str> = out.lines().filter(|l| l.contains("\tadd\t") && !l.ends_with("success")).collect();
    assert!(refused.iter().any(|l| l.contains("uid=hdupre")), "{out}");
    // The create was refused whole at its grant: the core records the change it refused.
    let refused_grant = out.lines().any(|l| l.contains("\tmodify\tcn=comite-medical") && !l.ends_with("success"));
    assert!(refused_grant, "{out}");
}
