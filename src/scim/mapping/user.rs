//! The User resource (RFC 7643 §4.1), the enterprise extension (§4.3) and
//! the project's Agent extension, row by row, with where each value lives
//! in an agent's entry (`inetOrgPerson` + `cigAgent`).

use super::{Attr, Elements, Fill, Home, Mirror, Resource, Schema, Source, Type};

pub const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub const AGENT: &str = "urn:convergences:params:scim:schemas:extension:cig:2.0:Agent";

const TYPES_CONTACT: &[&str] = &["work", "home", "other"];

/// value / display / type / primary, the sub-attributes of most
/// multi-valued attributes (RFC 7643 §2.4).
const fn element_subs(value: Attr, types: &'static [&'static str]) -> [Attr; 4] {
    [
        value,
        Attr::string("display", Home::Parts, "A human-readable name, primarily used for display purposes."),
        Attr::string("type", Home::Parts, "A label indicating the attribute's function.").canonical(types),
        Attr::new("primary", Type::Boolean, Home::Parts, "Whether this is the preferred value (at most one)."),
    ]
}

const NAME: &[Attr] = &[
    Attr::string(
        "formatted",
        Home::Required("cn", Fill::FullName),
        "The full name, including all middle names, titles, and suffixes as appropriate, formatted for display.",
    ),
    Attr::string("familyName", Home::Required("sn", Fill::UserName), "The family name of the User."),
    Attr::string("givenName", Home::Ldap("givenName"), "The given name of the User."),
    Attr::string("middleName", Home::Ldap("cigMiddleName"), "The middle name(s) of the User."),
    Attr::string("honorificPrefix", Home::Ldap("cigHonorificPrefix"), "The honorific prefix(es) of the User."),
    Attr::string("honorificSuffix", Home::Ldap("cigHonorificSuffix"), "The honorific suffix(es) of the User."),
];

static EMAILS: Elements = Elements {
    store: "cigScimEmail",
    mirrors: &[Mirror { when_type: None, sub: "value", source: Source::Ldap("mail"), first_only: false }],
    default_type: Some("work"),
    first_is_primary: true,
};
const EMAIL_SUBS: [Attr; 4] =
    element_subs(Attr::string("value", Home::Parts, "Email address for the User (RFC 5321)."), TYPES_CONTACT);

static PHONES: Elements = Elements {
    store: "cigScimPhoneNumber",
    mirrors: &[
        Mirror { when_type: Some("work"), sub: "value", source: Source::Ldap("telephoneNumber"), first_only: false },
        Mirror { when_type: Some("mobile"), sub: "value", source: Source::Ldap("mobile"), first_only: false },
        Mirror {
            when_type: Some("fax"),
            sub: "value",
            source: Source::Ldap("facsimileTelephoneNumber"),
            first_only: false,
        },
        Mirror { when_type: Some("pager"), sub: "value", source: Source::Ldap("pager"), first_only: false },
        Mirror { when_type: Some("home"), sub: "value", source: Source::Ldap("homePhone"), first_only: false },
    ],
    default_type: None,
    first_is_primary: false,
};
const PHONE_SUBS: [Attr; 4] = element_subs(
    Attr::string("value", Home::Parts, "Phone number of the User (RFC 3966 form suggested)."),
    &["work", "home", "mobile", "fax", "pager", "other"],
);

static IMS: Elements = Elements { store: "cigScimIm", mirrors: &[], default_type: None, first_is_primary: false };
const IM_SUBS: [Attr; 4] = element_subs(
    Attr::string("value", Home::Parts, "Instant messaging address for the User."),
    &["aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"],
);

static PHOTOS: Elements = Elements { store: "cigScimPhoto", mirrors: &[], default_type: None, first_is_primary: false };
const PHOTO_SUBS: [Attr; 4] = element_subs(
    Attr::new("value", Type::Reference, Home::Parts, "URL of a photo of the User.").references(&["external"]),
    &["photo", "thumbnail"],
);

const fn work_part(sub: &'static str, source: Source) -> Mirror {
    Mirror { when_type: Some("work"), sub, source, first_only: true }
}

