//! LDAP front end (placeholder while the core compiles).
use crate::directory::Directory;
use std::sync::Arc;
pub struct Context {
    pub directory: Arc<Directory>,
}
impl Context {
    pub fn new(directory: Arc<Directory>, _cfg: &crate::config::Config) -> Context {
        Context { directory }
    }
}
pub async fn serve(_l: tokio::net::TcpListener, _c: Arc<Context>, _s: tokio::sync::watch::Receiver<bool>) {}
