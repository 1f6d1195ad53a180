//! The web console over HTTP, as a browser without scripts uses it: forms
//! posted with their token, cookies sent back, redirects read. Every page
//! is judged by the same policy as LDAP and SCIM (issue 22).

use std::collections::HashMap;

use ldap3::{LdapConnAsync, Scope, SearchEntry};

use crate::common::*;

const CRETEIL: &str = "219400280";
const VITRY: &str = "217500016";

/// A visitor: its cookies, and the last page's anti-forgery token.
struct Visit {
    http: reqwest::Client,
    base: String,
    cookies: HashMap<String, String>,
}

struct Page {
    status: u16,
    location: String,
    body: String,
    headers: reqwest::header::HeaderMap,
}

impl Page {
    /// The first form token on the page.
    fn token(&self) -> String {
        let at = self.body.find("name=\"jeton\" value=\"").expect("a form token on the page") + 20;
        self.body[at..].split('"').next().unwrap().to_string()
    }
}

impl Visit {
    fn new(srv: &TestServer) -> Visit {
        let addr = srv.handle.as_ref().unwrap().console_http_addr.unwrap();
        Visit {
            http: reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap(),
            base: format!("http://{addr}"),
            cookies: HashMap::new(),
        }
    }

    fn keep_cookies(&mut self, headers: &reqwest::header::HeaderMap) {
        for v in headers.get_all("set-cookie") {
            let v = v.to_str().unwrap();
            let (pair, attrs) = v.split_once(';').unwrap_or((v, ""));
            let (k, val) = pair.split_once('=').unwrap();
            if attrs.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_string(), val.to_string());
            }
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    async fn page(&mut self, resp: reqwest::Response) -> Page {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        self.keep_cookies(&headers);
        let location = headers.get("location").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
        Page { status, location, body: resp.text().await.unwrap(), headers }
    }

    async fn get(&mut self, path: &str) -> Page {
        let resp =
            self.http.get(format!("{}{path}", self.base)).header("cookie", self.cookie_header()).send().await.unwrap();
        self.page(resp).await
    }

    async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_body(fields))
            .send()
            .await
            .unwrap();
        self.page(resp).await
    }

    /// Post a file as a browser does (multipart/form-data), with the token.
    async fn post_file(&mut self, path: &str, token: &str, file: &[u8]) -> Page {
        let boundary = "----convergences-test-boundary";
        let mut body = Vec::new();
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"jeton\"\r\n\r\n{token}\r\n").as_bytes(),
        );
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"fichier\"; filename=\"agents.csv\"\r\nContent-Type: text/csv\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(file);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .header("content-type", format!("multipart/form-data; boundary={boundary}"))
            .body(body)
            .send()
            .await
            .unwrap();
        self.page(resp).await
    }

    /// Post a form of the page at `from`, with that page's token.
    async fn submit(&mut self, from: &str, action: &str, fields: &[(&str, &str)]) -> Page {
        let token = self.get(from).await.token();
        let mut all = vec![("jeton", token.as_str())];
        all.extend_from_slice(fields);
        self.post(action, &all).await
    }

    async fn sign_in(&mut self, name: &str, password: &str) -> Page {
        self.submit("/connexion", "/connexion", &[("identifiant", name), ("mot_de_passe", password), ("suite", "")])
            .await
    }
}

fn form_body(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| {
            let enc = |s: &str| {
                s.bytes()
                    .map(|b| {
                        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                            (b as char).to_string()
                        } else {
                            format!("%{b:02X}")
                        }
                    })
                    .collect::<String>()
            };
            format!("{}={}", enc(k), enc(v))
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// An agent's console id (entryUUID), read as the administrator.
fn agent_id(srv: &TestServer, uid: &str, siren: &str) -> String {
    let e = srv
        .directory()
        .get(&dn(&format!("uid={uid},ou=agents,o={siren},ou=organisations,dc=cig,dc=fr")))
        .unwrap()
        .unwrap();
    e.first_str("entryUUID").unwrap().to_string()
}

async fn referent_of_creteil(srv: &TestServer) -> Visit {
    let mut v = Visit::new(srv);
    let p = v.sign_in("hdupre", seed_password()).await;
    assert_eq!(p.status, 303, "{}", p.body);
    v
}

fn seed_password() -> &'static str {
    convergences::seed::DEMO_PASSWORD
}

#[tokio::test]
async fn a_referent_sees_only_their_own_organisation() {
    let srv = TestServer::start().await;
    let mut v = referent_of_creteil(&srv).await;
    let home = v.get("/accueil").await;
    assert_eq!(home.status, 200);
    assert!(home.body.contains("Commune de Créteil"), "{}", home.body);
    assert!(!home.body.contains("Vitry"), "{}", home.body);
    let list = v.get(&format!("/organisations/{CRETEIL}/agents")).await;
    assert!(list.body.contains("jdupont") && list.body.contains("3 agents"), "{}", list.body);
    assert!(!list.body.contains("floeuvre"));
}

/// Every page of an organisation (GET) and every form (POST), for `siren`
/// and the agent or bin id `id`.
fn organisation_routes(siren: &str, id: &str) -> (Vec<String>, Vec<String>) {
    let org = format!("/organisations/{siren}");
    let gets = vec![
        format!("{org}/agents"),
        format!("{org}/agents?q=a&tri=courriel&page=2"),
        format!("{org}/agents/nouveau"),
        format!("{org}/agents/{id}"),
        format!("{org}/agents/{id}?modifier=1"),
        format!("{org}/groupes"),
        format!("{org}/corbeille"),
        format!("{org}/journal"),
        format!("{org}/import"),
        format!("{org}/export.csv"),
    ];
    let posts = vec![
        format!("{org}/agents"),
        format!("{org}/agents/applications"),
        format!("{org}/agents/{id}"),
        format!("{org}/agents/{id}/etat"),
        format!("{org}/agents/{id}/mot-de-passe"),
        format!("{org}/agents/{id}/deverrouiller"),
        format!("{org}/agents/{id}/applications"),
        format!("{org}/agents/{id}/supprimer"),
        format!("{org}/corbeille/{id}/restaurer"),
        format!("{org}/import/confirmer"),
    ];
    (gets, posts)
}

