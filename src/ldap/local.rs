//! LDAP over a Unix domain socket (`ldapi://`, the socket file of `ldapi`):
//! for the administrator on the server's own machine, as Debian's slapd
//! serves `ldapi:///`. SASL EXTERNAL binds as the peer's uid maps, read
//! from the kernel (SO_PEERCRED): root and the server's own uid are
//! `cn=admin,<suffix>`; `ldapi_identities` names the entry of any other
//! uid allowed; the rest are refused.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;

use tokio::io::AsyncWriteExt;
use tokio::net::UnixListener;
use tokio::sync::watch;

use super::{Context, Session, ops::notice, run};
use crate::config::Config;
use crate::directory::{Directory, Dn, Rdn};
use crate::metrics;

/// Who a local uid binds as with SASL EXTERNAL.
pub struct LocalIdentities {
    server_uid: Option<u32>,
    admin: Dn,
    mapped: HashMap<u32, Dn>,
}

impl LocalIdentities {
    /// The mapping of `ldapi_identities`; an error names the DN that does not parse.
    pub fn new(dir: &Directory, cfg: &Config) -> Result<LocalIdentities, String> {
        let mut mapped = HashMap::new();
        for i in &cfg.ldapi_identities {
            let dn = Dn::parse(&i.dn).map_err(|e| format!("ldapi_identities: uid {}: '{}': {e}", i.uid, i.dn))?;
            mapped.insert(i.uid, dn);
        }
        // /proc/self belongs to the process's effective uid.
        let server_uid = std::fs::metadata("/proc/self").ok().map(|m| m.uid());
        Ok(LocalIdentities { server_uid, admin: dir.suffix().child(Rdn::single("cn", "admin")), mapped })
    }

    /// Whether `dn` is the name root and the server's uid bind as.
    pub fn is_admin_name(&self, dn: &Dn) -> bool {
        *dn == self.admin
    }

    /// The entry `uid` binds as, if it may.
    pub fn dn_of(&self, uid: u32) -> Option<&Dn> {
        if uid == 0 || Some(uid) == self.server_uid {
            return Some(&self.admin);
        }
        self.mapped.get(&uid)
    }
}

/// Accept local connections until `shutdown` turns true; they count against
/// the connection limits as loopback peers.
pub async fn serve_local(listener: UnixListener, ctx: Arc<Context>, mut shutdown: watch::Receiver<bool>) {
    let loopback = std::net::IpAddr::from([127, 0, 0, 1]);
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((mut stream, _)) => {
                    let ctx = ctx.clone();
                    let shutdown = shutdown.clone();
                    tokio::spawn(async move {
                        let pool = ctx.clone();
                        let admitted = pool.connections.admit(loopback);
                        metrics::METRICS.ldap_connection(admitted.is_ok());
                        let _slot = match admitted {
                            Ok(slot) => slot,
                            Err(why) => {
                                let _ = stream.write_all(&notice(ldap3_proto::proto::LdapResultCode::Unavailable, why)).await;
                                return;
                            }
                        };
                        let uid = stream.peer_cred().ok().map(|c| c.uid());
                        let peer = match uid {
                            Some(u) => format!("ldapi uid={u}"),
                            None => "ldapi".to_string(),
                        };
                        let session = Session { peer, local_uid: uid, ..Session::default() };
                        // StartTLS is refused on a local socket: nothing to upgrade.
                        let _ = run(stream, ctx, shutdown, session).await;
                    });
                }
                Err(e) => {
                    tracing::warn!("ldapi accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    }
}
