//! The one integration-test binary (each file in tests/ would link its own).
//! Servers start on port 0 and are queried with real clients.

mod access_policy;
mod browser;
mod common;
mod conformance;
mod console;
mod crash_safety;
mod directory_core;
mod hostile_input;
mod ldap_clients;
mod ldap_server;
mod ldif_cli;
mod lifecycle;
mod local_admin;
mod operations;
mod other_clients;
mod password_lifecycle;
mod password_policy;
mod personal_data;
mod policy_parity;
mod provisioning;
mod recycle_bin;
mod replication;
mod revisions;
mod scim_behaviour;
mod scim_roundtrip;
mod scim_users;
mod search_limits;
mod slapd_parity;
mod standby;