static ADDRESSES: Elements = Elements {
    store: "cigScimAddress",
    mirrors: &[
        work_part("formatted", Source::Postal("postalAddress")),
        work_part("streetAddress", Source::Ldap("street")),
        work_part("locality", Source::Ldap("l")),
        work_part("region", Source::Ldap("st")),
        work_part("postalCode", Source::Ldap("postalCode")),
        work_part("country", Source::Ldap("c")),
    ],
    default_type: Some("work"),
    first_is_primary: false,
};
const ADDRESS_SUBS: &[Attr] = &[
    Attr::string("formatted", Home::Parts, "The full mailing address, formatted for display."),
    Attr::string("streetAddress", Home::Parts, "The full street address component."),
    Attr::string("locality", Home::Parts, "The city or locality component."),
    Attr::string("region", Home::Parts, "The state or region component."),
    Attr::string("postalCode", Home::Parts, "The zip code or postal code component."),
    Attr::string("country", Home::Parts, "The country name component (ISO 3166-1 alpha-2 code suggested)."),
    Attr::string("type", Home::Parts, "A label indicating the attribute's function.")
        .canonical(&["work", "home", "other"]),
    Attr::new("primary", Type::Boolean, Home::Parts, "Whether this is the preferred mailing address."),
];

const GROUP_SUBS: &[Attr] = &[
    Attr::string("value", Home::Server, "The identifier of the User's group.").read_only(),
    Attr::new("$ref", Type::Reference, Home::Server, "The URI of the corresponding Group resource.")
        .references(&["Group"])
        .read_only(),
    Attr::string("display", Home::Server, "The displayName of the group.").read_only(),
    Attr::string("type", Home::Server, "How the User is a member: direct.").canonical(&["direct"]).read_only(),
];

static ENTITLEMENTS: Elements = Elements {
    store: "cigScimEntitlement",
    mirrors: &[Mirror { when_type: None, sub: "value", source: Source::Applications, first_only: false }],
    default_type: None,
    first_is_primary: false,
};
const ENTITLEMENT_SUBS: [Attr; 4] = element_subs(
    Attr::string(
        "value",
        Home::Parts,
        "An application the User may use: the cn of a group under ou=applications (membership of it).",
    ),
    &[],
);

static ROLES: Elements = Elements { store: "cigScimRole", mirrors: &[], default_type: None, first_is_primary: false };
const ROLE_SUBS: [Attr; 4] = element_subs(Attr::string("value", Home::Parts, "The value of a role."), &[]);

static CERTIFICATES: Elements = Elements {
    store: "cigScimX509Certificate",
    mirrors: &[Mirror { when_type: None, sub: "value", source: Source::Base64("userCertificate"), first_only: false }],
    default_type: None,
    first_is_primary: false,
};
const CERTIFICATE_SUBS: [Attr; 4] = element_subs(
    Attr::new("value", Type::Binary, Home::Parts, "The value of an X.509 certificate (DER, base64).").case_exact(),
    &[],
);

const fn elements(name: &'static str, home: &'static Elements, subs: &'static [Attr], d: &'static str) -> Attr {
    Attr::new(name, Type::Complex, Home::Elements(home), d).multi().subs(subs)
}

const USER_ATTRS: &[Attr] = &[
    Attr::string(
        "userName",
        Home::Ldap("uid"),
        "Unique identifier for the User, the login of the legacy applications (LDAP uid).",
    )
    .required()
    .unique(),
    Attr::new("name", Type::Complex, Home::Parts, "The components of the user's real name.").subs(NAME),
    Attr::string("displayName", Home::Ldap("displayName"), "The name of the User, suitable for display to end-users."),
    Attr::string("nickName", Home::Ldap("cigNickName"), "The casual way to address the user."),
    Attr::new(
        "profileUrl",
        Type::Reference,
        Home::Ldap("labeledURI"),
        "A fully qualified URL to the User's online profile.",
    )
    .references(&["external"]),
    Attr::string("title", Home::Ldap("title"), "The user's title, such as \"Vice President\"."),
    Attr::string("userType", Home::Ldap("employeeType"), "The relationship between the organization and the user."),
    Attr::string(
        "preferredLanguage",
        Home::Ldap("preferredLanguage"),
        "The User's preferred written or spoken language (RFC 7231 §5.3.5).",
    ),
    Attr::string("locale", Home::Ldap("cigLocale"), "The User's default location for localizing (e.g. fr-FR)."),
    Attr::string(
        "timezone",
        Home::Ldap("cigTimezone"),
        "The User's time zone, in the IANA database format (Europe/Paris).",
    )
    .case_exact(),
    Attr::new(
        "active",
        Type::Boolean,
        Home::Active("cigActive"),
        "The User's administrative status: false when suspended or outside the validity dates (validFrom, validUntil); LDAP binds then fail.",
    )
    .always(),
    Attr::string("password", Home::Password, "The User's cleartext password, hashed when stored; never returned.")
        .write_only(),
    elements("emails", &EMAILS, &EMAIL_SUBS, "Email addresses for the user."),
    elements("phoneNumbers", &PHONES, &PHONE_SUBS, "Phone numbers for the User."),
    elements("ims", &IMS, &IM_SUBS, "Instant messaging addresses for the User."),
    elements("photos", &PHOTOS, &PHOTO_SUBS, "URLs of photos of the User."),
    elements("addresses", &ADDRESSES, ADDRESS_SUBS, "A physical mailing address for this User."),
    Attr::new(
        "groups",
        Type::Complex,
        Home::Server,
        "The groups of the User's organisation the User directly belongs to.",
    )
    .multi()
    .read_only()
    .subs(GROUP_SUBS),
    elements("entitlements", &ENTITLEMENTS, &ENTITLEMENT_SUBS, "The applications the User may use."),
    elements("roles", &ROLES, &ROLE_SUBS, "A list of roles for the User."),
    elements("x509Certificates", &CERTIFICATES, &CERTIFICATE_SUBS, "A list of certificates issued to the User."),
];