#[tokio::test]
async fn every_route_with_another_organisations_ids_is_not_found() {
    let srv = TestServer::start().await;
    let mut v = referent_of_creteil(&srv).await;
    let theirs = agent_id(&srv, "floeuvre", VITRY);
    let ours = agent_id(&srv, "jdupont", CRETEIL);
    let token = v.get("/accueil").await.token();
    let (mut gets, mut posts) = organisation_routes(VITRY, &theirs);
    // Their agent through our organisation's pages.
    let (our_gets, our_posts) = organisation_routes(CRETEIL, &theirs);
    gets.extend(our_gets.into_iter().filter(|p| p.contains(&theirs)));
    posts.extend(our_posts.into_iter().filter(|p| p.contains(&theirs)));
    gets.push(format!("/organisations/{CRETEIL}/agents/not-a-uuid"));
    gets.push("/organisations/999999999/agents".to_string());
    for path in &gets {
        let p = v.get(path).await;
        assert_eq!(p.status, 404, "GET {path}: {}", p.body);
    }
    for path in &posts {
        let fields = [
            ("jeton", token.as_str()),
            ("actif", "non"),
            ("confirmer", "oui"),
            ("prenom", "X"),
            ("nom", "Y"),
            ("agent", &theirs),
        ];
        let p = v.post(path, &fields).await;
        assert_eq!(p.status, 404, "POST {path}: {}", p.body);
    }
    // Nothing of theirs changed; ours is still reachable.
    let floeuvre = srv.directory().get(&dn(&format!("uid=floeuvre,ou=agents,o={VITRY},ou=organisations,dc=cig,dc=fr")));
    assert_eq!(floeuvre.unwrap().unwrap().first_str("cigActive"), Some("TRUE"));
    assert_eq!(v.get(&format!("/organisations/{CRETEIL}/agents/{ours}")).await.status, 200);
}

#[tokio::test]
async fn a_signed_out_visitor_is_sent_to_sign_in_from_every_route() {
    let srv = TestServer::start().await;
    let mut v = Visit::new(&srv);
    let id = agent_id(&srv, "jdupont", CRETEIL);
    let (mut gets, posts) = organisation_routes(CRETEIL, &id);
    gets.extend(
        ["/accueil", "/compte", "/compte/mot-de-passe", "/administration", "/administration/journal"].map(String::from),
    );
    for path in &gets {
        let p = v.get(path).await;
        assert_eq!(p.status, 303, "GET {path}");
        assert!(p.location.starts_with("/connexion?suite="), "GET {path}: {}", p.location);
    }
    for path in posts.iter().chain(&["/deconnexion".to_string(), "/compte/mot-de-passe".to_string()]) {
        let p = v.post(path, &[("jeton", "x"), ("actif", "non")]).await;
        assert_eq!(p.status, 303, "POST {path}");
    }
    let d = srv.directory();
    let agent =
        d.get(&dn(&format!("uid=jdupont,ou=agents,o={CRETEIL},ou=organisations,dc=cig,dc=fr"))).unwrap().unwrap();
    assert_eq!(agent.first_str("cigActive"), Some("TRUE"));
    // The accessibility statement is for everyone.
    assert_eq!(v.get("/accessibilite").await.status, 200);
}

#[tokio::test]
async fn a_form_posted_without_its_token_is_refused_and_changes_nothing() {
    let srv = TestServer::start().await;
    let mut v = referent_of_creteil(&srv).await;
    let id = agent_id(&srv, "jdupont", CRETEIL);
    let path = format!("/organisations/{CRETEIL}/agents/{id}/etat");
    for fields in [vec![("actif", "non")], vec![("actif", "non"), ("jeton", "0123456789abcdef")]] {
        let p = v.post(&path, &fields).await;
        assert_eq!(p.status, 403, "{}", p.body);
        assert!(p.body.contains("Formulaire expiré"), "{}", p.body);
    }
    let agent = srv.directory().get(&dn(&format!("uid=jdupont,ou=agents,o={CRETEIL},ou=organisations,dc=cig,dc=fr")));
    assert_eq!(agent.unwrap().unwrap().first_str("cigActive"), Some("TRUE"));
    // With its token, the same form suspends.
    let p = v.submit(&format!("/organisations/{CRETEIL}/agents/{id}"), &path, &[("actif", "non")]).await;
    assert_eq!(p.status, 303);
    assert!(v.get(&p.location).await.body.contains("Suspendu"));
}

#[tokio::test]
async fn a_sign_in_form_from_another_site_is_refused() {
    let srv = TestServer::start().await;
    let mut v = Visit::new(&srv);
    let p = v.post("/connexion", &[("identifiant", "hdupre"), ("mot_de_passe", seed_password()), ("jeton", "x")]).await;
    assert_eq!(p.status, 403, "{}", p.body);
    assert!(v.get("/accueil").await.status == 303, "no session was opened");
}

