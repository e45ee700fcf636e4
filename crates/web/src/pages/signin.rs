//! Signing in and out, and the language switch. The sign-in form carries a CSRF token
//! that matches a cookie of its own (there is no session yet to hold it).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::Response;
use maud::html;
use tafel_contract::PrincipalId;
use tafel_service::principals::token_digest;

use super::{home_of, parameter};
use crate::form;
use crate::i18n::{LANGUAGE_COOKIE, Lang, msg};
use crate::layout::{self, FieldError, FormState};
use crate::session::{self, SESSION_COOKIE, SIGN_IN_COOKIE, cookie, csrf_holds, over_tls, set_cookie};
use crate::{Web, html, see_other};

/// How long the language choice is remembered.
const LANGUAGE_REMEMBERED_S: u64 = 365 * 24 * 60 * 60;

/// Only a path of this site is gone back to: `/` and then only the characters of
/// Tafel's own paths and query strings, so never `//elsewhere`, `https://...`, nor
/// `/<tab>/elsewhere` (browsers drop tabs and newlines from addresses).
fn local_path(path: Option<String>) -> Option<String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "/-_.?=&%".contains(c);
    path.filter(|path| path.starts_with('/') && !path.starts_with("//") && path.chars().all(allowed))
}

pub async fn page(State(web): State<Web>, headers: HeaderMap, uri: Uri) -> Response {
    render(&web, &headers, &uri, &FormState::default(), StatusCode::OK)
}

