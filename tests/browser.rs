//! The console in a real browser (Debian's headless Chromium over
//! WebDriver), as a référent and an agent use it, with axe-core run on
//! every page they see (issue 22).

use ldap3::{LdapConnAsync, Scope, SearchEntry};

use crate::common::browser::{Browser, axe_script, installed};
use crate::common::*;

/// Run axe on the page shown, keep a screenshot of it, and fail on any
/// serious or critical violation.
async fn check_page(b: &Browser, axe: &str, name: &str, seen: &mut Vec<String>) {
    let violations = b.accessibility_violations(axe).await;
    assert!(violations.is_empty(), "axe on {name} ({}): {violations:#?}", b.url().await);
    b.screenshot(name).await;
    seen.push(name.to_string());
}

#[tokio::test]
async fn a_referent_creates_an_agent_in_the_browser_who_then_signs_in_and_changes_the_password() {
    if !installed() {
        return;
    }
    let axe = axe_script();
    let srv = TestServer::start().await;
    let site = format!("http://{}", srv.handle.as_ref().unwrap().console_http_addr.unwrap());
    let mut seen = Vec::new();
    let b = Browser::start().await;

    // The référent of Créteil signs in and lands on the home page.
    b.go(&format!("{site}/accueil")).await;
    assert!(b.url().await.contains("/connexion?suite=/accueil"));
    check_page(&b, &axe, "connexion", &mut seen).await;
    b.type_into("Identifiant", "hdupre").await;
    b.type_into("Mot de passe", convergences::seed::DEMO_PASSWORD).await;
    b.press("Se connecter").await;
    assert!(b.url().await.ends_with("/accueil"), "{}", b.url().await);
    assert!(b.text("h1").await.contains("Hélène Dupré"));
    check_page(&b, &axe, "accueil-referent", &mut seen).await;

    // The agents list, then the creation form: first sent incomplete.
    b.press("Agents de Commune de Créteil").await;
    check_page(&b, &axe, "agents", &mut seen).await;
    // At 200 % zoom (half the width) the page reflows; the keyboard's first
    // stop is the link to the content.
    b.resize(640, 900).await;
    assert!(!b.scrolls_sideways().await, "the agents list scrolls sideways at 200 %");
    b.go(&b.url().await).await;
    assert_eq!(b.tab().await, "Aller au contenu");
    b.resize(1280, 1000).await;
    b.press("Créer un agent").await;
    check_page(&b, &axe, "agent-nouveau", &mut seen).await;
    // First with a uid another organisation's agent holds: the browser
    // checks the required fields, the directory refuses the uid.
    b.type_into("Identifiant de connexion", "floeuvre").await;
    b.type_into("Prénom", "Maëlle").await;
    b.type_into("Nom", "Le Goff").await;
    b.type_into("Courriel professionnel", "maelle.legoff@creteil.example.fr").await;
    b.press("Créer l'agent").await;
    assert!(b.text("#erreur-identifiant").await.contains("déjà utilisé"));
    check_page(&b, &axe, "agent-nouveau-erreurs", &mut seen).await;
    b.type_into("Identifiant de connexion", "").await;
    b.press("Créer l'agent").await;
    assert_eq!(b.text("#identifiant-agent").await, "mlegoff");

    // BIP is granted, the password reset and shown once.
    b.tick("BIP (banque d'informations du personnel)").await;
    b.press("Enregistrer les applications").await;
    check_page(&b, &axe, "agent", &mut seen).await;
    b.press("Réinitialiser le mot de passe").await;
    let generated = b.text("#mot-de-passe-genere").await;
    assert!(generated.len() >= 12, "{generated}");
    let violations = b.accessibility_violations(&axe).await;
    assert!(violations.is_empty(), "axe with the password shown: {violations:#?}");
    b.press("Se déconnecter").await;
    assert!(b.url().await.ends_with("/connexion"));

    // The agent signs in with it and must change it before anything else.
    b.type_into("Identifiant", "mlegoff").await;
    b.type_into("Mot de passe", &generated).await;
    b.press("Se connecter").await;
    assert!(b.url().await.ends_with("/compte/mot-de-passe"), "{}", b.url().await);
    check_page(&b, &axe, "mot-de-passe-impose", &mut seen).await;
    b.go(&format!("{site}/compte")).await;
    assert!(b.url().await.ends_with("/compte/mot-de-passe"), "nothing else before the change");
    let new_password = "Ma-nouvelle-phrase-2026";
    b.type_into("Mot de passe actuel", &generated).await;
    b.type_into("Nouveau mot de passe", new_password).await;
    b.type_into("Confirmation du nouveau mot de passe", new_password).await;
    b.press("Changer le mot de passe").await;
    assert!(b.url().await.ends_with("/compte"), "{}", b.url().await);
    assert!(b.text("main").await.contains("bip"));
    check_page(&b, &axe, "compte", &mut seen).await;
    b.go(&format!("{site}/accessibilite")).await;
    check_page(&b, &axe, "accessibilite", &mut seen).await;
    b.quit().await;

    // BIP's service account finds the agent over LDAP by memberOf; the agent binds.
    let (conn, mut ldap) = LdapConnAsync::new(&srv.url).await.unwrap();
    ldap3::drive!(conn);
    ldap.simple_bind("cn=bip,ou=services,dc=cig,dc=fr", convergences::seed::DEMO_PASSWORD)
        .await
        .unwrap()
        .success()
        .unwrap();
    let (found, _) = ldap
        .search(
            "ou=organisations,dc=cig,dc=fr",
            Scope::Subtree,
            "(&(uid=mlegoff)(memberOf=cn=bip,ou=applications,dc=cig,dc=fr))",
            vec!["uid"],
        )
        .await
        .unwrap()
        .success()
        .unwrap();
    assert_eq!(found.len(), 1);
    let agent = SearchEntry::construct(found.into_iter().next().unwrap()).dn;
    ldap.simple_bind(&agent, new_password).await.unwrap().success().unwrap();
    assert_eq!(seen.len(), 9);
}

