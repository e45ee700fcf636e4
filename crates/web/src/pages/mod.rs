//! The pages, by role. Each handler signs the person in from the session cookie,
//! checks the CSRF token of a form, asks the service, and renders; a page of another
//! role, or an aggregate the service answers `not_found`, is the same 404 page.

mod mandates;
mod organiser;
mod requests;
mod roundtables;
mod signin;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use axum::routing::{get, post};
use maud::{Markup, html};
use serde_json::Value;
use tafel_contract::reply::{ErrorCode, Refusal};
use tafel_contract::vocab::Role;

use crate::explain;
use crate::form::refusal_sentence;
use crate::i18n::{Lang, msg};
use crate::layout::{self, FormState};
use crate::session::csrf_holds;
use crate::{Cx, Web, html, see_other};

pub fn routes() -> Router<Web> {
    Router::new()
        .route("/", get(home))
        .route("/signin", get(signin::page).post(signin::with_token))
        .route("/signin/demo", post(signin::as_demo))
        .route("/signout", post(signin::sign_out))
        .route("/language/{code}", get(signin::language))
        .route("/requests", get(requests::list))
        .route("/requests/new", get(requests::new_form).post(requests::submit))
        .route("/requests/{id}", get(requests::show))
        .route("/requests/{id}/revise", get(requests::revise_form).post(requests::revise))
        .route("/requests/{id}/withdraw", post(requests::withdraw))
        .route("/requests/{id}/coach", post(requests::coach))
        .route("/requests/{id}/shortlist/live", get(requests::live_shortlist))
        .route("/coaching", get(requests::coaching))
        .route("/mandates", get(mandates::list))
        .route("/mandates/new", get(mandates::new_form).post(mandates::publish))
        .route("/mandates/{id}", get(mandates::show))
        .route("/mandates/{id}/revise", get(mandates::revise_form).post(mandates::revise))
        .route("/mandates/{id}/close", post(mandates::close))
        .route("/matches", get(mandates::matches))
        .route("/roundtables", get(roundtables::list))
        .route("/roundtables/new", get(roundtables::new_form).post(roundtables::schedule))
        .route("/roundtables/{id}", get(roundtables::show))
        .route("/roundtables/{id}/agenda", post(roundtables::set_agenda))
        .route("/roundtables/{id}/assess", post(roundtables::assess))
        .route("/roundtables/{id}/recuse", post(roundtables::recuse))
        .route("/roundtables/{id}/conclude", post(roundtables::conclude))
        .route("/dashboard", get(organiser::dashboard))
        .route("/report", get(organiser::report))
        .route("/report.csv", get(organiser::report_csv))
        .fallback(fallback)
}

/// Each role's first page.
fn home_of(role: Role) -> &'static str {
    match role {
        Role::Entrepreneur => "/requests",
        Role::Coach => "/coaching",
        Role::Financier => "/matches",
        Role::Organiser | Role::Admin => "/dashboard",
    }
}

async fn home(State(web): State<Web>, headers: HeaderMap, uri: Uri) -> Response {
    match web.cx(&headers, uri.path()) {
        Ok(cx) => see_other(home_of(cx.role())),
        Err(to_sign_in) => to_sign_in,
    }
}

async fn fallback(State(web): State<Web>, headers: HeaderMap, uri: Uri) -> Response {
    match web.cx(&headers, uri.path()) {
        Ok(cx) => not_found(&cx),
        Err(_) => {
            let lang = Lang::of(&headers);
            let body = html! { p { (lang.t(msg::NOT_FOUND_TEXT)) } p { a.utrecht-link href="/signin" { (lang.t(msg::SIGNIN_TITLE)) } } };
            html(StatusCode::NOT_FOUND, layout::page(lang, None, lang.t(msg::NOT_FOUND_TITLE), body))
        }
    }
}

/// The page for what does not exist, is not the person's to see, or belongs to another
/// role: one and the same, as the contract's visibility asks.
pub fn not_found(cx: &Cx) -> Response {
    let lang = cx.lang;
    let body = html! {
        p { (lang.t(msg::NOT_FOUND_TEXT)) }
        p { a.utrecht-link href=(home_of(cx.role())) { (lang.t(msg::NOT_FOUND_HOME)) } }
    };
    html(StatusCode::NOT_FOUND, layout::page(lang, Some(cx), lang.t(msg::NOT_FOUND_TITLE), body))
}

