//! Property test of the User mapping: for random Users drawn over the whole
//! attribute list of RFC 7643 §4.1 and §4.3, POST then GET returns what was
//! sent (canonicalised), a PUT of what GET returned changes nothing, a
//! PATCH reads back, and the entry read over LDAP (the Rust ldap3 crate)
//! holds the values where the legacy applications look for them.

use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine;
use ldap3::{LdapConnAsync, Scope, SearchEntry};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

use crate::common::*;
use convergences::directory::TokenScope;

const CRETEIL: &str = "o=219400280,ou=organisations,dc=cig,dc=fr";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const ADMIN: &str = "cn=admin,dc=cig,dc=fr";

/// Text people type, accents and LDAP's special characters included.
fn text() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[A-Za-zéèçàŒœ0-9][A-Za-zéèçàŒœ0-9 $\\\\\"'#,+=-]{0,14}[A-Za-z0-9é]").unwrap()
}

fn opt<T: std::fmt::Debug + 'static>(s: impl Strategy<Value = T> + 'static) -> impl Strategy<Value = Option<T>> {
    proptest::option::weighted(0.6, s)
}

fn kind(types: &'static [&'static str]) -> BoxedStrategy<Option<String>> {
    if types.is_empty() {
        return opt(text()).boxed();
    }
    opt(prop_oneof![proptest::sample::select(types).prop_map(str::to_string), text()]).boxed()
}

/// Elements of a multi-valued attribute: value, type, display, primary (at most one).
fn elements(
    value: impl Strategy<Value = String> + 'static,
    types: &'static [&'static str],
) -> impl Strategy<Value = Vec<Value>> {
    proptest::collection::vec((value, kind(types), opt(text()), any::<bool>()), 0..3).prop_map(|items| {
        let mut primary_given = false;
        let mut out: Vec<Value> = Vec::new();
        for (v, t, d, p) in items {
            if out.iter().any(|e| e["value"] == v.as_str()) {
                continue;
            }
            let mut e = Map::new();
            e.insert("value".into(), v.into());
            if let Some(t) = t {
                e.insert("type".into(), t.into());
            }
            if let Some(d) = d {
                e.insert("display".into(), d.into());
            }
            if p && !primary_given {
                e.insert("primary".into(), true.into());
                primary_given = true;
            }
            out.push(Value::Object(e));
        }
        out
    })
}

fn email() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z]{1,8}\\.[a-z]{1,8}@creteil\\.fr", "[a-zé]{2,8}@exemple\\.fr"]
}

fn phone() -> impl Strategy<Value = String> {
    prop_oneof!["\\+33 [1-9]( [0-9]{2}){4}", "tel:\\+33-[0-9]{9}", "[0-9]{2}é[0-9]{2}"]
}

fn address() -> impl Strategy<Value = Value> {
    (
        opt(text()),
        opt(text()),
        opt(text()),
        opt(text()),
        opt("[0-9]{5}"),
        opt(prop_oneof![Just("FR".to_string()), "[a-zA-Z]{2}", text()]),
        proptest::sample::select(&["work", "home", "other"][..]),
    )
        .prop_map(|(formatted, street, locality, region, postal, country, t)| {
            let mut e = Map::new();
            for (k, v) in [
                ("formatted", formatted),
                ("streetAddress", street),
                ("locality", locality),
                ("region", region),
                ("postalCode", postal),
                ("country", country),
            ] {
                if let Some(v) = v {
                    e.insert(k.into(), v.into());
                }
            }
            e.insert("type".into(), t.into());
            Value::Object(e)
        })
}

fn certificate() -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<u8>(), 8..48).prop_map(|b| base64::engine::general_purpose::STANDARD.encode(b))
}

