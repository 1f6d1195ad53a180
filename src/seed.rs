//! Demo data seeded into an empty store on first `serve`: the tree of
//! DESIGN.md with two organisations, a few agents, groups, a référent each,
//! the application groups, one service account and the first administrator.

use crate::directory::{Actor, Directory, Dn, Entry, Result, password};

/// What seeding produced.
pub struct SeedOutcome {
    pub admin_dn: String,
    /// The administrator's password when it was generated (shown once).
    pub generated_password: Option<String>,
}

/// Password of every demo agent, référent and of the demo service account.
/// Demo data only; documented in the README.
pub const DEMO_PASSWORD: &str = "demo-convergences";

struct DemoOrg {
    siren: &'static str,
    name: &'static str,
    apps: &'static [&'static str],
    agents: &'static [(&'static str, &'static str, &'static str)],
}

const ORGS: &[DemoOrg] = &[
    DemoOrg {
        siren: "219400280",
        name: "Commune de Créteil",
        apps: &["bip", "snapi-cap", "commission-reforme"],
        agents: &[("hdupre", "Hélène", "Dupré"), ("jdupont", "Jean", "Dupont"), ("cmartin", "Céline", "Martin")],
    },
    DemoOrg {
        siren: "217500016",
        name: "CCAS de Vitry-sur-Seine",
        apps: &["bip", "comite-medical"],
        agents: &[("floeuvre", "François", "Lœuvre"), ("nbenali", "Nadia", "Ben Ali")],
    },
];

const APPLICATIONS: &[&str] = &["bip", "snapi-cap", "commission-reforme", "comite-medical"];

/// How the CIG's people name each application (its group's `description`).
fn application_name(app: &str) -> &'static str {
    match app {
        "bip" => "BIP (banque d'informations du personnel)",
        "snapi-cap" => "SNAPI-CAP (commissions administratives paritaires)",
        "commission-reforme" => "Commission de réforme",
        "comite-medical" => "Comité médical",
        _ => "Application",
    }
}

fn random_password() -> Result<String> {
    let mut b = [0u8; 12];
    getrandom::fill(&mut b).map_err(|e| crate::directory::DirectoryError::Internal(e.to_string()))?;
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    Ok(b.iter().map(|x| ALPHABET[*x as usize % ALPHABET.len()] as char).collect())
}

fn hash(pw: &str) -> Result<String> {
    password::hash(pw.as_bytes()).map_err(crate::directory::DirectoryError::Internal)
}

