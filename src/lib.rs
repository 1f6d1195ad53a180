//! # Convergences
//!
//! One directory served three ways, LDAP v3, SCIM 2.0 and a web console in
//! French, over one embedded store.
//!
//! ```text
//! main.rs → app.rs ─┬─► ldap/     (ldap3_proto codec, tokio)  ─┐
//!                   ├─► scim/     (axum, serde)                ├─► directory/ ─► store/ (redb)
//!                   ├─► console/  (axum, askama)              ─┤
//!                   └─► replication/ (a provider's RFC 4533 changes) ─┘
//! https.rs: the TLS listener both HTTP front ends share
//! config.rs, ldif.rs, seed.rs: used by app and the command line
//! ```
//!
//! Dependencies point one way: the front ends call `directory`, `directory`
//! calls `store`; a front end never opens a redb table and the store knows
//! nothing of LDAP or HTTP.

#![deny(clippy::unwrap_used, clippy::panic, clippy::todo, clippy::await_holding_lock)]

pub mod app;
pub mod calendar;
pub mod commands;
pub mod config;
pub mod console;
pub mod directory;
pub mod fasthash;
#[doc(hidden)]
pub mod fuzzing;
pub mod https;
pub mod ldap;
pub mod ldif;
pub mod metrics;
pub mod online;
pub mod oplog;
pub mod replication;
pub mod scim;
pub mod seed;
pub mod store;
pub mod tls;

pub use app::{ServerHandle, start};
pub use config::Config;
