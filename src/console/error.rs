//! The console's one mapping of the domain error: a French sentence a
//! référent can act on, and the page and status it comes with.

use axum::http::StatusCode;
use axum::response::Response;

use super::Visitor;
use super::pages::{self, Nav};
use crate::directory::DirectoryError;

/// Why a page cannot be shown.
#[derive(Debug)]
pub enum PageError {
    /// Absent, or another organisation's (the same answer on purpose).
    NotFound,
    /// A form posted without this session's token (another site's, or an
    /// old tab's after signing in again).
    Forged,
    BadForm(String),
    Directory(DirectoryError),
}

impl From<DirectoryError> for PageError {
    fn from(e: DirectoryError) -> PageError {
        match e {
            DirectoryError::NoSuchObject { .. } => PageError::NotFound,
            e => PageError::Directory(e),
        }
    }
}

/// What the directory's refusal means, in French. The directory's own
/// words follow where they name the value at fault.
pub fn french(e: &DirectoryError) -> String {
    use DirectoryError as E;
    match e {
        E::NoSuchObject { .. } => "Cette fiche n'existe pas ou n'est plus accessible.".into(),
        E::AlreadyExists(_) => "Une fiche porte déjà ce nom.".into(),
        E::NotUnique(_) => "Cet identifiant est déjà utilisé par un autre compte.".into(),
        E::InvalidCredentials => "Identifiant ou mot de passe incorrect.".into(),
        E::InsufficientAccess(_) => "Vous n'avez pas le droit de faire cette modification.".into(),
        E::PasswordRefused(problem, _) => password_problem(*problem),
        E::InvalidAttributeSyntax(d) => format!("Une valeur n'a pas la forme attendue ({d})."),
        E::ConstraintViolation(d) => format!("La modification n'est pas acceptée ({d})."),
        E::ObjectClassViolation(d) => format!("Une information obligatoire manque ({d})."),
        E::PreconditionFailed(_) => {
            "La fiche a été modifiée entre-temps par quelqu'un d'autre : rechargez la page et recommencez.".into()
        }
        E::Unwilling(d) => format!("Le serveur refuse cette opération ({d})."),
        E::Referral(_) => {
            "Ce serveur est une copie en lecture seule de l'annuaire : faites la modification sur le serveur principal."
                .into()
        }
        E::Store(_) | E::Internal(_) => {
            "Le serveur n'a pas pu enregistrer la modification ; rien n'a été changé. Réessayez dans un instant.".into()
        }
        other => format!("La modification n'est pas acceptée ({other})."),
    }
}

fn password_problem(p: crate::directory::ppolicy::PasswordProblem) -> String {
    use crate::directory::ppolicy::PasswordProblem as P;
    match p {
        P::TooShort => "Le mot de passe est trop court.".into(),
        P::InsufficientQuality => "Le mot de passe ne mélange pas assez de sortes de caractères.".into(),
        P::InHistory => "Ce mot de passe a déjà servi récemment : choisissez-en un autre.".into(),
        _ => "Ce mot de passe n'est pas accepté par la politique de mots de passe.".into(),
    }
}

impl PageError {
    fn status(&self) -> StatusCode {
        match self {
            PageError::NotFound => StatusCode::NOT_FOUND,
            PageError::Forged => StatusCode::FORBIDDEN,
            PageError::BadForm(_) => StatusCode::BAD_REQUEST,
            PageError::Directory(DirectoryError::InsufficientAccess(_)) => StatusCode::FORBIDDEN,
            PageError::Directory(DirectoryError::Store(_) | DirectoryError::Internal(_)) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            PageError::Directory(_) => StatusCode::CONFLICT,
        }
    }

    fn words(&self) -> (&'static str, String) {
        match self {
            PageError::NotFound => {
                ("Page introuvable", "Cette page n'existe pas ou ne vous est pas accessible.".into())
            }
            PageError::Forged => (
                "Formulaire expiré",
                "Ce formulaire ne vient pas de votre session en cours : revenez à la page et envoyez-le à nouveau."
                    .into(),
            ),
            PageError::BadForm(d) => {
                ("Formulaire illisible", format!("Le formulaire envoyé n'a pas pu être lu ({d})."))
            }
            PageError::Directory(e) => ("Opération refusée", french(e)),
        }
    }

    pub fn page(&self, visitor: Option<&Visitor>) -> Response {
        if let PageError::Directory(e) = self {
            tracing::debug!("console: {e}");
        }
        let (title, message) = self.words();
        pages::problem(self.status(), Nav::of(visitor), title, message)
    }
}
