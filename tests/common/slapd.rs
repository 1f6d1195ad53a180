//! A stock OpenLDAP slapd (Debian's), started by a test on a free port with
//! the schema files this project ships and an LDIF loaded by slapadd: the
//! reference the differential tests compare the server with.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// slapd's rootdn and its password, also the administrator of the twin server.
pub const ROOT_DN: &str = "cn=admin,dc=cig,dc=fr";
pub const ROOT_PASSWORD: &str = "parity-admin-secret";

pub struct Slapd {
    child: Option<Child>,
    dir: tempfile::TempDir,
    pub url: String,
    port: u16,
}

fn find(name: &str) -> String {
    ["/usr/sbin", "/usr/local/sbin", "/usr/bin"]
        .iter()
        .map(|d| format!("{d}/{name}"))
        .find(|p| Path::new(p).exists())
        .unwrap_or_else(|| name.to_string())
}

/// Whether slapd and slapadd are installed (in /usr/sbin, often off a
/// user's PATH); under CI a missing one is a failure, not a skip.
pub fn installed() -> bool {
    let found = ["slapd", "slapadd"].iter().all(|n| Path::new(&find(n)).is_absolute());
    if !found && std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("slapd is required under CI (.ci/run installs it)");
    }
    if !found {
        eprintln!("skipping: slapd is not installed");
    }
    found
}

impl Slapd {
    /// slapd with `ldif` loaded; the caller checked `have("slapd")`.
    pub fn start(ldif: &str) -> Slapd {
        Slapd::load(ldif, false)
    }

    /// [`Slapd::start`] as an RFC 4533 provider (the syncprov overlay), as
    /// the OpenLDAP a CIG migrates from.
    pub fn provider(ldif: &str) -> Slapd {
        Slapd::load(ldif, true)
    }

    fn load(ldif: &str, syncprov: bool) -> Slapd {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db");
        std::fs::create_dir(&db).unwrap();
        let modules: &[&str] = if syncprov { &["back_mdb", "syncprov"] } else { &["back_mdb"] };
        let overlay =
            if syncprov { "index entryCSN,entryUUID eq\noverlay syncprov\nsyncprov-sessionlog 1000\n" } else { "" };
        let conf = config(
            dir.path(),
            modules,
            &format!(
                "{overlay}access to attrs=userPassword by self write by anonymous auth by * none\n\
                 access to * by self write by users read by * none\n"
            ),
        );
        let conf_path = dir.path().join("slapd.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let ldif_path = dir.path().join("data.ldif");
        std::fs::write(&ldif_path, ldif).unwrap();
        let out = Command::new(find("slapadd"))
            .arg("-q")
            .arg("-f")
            .arg(&conf_path)
            .arg("-l")
            .arg(&ldif_path)
            .output()
            .unwrap();
        assert!(out.status.success(), "slapadd: {}", String::from_utf8_lossy(&out.stderr));
        Slapd::run(dir)
    }

    /// A stock slapd replica of `provider` (RFC 4533 consumer): an empty
    /// database filled by its `syncrepl` directive, bound to the provider
    /// as `bind_dn`; `kind` is `refreshAndPersist` or `refreshOnly
    /// interval=…`. Its schema is what the README tells an operator to load:
    /// the stock files, ppolicy's module and the project's cig.schema.
    pub fn replica(provider: &str, bind_dn: &str, password: &str, base: &str, kind: &str) -> Slapd {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("db")).unwrap();
        let conf = config(
            dir.path(),
            &["back_mdb", "ppolicy"],
            &format!(
                "index entryUUID,entryCSN eq\n\
                 syncrepl rid=001 provider={provider} bindmethod=simple binddn=\"{bind_dn}\" credentials={password} \
                 searchbase=\"{base}\" type={kind} retry=\"1 +\" attrs=\"*,+\"\n"
            ),
        );
        std::fs::write(dir.path().join("slapd.conf"), conf).unwrap();
        Slapd::run(dir)
    }

    fn run(dir: tempfile::TempDir) -> Slapd {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut s = Slapd { child: None, dir, url: format!("ldap://127.0.0.1:{port}"), port };
        s.resume();
        s
    }

    /// Stop the server (its database stays).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start it again on the same port and database.
    pub fn resume(&mut self) {
        self.stop();
        // -d 0: in the foreground, so that the test owns the process.
        let child = Command::new(find("slapd"))
            .arg("-f")
            .arg(self.dir.path().join("slapd.conf"))
            .arg("-h")
            .arg(format!("{}/", self.url))
            .args(["-d", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(started.elapsed() < Duration::from_secs(20), "slapd did not start on {}", self.url);
            std::thread::sleep(Duration::from_millis(50));
        }
        self.child = Some(child);
    }
}

/// A slapd.conf for a database in `dir` (its `db` directory): the stock
/// schema and the project's cig.schema, these modules, the suffix and
/// rootdn, then `database_tail` (indexes, overlays, access, syncrepl).
fn config(dir: &Path, modules: &[&str], database_tail: &str) -> String {
    let repo = env!("CARGO_MANIFEST_DIR");
    let modules = ["/usr/lib/ldap", "/usr/lib/openldap", "/usr/lib64/openldap"]
        .iter()
        .find(|d| Path::new(&format!("{d}/back_mdb.so")).exists())
        .map(|d| {
            let loads: String = modules.iter().map(|m| format!("moduleload {m}\n")).collect();
            format!("modulepath {d}\n{loads}")
        })
        .unwrap_or_default();
    format!(
        "include /etc/ldap/schema/core.schema\n\
         include /etc/ldap/schema/cosine.schema\n\
         include /etc/ldap/schema/inetorgperson.schema\n\
         include {repo}/schema/cig.schema\n\
         {modules}\
         pidfile {d}/slapd.pid\n\
         database mdb\n\
         suffix \"dc=cig,dc=fr\"\n\
         rootdn \"{ROOT_DN}\"\n\
         rootpw {ROOT_PASSWORD}\n\
         directory {d}/db\n\
         {database_tail}",
        d = dir.display(),
    )
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A provider's tree: the suffix, the root DN's entry (to bind as over
/// LDAP) and `agents` numbered agents under `ou=Agents`.
pub fn numbered_agents(agents: usize) -> String {
    let mut ldif = format!(
        "dn: dc=cig,dc=fr\nobjectClass: dcObject\nobjectClass: organization\ndc: cig\no: CIG\n\n\
         dn: {ROOT_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: admin\n\
         userPassword: {ROOT_PASSWORD}\n\n\
         dn: ou=Agents,dc=cig,dc=fr\nobjectClass: organizationalUnit\nou: Agents\n\n"
    );
    for i in 0..agents {
        ldif.push_str(&format!(
            "dn: uid=agent{i:04},ou=Agents,dc=cig,dc=fr\nobjectClass: inetOrgPerson\nuid: agent{i:04}\ncn: Agent {i}\n\
             sn: Numéro {i}\n\n"
        ));
    }
    ldif
}
