//! The console's routes. Pages need a login; `/metrics`, `/healthz` and
//! `/readyz` do not (monitoring scrapes them; they hold no personal data).
//! Every login, failed login and action is recorded in the audit log
//! through the daemon before the console answers or acts; an action the
//! account's role does not allow is recorded too, and refused.

use super::accounts::{Accounts, Action};
use super::cycles;
use super::pages;
use super::respond::{error_page, require, session_of, show, to_login};
use super::sessions::COOKIE;
use super::state::{State as Shared, unexpected};
use super::views;
use crate::admin::{AdminRequest, AdminResponse, AuditQuery};
use axum::Router;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use dxmesh_protocol::audit::Event;
use std::sync::Arc;

type St = State<Arc<Shared>>;

/// Every route of the console.
pub fn router(state: Arc<Shared>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/login", get(login_form).post(login))
        .route("/logout", post(logout))
        .route("/", get(node_page))
        .route("/peers", get(peers_page))
        .route("/agreements", get(agreements_page))
        .route("/agreements/{id}", get(agreement_page))
        .route("/agreements/{id}/{action}", post(agreement_action))
        .route("/feeds", get(views::feeds_page))
        .route("/publish", post(publish))
        .route("/refusals", get(views::refusals_page))
        .route("/audit", get(audit_page))
        .route("/results", get(cycles::results_page))
        .route("/results/{k}", get(cycles::cycle_page))
        .route("/results/{k}/report", get(cycles::report_page))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}

/// The headers every console response carries: no scripts, frames, other
/// origins or caching (pages show personal data and agreements), HTTPS
/// only, and types as sent.
async fn security_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::STRICT_TRANSPORT_SECURITY, "max-age=31536000"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    response
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready when the daemon answers, holds a roster that admits it, and
/// listens on the mesh.
async fn readyz(State(st): St) -> Response {
    match st.status().await {
        Ok(s) if s.roster_version > 0 && !s.listen_addresses.is_empty() => {
            (StatusCode::OK, "ready\n").into_response()
        }
        Ok(s) if s.roster_version == 0 => {
            (StatusCode::SERVICE_UNAVAILABLE, "no roster installed\n").into_response()
        }
        Ok(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not listening on the mesh yet\n",
        )
            .into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")).into_response(),
    }
}

async fn metrics(State(st): St) -> Response {
    st.refresh_cycle_metrics();
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        st.metrics.render(),
    )
        .into_response()
}

async fn login_form(State(st): St) -> Html<String> {
    Html(pages::login(None, &st.metrics.node()))
}

#[derive(serde::Deserialize)]
struct LoginForm {
    user: String,
    password: String,
}

async fn login(
    State(st): St,
    axum::Extension(client): axum::Extension<super::state::Client>,
    Form(f): Form<LoginForm>,
) -> Response {
    // Counted as a failure, of the address and of the name, before the
    // check; a success takes the address's back and clears the name's.
    let address = client.0.to_string();
    if !st.addresses.attempt(&address) {
        return locked_out(&st, &f.user, "from this address").await;
    }
    if !st.throttle.attempt(&f.user) {
        return locked_out(&st, &f.user, "for this account").await;
    }
    let Some(mut permit) = st.checks.enter().await else {
        return error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many logins at once: try again in a moment",
        );
    };
    let dir = st.dir.clone();
    let (user, password) = (f.user.clone(), f.password);
    let checked = tokio::task::spawn_blocking(move || {
        let checked = Accounts::load(&dir).map(|a| a.check(&user, &password, permit.memory()));
        drop(permit);
        checked
    })
    .await;
    let role = match checked {
        Ok(Ok(role)) => role,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "console accounts");
            return error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the accounts file cannot be read; see the node's log",
            );
        }
        Err(_) => return error_page(StatusCode::INTERNAL_SERVER_ERROR, "login failed"),
    };
    let event = Event::ConsoleLogin {
        user: f.user.clone(),
        role: role.map(|r| r.name().to_string()),
        ok: role.is_some(),
    };
    if let Err(e) = st.record(event).await {
        return error_page(StatusCode::SERVICE_UNAVAILABLE, &e);
    }
    if role.is_some() {
        st.throttle.succeeded(&f.user);
        st.addresses.forgive_one(&address);
    }
    let Some(role) = role else {
        return (
            StatusCode::UNAUTHORIZED,
            Html(pages::login(
                Some("wrong account or password"),
                &st.metrics.node(),
            )),
        )
            .into_response();
    };
    let Some(token) = st.sessions.start(&f.user, role) else {
        return error_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "no session could be made",
        );
    };
    let cookie = format!(
        "{COOKIE}={token}; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age={}",
        st.sessions.ttl().as_secs()
    );
    let mut r = Redirect::to("/").into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// A login refused unchecked (too many failures `whence`): logged as a
/// failed login, answered 429.
async fn locked_out(st: &super::state::State, user: &str, whence: &str) -> Response {
    let event = Event::ConsoleLogin {
        user: user.to_string(),
        role: None,
        ok: false,
    };
    if let Err(e) = st.record(event).await {
        return error_page(StatusCode::SERVICE_UNAVAILABLE, &e);
    }
    let message = format!("too many failed logins {whence}: try again later");
    (
        StatusCode::TOO_MANY_REQUESTS,
        Html(pages::login(Some(&message), &st.metrics.node())),
    )
        .into_response()
}

#[derive(serde::Deserialize)]
struct CsrfForm {
    csrf: String,
}

async fn logout(State(st): St, headers: HeaderMap, Form(f): Form<CsrfForm>) -> Response {
    if let Some((token, s)) = session_of(&st, &headers)
        && s.csrf == f.csrf
    {
        st.sessions.end(&token);
    }
    let mut r = Redirect::to("/login").into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "dxmesh_session=; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=0",
        ),
    );
    r
}

