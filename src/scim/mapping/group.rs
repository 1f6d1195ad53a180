//! The Group resource (RFC 7643 §4.2): a `groupOfNames` under its
//! organisation's `ou=groupes`, whose `cn` is the displayName and whose
//! `member` DNs are the members; and the project's Group extension.

use super::{Attr, Home, Resource, Schema, Type};

pub const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const GROUP_EXTENSION: &str = "urn:convergences:params:scim:schemas:extension:cig:2.0:Group";

const MEMBER_SUBS: &[Attr] = &[
    Attr::string("value", Home::Server, "The id of a User or Group member.").case_exact().immutable(),
    Attr::new("$ref", Type::Reference, Home::Server, "The URI of the member resource.")
        .references(&["User", "Group"])
        .immutable(),
    Attr::string("display", Home::Server, "The member's display name (its displayName, else its cn).").read_only(),
    Attr::string("type", Home::Server, "The type of the member.").canonical(&["User", "Group"]).immutable(),
];

const GROUP_ATTRS: &[Attr] = &[
    Attr::string("displayName", Home::Ldap("cn"), "A human-readable name for the Group (its cn, the RDN).").required(),
    Attr::new("members", Type::Complex, Home::Server, "A list of members of the Group (LDAP member).")
        .multi()
        .subs(MEMBER_SUBS),
];

const GROUP_EXTENSION_ATTRS: &[Attr] = &[Attr::string(
    "siren",
    Home::Server,
    "SIREN of the group's organisation. Read-only, except that a CIG-wide token names with it where a new group goes.",
)
.read_only()];

pub static GROUP_SCHEMA: Schema = Schema { id: GROUP, name: "Group", description: "Group", attrs: GROUP_ATTRS };
pub static GROUP_EXTENSION_SCHEMA: Schema = Schema {
    id: GROUP_EXTENSION,
    name: "GroupeCollectivite",
    description: "Groupe d'une collectivité",
    attrs: GROUP_EXTENSION_ATTRS,
};

pub static GROUPS: Resource = Resource {
    name: "Group",
    endpoint: "/Groups",
    description: "Group of an organisation (ou=groupes)",
    core: &GROUP_SCHEMA,
    extensions: &[&GROUP_EXTENSION_SCHEMA],
};