/// A refusal of a query, as a page: `not_found` is the 404 page, the rest say what
/// happened (with the contract's status).
pub fn refused_page(cx: &Cx, refusal: &Refusal) -> Response {
    if refusal.code == ErrorCode::NotFound {
        return not_found(cx);
    }
    let lang = cx.lang;
    let status = StatusCode::from_u16(refusal.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body =
        html! { div.utrecht-alert.utrecht-alert--error role="alert" { p { (refusal_sentence(lang, refusal)) } } };
    html(status, layout::page(lang, Some(cx), lang.t(msg::ERROR_TITLE), body))
}

/// A form whose CSRF token is missing or wrong: refused, nothing done.
pub fn check_csrf(cx: &Cx, form: &FormState) -> Result<(), Response> {
    let given = form.values.iter().find(|(key, _)| key == "csrf").map(|(_, value)| value.as_str());
    if csrf_holds(&cx.csrf, given) {
        return Ok(());
    }
    let lang = cx.lang;
    let body = html! {
        div.utrecht-alert.utrecht-alert--error role="alert" { p { (lang.t(msg::CSRF_TEXT)) } }
        p { a.utrecht-link href=(home_of(cx.role())) { (lang.t(msg::NOT_FOUND_HOME)) } }
    };
    Err(html(StatusCode::FORBIDDEN, layout::page(lang, Some(cx), lang.t(msg::CSRF_TITLE), body)))
}

/// The signed-in person, if their role is one of `roles`; otherwise the response to
/// give (the sign-in page, or 404 for another role).
pub async fn signed_in(web: &Web, headers: &HeaderMap, uri: &Uri, roles: &[Role]) -> Result<Cx, Response> {
    let cx = web.cx(headers, uri.path())?;
    if roles.contains(&cx.role()) { Ok(cx) } else { Err(not_found(&cx)) }
}

/// The signed-in person, if their role is one of `roles`, with the form they sent, its
/// CSRF token checked; otherwise the response to give.
pub async fn posted(
    web: &Web,
    headers: &HeaderMap,
    uri: &Uri,
    roles: &[Role],
    body: &[u8],
) -> Result<(Cx, FormState), Response> {
    let cx = signed_in(web, headers, uri, roles).await?;
    let form = FormState::from_values(crate::form::parse(body));
    check_csrf(&cx, &form)?;
    Ok((cx, form))
}

/// A form's event, for [`send`].
pub struct Outgoing<'a> {
    pub event_type: &'a str,
    pub subject: &'a str,
    pub data: Value,
    pub expected_version: Option<u64>,
}

/// What became of a form's event that reached the service.
pub enum Sent {
    Accepted,
    /// Not found, or not the person's to see: the 404 page.
    NotFound,
}

/// Sends a form's event, unless reading the form found `errors`. Those errors, or the
/// service's refusal, go on the form beside their field (one of `fields`), for the page
/// to show it again: then `None`.
pub async fn send(
    web: &Web,
    cx: &Cx,
    form: &mut FormState,
    errors: Vec<layout::FieldError>,
    event: Outgoing<'_>,
    fields: &[&str],
) -> Option<Sent> {
    if !errors.is_empty() {
        form.errors = errors;
        return None;
    }
    let event_id = form.value("event_id").to_owned();
    match web.submit(cx, event.event_type, event.subject, event.data, event.expected_version, &event_id).await {
        tafel_contract::reply::SubmitReply::Accepted { .. } => Some(Sent::Accepted),
        tafel_contract::reply::SubmitReply::Refused { error, .. } if error.code == ErrorCode::NotFound => {
            Some(Sent::NotFound)
        }
        tafel_contract::reply::SubmitReply::Refused { error, .. } => {
            crate::form::refusal_on_form(cx.lang, form, &error, fields);
            None
        }
    }
}

/// The `done` notice a page shows after a form went through.
pub fn done_of(uri: &Uri) -> Option<String> {
    uri.query()?.split('&').find_map(|pair| pair.strip_prefix("done=")).map(str::to_owned)
}

/// A query parameter of the page's address.
pub fn parameter(uri: &Uri, name: &str) -> Option<String> {
    let query = uri.query()?;
    form_urlencoded::parse(query.as_bytes()).find(|(key, _)| key == name).map(|(_, value)| value.into_owned())
}