#[tokio::test]
async fn an_administrator_onboards_an_employer_in_the_browser_whose_scim_token_provisions_at_once() {
    if !installed() {
        return;
    }
    let axe = axe_script();
    let srv = TestServer::start().await;
    let h = srv.handle.as_ref().unwrap();
    let site = format!("http://{}", h.console_http_addr.unwrap());
    let scim = format!("http://{}/scim/v2", h.scim_http_addr.unwrap());
    let mut seen = Vec::new();
    let b = Browser::start().await;

    b.go(&format!("{site}/connexion")).await;
    b.type_into("Identifiant", "cn=admin,dc=cig,dc=fr").await;
    b.type_into("Mot de passe", ADMIN_PASSWORD).await;
    b.press("Se connecter").await;
    b.press("Administration du CIG").await;
    check_page(&b, &axe, "administration", &mut seen).await;

    // The organisation: a SIREN whose key is wrong is refused first.
    b.press("Créer une organisation").await;
    b.type_into("SIREN", "200066463").await;
    b.type_into("Nom", "Communauté d'agglomération de test").await;
    b.tick("BIP (banque d'informations du personnel)").await;
    b.press("Créer l'organisation").await;
    assert!(b.text("#erreur-siren").await.contains("clé de contrôle"));
    check_page(&b, &axe, "organisation-nouvelle-erreurs", &mut seen).await;
    b.type_into("SIREN", "200066462").await;
    b.press("Créer l'organisation").await;
    assert!(b.url().await.ends_with("/administration/organisations/200066462"), "{}", b.url().await);

    // Its first agent, then that agent designated as its référent.
    b.press("Agents de Communauté d'agglomération de test").await;
    b.press("Créer un agent").await;
    b.type_into("Prénom", "Inès").await;
    b.type_into("Nom", "Moreau").await;
    b.press("Créer l'agent").await;
    assert_eq!(b.text("#identifiant-agent").await, "imoreau");
    b.go(&format!("{site}/administration/organisations/200066462")).await;
    b.type_into("Identifiant de l'agent à désigner", "imoreau").await;
    b.press("Désigner comme référent").await;
    assert!(b.text("main").await.contains("imoreau est désormais référent"));

    check_page(&b, &axe, "organisation", &mut seen).await;

    // The HR software's SCIM token, shown once, works at once (no
    // screenshot of it: a secret, even a test one, stays out of the README).
    b.type_into("Nom du jeton", "Logiciel RH").await;
    b.press("Créer un jeton SCIM").await;
    let token = b.text("#jeton-scim").await;
    let violations = b.accessibility_violations(&axe).await;
    assert!(violations.is_empty(), "axe with the token shown: {violations:#?}");
    b.quit().await;
    let user = serde_json::json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "lbernard",
        "name": {"givenName": "Luc", "familyName": "Bernard"},
        "emails": [{"value": "luc.bernard@agglo.example.fr", "type": "work", "primary": true}]
    });
    let resp = reqwest::Client::new()
        .post(format!("{scim}/Users"))
        .bearer_auth(&token)
        .header("content-type", "application/scim+json")
        .json(&user)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201, "{}", resp.text().await.unwrap());
    let d = srv.directory();
    assert!(d.get(&dn("uid=lbernard,ou=agents,o=200066462,ou=organisations,dc=cig,dc=fr")).unwrap().is_some());
    assert_eq!(seen.len(), 3);
}