fn render(web: &Web, headers: &HeaderMap, uri: &Uri, form: &FormState, status: StatusCode) -> Response {
    let lang = Lang::of(headers);
    let csrf = cookie(headers, SIGN_IN_COOKIE)
        .filter(|value| value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()))
        .or_else(session::random_secret)
        .unwrap_or_default();
    let next = local_path(parameter(uri, "next")).unwrap_or_default();
    let demo = &web.config.demo_principals;
    let body = html! {
        (layout::error_summary(lang, form))
        div.columns {
            section.column aria-labelledby="with-token" {
                h2 #with-token.utrecht-heading-2 { (lang.t(msg::SIGNIN_WITH_TOKEN)) }
                form method="post" action="/signin" novalidate {
                    input type="hidden" name="csrf" value=(csrf);
                    input type="hidden" name="next" value=(next);
                    div.utrecht-form-field.utrecht-form-field--invalid[form.error("token").is_some()] {
                        label.utrecht-form-label for="field-token" { (lang.t(msg::SIGNIN_TOKEN)) }
                        div.utrecht-form-field-description #hint-token { (lang.t(msg::SIGNIN_TOKEN_HINT)) }
                        @if let Some(error) = form.error("token") {
                            p.utrecht-form-field-error-message #error-token { span.visually-hidden { (lang.t(msg::FORM_ERROR_PREFIX)) " " } (error) }
                        }
                        input.utrecht-textbox #field-token type="password" name="token" autocomplete="current-password" required
                            aria-describedby={ "hint-token" @if form.error("token").is_some() { " error-token" } }
                            aria-invalid=[form.error("token").map(|_| "true")];
                    }
                    (layout::submit_button(lang.t(msg::SIGNIN_BUTTON)))
                }
            }
            @if !demo.is_empty() {
                section.column.demo aria-labelledby="demo-title" {
                    h2 #demo-title.utrecht-heading-2 { (lang.t(msg::SIGNIN_DEMO_TITLE)) }
                    p.demo-banner { strong { (lang.t(msg::LAYOUT_DEMO)) } " " (lang.t(msg::SIGNIN_DEMO_EXPLAINED)) }
                    ul.demo-principals {
                        @for (principal, role) in demo.iter() {
                            li {
                                form method="post" action="/signin/demo" {
                                    input type="hidden" name="csrf" value=(csrf);
                                    input type="hidden" name="principal" value=(principal.as_str());
                                    button.utrecht-button.utrecht-button--secondary-action type="submit" {
                                        (principal.as_str()) span.role { " · " (lang.label("role", role.as_str())) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    let mut response = html(status, layout::page(lang, None, lang.t(msg::SIGNIN_TITLE), body));
    if let Ok(value) = HeaderValue::from_str(&set_cookie(SIGN_IN_COOKIE, &csrf, None, over_tls(headers))) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// Whether the sign-in form's token matches its cookie.
fn sign_in_csrf_holds(headers: &HeaderMap, form: &FormState) -> bool {
    let expected = cookie(headers, SIGN_IN_COOKIE).unwrap_or_default();
    csrf_holds(&expected, Some(form.value("csrf")))
}

fn refused_form(web: &Web, headers: &HeaderMap, uri: &Uri) -> Response {
    let lang = Lang::of(headers);
    let form = FormState { general: Some(lang.t(msg::CSRF_TEXT).to_owned()), ..FormState::default() };
    render(web, headers, uri, &form, StatusCode::FORBIDDEN)
}

/// `POST /signin`: a principal's HTTP token starts a session.
pub async fn with_token(State(web): State<Web>, headers: HeaderMap, uri: Uri, body: Bytes) -> Response {
    let form = FormState::from_values(form::parse(&body));
    if !sign_in_csrf_holds(&headers, &form) {
        return refused_form(&web, &headers, &uri);
    }
    let token = form.value("token").trim().to_owned();
    let Some(actor) = web.service.principals().actor_for_token(&token) else {
        let lang = Lang::of(&headers);
        let errors = vec![FieldError { field: "token".into(), message: lang.t(msg::SIGNIN_WRONG_TOKEN).into() }];
        return render(&web, &headers, &uri, &FormState { errors, ..FormState::default() }, StatusCode::UNAUTHORIZED);
    };
    let next = local_path(Some(form.value("next").to_owned())).unwrap_or_else(|| home_of(actor.role).to_owned());
    start(&web, &headers, actor.id, Some(token_digest(&token)), &next)
}

/// `POST /signin/demo`: with `--demo` only, one of the demo's principals, by one click.
pub async fn as_demo(State(web): State<Web>, headers: HeaderMap, uri: Uri, body: Bytes) -> Response {
    let form = FormState::from_values(form::parse(&body));
    if !sign_in_csrf_holds(&headers, &form) {
        return refused_form(&web, &headers, &uri);
    }
    let chosen = web.config.demo_principals.iter().find(|(principal, _)| principal.as_str() == form.value("principal"));
    let actor = chosen.and_then(|(principal, _)| web.service.principals().actor(principal.as_str()));
    match actor {
        Some(actor) => start(&web, &headers, actor.id, None, home_of(actor.role)),
        None => {
            let lang = Lang::of(&headers);
            let form = FormState { general: Some(lang.t(msg::SIGNIN_NO_DEMO).to_owned()), ..FormState::default() };
            render(&web, &headers, &uri, &form, StatusCode::NOT_FOUND)
        }
    }
}

fn start(web: &Web, headers: &HeaderMap, principal: PrincipalId, token: Option<[u8; 32]>, next: &str) -> Response {
    let Some(id) = web.sessions.start(principal, token) else {
        return html(StatusCode::SERVICE_UNAVAILABLE, html! { "unavailable" });
    };
    let tls = over_tls(headers);
    let mut response = see_other(next);
    for cookie in [set_cookie(SESSION_COOKIE, &id, None, tls), set_cookie(SIGN_IN_COOKIE, "", Some(0), tls)] {
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

/// `POST /signout`: ends the session (its CSRF token required, so no other site can
/// sign anyone out).
pub async fn sign_out(State(web): State<Web>, headers: HeaderMap, uri: Uri, body: Bytes) -> Response {
    let cx = match web.cx(&headers, uri.path()) {
        Ok(cx) => cx,
        Err(to_sign_in) => return to_sign_in,
    };
    let form = FormState::from_values(form::parse(&body));
    if let Err(refused) = super::check_csrf(&cx, &form) {
        return refused;
    }
    web.sessions.end(&headers);
    let mut response = see_other("/signin");
    if let Ok(value) = HeaderValue::from_str(&set_cookie(SESSION_COOKIE, "", Some(0), over_tls(&headers))) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// `GET /language/{nl|en}?back=`: remembers the choice and goes back.
pub async fn language(Path(code): Path<String>, headers: HeaderMap, uri: Uri) -> Response {
    let back = local_path(parameter(&uri, "back")).unwrap_or_else(|| "/".to_owned());
    let mut response = see_other(&back);
    if let Some(lang) = Lang::parse(&code) {
        let cookie = set_cookie(LANGUAGE_COOKIE, lang.code(), Some(LANGUAGE_REMEMBERED_S), over_tls(&headers));
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_of_this_site_are_gone_back_to() {
        assert_eq!(local_path(Some("/requests/x".into())).as_deref(), Some("/requests/x"));
        for elsewhere in
            ["//evil.example", "https://evil.example", "/\\evil.example", "", "/\t/evil.example", "/\n/evil", "/ /evil"]
        {
            assert_eq!(local_path(Some(elsewhere.into())), None, "{elsewhere}");
        }
    }
}