/// A User over the whole attribute list, without userName (set per case).
fn user() -> impl Strategy<Value = Value> {
    let name = (opt(text()), opt(text()), opt(text()), opt(text()), opt(text()), opt(text()));
    let singles = (
        opt(text()),
        opt(text()),
        opt("https://[a-z]{3,9}\\.example/[a-z]{1,8}"),
        opt(text()),
        opt(text()),
        opt("(fr|en|de)-(FR|GB|DE)"),
        opt("(fr|en)-(FR|CA)"),
        opt(proptest::sample::select(&["Europe/Paris", "America/Cayenne", "Indian/Reunion"][..])),
        opt(any::<bool>()),
    );
    let multis = (
        elements(email(), &["work", "home", "other"]),
        elements(phone(), &["work", "mobile", "fax", "pager", "home", "other"]),
        elements(text(), &["xmpp", "skype"]),
        elements("https://photos\\.example/[a-z]{4}\\.jpg", &["photo", "thumbnail"]),
        proptest::collection::vec(address(), 0..3),
        elements(
            proptest::sample::select(&["bip", "snapi-cap", "commission-reforme"][..]).prop_map(str::to_string),
            &[],
        ),
        elements(text(), &[]),
        elements(certificate(), &[]),
    );
    let enterprise = (opt(text()), opt(text()), opt(text()), opt(text()), opt(text()), any::<bool>());
    (name, singles, multis, enterprise).prop_map(|(name, singles, multis, enterprise)| {
        let mut u = Map::new();
        let mut n = Map::new();
        let (formatted, family, given, middle, prefix, suffix) = name;
        for (k, v) in [
            ("formatted", formatted),
            ("familyName", family),
            ("givenName", given),
            ("middleName", middle),
            ("honorificPrefix", prefix),
            ("honorificSuffix", suffix),
        ] {
            if let Some(v) = v {
                n.insert(k.into(), v.into());
            }
        }
        if !n.is_empty() {
            u.insert("name".into(), Value::Object(n));
        }
        let (display, nick, profile, title, user_type, lang, locale, tz, active) = singles;
        for (k, v) in [
            ("displayName", display),
            ("nickName", nick),
            ("profileUrl", profile),
            ("title", title),
            ("userType", user_type),
            ("preferredLanguage", lang),
            ("locale", locale),
            ("timezone", tz.map(str::to_string)),
        ] {
            if let Some(v) = v {
                u.insert(k.into(), v.into());
            }
        }
        if let Some(a) = active {
            u.insert("active".into(), a.into());
        }
        let (emails, phones, ims, photos, addresses, entitlements, roles, certificates) = multis;
        // At most one primary address, as for the others.
        let mut addresses = addresses;
        for (i, a) in addresses.iter_mut().enumerate() {
            if i == 0 {
                a["primary"] = true.into();
            }
        }
        for (k, v) in [
            ("emails", emails),
            ("phoneNumbers", phones),
            ("ims", ims),
            ("photos", photos),
            ("addresses", addresses),
            ("entitlements", entitlements),
            ("roles", roles),
            ("x509Certificates", certificates),
        ] {
            if !v.is_empty() {
                u.insert(k.into(), Value::Array(v));
            }
        }
        let (number, cost, org, division, department, _) = enterprise;
        let mut e = Map::new();
        for (k, v) in [
            ("employeeNumber", number),
            ("costCenter", cost),
            ("organization", org),
            ("division", division),
            ("department", department),
        ] {
            if let Some(v) = v {
                e.insert(k.into(), v.into());
            }
        }
        if !e.is_empty() {
            u.insert(ENTERPRISE.into(), Value::Object(e));
        }
        Value::Object(u)
    })
}

/// What the server adds to a User it returns: the document less those.
fn as_sent(returned: &Value) -> Value {
    let mut r = returned.clone();
    let o = r.as_object_mut().unwrap();
    for k in ["id", "meta", "schemas", "groups", "urn:convergences:params:scim:schemas:extension:cig:2.0:Agent"] {
        o.remove(k);
    }
    if let Some(Value::Object(e)) = o.get_mut(ENTERPRISE)
        && let Some(Value::Object(m)) = e.get_mut("manager")
    {
        m.remove("$ref");
        m.remove("displayName");
    }
    r
}

/// The document a client sent, as the server keeps it: `active` true unless said.
fn canonical(sent: &Value) -> Value {
    let mut s = sent.clone();
    let o = s.as_object_mut().unwrap();
    o.remove("schemas");
    o.entry("active").or_insert(Value::Bool(true));
    s
}

/// A Country String (RFC 4517 §3.3.4): two printable characters; `c` holds only those.
fn country_code(c: &str) -> bool {
    c.len() == 2 && c.bytes().all(|b| b.is_ascii_alphanumeric() || b" '()+,-./:?=".contains(&b))
}

fn ldap_values(e: &SearchEntry, attr: &str) -> Vec<String> {
    e.attrs.iter().find(|(k, _)| k.eq_ignore_ascii_case(attr)).map(|(_, v)| v.clone()).unwrap_or_default()
}

