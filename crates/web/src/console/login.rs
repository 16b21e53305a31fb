//! Staff sign-in and sign-out.
//!
//! `POST /login` takes a password, or (button "Email me a link") mails a
//! single-use link. Both are rate-limited per email and per client
//! address (429), and both answer the same for an unknown email as for a
//! known one: a wrong password and an unknown address get one page.
//! `GET /login/{token}` only shows a button (mail scanners open links);
//! its `POST` uses the link up and opens the session.

use std::net::SocketAddr;

use axum::Form;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use jiff::Timestamp;
use partnerloop_app::staff;
use serde::Deserialize;

use super::pages::{LinkPage, LoginPage};
use super::{Csrf, SESSION_COOKIE, csrf_ok, see_other, session_cookie, staff_of};
use crate::AppState;
use crate::portal::{cookie, html};

const WRONG: &str = "That email and password do not match a staff account. Try again, or ask for a link.";

fn login_page(s: &AppState, headers: &HeaderMap, status: StatusCode, title: &str, message: Option<&str>, email: &str) -> Response {
    let csrf = Csrf::of(s, headers);
    let r = html(status, LoginPage { title, message, email, csrf: &csrf.token });
    csrf.apply(r)
}

/// `GET /login`: the form, or the console when already signed in.
pub(super) async fn form(State(s): State<AppState>, headers: HeaderMap) -> Response {
    if staff_of(&s, &headers).await.is_some() {
        return see_other("/admin");
    }
    login_page(&s, &headers, StatusCode::OK, "Sign in to the console", None, "")
}

#[derive(Debug, Deserialize)]
pub(super) struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    csrf: String,
}

/// `POST /login`: password sign-in, or a mailed link.
pub(super) async fn submit(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    if !csrf_ok(&headers, &f.csrf) {
        return login_page(&s, &headers, StatusCode::FORBIDDEN, "Please try again", Some("The form expired; send it again."), "");
    }
    let email = f.email.trim().to_lowercase();
    if !s.staff_limits.allow(peer.ip(), &email) {
        return login_page(
            &s,
            &headers,
            StatusCode::TOO_MANY_REQUESTS,
            "Too many attempts",
            Some("Please wait a few minutes before trying again."),
            &email,
        );
    }
    let now = Timestamp::now();
    if f.action == "link" {
        if let Err(e) = staff::request_link(s.store.as_ref(), &s.links.base_url, &email, now).await {
            // Logged, never shown: the answer must not tell whether the address is known.
            tracing::error!(error = %e, "sending a staff sign-in link failed");
        }
        return login_page(
            &s,
            &headers,
            StatusCode::OK,
            "Check your inbox",
            Some("If this address belongs to a staff account, a sign-in link is on its way. It works once, for 10 minutes."),
            &email,
        );
    }
    let candidates = match staff::password_candidates(s.store.as_ref(), &email).await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "password sign-in failed");
            return login_page(&s, &headers, StatusCode::SERVICE_UNAVAILABLE, "Something went wrong", Some("Please try again."), &email);
        }
    };
    let password = f.password;
    // Argon2 takes tens of milliseconds of CPU: off the async workers.
    let user = tokio::task::spawn_blocking(move || staff::check_password(candidates, &password)).await.ok().flatten();
    let Some(user) = user else {
        return login_page(&s, &headers, StatusCode::UNAUTHORIZED, "Sign in to the console", Some(WRONG), &email);
    };
    match staff::open_password_session(s.store.as_ref(), user, now).await {
        Ok((token, _)) => signed_in(&s, &token),
        Err(e) => {
            tracing::error!(error = %e, "opening a staff session failed");
            login_page(&s, &headers, StatusCode::SERVICE_UNAVAILABLE, "Something went wrong", Some("Please try again."), &email)
        }
    }
}

fn signed_in(s: &AppState, token: &str) -> Response {
    let mut r = see_other("/admin");
    if let Some(v) = session_cookie(s, token, staff::SESSION_HOURS * 3600) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

/// `GET /login/{token}`: a button, nothing used up.
pub(super) async fn link_page(State(s): State<AppState>, headers: HeaderMap, Path(token): Path<String>) -> Response {
    let csrf = Csrf::of(&s, &headers);
    let r = html(StatusCode::OK, LinkPage { token: &token, csrf: &csrf.token });
    csrf.apply(r)
}

#[derive(Debug, Deserialize)]
pub(super) struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /login/{token}`: uses the link up and signs in.
pub(super) async fn redeem(State(s): State<AppState>, headers: HeaderMap, Path(token): Path<String>, Form(f): Form<CsrfForm>) -> Response {
    if !csrf_ok(&headers, &f.csrf) {
        let csrf = Csrf::of(&s, &headers);
        let r = html(StatusCode::FORBIDDEN, LinkPage { token: &token, csrf: &csrf.token });
        return csrf.apply(r);
    }
    match staff::redeem_link(s.store.as_ref(), &token, Timestamp::now()).await {
        Ok(Some((session, _))) => signed_in(&s, &session),
        Ok(None) => login_page(
            &s,
            &headers,
            StatusCode::GONE,
            "This link has been used or has expired",
            Some("Sign in with your password, or ask for a fresh link."),
            "",
        ),
        Err(e) => {
            tracing::error!(error = %e, "staff sign-in failed");
            login_page(&s, &headers, StatusCode::SERVICE_UNAVAILABLE, "Something went wrong", Some("Please try the link again."), "")
        }
    }
}

/// `POST /logout`: ends the session and clears the cookie.
pub(super) async fn logout(State(s): State<AppState>, headers: HeaderMap, Form(f): Form<CsrfForm>) -> Response {
    if !csrf_ok(&headers, &f.csrf) {
        return login_page(&s, &headers, StatusCode::FORBIDDEN, "Please try again", Some("The form expired; send it again."), "");
    }
    if let Some(token) = cookie(&headers, SESSION_COOKIE)
        && let Err(e) = staff::sign_out(s.store.as_ref(), token, Timestamp::now()).await
    {
        tracing::error!(error = %e, "ending a staff session failed");
    }
    let mut r = see_other("/login");
    if let Some(v) = session_cookie(&s, "", 0) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}