/// Renders a shortlist (the `shortlist` query's answer): the entries with their
/// reasons, the consortia, the near misses in sentences. The live script swaps this
/// markup for the newest, rendered the same way.
pub fn shortlist(lang: Lang, shortlist: &Value) -> Markup {
    let entries = shortlist["entries"].as_array().map(Vec::as_slice).unwrap_or_default();
    let consortia = shortlist["consortia"].as_array().map(Vec::as_slice).unwrap_or_default();
    let near = shortlist["near_misses"].as_array().map(Vec::as_slice).unwrap_or_default();
    html! {
        p.as-of { (lang.f(msg::SHORTLIST_AS_OF, &[("sequence", &shortlist["as_of"].as_u64().unwrap_or(0).to_string())])) }
        @if entries.is_empty() {
            p { (lang.t(msg::SHORTLIST_EMPTY)) }
        } @else {
            ol.shortlist {
                @for entry in entries {
                    li.shortlist-entry {
                        h3.utrecht-heading-3 {
                            (entry["financier"].as_str().unwrap_or(""))
                            span.score { " · " (lang.f(msg::SHORTLIST_SCORE, &[("score", &lang.decimal(entry["score"].as_f64().unwrap_or(0.0)))])) }
                        }
                        p {
                            @if entry["fit"] == "full" {
                                (lang.f(msg::SHORTLIST_FIT_FULL, &[("amount", &lang.eur(entry["max_contribution_eur"].as_u64().unwrap_or(0)))]))
                            } @else {
                                (lang.f(msg::SHORTLIST_FIT_PARTIAL, &[("amount", &lang.eur(entry["max_contribution_eur"].as_u64().unwrap_or(0)))]))
                            }
                        }
                        details {
                            summary { (lang.t(msg::SHORTLIST_WHY)) }
                            table.utrecht-table.reasons {
                                caption.visually-hidden { (lang.t(msg::SHORTLIST_WHY)) }
                                thead.utrecht-table__header { tr { th scope="col" { (lang.t(msg::SHORTLIST_CRITERION)) } th scope="col" { (lang.t(msg::SHORTLIST_POINTS)) } th scope="col" { (lang.t(msg::SHORTLIST_BECAUSE)) } } }
                                tbody {
                                    @for reason in entry["reasons"].as_array().map(Vec::as_slice).unwrap_or_default() {
                                        @let criterion = reason["criterion"].as_str().unwrap_or("");
                                        tr {
                                            th scope="row" { (lang.label("criterion", criterion)) }
                                            td.number { (lang.decimal(reason["points"].as_f64().unwrap_or(0.0))) }
                                            td { (explain::reason(lang, criterion, reason["detail"].as_str().unwrap_or(""))) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if !consortia.is_empty() {
            h3.utrecht-heading-3 { (lang.t(msg::SHORTLIST_CONSORTIA)) }
            p { (lang.t(msg::SHORTLIST_CONSORTIA_EXPLAINED)) }
            @for consortium in consortia {
                ul.consortium {
                    @for part in consortium["parts"].as_array().map(Vec::as_slice).unwrap_or_default() {
                        li { (mandate_name(entries, part["mandate_id"].as_str().unwrap_or(""))) ": " (lang.eur(part["amount_eur"].as_u64().unwrap_or(0))) " · " (lang.label("instrument", part["instrument"].as_str().unwrap_or(""))) }
                    }
                }
            }
        }
        @if !near.is_empty() {
            h3.utrecht-heading-3 { (lang.t(msg::SHORTLIST_NEAR)) }
            ul.near-misses {
                @for miss in near {
                    li { strong { (miss["financier"].as_str().unwrap_or("")) } ": " (explain::near_miss(lang, miss["failed"].as_str().unwrap_or(""), miss["detail"].as_str().unwrap_or(""))) }
                }
            }
        }
    }
}

/// The financier of a mandate on a shortlist, by its id (the id itself otherwise).
fn mandate_name(entries: &[Value], mandate_id: &str) -> String {
    entries
        .iter()
        .find(|entry| entry["mandate_id"] == mandate_id)
        .and_then(|entry| entry["financier"].as_str())
        .unwrap_or(mandate_id)
        .to_owned()
}

/// `(value, label)` options of a closed set.
pub fn options(lang: Lang, set: &str, values: &[&str]) -> Vec<(String, String)> {
    values.iter().map(|value| ((*value).to_owned(), lang.label(set, value))).collect()
}

/// The 17 SDGs as options, each with its number and name.
pub fn sdg_options(lang: Lang) -> Vec<(String, String)> {
    (1..=17).map(|sdg: u8| (sdg.to_string(), format!("{sdg}. {}", lang.label("sdg", &sdg.to_string())))).collect()
}

pub fn str_list(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|items| items.iter().map(|item| item.as_str().map_or_else(|| item.to_string(), str::to_owned)).collect())
        .unwrap_or_default()
}
