//! The console's pages: one template (in `templates/console/`, checked at
//! compile time and HTML-escaped) per page, and what it shows.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use super::Visitor;
use super::forms::FieldErrors;

/// What the top of every page needs: who is signed in, the sign-out form's
/// token, and a message left by the previous action.
#[derive(Default)]
pub struct Nav {
    pub signed_in: bool,
    pub name: String,
    pub csrf: String,
    pub notice: String,
    pub admin: bool,
}

impl Nav {
    pub fn of(visitor: Option<&Visitor>) -> Nav {
        match visitor {
            Some(v) => Nav {
                signed_in: true,
                name: v.session.name.clone(),
                csrf: v.session.csrf.clone(),
                notice: String::new(),
                admin: v.admin,
            },
            None => Nav::default(),
        }
    }

    pub fn with_notice(mut self, notice: Option<String>) -> Nav {
        self.notice = notice.unwrap_or_default();
        self
    }
}

/// Render a page; a template that cannot render is the server's fault.
pub fn render(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!("console page: {e}");
            (StatusCode::INTERNAL_SERVER_ERROR, "erreur interne").into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "console/problem.html")]
struct Problem {
    nav: Nav,
    title: String,
    message: String,
}

pub fn problem(status: StatusCode, nav: Nav, title: &str, message: String) -> Response {
    render(status, &Problem { nav, title: title.into(), message })
}

#[derive(Template)]
#[template(path = "console/accessibility.html")]
struct Accessibility {
    nav: Nav,
    title: String,
}

pub async fn accessibility(visitor: Option<Visitor>) -> Response {
    render(
        StatusCode::OK,
        &Accessibility { nav: Nav::of(visitor.as_ref()), title: "Déclaration d'accessibilité".into() },
    )
}

#[derive(Template)]
#[template(path = "console/signin.html")]
pub struct SignIn {
    pub nav: Nav,
    pub title: String,
    pub csrf: String,
    pub next: String,
    pub name: String,
    pub error: String,
}

/// An organisation as its pages show it.
pub struct OrgView {
    pub siren: String,
    pub name: String,
    /// How its people's list is titled ("Agents de …", "Abonnés individuels").
    pub people: String,
    /// The applications it subscribes to (`cigApplication`).
    pub applications: Vec<String>,
}

pub struct OrgSummary {
    pub siren: String,
    pub name: String,
    pub agents: usize,
    pub suspended: usize,
    pub locked: usize,
    pub ending: usize,
    pub unused: usize,
    /// The latest changes: when, who, what, on which entry.
    pub recent: Vec<(String, String, String, String)>,
}

#[derive(Template)]
#[template(path = "console/home.html")]
pub struct Home {
    pub nav: Nav,
    pub title: String,
    pub organisations: Vec<OrgSummary>,
}

#[derive(Template)]
#[template(path = "console/account.html")]
pub struct Account {
    pub nav: Nav,
    pub title: String,
    pub display_name: String,
    pub uid: String,
    pub mail: String,
    pub dn: String,
    pub applications: Vec<String>,
}

#[derive(Template)]
#[template(path = "console/password.html")]
pub struct PasswordForm {
    pub nav: Nav,
    pub title: String,
    pub forced: bool,
    pub rules: Vec<String>,
    pub errors: FieldErrors,
}

pub struct AgentRow {
    pub id: String,
    pub name: String,
    pub uid: String,
    pub mail: String,
    pub state: String,
}

#[derive(Template)]
#[template(path = "console/agents.html")]
pub struct Agents {
    pub nav: Nav,
    pub title: String,
    pub org: OrgView,
    pub q: String,
    pub q_url: String,
    pub sort: String,
    pub sort_label: String,
    pub rows: Vec<AgentRow>,
    pub total: usize,
    pub page: usize,
    pub pages: usize,
}

/// One field of a form, with what was typed and its message.
pub struct FormField {
    pub name: &'static str,
    pub label: &'static str,
    pub kind: &'static str,
    pub help: String,
    pub value: String,
    pub error: String,
    pub required: bool,
    pub autocomplete: &'static str,
}

#[derive(Template)]
#[template(path = "console/agent_form.html")]
pub struct AgentForm {
    pub nav: Nav,
    pub title: String,
    pub org: OrgView,
    pub action: String,
    pub submit: String,
    pub fields: Vec<FormField>,
    pub errors: FieldErrors,
}

pub struct AgentView {
    pub id: String,
    pub name: String,
    pub uid: String,
    pub mail: String,
    pub state: String,
    pub suspended: bool,
    pub locked: bool,
    pub valid_from: String,
    pub valid_until: String,
    pub last_bind: String,
}

pub struct Application {
    pub name: String,
    pub label: String,
    pub granted: bool,
}

#[derive(Template)]
#[template(path = "console/agent.html")]
pub struct Agent {
    pub nav: Nav,
    pub title: String,
    pub org: OrgView,
    pub agent: AgentView,
    pub applications: Vec<Application>,
    /// A password generated by a reset, shown this once.
    pub password: String,
    pub bin_days: u64,
}

pub struct BinRow {
    pub id: String,
    pub name: String,
    pub deleted: String,
    pub purge: String,
}

#[derive(Template)]
#[template(path = "console/bin.html")]
pub struct Bin {
    pub nav: Nav,
    pub title: String,
    pub org: OrgView,
    pub rows: Vec<BinRow>,
}

pub struct GroupView {
    pub name: String,
    pub members: Vec<String>,
}

#[derive(Template)]
#[template(path = "console/groups.html")]
pub struct Groups {
    pub nav: Nav,
    pub title: String,
    pub org: OrgView,
    pub groups: Vec<GroupView>,
}
