//! Requests: the entrepreneur's own (submit, revise, withdraw, the shortlist live), the
//! coach's queue (mark ready or needs work), and the request page every role that may
//! see a request shares, each seeing what the service shows it.

use std::convert::Infallible;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use maud::{Markup, html};
use serde_json::{Value, json};
use tafel_contract::AggregateId;
use tafel_contract::reply::SubmitReply;
use tafel_contract::vocab::{Certification, Instrument, Role, Stage};

use super::{
    Outgoing, Sent, done_of, not_found, options, posted, refused_page, sdg_options, send, signed_in, str_list,
};
use crate::form::{self, DataBuilder, refusal_on_form};
use crate::i18n::{Lang, msg};
use crate::layout::{self, Field, FormState};
use crate::{Cx, Web, html, see_other};

/// How often an idle live shortlist sends a keep-alive comment.
const KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(15);
/// Most requests a list page shows.
const MAX_LISTED: usize = 1000;

/// The request form's fields, as the contract's JSON paths below `data`.
const REQUEST_FIELDS: &[&str] = &[
    "organisation.name",
    "organisation.kvk",
    "organisation.region",
    "title",
    "summary",
    "amount_eur",
    "instruments",
    "stage",
    "impact_themes",
    "certifications",
    "annual_revenue_eur",
    "founded_year",
];

