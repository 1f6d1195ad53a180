//! SCIM behaviour, each test the sentence it checks: every PATCH form on
//! every kind of attribute (RFC 7644 §3.5.2), filters and sorting on the
//! mapped attributes (§3.4.2), versions checked in the write's transaction
//! (§3.14), cursor pagination (RFC 9865). Over HTTP with reqwest.

use serde_json::{Value, json};

use crate::common::*;
use convergences::directory::TokenScope;

const CRETEIL: &str = "o=219400280,ou=organisations,dc=cig,dc=fr";
const VITRY: &str = "o=217500016,ou=organisations,dc=cig,dc=fr";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn ops(ops: Value) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops})
}

struct Fixture {
    _srv: TestServer,
    scim: Scim,
    token: String,
}

impl Fixture {
    async fn new() -> Fixture {
        Fixture::with(|_| {}).await
    }

    async fn with(change: impl FnOnce(&mut convergences::config::Config)) -> Fixture {
        let srv = TestServer::start_with(change).await;
        let scim = Scim::new(&srv);
        let token = token(&srv, TokenScope::Organisation(dn(CRETEIL)));
        Fixture { _srv: srv, scim, token }
    }

    async fn create(&self, body: Value) -> String {
        let (status, _, created) = self.scim.call(&self.token, "POST", "/Users", Some(&body)).await;
        assert_eq!(status, 201, "{created}");
        created["id"].as_str().unwrap().to_string()
    }