#[test]
fn a_user_reads_back_as_it_was_sent_over_scim_and_its_values_are_where_ldap_looks() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let srv = rt.block_on(TestServer::start());
    let scim = Scim::new(&srv);
    let token = token(&srv, TokenScope::Organisation(dn(CRETEIL)));
    let (_, _, manager) = rt.block_on(scim.call(
        &token,
        "POST",
        "/Users",
        Some(&json!({"userName": "la.cheffe", "displayName": "La Cheffe"})),
    ));
    let manager_id = manager["id"].as_str().unwrap().to_string();
    let ldap = rt.block_on(async {
        let (conn, mut ldap) = LdapConnAsync::new(&srv.url).await.unwrap();
        ldap3::drive!(conn);
        ldap.simple_bind(ADMIN, ADMIN_PASSWORD).await.unwrap().success().unwrap();
        ldap
    });
    let ldap = std::sync::Mutex::new(ldap);
    let n = AtomicUsize::new(0);
    // More with SCIM_ROUNDTRIP_CASES=n, to look for a rare case.
    let cases = std::env::var("SCIM_ROUNDTRIP_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(if std::env::var("CI").is_ok() { 48 } else { 24 });
    let mut runner =
        proptest::test_runner::TestRunner::new(proptest::test_runner::Config { cases, ..Default::default() });
    runner
        .run(&(user(), any::<bool>()), |(mut sent, with_manager)| {
            let i = n.fetch_add(1, Ordering::Relaxed);
            let user_name = format!("agent.{i}");
            sent["userName"] = user_name.clone().into();
            if with_manager {
                let e = sent.as_object_mut().unwrap().entry(ENTERPRISE).or_insert_with(|| json!({}));
                e["manager"] = json!({"value": manager_id});
            }
            // POST, then GET: what was sent comes back.
            let (status, _, created) = rt.block_on(scim.call(&token, "POST", "/Users", Some(&sent)));
            prop_assert_eq!(status, 201, "{}", created);
            let id = created["id"].as_str().unwrap().to_string();
            let (_, _, read) = rt.block_on(scim.call(&token, "GET", &format!("/Users/{id}"), None));
            prop_assert_eq!(as_sent(&read), canonical(&sent));
            prop_assert_eq!(as_sent(&created), canonical(&sent));
            if with_manager {
                prop_assert_eq!(&read[ENTERPRISE]["manager"]["displayName"], "La Cheffe");
            }

            // A PUT of what GET returned changes nothing.
            let (status, _, put) = rt.block_on(scim.call(&token, "PUT", &format!("/Users/{id}"), Some(&read)));
            prop_assert_eq!(status, 200, "{}", put);
            prop_assert_eq!(as_sent(&put), as_sent(&read));

            // Over LDAP, the values are in the standard attributes.
            let entry = rt.block_on(async {
                let mut l = ldap.lock().unwrap().clone();
                let (rs, _) = l
                    .search("dc=cig,dc=fr", Scope::Subtree, &format!("(uid={user_name})"), vec!["*", "memberOf"])
                    .await
                    .unwrap()
                    .success()
                    .unwrap();
                SearchEntry::construct(rs.into_iter().next().unwrap())
            });
            let texts = |attr: &str| -> Vec<String> {
                sent[attr]
                    .as_array()
                    .map(|a| a.iter().filter_map(|e| e["value"].as_str().map(str::to_string)).collect())
                    .unwrap_or_default()
            };
            // Every email that is ASCII is in mail, the primary one first.
            let mut mails: Vec<String> = texts("emails").into_iter().filter(|m| m.is_ascii()).collect();
            if let Some(p) = sent["emails"]
                .as_array()
                .and_then(|a| a.iter().find(|e| e["primary"] == true))
                .and_then(|e| e["value"].as_str())
                && p.is_ascii()
            {
                mails.retain(|m| m != p);
                mails.insert(0, p.to_string());
            }
            prop_assert_eq!(ldap_values(&entry, "mail"), mails);
            let of_type = |t: &str| -> Vec<String> {
                sent["phoneNumbers"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter(|e| e["type"] == t)
                            .filter_map(|e| e["value"].as_str())
                            .filter(|v| v.is_ascii())
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let mut work = of_type("work");
            work.sort();
            let mut held = ldap_values(&entry, "telephoneNumber");
            held.sort();
            prop_assert_eq!(held, work);
            let mut mobile = of_type("mobile");
            mobile.sort();
            let mut held = ldap_values(&entry, "mobile");
            held.sort();
            prop_assert_eq!(held, mobile);
            for (scim_attr, ldap_attr) in [
                ("displayName", "displayName"),
                ("title", "title"),
                ("userType", "employeeType"),
                ("preferredLanguage", "preferredLanguage"),
                ("profileUrl", "labeledURI"),
                ("nickName", "cigNickName"),
            ] {
                let want: Vec<String> = sent[scim_attr].as_str().map(|s| vec![s.to_string()]).unwrap_or_default();
                prop_assert_eq!(ldap_values(&entry, ldap_attr), want, "{}", scim_attr);
            }
            for (scim_attr, ldap_attr) in [
                ("employeeNumber", "employeeNumber"),
                ("department", "departmentNumber"),
                ("organization", "o"),
                ("costCenter", "cigCostCenter"),
                ("division", "cigDivision"),
            ] {
                let want: Vec<String> =
                    sent[ENTERPRISE][scim_attr].as_str().map(|s| vec![s.to_string()]).unwrap_or_default();
                prop_assert_eq!(ldap_values(&entry, ldap_attr), want, "{}", scim_attr);
            }
            if let Some(work) = sent["addresses"].as_array().and_then(|a| a.iter().find(|e| e["type"] == "work")) {
                for (sub, ldap_attr) in
                    [("streetAddress", "street"), ("locality", "l"), ("region", "st"), ("postalCode", "postalCode")]
                {
                    let want: Vec<String> = work[sub].as_str().map(|s| vec![s.to_string()]).unwrap_or_default();
                    prop_assert_eq!(ldap_values(&entry, ldap_attr), want, "{}", sub);
                }
                let country: Vec<String> = work["country"]
                    .as_str()
                    .filter(|c| country_code(c))
                    .map(|c| vec![c.to_string()])
                    .unwrap_or_default();
                prop_assert_eq!(ldap_values(&entry, "c"), country);
            }
            if with_manager {
                prop_assert_eq!(
                    ldap_values(&entry, "manager"),
                    vec!["uid=la.cheffe,ou=agents,o=219400280,ou=organisations,dc=cig,dc=fr".to_string()]
                );
            }
            let mut apps: Vec<String> =
                texts("entitlements").iter().map(|a| format!("cn={a},ou=applications,dc=cig,dc=fr")).collect();
            apps.sort();
            let mut member_of: Vec<String> =
                ldap_values(&entry, "memberOf").into_iter().filter(|g| g.contains("ou=applications")).collect();
            member_of.sort();
            prop_assert_eq!(member_of, apps);
            prop_assert_eq!(
                entry.bin_attrs.get("userCertificate").map_or(0, Vec::len)
                    + ldap_values(&entry, "userCertificate").len(),
                texts("x509Certificates").len()
            );

            // A PATCH of a few attributes reads back, and leaves the others.
            let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [
                {"op": "replace", "path": "displayName", "value": format!("Patché {i}")},
                {"op": "add", "path": "emails", "value": [{"value": format!("patch{i}@creteil.fr"), "type": "home"}]},
                {"op": "replace", "path": format!("{ENTERPRISE}:department"), "value": "Paie"},
            ]});
            let (status, _, patched) = rt.block_on(scim.call(&token, "PATCH", &format!("/Users/{id}"), Some(&patch)));
            prop_assert_eq!(status, 200, "{}", patched);
            let mut expected = canonical(&sent);
            expected["displayName"] = format!("Patché {i}").into();
            let emails = expected.as_object_mut().unwrap().entry("emails").or_insert_with(|| json!([]));
            emails.as_array_mut().unwrap().push(json!({"value": format!("patch{i}@creteil.fr"), "type": "home"}));
            expected.as_object_mut().unwrap().entry(ENTERPRISE).or_insert_with(|| json!({}))["department"] =
                "Paie".into();
            let (_, _, reread) = rt.block_on(scim.call(&token, "GET", &format!("/Users/{id}"), None));
            prop_assert_eq!(as_sent(&reread), expected);
            let (status, _, _) = rt.block_on(scim.call(&token, "DELETE", &format!("/Users/{id}"), None));
            prop_assert_eq!(status, 204);
            Ok(())
        })
        .unwrap();
}
