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
    b.tick("BIP").await;
    b.press("Enregistrer les applications").await;
    b.press("Réinitialiser le mot de passe").await;
    let generated = b.text("#mot-de-passe-genere").await;
    assert!(generated.len() >= 12, "{generated}");
    check_page(&b, &axe, "agent", &mut seen).await;
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