const MANAGER_SUBS: &[Attr] = &[
    Attr::string("value", Home::Parts, "The id of the SCIM resource representing the User's manager."),
    Attr::new("$ref", Type::Reference, Home::Parts, "The URI of the SCIM resource representing the User's manager.")
        .references(&["User"]),
    Attr::string("displayName", Home::Server, "The displayName of the User's manager.").read_only(),
];

const ENTERPRISE_ATTRS: &[Attr] = &[
    Attr::string(
        "employeeNumber",
        Home::Ldap("employeeNumber"),
        "Numeric or alphanumeric identifier assigned to a person.",
    ),
    Attr::string("costCenter", Home::Ldap("cigCostCenter"), "Identifies the name of a cost center."),
    Attr::string("organization", Home::Ldap("o"), "Identifies the name of an organization."),
    Attr::string("division", Home::Ldap("cigDivision"), "Identifies the name of a division."),
    Attr::string("department", Home::Ldap("departmentNumber"), "Identifies the name of a department."),
    Attr::new("manager", Type::Complex, Home::Reference("manager"), "The User's manager (LDAP manager, a DN).")
        .subs(MANAGER_SUBS),
];

const AGENT_ATTRS: &[Attr] = &[
    Attr::string(
        "siren",
        Home::Server,
        "SIREN of the agent's organisation. Read-only, except that a CIG-wide token names with it where a new user goes.",
    )
    .read_only(),
    Attr::string("applications", Home::Server, "The applications the agent may use (cn of the application groups it is in).")
        .multi()
        .read_only(),
    Attr::string(
        "status",
        Home::Server,
        "Why the account may or may not log in: active; suspended (active set to false); notYetValid (before validFrom); ended (from validUntil).",
    )
    .read_only()
    .canonical(&["active", "suspended", "notYetValid", "ended"]),
    Attr::new(
        "validFrom",
        Type::DateTime,
        Home::Ldap("pwdStartTime"),
        "Start of the account's validity (the contract's first day): before it, active is false and LDAP binds fail.",
    ),
    Attr::new(
        "validUntil",
        Type::DateTime,
        Home::Ldap("pwdEndTime"),
        "End of the account's validity (end of contract, retirement, mutation): from it, active is false and LDAP binds fail; the server records the transition in its audit trail.",
    ),
];

pub static USER_SCHEMA: Schema = Schema { id: USER, name: "User", description: "User Account", attrs: USER_ATTRS };
pub static ENTERPRISE_SCHEMA: Schema =
    Schema { id: ENTERPRISE, name: "EnterpriseUser", description: "Enterprise User", attrs: ENTERPRISE_ATTRS };
pub static AGENT_SCHEMA: Schema =
    Schema { id: AGENT, name: "Agent", description: "Agent de collectivité", attrs: AGENT_ATTRS };

pub static USERS: Resource = Resource {
    name: "User",
    endpoint: "/Users",
    description: "User Account: an agent of an organisation (ou=agents)",
    core: &USER_SCHEMA,
    extensions: &[&ENTERPRISE_SCHEMA, &AGENT_SCHEMA],
};
