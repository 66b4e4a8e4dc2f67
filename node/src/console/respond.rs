//! What every console handler answers with: the session a request
//! belongs to (or the way to the login form), pages and error pages.

use super::pages;
use super::sessions::{COOKIE, Session};
use super::state::State as Shared;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};

/// The session of the request's cookie, with its token.
pub(super) fn session_of(st: &Shared, headers: &HeaderMap) -> Option<(String, Session)> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='))
        .find_map(|token| st.sessions.get(token).map(|s| (token.to_string(), s)))
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