    async fn get(&self, id: &str) -> Value {
        let (status, _, body) = self.scim.call(&self.token, "GET", &format!("/Users/{id}"), None).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    async fn patch(&self, id: &str, o: Value) -> (u16, Value) {
        let (status, _, body) = self.scim.call(&self.token, "PATCH", &format!("/Users/{id}"), Some(&ops(o))).await;
        (status, body)
    }

    async fn ids(&self, filter: &str) -> Vec<String> {
        let path = format!("/Users?filter={}&count=200", urlencode(filter));
        let (status, _, body) = self.scim.call(&self.token, "GET", &path, None).await;
        assert_eq!(status, 200, "{filter}: {body}");
        body["Resources"].as_array().unwrap().iter().map(|r| r["userName"].as_str().unwrap().to_string()).collect()
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_patch_form_applies_to_every_kind_of_attribute() {
    let f = Fixture::new().await;
    let id = f
        .create(json!({"userName": "patchee", "name": {"givenName": "Paule", "familyName": "Ché"},
                       "emails": [{"value": "paule@creteil.fr", "type": "work", "primary": true},
                                  {"value": "paule@maison.fr", "type": "home"}],
                       "addresses": [{"type": "work", "locality": "Créteil", "postalCode": "94000"}]}))
        .await;
    // A simple attribute, a sub-attribute, an extension's attribute by URN.
    let (status, body) = f
        .patch(
            &id,
            json!([
                {"op": "add", "path": "nickName", "value": "Popo"},
                {"op": "replace", "path": "name.givenName", "value": "Paula"},
                {"op": "add", "path": format!("{ENTERPRISE}:costCenter"), "value": "CC-12"},
            ]),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let u = f.get(&id).await;
    assert_eq!((u["nickName"].as_str(), u["name"]["givenName"].as_str()), (Some("Popo"), Some("Paula")));
    assert_eq!(u[ENTERPRISE]["costCenter"], "CC-12");
    assert_eq!(u["name"]["familyName"], "Ché", "a sub-attribute's neighbours stay");
    // Value-filtered paths, on emails and on an address part.
    f.patch(
        &id,
        json!([
            {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "p.che@creteil.fr"},
            {"op": "replace", "path": "addresses[type eq \"work\"].locality", "value": "Vitry-sur-Seine"},
            {"op": "remove", "path": "emails[type eq \"home\"]"},
        ]),
    )
    .await;
    let u = f.get(&id).await;
    assert_eq!(u["emails"], json!([{"value": "p.che@creteil.fr", "type": "work", "primary": true}]));
    assert_eq!(u["addresses"], json!([{"type": "work", "locality": "Vitry-sur-Seine", "postalCode": "94000"}]));
    // Path-less add and replace whose keys are attribute paths (Entra ID's aadOptscim062020).
    f.patch(
        &id,
        json!([{"op": "Replace", "value": {"name.familyName": "Chê", format!("{ENTERPRISE}:department"): "RH",
                                                      "title": "Gestionnaire"}}]),
    )
    .await;
    let u = f.get(&id).await;
    assert_eq!((u["name"]["familyName"].as_str(), u[ENTERPRISE]["department"].as_str()), (Some("Chê"), Some("RH")));
    // A new primary value makes the other one not primary (RFC 7644 §3.5.2).
    f.patch(&id, json!([{"op": "add", "path": "emails", "value": [{"value": "pp@creteil.fr", "type": "other", "primary": "True"}]}]))
        .await;
    let emails = f.get(&id).await["emails"].clone();
    let primaries: Vec<&str> = emails
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["primary"] == true)
        .filter_map(|e| e["value"].as_str())
        .collect();
    assert_eq!(primaries, vec!["pp@creteil.fr"], "{emails}");
    // Entra ID's null update clears: "" and null.
    f.patch(
        &id,
        json!([{"op": "Replace", "path": "nickName", "value": ""}, {"op": "replace", "path": "title", "value": null}]),
    )
    .await;
    let u = f.get(&id).await;
    assert!(u.get("nickName").is_none() && u.get("title").is_none(), "{u}");
    // Remove a whole attribute, and a sub-attribute.
    f.patch(
        &id,
        json!([{"op": "remove", "path": "addresses"}, {"op": "remove", "path": format!("{ENTERPRISE}:costCenter")}]),
    )
    .await;
    let u = f.get(&id).await;
    assert!(u.get("addresses").is_none() && u[ENTERPRISE].get("costCenter").is_none(), "{u}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_patch_applies_none_of_its_operations() {
    let f = Fixture::new().await;
    let id = f.create(json!({"userName": "atomique", "title": "Avant"})).await;
    let before = f.get(&id).await;
    for (bad, scim_type) in [
        (
            json!([{"op": "replace", "path": "title", "value": "Après"}, {"op": "replace", "path": "nosuchattribute", "value": 1}]),
            "invalidPath",
        ),
        (
            json!([{"op": "replace", "path": "title", "value": "Après"}, {"op": "replace", "path": "id", "value": "autre"}]),
            "mutability",
        ),
        (json!([{"op": "replace", "path": "title", "value": "Après"}, {"op": "remove"}]), "noTarget"),
        (
            json!([{"op": "replace", "path": "title", "value": "Après"}, {"op": "replace", "path": "active", "value": "peut-être"}]),
            "invalidValue",
        ),
        (json!([{"op": "replace", "path": "title", "value": 12}]), "invalidValue"),
        (
            json!([{"op": "replace", "path": "emails", "value": [{"value": "a@b.fr", "primary": true}, {"value": "c@d.fr", "primary": true}]}]),
            "invalidValue",
        ),
        (json!([{"op": "replace", "path": "groups", "value": [{"value": "x"}]}]), "mutability"),
    ] {
        let (status, err) = f.patch(&id, bad.clone()).await;
        assert_eq!((status, err["scimType"].as_str()), (400, Some(scim_type)), "{bad}: {err}");
        assert!(err["detail"].as_str().is_some_and(|d| !d.is_empty()), "{err}");
    }
    // A path nested past the filter limits, in a path or as a path-less key, is refused before parsing.
    let deep = format!("emails{}", "[value eq \"x\"".repeat(200));
    for bad in
        [json!([{"op": "add", "path": deep, "value": "x"}]), json!([{"op": "add", "value": {deep.clone(): "x"}}])]
    {
        let (status, err) = f.patch(&id, bad).await;
        assert_eq!((status, err["scimType"].as_str()), (400, Some("invalidFilter")), "{err}");
    }
    let after = f.get(&id).await;
    assert_eq!(after, before, "nothing of a refused request applies");
    // A read-only attribute sent with the value it has is ignored (Okta repeats the id).
    let (status, body) = f.patch(&id, json!([{"op": "replace", "value": {"id": id, "title": "Après"}}])).await;
    assert_eq!((status, body["title"].as_str()), (200, Some("Après")), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_one_member_the_way_entra_id_does_removes_only_that_member() {
    let f = Fixture::new().await;
    let (a, b, c) = (
        f.create(json!({"userName": "m.a"})).await,
        f.create(json!({"userName": "m.b"})).await,
        f.create(json!({"userName": "m.c"})).await,
    );
    let members = json!([{"value": a}, {"value": b}, {"value": c}]);
    let (status, _, g) =
        f.scim.call(&f.token, "POST", "/Groups", Some(&json!({"displayName": "Trois", "members": members}))).await;
    assert_eq!(status, 201, "{g}");
    let gid = g["id"].as_str().unwrap().to_string();
    let group_patch = |o: Value| {
        let (scim, token, gid) = (&f.scim, &f.token, gid.clone());
        async move { scim.call(token, "PATCH", &format!("/Groups/{gid}"), Some(&ops(o))).await }
    };
    let (status, _, _) = group_patch(json!([{"op": "Remove", "path": "members", "value": [{"value": b}]}])).await;
    assert_eq!(status, 200);
    let (_, _, now) = f.scim.call(&f.token, "GET", &format!("/Groups/{gid}"), None).await;
    let mut left: Vec<&str> = now["members"].as_array().unwrap().iter().map(|m| m["value"].as_str().unwrap()).collect();
    left.sort();
    let mut want = vec![a.as_str(), c.as_str()];
    want.sort();
    assert_eq!(left, want, "{now}");
    // A member that is not there: nothing changes, no error (a retried request).
    let (status, _, _) = group_patch(json!([{"op": "remove", "path": format!("members[value eq \"{b}\"]")}])).await;
    assert_eq!(status, 200);
    // `remove members` without a value empties the group.
    group_patch(json!([{"op": "remove", "path": "members"}])).await;
    let (_, _, now) = f.scim.call(&f.token, "GET", &format!("/Groups/{gid}?excludedAttributes=members"), None).await;
    assert!(now.get("members").is_none(), "{now}");
    let (_, _, now) = f.scim.call(&f.token, "GET", &format!("/Groups/{gid}"), None).await;
    assert!(now.get("members").is_none(), "{now}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_reach_every_mapped_attribute_with_its_case_rules() {
    let f = Fixture::new().await;
    f.create(json!({"userName": "f.one", "externalId": "RH-One", "title": "Attaché",
                    "emails": [{"value": "one@creteil.fr", "type": "work"}, {"value": "one@perso.fr", "type": "home"}],
                    "name": {"familyName": "Zola"}}))
        .await;
    f.create(json!({"userName": "f.two", "externalId": "rh-one",
                    "emails": [{"value": "two@perso.fr", "type": "work"}, {"value": "two@creteil.fr", "type": "home"}],
                    "name": {"familyName": "Abel"}}))
        .await;
    // A complex value filter: both conditions on the same email.
    assert_eq!(f.ids(r#"emails[type eq "work" and value co "@creteil.fr"]"#).await, vec!["f.one"]);
    // Entra ID's matching form.
    assert_eq!(f.ids(r#"emails[type eq "work"].value eq "two@perso.fr""#).await, vec!["f.two"]);
    assert_eq!(f.ids(r#"emails.value eq "ONE@CRETEIL.FR""#).await, vec!["f.one"], "emails are not case-exact");
    // userName is compared case-insensitively, externalId case-exactly (RFC 7643 §4.1.1, §3.1).
    assert_eq!(f.ids(r#"userName eq "F.ONE""#).await, vec!["f.one"]);
    assert_eq!(f.ids(r#"externalId eq "rh-one""#).await, vec!["f.two"]);
    assert_eq!(f.ids(r#"title sw "att" and not (userName eq "f.two")"#).await, vec!["f.one"]);
    // meta.created / meta.lastModified, in any offset.
    assert!(f.ids(r#"meta.created gt "2020-01-01T00:00:00+01:00" and userName sw "f.""#).await.len() == 2);
    assert!(f.ids(r#"meta.lastModified lt "2020-01-01T00:00:00Z""#).await.is_empty());
    // groups.value: the users of a group.
    let (_, _, g) =
        f.scim.call(&f.token, "GET", "/Groups?filter=displayName%20eq%20%22ressources-humaines%22", None).await;
    let gid = g["Resources"][0]["id"].as_str().unwrap().to_string();
    let mut members = f.ids(&format!(r#"groups.value eq "{gid}""#)).await;
    members.sort();
    assert_eq!(members, vec!["cmartin", "hdupre", "jdupont"]);
    // Sorted by a sub-attribute, both ways.
    let (_, _, sorted) =
        f.scim.call(&f.token, "GET", "/Users?filter=userName%20sw%20%22f.%22&sortBy=name.familyName", None).await;
    let names: Vec<&str> =
        sorted["Resources"].as_array().unwrap().iter().map(|r| r["userName"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["f.two", "f.one"]);
    let (_, _, sorted) = f
        .scim
        .call(
            &f.token,
            "GET",
            "/Users?filter=userName%20sw%20%22f.%22&sortBy=name.familyName&sortOrder=descending",
            None,
        )
        .await;
    let names: Vec<&str> =
        sorted["Resources"].as_array().unwrap().iter().map(|r| r["userName"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["f.one", "f.two"]);
    // An attribute that does not exist is invalidFilter; an empty result is 200 with totalResults 0.
    let (status, _, err) = f.scim.call(&f.token, "GET", "/Users?filter=nosuch%20eq%20%22x%22", None).await;
    assert_eq!((status, err["scimType"].as_str()), (400, Some("invalidFilter")));
    let (status, _, empty) = f.scim.call(&f.token, "GET", "/Users?filter=userName%20eq%20%22personne%22", None).await;
    assert_eq!((status, empty["totalResults"].as_u64()), (200, Some(0)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_concurrent_patches_with_the_same_if_match_exactly_one_applies() {
    let f = Fixture::new().await;
    let id = f.create(json!({"userName": "concurrence"})).await;
    for round in 0..10 {
        let version = f.get(&id).await["meta"]["version"].as_str().unwrap().to_string();
        let attempt = |n: usize| {
            let (scim, token, id, version) = (&f.scim, &f.token, id.clone(), version.clone());
            async move {
                let body = ops(json!([{"op": "replace", "path": "title", "value": format!("r{round} c{n}")}]));
                scim.call_with(token, "PATCH", &format!("/Users/{id}"), Some(&body), &[("If-Match", &version)]).await.0
            }
        };
        let (a, b) = tokio::join!(attempt(0), attempt(1));
        let mut got = [a, b];
        got.sort();
        assert_eq!(got, [200, 412], "round {round}");
    }
    // Two writes within the same second have two versions.
    let v1 = f.patch(&id, json!([{"op": "replace", "path": "title", "value": "x"}])).await.1["meta"]["version"].clone();
    let v2 = f.patch(&id, json!([{"op": "replace", "path": "title", "value": "y"}])).await.1["meta"]["version"].clone();
    assert_ne!(v1, v2);
    // Without If-Match, concurrent member additions all apply (the PATCH is computed again).
    let gid = {
        let (_, _, g) = f.scim.call(&f.token, "POST", "/Groups", Some(&json!({"displayName": "Foule"}))).await;
        g["id"].as_str().unwrap().to_string()
    };
    let mut users = Vec::new();
    for i in 0..8 {
        users.push(f.create(json!({"userName": format!("foule{i}")})).await);
    }
    let adds = users.iter().map(|u| {
        let (scim, token, gid, u) = (&f.scim, &f.token, gid.clone(), u.clone());
        async move {
            let body = ops(json!([{"op": "add", "path": "members", "value": [{"value": u}]}]));
            scim.call(token, "PATCH", &format!("/Groups/{gid}"), Some(&body)).await.0
        }
    });
    assert!(futures_util::future::join_all(adds).await.iter().all(|s| *s == 200));
    let (_, _, g) = f.scim.call(&f.token, "GET", &format!("/Groups/{gid}"), None).await;
    assert_eq!(g["members"].as_array().map(Vec::len), Some(8), "{g}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cursor_pages_show_each_resource_once_while_others_write() {
    let f = Fixture::with(|c| c.scim_limits.max_results = 50).await;
    for i in 0..23 {
        f.create(json!({"userName": format!("page{i:02}")})).await;
    }
    let filter = urlencode(r#"userName sw "page""#);
    let (status, _, first) =
        f.scim.call(&f.token, "GET", &format!("/Users?filter={filter}&cursor&count=5"), None).await;
    assert_eq!(status, 200, "{first}");
    assert!(first.get("startIndex").is_none() && first.get("previousCursor").is_none(), "{first}");
    assert_eq!(first["totalResults"], 23);
    let mut seen: Vec<String> = Vec::new();
    let mut page = first;
    let mut previous_of_second = None;
    loop {
        seen.extend(page["Resources"].as_array().unwrap().iter().map(|r| r["userName"].as_str().unwrap().to_string()));
        let Some(next) = page["nextCursor"].as_str().map(str::to_string) else { break };
        // Others write between two pages: a new user, one deleted that was already seen.
        let n = seen.len();
        f.create(json!({"userName": format!("pageZ{n}")})).await;
        let gone = page["Resources"][0]["id"].as_str().unwrap().to_string();
        let (status, _, _) = f.scim.call(&f.token, "DELETE", &format!("/Users/{gone}"), None).await;
        assert_eq!(status, 204);
        let path = format!("/Users?filter={filter}&cursor={}&count=5", urlencode(&next));
        let (status, _, p) = f.scim.call(&f.token, "GET", &path, None).await;
        assert_eq!(status, 200, "{p}");
        if previous_of_second.is_none() {
            previous_of_second = p["previousCursor"].as_str().map(str::to_string);
        }
        page = p;
    }
    let originals: Vec<&String> = seen.iter().filter(|u| !u.starts_with("pageZ")).collect();
    let mut unique = originals.clone();
    unique.sort();
    unique.dedup();
    assert_eq!((originals.len(), unique.len()), (23, 23), "each original user once: {seen:?}");
    // previousCursor leads back to the first page.
    let back = previous_of_second.expect("the second page has a previousCursor");
    let (_, _, p) = f
        .scim
        .call(&f.token, "GET", &format!("/Users?filter={filter}&cursor={}&count=5", urlencode(&back)), None)
        .await;
    let names: Vec<&str> = p["Resources"].as_array().unwrap().iter().map(|r| r["userName"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 4, "the first page, less the user deleted since: {p}");
    assert!(p.get("previousCursor").is_none(), "the first page has none: {p}");
    // Errors of RFC 9865 §2.1.
    let cursor = {
        let (_, _, p) = f.scim.call(&f.token, "GET", &format!("/Users?filter={filter}&cursor=&count=5"), None).await;
        p["nextCursor"].as_str().unwrap().to_string()
    };
    let bad = |path: String| {
        let (scim, token) = (&f.scim, f.token.clone());
        async move {
            let (status, _, err) = scim.call(&token, "GET", &path, None).await;
            (status, err["scimType"].as_str().unwrap_or("").to_string())
        }
    };
    let tampered = format!("x{cursor}");
    assert_eq!(
        bad(format!("/Users?filter={filter}&cursor={}&count=5", urlencode(&tampered))).await,
        (400, "invalidCursor".into())
    );
    assert_eq!(
        bad(format!("/Users?cursor={}&count=5", urlencode(&cursor))).await,
        (400, "invalidCursor".into()),
        "another query"
    );
    assert_eq!(
        bad(format!("/Users?filter={filter}&cursor={}&count=6", urlencode(&cursor))).await,
        (400, "invalidCount".into())
    );
    assert_eq!(bad(format!("/Users?filter={filter}&cursor=&count=51")).await, (400, "invalidCount".into()));
    // Another organisation's token cannot use it.
    let other = token(&f._srv, TokenScope::Organisation(dn(VITRY)));
    let (status, _, err) = f
        .scim
        .call(&other, "GET", &format!("/Users?filter={filter}&cursor={}&count=5", urlencode(&cursor)), None)
        .await;
    assert_eq!((status, err["scimType"].as_str()), (400, Some("invalidCursor")));
    // The ServiceProviderConfig says so.
    let (_, _, spc) = f.scim.call(&f.token, "GET", "/ServiceProviderConfig", None).await;
    assert_eq!(
        spc["pagination"],
        json!({"cursor": true, "index": true, "defaultPaginationMethod": "index",
                                         "defaultPageSize": 50, "maxPageSize": 50, "cursorTimeout": 3600})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_cursor_is_refused_as_expired() {
    let f = Fixture::with(|c| c.scim_limits.cursor_timeout_secs = 1).await;
    let (_, _, p) = f.scim.call(&f.token, "GET", "/Users?cursor&count=1", None).await;
    let cursor = p["nextCursor"].as_str().unwrap().to_string();
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (status, _, err) =
        f.scim.call(&f.token, "GET", &format!("/Users?cursor={}&count=1", urlencode(&cursor)), None).await;
    assert_eq!((status, err["scimType"].as_str()), (400, Some("expiredCursor")), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_describes_each_schema_and_resource_type_by_its_id() {
    let f = Fixture::new().await;
    for (path, id) in [
        ("/ResourceTypes/User", "User"),
        ("/ResourceTypes/Group", "Group"),
        ("/Schemas/urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:core:2.0:User"),
        ("/Schemas/urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", ENTERPRISE),
        ("/Schemas/urn:ietf:params:scim:schemas:core:2.0:Group", "urn:ietf:params:scim:schemas:core:2.0:Group"),
    ] {
        let (status, _, body) = f.scim.call(&f.token, "GET", path, None).await;
        assert_eq!((status, body["id"].as_str()), (200, Some(id)), "{path}: {body}");
    }
    let (status, _, _) = f.scim.call(&f.token, "GET", "/Schemas/urn:nothing", None).await;
    assert_eq!(status, 404);
    // Every attribute of RFC 7643 §4.1 is advertised, with its characteristics.
    let (_, _, user) = f.scim.call(&f.token, "GET", "/Schemas/urn:ietf:params:scim:schemas:core:2.0:User", None).await;
    let names: Vec<&str> = user["attributes"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
    for a in [
        "userName",
        "name",
        "displayName",
        "nickName",
        "profileUrl",
        "title",
        "userType",
        "preferredLanguage",
        "locale",
        "timezone",
        "active",
        "password",
        "emails",
        "phoneNumbers",
        "ims",
        "photos",
        "addresses",
        "groups",
        "entitlements",
        "roles",
        "x509Certificates",
    ] {
        assert!(names.contains(&a), "{a} advertised");
    }
    let attr = |n: &str| user["attributes"].as_array().unwrap().iter().find(|a| a["name"] == n).unwrap().clone();
    assert_eq!(
        (attr("userName")["uniqueness"].as_str(), attr("userName")["required"].as_bool()),
        (Some("server"), Some(true))
    );
    assert_eq!(
        (attr("password")["mutability"].as_str(), attr("password")["returned"].as_str()),
        (Some("writeOnly"), Some("never"))
    );
    assert_eq!(attr("groups")["mutability"], "readOnly");
    // The entitlements an organisation's token may give are its subscriptions.
    let values = attr("entitlements")["subAttributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "value")
        .unwrap()["canonicalValues"]
        .clone();
    assert_eq!(values, json!(["bip", "commission-reforme", "snapi-cap"]));
    let (_, _, group) =
        f.scim.call(&f.token, "GET", "/Schemas/urn:ietf:params:scim:schemas:core:2.0:Group", None).await;
    let display = group["attributes"].as_array().unwrap().iter().find(|a| a["name"] == "displayName").unwrap().clone();
    assert_eq!(display["required"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_big_identity_providers_check_first_holds() {
    let f = Fixture::new().await;
    // 409 for a userName taken whatever its case, and for an externalId of the organisation.
    let (status, _, err) = f.scim.call(&f.token, "POST", "/Users", Some(&json!({"userName": "HDUPRE"}))).await;
    assert_eq!((status, err["scimType"].as_str()), (409, Some("uniqueness")), "{err}");
    f.create(json!({"userName": "ext.a", "externalId": "E-1"})).await;
    let (status, _, err) =
        f.scim.call(&f.token, "POST", "/Users", Some(&json!({"userName": "ext.b", "externalId": "E-1"}))).await;
    assert_eq!((status, err["scimType"].as_str()), (409, Some("uniqueness")), "{err}");
    // Another organisation may use the same externalId: it is another HR system's.
    let vitry = token(&f._srv, TokenScope::Organisation(dn(VITRY)));
    let (status, _, _) =
        f.scim.call(&vitry, "POST", "/Users", Some(&json!({"userName": "ext.c", "externalId": "E-1"}))).await;
    assert_eq!(status, 201);
    // 404 with an Error body.
    let (status, _, err) = f.scim.call(&f.token, "GET", "/Users/00000000-0000-7000-8000-000000000000", None).await;
    assert_eq!((status, err["schemas"][0].as_str()), (404, Some("urn:ietf:params:scim:api:messages:2.0:Error")));
    // active is always there, even when not asked for.
    let (_, _, u) = f.scim.call(&f.token, "GET", "/Users?attributes=userName&count=1", None).await;
    assert_eq!(u["Resources"][0]["active"], true, "{u}");
    // excludedAttributes=members on GET by id and on lists.
    let (_, _, groups) = f.scim.call(&f.token, "GET", "/Groups?excludedAttributes=members", None).await;
    assert!(
        groups["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .all(|g| g.get("members").is_none() && g.get("displayName").is_some())
    );
    // A schema the server does not know: refused when attributes come under it
    // (they would be lost), tolerated when only listed (Entra ID's ADSCIM URN).
    let lost = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:example:params:scim:Inconnu"],
                      "userName": "inconnu", "urn:example:params:scim:Inconnu": {"badge": "42"}});
    let (status, _, err) = f.scim.call(&f.token, "POST", "/Users", Some(&lost)).await;
    assert_eq!((status, err["scimType"].as_str()), (400, Some("invalidSyntax")), "{err}");
    assert!(err["detail"].as_str().unwrap().contains("urn:example:params:scim:Inconnu"), "{err}");
    let listed = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group",
                                    "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
                        "displayName": "Liste"});
    let (status, _, _) = f.scim.call(&f.token, "POST", "/Groups", Some(&listed)).await;
    assert_eq!(status, 201);
    let coreless =
        json!({"schemas": ["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"], "userName": "sans.coeur"});
    let (status, _, err) = f.scim.call(&f.token, "POST", "/Users", Some(&coreless)).await;
    assert_eq!((status, err["scimType"].as_str()), (400, Some("invalidSyntax")), "{err}");
    // String Booleans and a string primary.
    let id = f
        .create(
            json!({"userName": "chaines", "active": "False", "emails": [{"value": "c@creteil.fr", "primary": "true"}]}),
        )
        .await;
    let u = f.get(&id).await;
    assert_eq!((u["active"].as_bool(), u["emails"][0]["primary"].as_bool()), (Some(false), Some(true)));
}

/// The users (`userName`) a list shows, following `startIndex` or cursors in pages of `count`.
async fn walk(f: &Fixture, query: &str, count: usize, by_cursor: bool) -> (Vec<String>, u64) {
    let names = |page: &Value| -> Vec<String> {
        let resources = page["Resources"].as_array().cloned().unwrap_or_default();
        assert!(resources.len() <= count, "{} in a page of {count}", resources.len());
        resources.iter().map(|r| r["userName"].as_str().unwrap().to_string()).collect()
    };
    let mut seen = Vec::new();
    let mut at = if by_cursor { "&cursor".to_string() } else { "&startIndex=1".to_string() };
    loop {
        let (status, _, page) = f.scim.call(&f.token, "GET", &format!("/Users?{query}{at}&count={count}"), None).await;
        assert_eq!(status, 200, "{query}: {page}");
        let total = page["totalResults"].as_u64().unwrap();
        let got = names(&page);
        let done = got.is_empty();
        seen.extend(got);
        at = match (by_cursor, page["nextCursor"].as_str()) {
            (true, Some(next)) => format!("&cursor={}", urlencode(next)),
            (true, None) => return (seen, total),
            (false, _) if done || seen.len() as u64 >= total => return (seen, total),
            (false, _) => format!("&startIndex={}", seen.len() + 1),
        };
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_by_index_and_by_cursor_are_slices_of_the_whole_list() {
    let f = Fixture::new().await;
    for i in 0..31 {
        let email = if i % 3 == 0 { "@creteil.fr" } else { "@ailleurs.fr" };
        f.create(
            json!({"userName": format!("slice{i:02}"), "emails": [{"type": "work", "value": format!("s{i}{email}")}]}),
        )
        .await;
    }
    let queries = [
        String::new(),
        format!("filter={}", urlencode(r#"userName sw "slice""#)),
        // Decided on the documents, not by the directory alone.
        format!("filter={}", urlencode(r#"emails[type eq "work" and value co "@creteil.fr"]"#)),
        format!("filter={}&sortBy=userName&sortOrder=descending", urlencode(r#"userName sw "slice""#)),
    ];
    for query in &queries {
        let (status, _, whole) = f.scim.call(&f.token, "GET", &format!("/Users?{query}&count=200"), None).await;
        assert_eq!(status, 200, "{whole}");
        let all: Vec<String> = whole["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["userName"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(whole["totalResults"].as_u64(), Some(all.len() as u64), "{query}");
        assert!(all.len() >= 11, "{query}: {all:?}");
        for count in [1, 4, 7] {
            let (paged, total) = walk(&f, query, count, false).await;
            assert_eq!((&paged, total), (&all, all.len() as u64), "{query} by index, {count} a page");
            // Cursors follow the listing's sort, else the resources' ids: the same set.
            let (mut by_cursor, total) = walk(&f, query, count, true).await;
            assert_eq!(total, all.len() as u64);
            let mut expected = all.clone();
            if !query.contains("sortBy") {
                by_cursor.sort();
                expected.sort();
            }
            assert_eq!(by_cursor, expected, "{query} by cursor, {count} a page");
        }
        // count=0: the total alone (RFC 7644 §3.4.2.4).
        let (_, _, none) = f.scim.call(&f.token, "GET", &format!("/Users?{query}&count=0"), None).await;
        assert_eq!(none["totalResults"].as_u64(), Some(all.len() as u64), "{none}");
        assert!(none["Resources"].as_array().is_none_or(Vec::is_empty), "{none}");
    }
    // A page read whole still honours the projection.
    let path = format!("/Users?filter={}&attributes=userName&count=2", urlencode(r#"userName sw "slice""#));
    let (_, _, page) = f.scim.call(&f.token, "GET", &path, None).await;
    let first = page["Resources"][0].as_object().unwrap();
    assert!(first.contains_key("userName") && first.contains_key("id") && !first.contains_key("emails"), "{page}");
}
