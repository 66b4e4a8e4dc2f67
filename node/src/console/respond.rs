//! What every console handler answers with: the session a request
//! belongs to (checked against the accounts file on every request), or
//! the way to the login form, pages and error pages.

use super::accounts::Accounts;
use super::pages;
use super::sessions::{COOKIE, Session};
use super::state::State as Shared;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};

/// The session of the request's cookie, with its token, if its account
/// still exists with the same role: the accounts file is read again on
/// every request, so removing an account or changing its role ends its
/// sessions at once (and an accounts file that cannot be read lets no
/// session act).
pub(super) fn session_of(st: &Shared, headers: &HeaderMap) -> Option<(String, Session)> {
    let (token, session) = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='))
        .find_map(|token| st.sessions.get(token).map(|s| (token.to_string(), s)))?;
    let current = match Accounts::load(&st.dir) {
        Ok(accounts) => accounts.role_of(&session.user),
        Err(e) => {
            tracing::error!(error = %e, "console accounts; no session may act");
            return None;
        }
    };
    if current != Some(session.role) {
        tracing::warn!(user = %session.user, "console account removed or its role changed: its session ends");
        st.sessions.end(&token);
        return None;
    }
    Some((token, session))
}

/// The logged-in session, if any.
pub(super) fn require(st: &Shared, headers: &HeaderMap) -> Option<Session> {
    session_of(st, headers).map(|(_, s)| s)
}

/// Sends the browser to log in.
pub(super) fn to_login() -> Response {
    Redirect::to("/login").into_response()
}

/// A page of the logged-in `session`.
pub(super) fn show(title: &str, session: &Session, body: &str) -> Response {
    Html(pages::page(title, Some(session), body)).into_response()
}

/// An error page (no navigation).
pub(super) fn error_page(code: StatusCode, text: &str) -> Response {
    (
        code,
        Html(pages::page("Error", None, &pages::message(false, text))),
    )
        .into_response()
}