fn codes<T: Copy>(all: &[T], name: impl Fn(T) -> &'static str) -> Vec<&'static str> {
    all.iter().map(|value| name(*value)).collect()
}

fn requests_table(lang: Lang, requests: &[Value], show_owner: bool) -> Markup {
    html! {
        @if requests.is_empty() {
            p { (lang.t(msg::REQUESTS_NONE)) }
        } @else {
            div.table-scroll {
                table.utrecht-table {
                    thead.utrecht-table__header {
                        tr {
                            th scope="col" { (lang.t(msg::REQUEST_TITLE)) }
                            @if show_owner { th scope="col" { (lang.t(msg::REQUEST_ORGANISATION)) } }
                            th.number scope="col" { (lang.t(msg::REQUEST_AMOUNT)) }
                            th scope="col" { (lang.t(msg::REQUEST_STATUS)) }
                            th scope="col" { (lang.t(msg::REQUEST_UPDATED)) }
                        }
                    }
                    tbody {
                        @for request in requests {
                            @let details = &request["details"];
                            tr {
                                td { a.utrecht-link href={ "/requests/" (request["request_id"].as_str().unwrap_or("")) } { (details["title"].as_str().unwrap_or("")) } }
                                @if show_owner { td { (details["organisation"]["name"].as_str().unwrap_or("")) } }
                                td.number { (lang.eur(details["amount_eur"].as_u64().unwrap_or(0))) }
                                td { (layout::status_badge(lang, request["status"].as_str().unwrap_or(""))) }
                                td { (lang.date(request["updated_at"].as_str().unwrap_or(""))) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `GET /requests`: an entrepreneur's own; everything for a coach or organiser.
pub async fn list(State(web): State<Web>, headers: HeaderMap, uri: Uri) -> Response {
    let cx =
        match signed_in(&web, &headers, &uri, &[Role::Entrepreneur, Role::Coach, Role::Organiser, Role::Admin]).await {
            Ok(cx) => cx,
            Err(response) => return response,
        };
    let requests = match web.list_all(&cx, "requests", None, MAX_LISTED).await {
        Ok(requests) => requests,
        Err(refusal) => return refused_page(&cx, &refusal),
    };
    let lang = cx.lang;
    let own = cx.role() == Role::Entrepreneur;
    let title = lang.t(if own { msg::NAV_MY_REQUESTS } else { msg::NAV_ALL_REQUESTS });
    let body = html! {
        (layout::done_notice(lang, done_of(&uri).as_deref()))
        @if own { p { a.utrecht-button-link.utrecht-button-link--primary-action href="/requests/new" { (lang.t(msg::NAV_NEW_REQUEST)) } } }
        (requests_table(lang, &requests, !own))
    };
    html(StatusCode::OK, layout::page(lang, Some(&cx), title, body))
}

/// `GET /coaching`: the requests waiting for a coach, and those sent back.
pub async fn coaching(State(web): State<Web>, headers: HeaderMap, uri: Uri) -> Response {
    let cx = match signed_in(&web, &headers, &uri, &[Role::Coach]).await {
        Ok(cx) => cx,
        Err(response) => return response,
    };
    let waiting = web.list_all(&cx, "requests", Some("submitted"), MAX_LISTED).await;
    let needs_work = web.list_all(&cx, "requests", Some("needs_work"), MAX_LISTED).await;
    let (waiting, needs_work) = match (waiting, needs_work) {
        (Ok(waiting), Ok(needs_work)) => (waiting, needs_work),
        (Err(refusal), _) | (_, Err(refusal)) => return refused_page(&cx, &refusal),
    };
    let lang = cx.lang;
    let body = html! {
        (layout::done_notice(lang, done_of(&uri).as_deref()))
        h2.utrecht-heading-2 { (lang.t(msg::COACHING_WAITING)) " (" (waiting.len()) ")" }
        (requests_table(lang, &waiting, true))
        h2.utrecht-heading-2 { (lang.t(msg::COACHING_NEEDS_WORK)) " (" (needs_work.len()) ")" }
        (requests_table(lang, &needs_work, true))
    };
    html(StatusCode::OK, layout::page(lang, Some(&cx), lang.t(msg::NAV_COACHING), body))
}

/// The request form, new or prefilled for a revision.
fn request_form(cx: &Cx, form: &FormState, action: &str, event_id: &str, version: Option<u64>, button: &str) -> Markup {
    let lang = cx.lang;
    let field = |name, label, hint, required| Field { name, label, hint, required };
    html! {
        (layout::error_summary(lang, form))
        form method="post" action=(action) novalidate {
            (layout::form_keys(&cx.csrf, event_id))
            @if let Some(version) = version { input type="hidden" name="version" value=(version); }
            fieldset.utrecht-form-fieldset {
                legend.utrecht-form-fieldset__legend { h2.utrecht-heading-2 { (lang.t(msg::REQUEST_ORGANISATION)) } }
                (layout::text_field(lang, form, field("organisation.name", lang.t(msg::REQUEST_ORGANISATION_NAME), None, true), false))
                (layout::text_field(lang, form, field("organisation.kvk", lang.t(msg::REQUEST_KVK), Some(lang.t(msg::REQUEST_KVK_HINT)), true), true))
                (layout::text_field(lang, form, field("organisation.region", lang.t(msg::REQUEST_REGION), Some(lang.t(msg::REQUEST_REGION_HINT)), true), false))
                (layout::text_field(lang, form, field("annual_revenue_eur", lang.t(msg::REQUEST_REVENUE), Some(lang.t(msg::FORM_EUR_HINT)), false), true))
                (layout::text_field(lang, form, field("founded_year", lang.t(msg::REQUEST_FOUNDED), Some(lang.t(msg::REQUEST_FOUNDED_HINT)), false), true))
            }
            fieldset.utrecht-form-fieldset {
                legend.utrecht-form-fieldset__legend { h2.utrecht-heading-2 { (lang.t(msg::REQUEST_WHAT)) } }
                (layout::text_field(lang, form, field("title", lang.t(msg::REQUEST_TITLE), None, true), false))
                (layout::textarea(lang, form, field("summary", lang.t(msg::REQUEST_SUMMARY), Some(lang.t(msg::REQUEST_SUMMARY_HINT)), true)))
                (layout::text_field(lang, form, field("amount_eur", lang.t(msg::REQUEST_AMOUNT), Some(lang.t(msg::FORM_EUR_HINT)), true), true))
                (layout::choices(lang, form, field("instruments", lang.t(msg::REQUEST_INSTRUMENTS), Some(lang.t(msg::REQUEST_INSTRUMENTS_HINT)), true),
                    &options(lang, "instrument", &codes(Instrument::ALL, Instrument::as_str)), true))
                (layout::choices(lang, form, field("stage", lang.t(msg::REQUEST_STAGE), None, true),
                    &options(lang, "stage", &codes(Stage::ALL, Stage::as_str)), false))
                (layout::choices(lang, form, field("impact_themes", lang.t(msg::REQUEST_THEMES), Some(lang.t(msg::REQUEST_THEMES_HINT)), true), &sdg_options(lang), true))
                (layout::choices(lang, form, field("certifications", lang.t(msg::REQUEST_CERTIFICATIONS), None, false),
                    &options(lang, "certification", &codes(Certification::ALL, Certification::as_str)), true))
            }
            (layout::submit_button(button))
        }
    }
}

/// The form's values as a request's `data`, with `request_id`.
fn request_data(lang: Lang, form: &FormState, request_id: &str) -> (serde_json::Value, Vec<layout::FieldError>) {
    let mut data = DataBuilder::new(lang, form);
    data.set("request_id", json!(request_id))
        .text("organisation.name")
        .text("organisation.kvk")
        .text("organisation.region")
        .text("title")
        .text("summary")
        .eur("amount_eur", true)
        .many("instruments")
        .text("stage")
        .many_numbers("impact_themes")
        .many("certifications")
        .eur("annual_revenue_eur", false)
        .whole("founded_year");
    let errors = std::mem::take(&mut data.errors);
    (data.build(), errors)
}

/// `GET /requests/new`.
pub async fn new_form(State(web): State<Web>, headers: HeaderMap, uri: Uri) -> Response {
    let cx = match signed_in(&web, &headers, &uri, &[Role::Entrepreneur]).await {
        Ok(cx) => cx,
        Err(response) => return response,
    };
    let lang = cx.lang;
    let body = request_form(
        &cx,
        &FormState::default(),
        "/requests/new",
        &form::new_event_id(),
        None,
        lang.t(msg::REQUEST_SUBMIT),
    );
    html(StatusCode::OK, layout::page(lang, Some(&cx), lang.t(msg::NAV_NEW_REQUEST), body))
}

/// `POST /requests/new`: `tafel.request.submitted`, with an id made from the title.
pub async fn submit(State(web): State<Web>, headers: HeaderMap, uri: Uri, body: Bytes) -> Response {
    let (cx, mut form) = match posted(&web, &headers, &uri, &[Role::Entrepreneur], &body).await {
        Ok(posted) => posted,
        Err(response) => return response,
    };
    let lang = cx.lang;
    let event_id = form.value("event_id").to_owned();
    let request_id = form::new_aggregate_id(form.value("title"), &event_id);
    let (data, errors) = request_data(lang, &form, &request_id);
    let event =
        Outgoing { event_type: "tafel.request.submitted", subject: &request_id, data, expected_version: Some(0) };
    if let Some(Sent::Accepted | Sent::NotFound) = send(&web, &cx, &mut form, errors, event, REQUEST_FIELDS).await {
        return see_other(&format!("/requests/{request_id}?done=submitted"));
    }
    let body = request_form(&cx, &form, "/requests/new", &event_id, None, lang.t(msg::REQUEST_SUBMIT));
    html(StatusCode::BAD_REQUEST, layout::page(lang, Some(&cx), &error_title(lang, lang.t(msg::NAV_NEW_REQUEST)), body))
}

/// A page title that says the form has errors (announced first by screen readers).
pub fn error_title(lang: Lang, title: &str) -> String {
    lang.f(msg::FORM_ERROR_TITLE, &[("title", title)])
}

/// The request as prefilled form values.
fn request_values(request: &Value) -> Vec<(String, String)> {
    let details = &request["details"];
    let mut values = vec![
        ("organisation.name".into(), details["organisation"]["name"].as_str().unwrap_or("").to_owned()),
        ("organisation.kvk".into(), details["organisation"]["kvk"].as_str().unwrap_or("").to_owned()),
        ("organisation.region".into(), details["organisation"]["region"].as_str().unwrap_or("").to_owned()),
        ("title".into(), details["title"].as_str().unwrap_or("").to_owned()),
        ("summary".into(), details["summary"].as_str().unwrap_or("").to_owned()),
        ("amount_eur".into(), details["amount_eur"].as_u64().map(|n| n.to_string()).unwrap_or_default()),
        ("stage".into(), details["stage"].as_str().unwrap_or("").to_owned()),
        (
            "annual_revenue_eur".into(),
            details["annual_revenue_eur"].as_u64().map(|n| n.to_string()).unwrap_or_default(),
        ),
        ("founded_year".into(), details["founded_year"].as_u64().map(|n| n.to_string()).unwrap_or_default()),
    ];
    for name in ["instruments", "impact_themes", "certifications"] {
        values.extend(str_list(&details[name]).into_iter().map(|value| (name.to_owned(), value)));
    }
    values
}

async fn own_request(web: &Web, cx: &Cx, id: &str) -> Result<Value, Response> {
    let request =
        web.query(cx, "request", json!({"request_id": id})).await.map_err(|refusal| refused_page(cx, &refusal))?;
    if request["owner"] != cx.actor.id.as_str() {
        return Err(not_found(cx));
    }
    Ok(request)
}

/// `GET /requests/{id}/revise`.
pub async fn revise_form(State(web): State<Web>, headers: HeaderMap, uri: Uri, Path(id): Path<String>) -> Response {
    let cx = match signed_in(&web, &headers, &uri, &[Role::Entrepreneur]).await {
        Ok(cx) => cx,
        Err(response) => return response,
    };
    let request = match own_request(&web, &cx, &id).await {
        Ok(request) => request,
        Err(response) => return response,
    };
    let lang = cx.lang;
    let form = FormState::from_values(request_values(&request));
    let body = html! {
        p { (lang.t(msg::REQUEST_REVISE_EXPLAINED)) }
        (request_form(&cx, &form, &format!("/requests/{id}/revise"), &form::new_event_id(), request["version"].as_u64(), lang.t(msg::REQUEST_REVISE)))
    };
    html(StatusCode::OK, layout::page(lang, Some(&cx), lang.t(msg::REQUEST_REVISE), body))
}

/// `POST /requests/{id}/revise`: `tafel.request.revised`, at the version the form was
/// made from (someone else's change in between is a conflict, not overwritten).
pub async fn revise(
    State(web): State<Web>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (cx, mut form) = match posted(&web, &headers, &uri, &[Role::Entrepreneur], &body).await {
        Ok(posted) => posted,
        Err(response) => return response,
    };
    let lang = cx.lang;
    let version = form.value("version").parse::<u64>().ok();
    let (data, errors) = request_data(lang, &form, &id);
    let event_id = form.value("event_id").to_owned();
    let event = Outgoing { event_type: "tafel.request.revised", subject: &id, data, expected_version: version };
    match send(&web, &cx, &mut form, errors, event, REQUEST_FIELDS).await {
        Some(Sent::Accepted) => return see_other(&format!("/requests/{id}?done=revised")),
        Some(Sent::NotFound) => return not_found(&cx),
        None => {}
    }
    let body =
        request_form(&cx, &form, &format!("/requests/{id}/revise"), &event_id, version, lang.t(msg::REQUEST_REVISE));
    html(StatusCode::BAD_REQUEST, layout::page(lang, Some(&cx), &error_title(lang, lang.t(msg::REQUEST_REVISE)), body))
}

/// `GET /requests/{id}`: the request as the principal may see it; its shortlist for
/// those who may see that (live), the coaching form for coaches, revise and withdraw
/// for its entrepreneur.
pub async fn show(State(web): State<Web>, headers: HeaderMap, uri: Uri, Path(id): Path<String>) -> Response {
    let cx = match web.cx(&headers, uri.path()) {
        Ok(cx) => cx,
        Err(response) => return response,
    };
    let request = match web.query(&cx, "request", json!({"request_id": id})).await {
        Ok(request) => request,
        Err(refusal) => return refused_page(&cx, &refusal),
    };
    // The shortlist is asked for as anything else: refused, it is simply not shown.
    let shortlist = web.query(&cx, "shortlist", json!({"request_id": id})).await.ok();
    let page = request_page(&cx, &request, shortlist.as_ref(), done_of(&uri).as_deref(), None);
    html(StatusCode::OK, page)
}

fn request_page(
    cx: &Cx,
    request: &Value,
    shortlist: Option<&Value>,
    done: Option<&str>,
    failed: Option<(&str, &FormState)>,
) -> Markup {
    let lang = cx.lang;
    let id = request["request_id"].as_str().unwrap_or("");
    let details = &request["details"];
    let status = request["status"].as_str().unwrap_or("");
    let owner = request["owner"] == cx.actor.id.as_str();
    let title = details["title"].as_str().unwrap_or(id);
    let list = |set: &str, name: &str| -> String {
        str_list(&details[name]).iter().map(|value| lang.label(set, value)).collect::<Vec<_>>().join(", ")
    };
    let empty = FormState::default();
    let body = html! {
        (layout::done_notice(lang, done))
        p { (layout::status_badge(lang, status)) }
        dl.summary-list {
            div { dt { (lang.t(msg::REQUEST_ORGANISATION)) } dd { (details["organisation"]["name"].as_str().unwrap_or("")) " · KvK " (details["organisation"]["kvk"].as_str().unwrap_or("")) " · " (details["organisation"]["region"].as_str().unwrap_or("")) } }
            div { dt { (lang.t(msg::REQUEST_AMOUNT)) } dd { (lang.eur(details["amount_eur"].as_u64().unwrap_or(0))) } }
            div { dt { (lang.t(msg::REQUEST_INSTRUMENTS)) } dd { (list("instrument", "instruments")) } }
            div { dt { (lang.t(msg::REQUEST_STAGE)) } dd { (lang.label("stage", details["stage"].as_str().unwrap_or(""))) } }
            div { dt { (lang.t(msg::REQUEST_THEMES)) } dd { (str_list(&details["impact_themes"]).iter().map(|sdg| format!("{sdg}. {}", lang.label("sdg", sdg))).collect::<Vec<_>>().join("; ")) } }
            div { dt { (lang.t(msg::REQUEST_CERTIFICATIONS)) } dd { @let certifications = list("certification", "certifications"); @if certifications.is_empty() { "—" } @else { (certifications) } } }
            div { dt { (lang.t(msg::REQUEST_SUMMARY)) } dd { (details["summary"].as_str().unwrap_or("")) } }
            div { dt { (lang.t(msg::REQUEST_UPDATED)) } dd { (lang.date(request["updated_at"].as_str().unwrap_or(""))) } }
        }
        @if let Some(coaching) = request["coaching"].as_object() {
            section aria-labelledby="coaching-title" {
                h2 #coaching-title.utrecht-heading-2 { (lang.t(msg::COACHING_TITLE)) }
                p { (lang.f(msg::COACHING_BY, &[("coach", coaching.get("coach").and_then(Value::as_str).unwrap_or("")), ("readiness", &lang.label("status", coaching.get("readiness").and_then(Value::as_str).unwrap_or("")))])) }
                @if let Some(notes) = coaching.get("notes").and_then(Value::as_str).filter(|notes| !notes.is_empty()) { blockquote { (notes) } }
            }
        }
        @if owner && status != "withdrawn" {
            p.actions { a.utrecht-button-link.utrecht-button-link--secondary-action href={ "/requests/" (id) "/revise" } { (lang.t(msg::REQUEST_REVISE)) } }
        }
        @if cx.role() == Role::Coach && status != "withdrawn" {
            (coach_form(cx, request, failed.filter(|(name, _)| *name == "coach").map_or(&empty, |(_, form)| form)))
        }
        @if let Some(shortlist) = shortlist {
            section.shortlist-section aria-labelledby="shortlist-title" {
                h2 #shortlist-title.utrecht-heading-2 { (lang.t(msg::SHORTLIST_TITLE)) }
                div #shortlist aria-live="polite" data-live={ "/requests/" (id) "/shortlist/live" } {
                    (super::shortlist(lang, shortlist))
                }
            }
        }
        @if owner && status != "withdrawn" {
            section aria-labelledby="withdraw-title" {
                h2 #withdraw-title.utrecht-heading-2 { (lang.t(msg::WITHDRAW_TITLE)) }
                @let withdraw = failed.filter(|(name, _)| *name == "withdraw").map_or(&empty, |(_, form)| form);
                (layout::error_summary(lang, withdraw))
                form method="post" action={ "/requests/" (id) "/withdraw" } novalidate {
                    (layout::form_keys(&cx.csrf, &form::new_event_id()))
                    (layout::text_field(lang, withdraw, Field { name: "reason", label: lang.t(msg::WITHDRAW_REASON), hint: None, required: true }, false))
                    button.utrecht-button.utrecht-button--warning type="submit" { (lang.t(msg::WITHDRAW_BUTTON)) }
                }
            }
        }
    };
    layout::page(lang, Some(cx), title, body)
}

fn coach_form(cx: &Cx, request: &Value, form: &FormState) -> Markup {
    let lang = cx.lang;
    let id = request["request_id"].as_str().unwrap_or("");
    let readiness = options(lang, "status", &["ready", "needs_work"]);
    html! {
        section aria-labelledby="coach-title" {
            h2 #coach-title.utrecht-heading-2 { (lang.t(msg::COACH_FORM_TITLE)) }
            (layout::error_summary(lang, form))
            form method="post" action={ "/requests/" (id) "/coach" } novalidate {
                (layout::form_keys(&cx.csrf, &form::new_event_id()))
                // The verdict is on the request as shown: a revision since is a conflict.
                input type="hidden" name="version" value=(request["version"].as_u64().unwrap_or(0));
                (layout::choices(lang, form, Field { name: "readiness", label: lang.t(msg::COACH_READINESS), hint: None, required: true }, &readiness, false))
                (layout::textarea(lang, form, Field { name: "notes", label: lang.t(msg::COACH_NOTES), hint: Some(lang.t(msg::COACH_NOTES_HINT)), required: false }))
                (layout::submit_button(lang.t(msg::COACH_BUTTON)))
            }
        }
    }
}

/// `POST /requests/{id}/coach`: `tafel.request.coached`.
pub async fn coach(
    State(web): State<Web>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (cx, mut form) = match posted(&web, &headers, &uri, &[Role::Coach], &body).await {
        Ok(posted) => posted,
        Err(response) => return response,
    };
    let lang = cx.lang;
    let data = json!({"request_id": id, "coach": cx.actor.id.as_str(), "readiness": form.value("readiness"), "notes": form.value("notes").trim()});
    let event_id = form.value("event_id").to_owned();
    let version = form.value("version").parse::<u64>().ok();
    let error = match web.submit(&cx, "tafel.request.coached", &id, data, version, &event_id).await {
        SubmitReply::Accepted { .. } => return see_other("/coaching?done=coached"),
        SubmitReply::Refused { error, .. } => error,
    };
    if error.code == tafel_contract::reply::ErrorCode::NotFound {
        return not_found(&cx);
    }
    refusal_on_form(lang, &mut form, &error, &["readiness", "notes"]);
    let request = match web.query(&cx, "request", json!({"request_id": id})).await {
        Ok(request) => request,
        Err(refusal) => return refused_page(&cx, &refusal),
    };
    let shortlist = web.query(&cx, "shortlist", json!({"request_id": id})).await.ok();
    html(StatusCode::BAD_REQUEST, request_page(&cx, &request, shortlist.as_ref(), None, Some(("coach", &form))))
}

/// `POST /requests/{id}/withdraw`: `tafel.request.withdrawn`.
pub async fn withdraw(
    State(web): State<Web>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (cx, mut form) = match posted(&web, &headers, &uri, &[Role::Entrepreneur], &body).await {
        Ok(posted) => posted,
        Err(response) => return response,
    };
    let reason = form.value("reason").trim();
    let reason = if reason.is_empty() { cx.lang.t(msg::WITHDRAW_NO_REASON) } else { reason };
    let data = json!({"request_id": id, "reason": reason});
    let error = match web.submit(&cx, "tafel.request.withdrawn", &id, data, None, form.value("event_id")).await {
        SubmitReply::Accepted { .. } => return see_other(&format!("/requests/{id}?done=withdrawn")),
        SubmitReply::Refused { error, .. } => error,
    };
    if error.code == tafel_contract::reply::ErrorCode::NotFound {
        return not_found(&cx);
    }
    refusal_on_form(cx.lang, &mut form, &error, &["reason"]);
    let request = match web.query(&cx, "request", json!({"request_id": id})).await {
        Ok(request) => request,
        Err(refusal) => return refused_page(&cx, &refusal),
    };
    let shortlist = web.query(&cx, "shortlist", json!({"request_id": id})).await.ok();
    let status = StatusCode::from_u16(error.code.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    html(status, request_page(&cx, &request, shortlist.as_ref(), None, Some(("withdraw", &form))))
}

/// `GET /requests/{id}/shortlist/live`: server-sent events for the page's script, each
/// the shortlist's markup, from the service's live shortlist (the same the API
/// streams, with the same visibility).
pub async fn live_shortlist(State(web): State<Web>, headers: HeaderMap, uri: Uri, Path(id): Path<String>) -> Response {
    let cx = match web.cx(&headers, uri.path()) {
        Ok(cx) => cx,
        Err(_) => return StatusCode::UNAUTHORIZED.into_response(),
    };
    let Ok(request_id) = AggregateId::parse(&id) else {
        return not_found(&cx);
    };
    let (now, changes) = match web.service.live_shortlist(&cx.actor.id, &request_id).await {
        Ok(live) => live,
        Err(refusal) => return refused_page(&cx, &refusal),
    };
    let lang = cx.lang;
    let event = move |shortlist: &Value| {
        let as_of = shortlist["as_of"].as_u64().unwrap_or(0);
        let markup = super::shortlist(lang, shortlist).into_string();
        Ok::<_, Infallible>(Event::default().event("shortlist").id(as_of.to_string()).data(markup))
    };
    // The shortlist now first: it may have changed between the page and this stream.
    let first = serde_json::from_slice::<Value>(&now).unwrap_or_default();
    let first = futures::stream::once(std::future::ready(event(&first)));
    // Each change is shown only while the session holds: sign-out, a token taken away
    // or a role changed ends the stream at the next change.
    let session = crate::session::cookie(&headers, crate::session::SESSION_COOKIE).unwrap_or_default();
    let demo = !web.config.demo_principals.is_empty();
    let later = changes
        .take_while(move |_| {
            std::future::ready(web.sessions.by_id(&session, &web.service.principals(), demo).is_some())
        })
        .map(move |shortlist| event(&serde_json::to_value(&*shortlist).unwrap_or_default()));
    let events = first.chain(later);
    Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)).into_response()
}