#[tokio::test]
async fn a_signed_out_visitor_signs_in_and_comes_back_to_the_page_asked_for() {
    let srv = TestServer::start().await;
    let mut v = Visit::new(&srv);
    let asked = format!("/organisations/{CRETEIL}/agents?q=dup");
    let p = v.get(&asked).await;
    assert_eq!(p.status, 303);
    assert!(p.location.starts_with("/connexion?suite="), "{}", p.location);
    let form = v.get(&p.location).await;
    assert!(form.body.contains("value=\"/organisations/219400280/agents?q=dup\""), "{}", form.body);
    let token = form.token();
    let signed = v
        .post(
            "/connexion",
            &[("jeton", &token), ("identifiant", "hdupre"), ("mot_de_passe", seed_password()), ("suite", &asked)],
        )
        .await;
    assert_eq!((signed.status, signed.location.as_str()), (303, asked.as_str()));
    let list = v.get(&asked).await;
    assert!(
        list.body.contains("Dupont") && list.body.contains("Dupré") && !list.body.contains("Martin"),
        "{}",
        list.body
    );
    // A next page elsewhere is not followed (no open redirect).
    let mut other = Visit::new(&srv);
    let token = other.get("/connexion").await.token();
    let p = other
        .post(
            "/connexion",
            &[
                ("jeton", &token),
                ("identifiant", "hdupre"),
                ("mot_de_passe", seed_password()),
                ("suite", "//evil.example"),
            ],
        )
        .await;
    assert_eq!(p.location, "/accueil");
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_name_get_the_same_answer() {
    let srv = TestServer::start().await;
    let mut v = Visit::new(&srv);
    let wrong = v.sign_in("hdupre", "not-the-password").await;
    let unknown = v.sign_in("nobody-here", "not-the-password").await;
    assert_eq!((wrong.status, unknown.status), (401, 401));
    let message =
        |p: &Page| p.body.split("role=\"alert\"").nth(1).map(|s| s.split("</div>").next().unwrap().to_string());
    assert_eq!(message(&wrong), message(&unknown));
    assert!(wrong.body.contains("Identifiant ou mot de passe incorrect"));
    // What was typed stays; the password does not.
    assert!(wrong.body.contains("value=\"hdupre\""));
    assert!(!wrong.body.contains("not-the-password"));
}

#[tokio::test]
async fn pages_forbid_scripts_and_framing_and_the_session_cookie_is_strict() {
    let srv = TestServer::start().await;
    let mut v = Visit::new(&srv);
    let form = v.get("/connexion").await;
    let csp = form.headers.get("content-security-policy").unwrap().to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && !csp.contains("unsafe-inline") && csp.contains("frame-ancestors 'none'")
    );
    assert_eq!(form.headers.get("x-frame-options").unwrap(), "DENY");
    assert!(!form.body.contains("<script"), "no script on any page");
    let p = v.sign_in("hdupre", seed_password()).await;
    let cookie = p
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|c| c.to_str().unwrap())
        .find(|c| c.starts_with("convergences="))
        .unwrap();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    // Over HTTPS the cookie is Secure too (curl: reqwest is built without TLS here).
    if have("curl") {
        let addr = srv.handle.as_ref().unwrap().console_addr;
        let (code, out, err) =
            run("curl", &["-sk", "-D", "-", "-o", "/dev/null", &format!("https://{addr}/connexion")], None).await;
        assert_eq!(code, 0, "{err}");
        let set = out.lines().find(|l| l.to_ascii_lowercase().starts_with("set-cookie:")).unwrap();
        assert!(set.contains("__Host-") && set.contains("; Secure"), "{set}");
        assert!(out.to_ascii_lowercase().contains("strict-transport-security"), "{out}");
    }
    // Signed out, the cookie no longer opens anything.
    let token = v.get("/accueil").await.token();
    let saved = v.cookies.clone();
    assert_eq!(v.post("/deconnexion", &[("jeton", &token)]).await.status, 303);
    v.cookies = saved;
    assert_eq!(v.get("/accueil").await.status, 303);
}

#[tokio::test]
async fn an_idle_session_returns_to_sign_in() {
    let srv = TestServer::start_with(|c| c.console_limits.idle_minutes = 0).await;
    let mut v = Visit::new(&srv);
    assert_eq!(v.sign_in("hdupre", seed_password()).await.status, 303);
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let p = v.get("/accueil").await;
    assert_eq!((p.status, p.location.as_str()), (303, "/connexion?suite=/accueil"));
}

#[tokio::test]
async fn an_agent_sees_their_own_account_and_no_organisation() {
    let srv = TestServer::start().await;
    let mut v = Visit::new(&srv);
    assert_eq!(v.sign_in("jdupont", seed_password()).await.status, 303);
    let home = v.get("/accueil").await;
    assert!(home.body.contains("n'administre aucune collectivité"), "{}", home.body);
    let account = v.get("/compte").await;
    assert!(account.body.contains("jdupont@219400280.example.fr"), "{}", account.body);
    assert!(account.body.contains("<li>bip</li>"), "{}", account.body);
    for path in [format!("/organisations/{CRETEIL}/agents"), format!("/organisations/{CRETEIL}/agents/nouveau")] {
        assert_eq!(v.get(&path).await.status, 404, "{path}");
    }
}

#[tokio::test]
async fn a_refused_form_says_why_next_to_the_field_and_keeps_what_was_typed() {
    let srv = TestServer::start().await;
    let mut v = referent_of_creteil(&srv).await;
    let new = format!("/organisations/{CRETEIL}/agents/nouveau");
    let create = format!("/organisations/{CRETEIL}/agents");
    let p = v.submit(&new, &create, &[("prenom", "Anne"), ("nom", ""), ("fin", "2026-02-30")]).await;
    assert_eq!(p.status, 400);
    assert!(p.body.contains("id=\"erreur-nom\""), "{}", p.body);
    assert!(p.body.contains("Le champ « Nom » est obligatoire."), "{}", p.body);
    assert!(p.body.contains("id=\"erreur-fin\"") && p.body.contains("aria-describedby=\"aide-fin erreur-fin\""));
    assert!(p.body.contains("value=\"Anne\""), "what was typed is kept");
    // A uid another organisation's agent holds: refused by the directory, next to the field.
    let p = v.submit(&new, &create, &[("identifiant", "floeuvre"), ("prenom", "Fabienne"), ("nom", "Loeuvre")]).await;
    assert_eq!(p.status, 409, "{}", p.body);
    assert!(p.body.contains("id=\"erreur-identifiant\"") && p.body.contains("déjà utilisé"), "{}", p.body);
    assert!(p.body.contains("value=\"Fabienne\""));
    // Nothing was half-created.
    let d = srv.directory();
    assert!(
        d.get(&dn(&format!("uid=floeuvre,ou=agents,o={CRETEIL},ou=organisations,dc=cig,dc=fr"))).unwrap().is_none()
    );
}