/// Seed the demo tree. The administrator's password is `admin_password` or a
/// generated one, returned so that the caller prints it once.
pub fn seed_demo(dir: &Directory, admin_password: Option<&str>) -> Result<SeedOutcome> {
    let suffix = dir.suffix().clone();
    let s = suffix.to_string();
    // Seeded entries are created in the name of the first administrator.
    let actor = Actor::new(format!("cn=admin,{s}"));
    let dn = |rel: &str| -> Result<Dn> { Dn::parse(&format!("{rel},{s}")) };
    let first_value = suffix.rdn().and_then(|r| r.avas.first()).map(|a| a.value.clone()).unwrap_or_default();

    let mut root = Entry::new(suffix.clone()).with("objectClass", ["top", "dcObject", "organization"]);
    root = root.with("dc", [first_value.as_str()]).with("o", ["Centre de gestion"]);
    dir.add(&actor, root)?;
    for ou in ["organisations", "particuliers", "applications", "services", "admins"] {
        dir.add(
            &actor,
            Entry::new(dn(&format!("ou={ou}"))?).with("objectClass", ["organizationalUnit"]).with("ou", [ou]),
        )?;
    }

    let (admin_pw, generated) = match admin_password {
        Some(p) => (p.to_string(), None),
        None => {
            let p = random_password()?;
            (p.clone(), Some(p))
        }
    };
    let admin_dn = dn("cn=admin")?;
    dir.add(
        &actor,
        Entry::new(admin_dn.clone())
            .with("objectClass", ["organizationalRole", "simpleSecurityObject"])
            .with("cn", ["admin"])
            .with("description", ["Premier administrateur du CIG"])
            .with("userPassword", [hash(&admin_pw)?]),
    )?;
    dir.add(
        &actor,
        Entry::new(dn("cn=administrateurs,ou=admins")?)
            .with("objectClass", ["groupOfNames"])
            .with("cn", ["administrateurs"])
            .with("member", [admin_dn.to_string()]),
    )?;

    let demo_hash = hash(DEMO_PASSWORD)?;
    let mut app_members: Vec<(&str, Vec<String>)> = APPLICATIONS.iter().map(|a| (*a, Vec::new())).collect();
    for org in ORGS {
        let base = format!("o={},ou=organisations", org.siren);
        let mut org_entry = Entry::new(dn(&base)?)
            .with("objectClass", ["organization", "cigOrganisation"])
            .with("o", [org.siren])
            .with("cigSiren", [org.siren])
            .with("description", [org.name])
            .with("cigAffiliation", ["affiliee"]);
        org_entry = org_entry.with("cigApplication", org.apps.iter().copied());
        dir.add(&actor, org_entry)?;
        for ou in ["agents", "groupes"] {
            dir.add(
                &actor,
                Entry::new(dn(&format!("ou={ou},{base}"))?)
                    .with("objectClass", ["organizationalUnit"])
                    .with("ou", [ou]),
            )?;
        }
        let mut agent_dns = Vec::new();
        for (i, (uid, given, sn)) in org.agents.iter().enumerate() {
            let adn = dn(&format!("uid={uid},ou=agents,{base}"))?;
            dir.add(
                &actor,
                Entry::new(adn.clone())
                    .with("objectClass", ["inetOrgPerson", "cigAgent"])
                    .with("uid", [*uid])
                    .with("cn", [format!("{given} {sn}")])
                    .with("givenName", [*given])
                    .with("sn", [*sn])
                    .with("mail", [format!("{uid}@{}.example.fr", org.siren)])
                    .with("employeeNumber", [format!("{}{:03}", &org.siren[..4], i + 1)])
                    .with("cigActive", ["TRUE"])
                    .with("userPassword", [demo_hash.as_str()]),
            )?;
            agent_dns.push(adn.to_string());
        }
        dir.add(
            &actor,
            Entry::new(dn(&format!("cn=ressources-humaines,ou=groupes,{base}"))?)
                .with("objectClass", ["groupOfNames"])
                .with("cn", ["ressources-humaines"])
                .with("member", agent_dns.iter()),
        )?;
        // The first agent is the organisation's référent.
        dir.add(
            &actor,
            Entry::new(dn(&format!("cn=referents,{base}"))?)
                .with("objectClass", ["groupOfNames"])
                .with("cn", ["referents"])
                .with("member", agent_dns.iter().take(1)),
        )?;
        for (app, members) in app_members.iter_mut() {
            if org.apps.contains(app) {
                members.extend(agent_dns.iter().cloned());
            }
        }
    }
    // An individual subscriber to BIP: no organisation, no référent (DESIGN.md ou=particuliers).
    let particulier = dn("uid=lgarnier,ou=particuliers")?;
    dir.add(
        &actor,
        Entry::new(particulier.clone())
            .with("objectClass", ["inetOrgPerson", "cigAgent"])
            .with("uid", ["lgarnier"])
            .with("cn", ["Léa Garnier"])
            .with("givenName", ["Léa"])
            .with("sn", ["Garnier"])
            .with("mail", ["lea.garnier@example.fr"])
            .with("cigActive", ["TRUE"])
            .with("userPassword", [demo_hash.as_str()]),
    )?;
    if let Some((_, members)) = app_members.iter_mut().find(|(a, _)| *a == "bip") {
        members.push(particulier.to_string());
    }
    for (app, members) in app_members {
        // groupOfNames needs a member: an application nobody uses yet lists the administrator.
        let members = if members.is_empty() { vec![admin_dn.to_string()] } else { members };
        dir.add(
            &actor,
            Entry::new(dn(&format!("cn={app},ou=applications"))?)
                .with("objectClass", ["groupOfNames"])
                .with("cn", [app])
                .with("description", [application_name(app)])
                .with("member", members.iter()),
        )?;
    }
    dir.add(
        &actor,
        Entry::new(dn("cn=bip,ou=services")?)
            .with("objectClass", ["applicationProcess", "simpleSecurityObject"])
            .with("cn", ["bip"])
            .with("description", ["Compte de service de l'application BIP"])
            .with("userPassword", [demo_hash.as_str()]),
    )?;
    Ok(SeedOutcome { admin_dn: admin_dn.to_string(), generated_password: generated })
}