async fn node_page(State(st): St, headers: HeaderMap) -> Response {
    let Some(s) = require(&st, &headers) else {
        return to_login();
    };
    match st.status().await {
        Ok(status) => show("Node", &s, &pages::node(&status)),
        Err(e) => error_page(StatusCode::SERVICE_UNAVAILABLE, &e),
    }
}

async fn peers_page(State(st): St, headers: HeaderMap) -> Response {
    let Some(s) = require(&st, &headers) else {
        return to_login();
    };
    match (st.status().await, st.info().await) {
        (Ok(status), Ok(info)) => show("Peers", &s, &pages::peers(&status, &info)),
        (Err(e), _) | (_, Err(e)) => error_page(StatusCode::SERVICE_UNAVAILABLE, &e),
    }
}

async fn agreements_page(State(st): St, headers: HeaderMap) -> Response {
    let Some(s) = require(&st, &headers) else {
        return to_login();
    };
    let list = match st.call(AdminRequest::AgreementList).await {
        Ok(AdminResponse::Agreements { agreements }) => agreements,
        Ok(other) => return error_page(StatusCode::BAD_GATEWAY, &unexpected(&other)),
        Err(e) => return error_page(StatusCode::SERVICE_UNAVAILABLE, &e),
    };
    show("Agreements", &s, &pages::agreements(&list, &s))
}

async fn agreement_page(State(st): St, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let Some(s) = require(&st, &headers) else {
        return to_login();
    };
    match st.call(AdminRequest::AgreementShow { id }).await {
        Ok(AdminResponse::Agreement(d)) => show("Agreement", &s, &pages::agreement(&d)),
        Ok(AdminResponse::Error { message }) => error_page(StatusCode::NOT_FOUND, &message),
        Ok(other) => error_page(StatusCode::BAD_GATEWAY, &unexpected(&other)),
        Err(e) => error_page(StatusCode::SERVICE_UNAVAILABLE, &e),
    }
}

async fn agreement_action(
    State(st): St,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    Form(f): Form<CsrfForm>,
) -> Response {
    let which = match action.as_str() {
        "accept" => Action::AgreementAccept,
        "suspend" => Action::AgreementSuspend,
        "resume" => Action::AgreementResume,
        _ => return error_page(StatusCode::NOT_FOUND, "no such action"),
    };
    let request = AdminRequest::AgreementAct {
        id: id.clone(),
        action,
        reason: Some("from the operator console".into()),
    };
    act(&st, &headers, &f.csrf, (which, &id), request).await
}

async fn publish(State(st): St, headers: HeaderMap, Form(f): Form<CsrfForm>) -> Response {
    let request = AdminRequest::Publish {
        agreement: None,
        epoch: None,
        republish: false,
    };
    act(
        &st,
        &headers,
        &f.csrf,
        (Action::Publish, "all active agreements"),
        request,
    )
    .await
}

/// Checks the session, the form's token and the role; records the action
/// (allowed or not) in the audit log; then carries it out.
async fn act(
    st: &Shared,
    headers: &HeaderMap,
    csrf: &str,
    (action, target): (Action, &str),
    request: AdminRequest,
) -> Response {
    let Some((_, s)) = session_of(st, headers) else {
        return error_page(StatusCode::UNAUTHORIZED, "log in first");
    };
    if s.csrf != csrf {
        return error_page(
            StatusCode::FORBIDDEN,
            "this form is not from your session; reload the page",
        );
    }
    let allowed = s.role.may(action);
    let event = Event::ConsoleAction {
        user: s.user.clone(),
        role: s.role.name().to_string(),
        action: action.name().to_string(),
        target: target.to_string(),
        allowed,
    };
    if let Err(e) = st.record(event).await {
        return error_page(StatusCode::SERVICE_UNAVAILABLE, &e);
    }
    if !allowed {
        let text = format!("the role {} may not {}", s.role.name(), action.name());
        return (
            StatusCode::FORBIDDEN,
            show("Refused", &s, &pages::message(false, &text)),
        )
            .into_response();
    }
    match st.call(request).await {
        Ok(AdminResponse::Error { message }) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            show("Not done", &s, &pages::message(false, &message)),
        )
            .into_response(),
        Ok(AdminResponse::AgreementStep(a)) => show(
            "Done",
            &s,
            &pages::message(true, &format!("agreement {}: {}", a.thread, a.status)),
        ),
        Ok(AdminResponse::Published { feeds }) => show(
            "Done",
            &s,
            &pages::message(true, &format!("{} feeds published", feeds.len())),
        ),
        Ok(other) => error_page(StatusCode::BAD_GATEWAY, &unexpected(&other)),
        Err(e) => error_page(StatusCode::SERVICE_UNAVAILABLE, &e),
    }
}

async fn audit_page(
    State(st): St,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<AuditQuery>,
) -> Response {
    let Some(s) = require(&st, &headers) else {
        return to_login();
    };
    let info = match st.info().await {
        Ok(info) => info,
        Err(e) => return error_page(StatusCode::SERVICE_UNAVAILABLE, &e),
    };
    match st.call(AdminRequest::AuditPage(q.clone())).await {
        Ok(AdminResponse::AuditPage(page)) => {
            show("Audit log", &s, &pages::audit(&info, &page, &q))
        }
        Ok(AdminResponse::Error { message }) => error_page(StatusCode::BAD_REQUEST, &message),
        Ok(other) => error_page(StatusCode::BAD_GATEWAY, &unexpected(&other)),
        Err(e) => error_page(StatusCode::SERVICE_UNAVAILABLE, &e),
    }
}