#[tokio::test]
async fn an_edit_made_from_a_stale_page_is_refused_rather_than_overwriting() {
    let srv = TestServer::start().await;
    let mut v = referent_of_creteil(&srv).await;
    let id = agent_id(&srv, "cmartin", CRETEIL);
    let edit = v.get(&format!("/organisations/{CRETEIL}/agents/{id}?modifier=1")).await;
    assert!(edit.body.contains("value=\"Céline\""), "{}", edit.body);
    let token = edit.token();
    let revision = edit
        .body
        .split("name=\"revision\" type=\"hidden\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let path = format!("/organisations/{CRETEIL}/agents/{id}");
    // Someone else changes the agent meanwhile.
    let other = v
        .post(
            &path,
            &[("jeton", &token), ("prenom", "Céline"), ("nom", "Martin"), ("fonction", "DRH"), ("revision", &revision)],
        )
        .await;
    assert_eq!(other.status, 303, "{}", other.body);
    let stale = v
        .post(&path, &[("jeton", &token), ("prenom", "Céline"), ("nom", "Martin-Roux"), ("revision", &revision)])
        .await;
    assert_eq!(stale.status, 409, "{}", stale.body);
    assert!(stale.body.contains("modifiée entre-temps"), "{}", stale.body);
    let e = srv
        .directory()
        .get(&dn(&format!("uid=cmartin,ou=agents,o={CRETEIL},ou=organisations,dc=cig,dc=fr")))
        .unwrap()
        .unwrap();
    assert_eq!((e.first_str("sn"), e.first_str("title")), (Some("Martin"), Some("DRH")));
}

#[tokio::test]
async fn a_deleted_agent_waits_in_the_bin_and_comes_back_with_its_id() {
    let srv = TestServer::start().await;
    let mut v = referent_of_creteil(&srv).await;
    let id = agent_id(&srv, "cmartin", CRETEIL);
    let page = format!("/organisations/{CRETEIL}/agents/{id}");
    let unconfirmed = v.submit(&page, &format!("{page}/supprimer"), &[]).await;
    assert_eq!(unconfirmed.status, 303);
    assert!(v.get(&page).await.body.contains("Cochez la case"), "nothing deleted without the confirmation");
    let deleted = v.submit(&page, &format!("{page}/supprimer"), &[("confirmer", "oui")]).await;
    assert_eq!(deleted.status, 303);
    assert_eq!(v.get(&page).await.status, 404);
    let bin_path = format!("/organisations/{CRETEIL}/corbeille");
    let bin = v.get(&bin_path).await;
    assert!(bin.body.contains("cmartin"), "{}", bin.body);
    let restored = v.submit(&bin_path, &format!("{bin_path}/{id}/restaurer"), &[]).await;
    assert_eq!((restored.status, restored.location.as_str()), (303, page.as_str()));
    assert!(v.get(&page).await.body.contains("Martin Céline"));
}

/// The first scenario of issue 22 over HTTP: create, grant BIP, reset; the
/// agent must change the password before anything else; then BIP's service
/// account finds the agent over LDAP and the agent binds with it.
#[tokio::test]
async fn a_referent_creates_an_agent_grants_bip_and_resets_the_password_which_the_agent_then_changes() {
    let srv = TestServer::start().await;
    let mut r = referent_of_creteil(&srv).await;
    let created = r
        .submit(
            &format!("/organisations/{CRETEIL}/agents/nouveau"),
            &format!("/organisations/{CRETEIL}/agents"),
            &[("prenom", "Hélène"), ("nom", "Dupré"), ("courriel", "helene.dupre2@creteil.example.fr")],
        )
        .await;
    assert_eq!(created.status, 303, "{}", created.body);
    let page = created.location.clone();
    let shown = r.get(&page).await;
    // hdupre is taken: the next free uid was proposed.
    assert!(shown.body.contains(">hdupre2<"), "{}", shown.body);
    let granted = r.submit(&page, &format!("{page}/applications"), &[("application", "bip")]).await;
    assert_eq!(granted.status, 303);
    assert!(r.get(&page).await.body.contains("value=\"bip\" checked"));
    let reset = r.submit(&page, &format!("{page}/mot-de-passe"), &[]).await;
    assert_eq!(reset.status, 303);
    let shown = r.get(&page).await;
    let generated =
        shown.body.split("id=\"mot-de-passe-genere\">").nth(1).unwrap().split('<').next().unwrap().to_string();
    assert!(generated.len() >= 12);
    assert!(!r.get(&page).await.body.contains(&generated), "shown once");

    let mut agent = Visit::new(&srv);
    let signed = agent.sign_in("hdupre2", &generated).await;
    assert_eq!((signed.status, signed.location.as_str()), (303, "/compte/mot-de-passe"));
    assert_eq!(agent.get("/compte").await.location, "/compte/mot-de-passe", "nothing else before the change");
    let form = agent.get("/compte/mot-de-passe").await;
    assert!(form.body.contains("Au moins 12 caractères"), "the policy is explained first: {}", form.body);
    let weak = agent
        .submit(
            "/compte/mot-de-passe",
            "/compte/mot-de-passe",
            &[("actuel", &generated), ("nouveau", "court"), ("confirmation", "court")],
        )
        .await;
    assert_eq!(weak.status, 400);
    assert!(weak.body.contains("id=\"erreur-nouveau\"") && weak.body.contains("trop court"), "{}", weak.body);
    let new_password = "Une-phrase-de-passe-2026";
    let changed = agent
        .submit(
            "/compte/mot-de-passe",
            "/compte/mot-de-passe",
            &[("actuel", &generated), ("nouveau", new_password), ("confirmation", new_password)],
        )
        .await;
    assert_eq!(changed.status, 303, "{}", changed.body);
    assert!(agent.get("/compte").await.body.contains("<li>bip</li>"));

    // Over LDAP: BIP's service account finds the agent by memberOf; the agent binds.
    let (conn, mut ldap) = LdapConnAsync::new(&srv.url).await.unwrap();
    ldap3::drive!(conn);
    ldap.simple_bind("cn=bip,ou=services,dc=cig,dc=fr", seed_password()).await.unwrap().success().unwrap();
    let (found, _) = ldap
        .search(
            "ou=organisations,dc=cig,dc=fr",
            Scope::Subtree,
            "(&(uid=hdupre2)(memberOf=cn=bip,ou=applications,dc=cig,dc=fr))",
            vec!["uid"],
        )
        .await
        .unwrap()
        .success()
        .unwrap();
    assert_eq!(found.len(), 1);
    let agent_dn = SearchEntry::construct(found.into_iter().next().unwrap()).dn;
    ldap.simple_bind(&agent_dn, new_password).await.unwrap().success().unwrap();
    let refused = ldap.simple_bind(&agent_dn, &generated).await.unwrap();
    assert_eq!(refused.rc, 49);
}

async fn administrator(srv: &TestServer) -> Visit {
    let mut v = Visit::new(srv);
    let p = v.sign_in("cn=admin,dc=cig,dc=fr", ADMIN_PASSWORD).await;
    assert_eq!(p.status, 303, "{}", p.body);
    v
}

#[tokio::test]
async fn administration_pages_are_not_found_for_a_referent_or_an_agent() {
    let srv = TestServer::start().await;
    let mut referent = referent_of_creteil(&srv).await;
    let mut agent = Visit::new(&srv);
    assert_eq!(agent.sign_in("jdupont", seed_password()).await.status, 303);
    let gets = [
        "/administration".to_string(),
        "/administration/organisations".to_string(),
        "/administration/organisations/nouvelle".to_string(),
        format!("/administration/organisations/{CRETEIL}"),
        format!("/administration/organisations/{CRETEIL}/modifier"),
        "/administration/journal".to_string(),
    ];
    let posts = [
        "/administration/organisations".to_string(),
        format!("/administration/organisations/{CRETEIL}/modifier"),
        format!("/administration/organisations/{CRETEIL}/referents"),
        format!("/administration/organisations/{CRETEIL}/referents/retirer"),
        format!("/administration/organisations/{CRETEIL}/jetons"),
        format!("/administration/organisations/{CRETEIL}/jetons/abcdef/revoquer"),
    ];
    for v in [&mut referent, &mut agent] {
        let token = v.get("/accueil").await.token();
        for path in &gets {
            assert_eq!(v.get(path).await.status, 404, "GET {path}");
        }
        for path in &posts {
            let p = v
                .post(
                    path,
                    &[
                        ("jeton", &token),
                        ("siren", "200066462"),
                        ("nom", "X"),
                        ("type", "affiliee"),
                        ("identifiant", "jdupont"),
                    ],
                )
                .await;
            assert_eq!(p.status, 404, "POST {path}: {}", p.body);
        }
    }
    assert!(srv.directory().get(&dn("o=200066462,ou=organisations,dc=cig,dc=fr")).unwrap().is_none());
    assert!(srv.directory().list_tokens().unwrap().is_empty());
}

#[tokio::test]
async fn an_organisation_is_created_whole_with_a_checked_siren_and_only_once() {
    let srv = TestServer::start().await;
    let mut admin = administrator(&srv).await;
    let new = "/administration/organisations/nouvelle";
    let create = "/administration/organisations";
    let p = admin.submit(new, create, &[("siren", "200066463"), ("nom", "Agglo"), ("type", "affiliee")]).await;
    assert_eq!(p.status, 400);
    assert!(p.body.contains("id=\"erreur-siren\"") && p.body.contains("value=\"Agglo\""), "{}", p.body);
    let p = admin
        .submit(
            new,
            create,
            &[("siren", "200066462"), ("nom", "Agglo"), ("type", "abonne-bip"), ("application", "bip")],
        )
        .await;
    assert_eq!((p.status, p.location.as_str()), (303, "/administration/organisations/200066462"));
    let d = srv.directory();
    for rdn in ["", "ou=agents,", "ou=groupes,", "cn=referents,"] {
        assert!(d.get(&dn(&format!("{rdn}o=200066462,ou=organisations,dc=cig,dc=fr"))).unwrap().is_some(), "{rdn}");
    }
    let org = d.get(&dn("o=200066462,ou=organisations,dc=cig,dc=fr")).unwrap().unwrap();
    assert_eq!((org.first_str("cigAffiliation"), org.first_str("cigApplication")), (Some("abonne-bip"), Some("bip")));
    let again = admin.submit(new, create, &[("siren", "200066462"), ("nom", "Autre"), ("type", "affiliee")]).await;
    assert_eq!(again.status, 409);
    assert!(again.body.contains("déjà ce SIREN"), "{}", again.body);
    let listed = admin.get("/administration/organisations?q=agglo").await;
    assert!(listed.body.contains("200066462") && !listed.body.contains(CRETEIL), "{}", listed.body);
}

#[tokio::test]
async fn a_designated_referent_manages_the_organisation_and_a_removed_one_no_longer_does() {
    let srv = TestServer::start().await;
    let mut admin = administrator(&srv).await;
    let page = format!("/administration/organisations/{CRETEIL}");
    let unknown = admin.submit(&page, &format!("{page}/referents"), &[("identifiant", "floeuvre")]).await;
    assert_eq!(unknown.status, 400);
    assert!(unknown.body.contains("id=\"erreur-referent\""), "another organisation's agent: {}", unknown.body);
    let added = admin.submit(&page, &format!("{page}/referents"), &[("identifiant", "cmartin")]).await;
    assert_eq!(added.status, 303);
    let mut cmartin = Visit::new(&srv);
    assert_eq!(cmartin.sign_in("cmartin", seed_password()).await.status, 303);
    assert_eq!(cmartin.get(&format!("/organisations/{CRETEIL}/agents")).await.status, 200);
    let removed = admin
        .submit(
            &page,
            &format!("{page}/referents/retirer"),
            &[("dn", "uid=cmartin,ou=agents,o=219400280,ou=organisations,dc=cig,dc=fr")],
        )
        .await;
    assert_eq!(removed.status, 303, "{}", removed.body);
    // At the next request: the groups are read again.
    assert_eq!(cmartin.get(&format!("/organisations/{CRETEIL}/agents")).await.status, 404);
}

#[tokio::test]
async fn a_scim_token_made_in_the_console_works_at_once_shows_its_last_use_and_stops_when_revoked() {
    let srv = TestServer::start().await;
    let mut admin = administrator(&srv).await;
    let page = format!("/administration/organisations/{CRETEIL}");
    let made = admin.submit(&page, &format!("{page}/jetons"), &[("nom", "SIRH de Créteil")]).await;
    assert_eq!(made.status, 303);
    let shown = admin.get(&page).await;
    let secret = shown.body.split("id=\"jeton-scim\">").nth(1).unwrap().split('<').next().unwrap().to_string();
    assert!(secret.starts_with("cvg_"));
    assert!(!admin.get(&page).await.body.contains(&secret), "shown once");
    let scim = format!("http://{}/scim/v2/Users", srv.handle.as_ref().unwrap().scim_http_addr.unwrap());
    let http = reqwest::Client::new();
    let status = |r: reqwest::Response| r.status().as_u16();
    assert_eq!(status(http.get(&scim).bearer_auth(&secret).send().await.unwrap()), 200);
    // The use is written within a second or so.
    let mut used = false;
    for _ in 0..50 {
        let p = admin.get(&page).await;
        if p.body.contains("SIRH de Créteil") && !p.body.contains("<td>jamais</td>") {
            used = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(used, "the token's last use is listed");
    let id = srv.directory().list_tokens().unwrap()[0].id.clone();
    let revoked = admin.submit(&page, &format!("{page}/jetons/{id}/revoquer"), &[]).await;
    assert_eq!(revoked.status, 303);
    assert_eq!(status(http.get(&scim).bearer_auth(&secret).send().await.unwrap()), 401);
    // A token of another organisation is not revoked through this one's page.
    let vitry =
        convergences::directory::TokenScope::Organisation(dn(&format!("o={VITRY},ou=organisations,dc=cig,dc=fr")));
    let (other, _) = srv.directory().create_token(&vitry, "Vitry").unwrap();
    assert_eq!(admin.submit(&page, &format!("{page}/jetons/{other}/revoquer"), &[]).await.status, 404);
    assert_eq!(srv.directory().list_tokens().unwrap().len(), 1);
}

#[tokio::test]
async fn a_referent_reads_their_organisations_journal_filtered_and_not_anothers() {
    let srv = TestServer::start().await;
    let mut v = referent_of_creteil(&srv).await;
    let id = agent_id(&srv, "jdupont", CRETEIL);
    let agent = format!("/organisations/{CRETEIL}/agents/{id}");
    assert_eq!(v.submit(&agent, &format!("{agent}/etat"), &[("actif", "non")]).await.status, 303);
    let home = v.get("/accueil").await;
    let recent = home.body.split("Dernières modifications").nth(1).expect("recent changes on the home page");
    assert!(recent.contains("<td>Modification</td><td>jdupont</td>"), "{recent}");
    let journal = v.get(&format!("/organisations/{CRETEIL}/journal?agent=jdupont&operation=modify")).await;
    assert_eq!(journal.status, 200);
    assert!(journal.body.contains("uid=hdupre") && journal.body.contains("cigActive"), "{}", journal.body);
    assert!(!journal.body.contains("floeuvre"), "{}", journal.body);
    let nothing = v.get(&format!("/organisations/{CRETEIL}/journal?auteur=personne")).await;
    assert!(nothing.body.contains("0 modification."), "{}", nothing.body);
    let bad_date = v.get(&format!("/organisations/{CRETEIL}/journal?depuis=31-12-2026")).await;
    assert!(bad_date.body.contains("id=\"erreur-depuis\""), "{}", bad_date.body);
    assert_eq!(v.get(&format!("/organisations/{VITRY}/journal")).await.status, 404);
    assert_eq!(v.get("/administration/journal").await.status, 404);
    let mut admin = administrator(&srv).await;
    let all = admin.get("/administration/journal?operation=modify").await;
    assert!(all.body.contains("uid=jdupont"), "{}", all.body);
}

#[tokio::test]
async fn a_csv_import_is_tried_first_with_every_error_on_its_line_then_creates_all_or_nothing() {
    let srv = TestServer::start().await;
    let mut v = referent_of_creteil(&srv).await;
    let import = format!("/organisations/{CRETEIL}/import");
    let d = srv.directory();
    let agent =
        |uid: &str| d.get(&dn(&format!("uid={uid},ou=agents,o={CRETEIL},ou=organisations,dc=cig,dc=fr"))).unwrap();
    let bad = "identifiant;prenom;nom;courriel;fin;applications\n\
               ;Anne;Roux;anne.roux@creteil.example.fr;31/12/2027;bip\n\
               ;Paul;;paul@creteil.example.fr;;\n\
               ;Marc;Petit;;30/02/2027;\n\
               floeuvre;Fabienne;Loeuvre;;;\n\
               ;Zoé;Blanc;;;comite-medical\n";
    let token = v.get(&import).await.token();
    let p = v.post_file(&import, &token, bad.as_bytes()).await;
    assert_eq!(p.status, 400, "{}", p.body);
    for (line, says) in [(3, "obligatoires"), (4, "n&#39;est pas une date"), (5, "déjà utilisé"), (6, "abonnée")] {
        assert!(p.body.contains(&format!("Ligne {line} : ")), "line {line}: {}", p.body);
        let item = p.body.split(&format!("Ligne {line} : ")).nth(1).unwrap().split("</li>").next().unwrap();
        assert!(item.contains(says), "line {line}: {item}");
    }
    assert!(!p.body.contains("Ligne 2 :"), "the good line has no error");
    assert!(agent("aroux").is_none(), "nothing is created by a file with errors");

    // A good file, as French Excel saves it (Windows-1252, semicolons).
    let good = b"Pr\xe9nom;Nom;Courriel;Applications\r\nAnne;Roux;anne.roux@creteil.example.fr;bip\r\nL\xe9on;Fran\xe7ois;;bip|snapi-cap\r\n";
    let p = v.post_file(&import, &token, good).await;
    assert_eq!(p.status, 200, "{}", p.body);
    assert!(p.body.contains("créera 2 agents"), "{}", p.body);
    assert!(agent("aroux").is_none(), "a dry run writes nothing");
    let done = v.submit(&import, &format!("{import}/confirmer"), &[]).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert!(v.get(&done.location).await.body.contains("2 agents ont été importés"));
    let leon = agent("lfrancois").expect("Léon François, uid made from his name");
    assert_eq!(leon.first_str("cn"), Some("Léon François"));
    let bip = d.member_of(&d.normalize_dn(&leon.dn).unwrap()).unwrap();
    assert_eq!(bip.len(), 2, "{bip:?}");
    assert!(agent("aroux").is_some());
    // The confirmation imports what was tried, once.
    let again = v.submit(&import, &format!("{import}/confirmer"), &[]).await;
    assert_eq!(again.location, import);

    let csv = v.get(&format!("/organisations/{CRETEIL}/export.csv")).await;
    assert_eq!(csv.status, 200);
    assert_eq!(csv.headers.get("content-type").unwrap(), "text/csv; charset=utf-8");
    assert!(csv.body.starts_with("\u{feff}identifiant;prenom;nom;courriel"), "{}", csv.body);
    assert!(csv.body.contains("lfrancois;Léon;François;;;;;;;bip|snapi-cap\r\n"), "{}", csv.body);
    assert!(!csv.body.contains("floeuvre"));
    assert_eq!(v.get(&format!("/organisations/{VITRY}/export.csv")).await.status, 404);
}

#[tokio::test]
async fn an_application_is_opened_to_several_agents_at_once_and_withdrawn() {
    let srv = TestServer::start().await;
    let mut v = referent_of_creteil(&srv).await;
    let list = format!("/organisations/{CRETEIL}/agents");
    let ids = [agent_id(&srv, "jdupont", CRETEIL), agent_id(&srv, "cmartin", CRETEIL)];
    let app_members = |srv: &TestServer| {
        let g = srv.directory().get(&dn("cn=snapi-cap,ou=applications,dc=cig,dc=fr")).unwrap().unwrap();
        g.get("member").map(|a| a.values.len()).unwrap_or(0)
    };
    let before = app_members(&srv);
    let token = v.get(&list).await.token();
    let p = v
        .post(
            &format!("{list}/applications"),
            &[
                ("jeton", &token),
                ("agent", &ids[0]),
                ("agent", &ids[1]),
                ("application", "snapi-cap"),
                ("action", "retirer"),
            ],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    assert_eq!(app_members(&srv), before - 2);
    let p = v
        .post(
            &format!("{list}/applications"),
            &[
                ("jeton", &token),
                ("agent", &ids[0]),
                ("agent", &ids[1]),
                ("application", "snapi-cap"),
                ("action", "accorder"),
            ],
        )
        .await;
    assert_eq!(p.status, 303);
    assert_eq!(app_members(&srv), before);
    // An application the organisation does not subscribe to is not offered.
    let p = v
        .post(
            &format!("{list}/applications"),
            &[("jeton", &token), ("agent", &ids[0]), ("application", "comite-medical")],
        )
        .await;
    assert_eq!(p.status, 404);
    // Another organisation's agent among them: nothing at all is changed.
    let theirs = agent_id(&srv, "floeuvre", VITRY);
    let p = v
        .post(
            &format!("{list}/applications"),
            &[
                ("jeton", &token),
                ("agent", &ids[0]),
                ("agent", &theirs),
                ("application", "snapi-cap"),
                ("action", "retirer"),
            ],
        )
        .await;
    assert_eq!(p.status, 404);
    assert_eq!(app_members(&srv), before);
}

#[tokio::test]
async fn a_referent_unlocks_an_agent_locked_by_failed_binds() {
    let srv = TestServer::start().await;
    let (conn, mut ldap) = LdapConnAsync::new(&srv.url).await.unwrap();
    ldap3::drive!(conn);
    let agent_dn = format!("uid=jdupont,ou=agents,o={CRETEIL},ou=organisations,dc=cig,dc=fr");
    for _ in 0..5 {
        let _ = ldap.simple_bind(&agent_dn, "wrong-password").await;
    }
    assert_eq!(ldap.simple_bind(&agent_dn, seed_password()).await.unwrap().rc, 49, "locked");
    let mut v = referent_of_creteil(&srv).await;
    let page = format!("/organisations/{CRETEIL}/agents/{}", agent_id(&srv, "jdupont", CRETEIL));
    let shown = v.get(&page).await;
    assert!(shown.body.contains("verrouillé") && shown.body.contains("Déverrouiller le compte"), "{}", shown.body);
    let home = v.get("/accueil").await;
    assert!(home.body.contains("<dt>Verrouillés</dt><dd>1</dd>"), "{}", home.body);
    assert_eq!(v.submit(&page, &format!("{page}/deverrouiller"), &[]).await.status, 303);
    ldap.simple_bind(&agent_dn, seed_password()).await.unwrap().success().unwrap();
}

#[tokio::test]
async fn a_session_ends_at_its_lifetime_however_busy() {
    let srv = TestServer::start_with(|c| c.console_limits.lifetime_minutes = 0).await;
    let mut v = Visit::new(&srv);
    assert_eq!(v.sign_in("hdupre", seed_password()).await.status, 303);
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    assert_eq!(v.get("/accueil").await.status, 303);
}

#[tokio::test]
async fn an_individual_subscriber_sees_their_account_and_applications() {
    let srv = TestServer::start().await;
    let mut v = Visit::new(&srv);
    assert_eq!(v.sign_in("lgarnier", seed_password()).await.status, 303);
    let account = v.get("/compte").await;
    assert!(
        account.body.contains("lea.garnier@example.fr") && account.body.contains("<li>bip</li>"),
        "{}",
        account.body
    );
}

#[tokio::test]
async fn administrators_manage_individual_subscribers_whom_referents_do_not_see() {
    let srv = TestServer::start().await;
    let mut admin = administrator(&srv).await;
    let list = "/organisations/particuliers/agents";
    let p = admin.get(list).await;
    assert_eq!(p.status, 200);
    assert!(p.body.contains("<h1>Abonnés individuels</h1>") && p.body.contains("lgarnier"), "{}", p.body);
    let created = admin
        .submit(
            "/organisations/particuliers/agents/nouveau",
            list,
            &[("prenom", "Rose"), ("nom", "Vidal"), ("courriel", "rose@example.fr")],
        )
        .await;
    assert_eq!(created.status, 303, "{}", created.body);
    assert!(srv.directory().get(&dn("uid=rvidal,ou=particuliers,dc=cig,dc=fr")).unwrap().is_some());
    let page = created.location.clone();
    assert!(admin.get(&page).await.body.contains("value=\"comite-medical\""), "every application may be opened");
    let mut referent = referent_of_creteil(&srv).await;
    assert_eq!(referent.get(list).await.status, 404);
    assert_eq!(referent.get(&page).await.status, 404);
}

#[tokio::test]
async fn a_session_ends_at_once_when_its_account_is_suspended() {
    let srv = TestServer::start().await;
    let mut referent = referent_of_creteil(&srv).await;
    assert_eq!(referent.get("/accueil").await.status, 200);
    let mut admin = administrator(&srv).await;
    let page = format!("/organisations/{CRETEIL}/agents/{}", agent_id(&srv, "hdupre", CRETEIL));
    assert_eq!(admin.submit(&page, &format!("{page}/etat"), &[("actif", "non")]).await.status, 303);
    let p = referent.get("/accueil").await;
    assert_eq!((p.status, p.location.as_str()), (303, "/connexion?suite=/accueil"));
}

#[tokio::test]
async fn the_page_after_sign_in_is_never_another_site_however_spelt() {
    let srv = TestServer::start().await;
    for next in ["/\t/evil.example", "/\\evil.example", "//evil.example", "https://evil.example", "/\n/evil.example"] {
        let mut v = Visit::new(&srv);
        let token = v.get("/connexion").await.token();
        let p = v
            .post(
                "/connexion",
                &[("jeton", &token), ("identifiant", "hdupre"), ("mot_de_passe", seed_password()), ("suite", next)],
            )
            .await;
        assert_eq!((p.status, p.location.as_str()), (303, "/accueil"), "{next:?}");
    }
}

#[tokio::test]
async fn an_application_dropped_from_the_subscriptions_is_closed_to_the_organisations_agents() {
    let srv = TestServer::start().await;
    let mut admin = administrator(&srv).await;
    let edit = format!("/administration/organisations/{CRETEIL}/modifier");
    let p = admin
        .submit(
            &edit,
            &edit,
            &[
                ("nom", "Commune de Créteil"),
                ("type", "affiliee"),
                ("application", "bip"),
                ("application", "commission-reforme"),
            ],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    let d = srv.directory();
    let snapi = d.get(&dn("cn=snapi-cap,ou=applications,dc=cig,dc=fr")).unwrap().unwrap();
    let members: Vec<String> =
        snapi.get("member").unwrap().values.iter().map(|v| String::from_utf8_lossy(v).to_lowercase()).collect();
    assert!(!members.iter().any(|m| m.contains(CRETEIL)), "{members:?}");
    let bip = d.get(&dn("cn=bip,ou=applications,dc=cig,dc=fr")).unwrap().unwrap();
    assert!(
        bip.get("member").unwrap().values.iter().any(|v| String::from_utf8_lossy(v).contains(CRETEIL)),
        "bip stays"
    );
}

#[tokio::test]
async fn making_and_revoking_a_scim_token_is_in_the_audit_trail() {
    let srv = TestServer::start().await;
    let mut admin = administrator(&srv).await;
    let page = format!("/administration/organisations/{CRETEIL}");
    assert_eq!(admin.submit(&page, &format!("{page}/jetons"), &[("nom", "SIRH")]).await.status, 303);
    let id = srv.directory().list_tokens().unwrap()[0].id.clone();
    assert_eq!(admin.submit(&page, &format!("{page}/jetons/{id}/revoquer"), &[]).await.status, 303);
    let journal = admin.get(&format!("/organisations/{CRETEIL}/journal")).await;
    assert!(
        journal.body.contains("Jeton SCIM créé") && journal.body.contains("Jeton SCIM révoqué"),
        "{}",
        journal.body
    );
    assert!(journal.body.contains(&format!("SIRH ({id})")));
}

#[tokio::test]
async fn rows_of_the_same_name_in_one_csv_get_the_next_free_uids() {
    let srv = TestServer::start().await;
    let mut v = referent_of_creteil(&srv).await;
    let import = format!("/organisations/{CRETEIL}/import");
    let token = v.get(&import).await.token();
    let p = v
        .post_file(&import, &token, "prenom;nom;telephone\nHélène;Dupré;'+33 1 02 03 04 05\nHenri;Dupré;\n".as_bytes())
        .await;
    assert!(p.body.contains("créera 2 agents"), "{}", p.body);
    assert_eq!(v.submit(&import, &format!("{import}/confirmer"), &[]).await.status, 303);
    let d = srv.directory();
    let agent =
        |uid: &str| d.get(&dn(&format!("uid={uid},ou=agents,o={CRETEIL},ou=organisations,dc=cig,dc=fr"))).unwrap();
    let helene = agent("hdupre2").expect("hdupre is taken: hdupre2");
    assert_eq!(
        helene.first_str("telephoneNumber"),
        Some("+33 1 02 03 04 05"),
        "the export's formula guard is not kept"
    );
    assert!(agent("hdupre3").is_some());
}
