//! A financier's mandates (publish, revise, close, with the budget left) and the ready
//! requests that match them, best first, with the reasons.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use maud::{Markup, html};
use serde_json::{Value, json};
use tafel_contract::reply::{ErrorCode, SubmitReply};
use tafel_contract::vocab::{Certification, FinancierKind, Instrument, Role, Stage};

use super::requests::error_title;
use super::{
    Outgoing, Sent, done_of, not_found, options, posted, refused_page, sdg_options, send, signed_in, str_list,
};
use crate::explain;
use crate::form::{self, DataBuilder, refusal_on_form};
use crate::i18n::{Lang, msg};
use crate::layout::{self, Field, FormState};
use crate::{Cx, Web, html, see_other};

/// Most mandates a list shows, and whose matches the matches page gathers.
const MAX_LISTED: usize = 1000;
const MAX_MANDATES_MATCHED: usize = 50;
/// Matches asked per mandate.
const MATCHES_PER_MANDATE: u64 = 20;

const MANDATE_FIELDS: &[&str] = &[
    "financier.name",
    "financier.kind",
    "ticket_min_eur",
    "ticket_max_eur",
    "instruments",
    "stages",
    "impact_themes",
    "regions",
    "required_certifications",
    "co_financing",
    "budget_eur",
    "valid_until",
];

fn codes<T: Copy>(all: &[T], name: impl Fn(T) -> &'static str) -> Vec<&'static str> {
    all.iter().map(|value| name(*value)).collect()
}

fn budget_left(lang: Lang, mandate: &Value) -> String {
    match mandate["remaining_budget_eur"].as_u64() {
        Some(left) => lang.eur(left),
        None => lang.t(msg::MANDATE_NO_BUDGET).to_owned(),
    }
}

/// `GET /mandates`: the financier's own.
pub async fn list(State(web): State<Web>, headers: HeaderMap, uri: Uri) -> Response {
    let cx = match signed_in(&web, &headers, &uri, &[Role::Financier]).await {
        Ok(cx) => cx,
        Err(response) => return response,
    };
    let mandates = match web.list_all(&cx, "mandates", None, MAX_LISTED).await {
        Ok(mandates) => mandates,
        Err(refusal) => return refused_page(&cx, &refusal),
    };
    let lang = cx.lang;
    let body = html! {
        (layout::done_notice(lang, done_of(&uri).as_deref()))
        p { a.utrecht-button-link.utrecht-button-link--primary-action href="/mandates/new" { (lang.t(msg::MANDATE_NEW)) } }
        (mandates_table(lang, &mandates))
    };
    html(StatusCode::OK, layout::page(lang, Some(&cx), lang.t(msg::NAV_MY_MANDATES), body))
}

pub fn mandates_table(lang: Lang, mandates: &[Value]) -> Markup {
    html! {
        @if mandates.is_empty() {
            p { (lang.t(msg::MANDATES_NONE)) }
        } @else {
            div.table-scroll {
                table.utrecht-table {
                    thead.utrecht-table__header {
                        tr {
                            th scope="col" { (lang.t(msg::MANDATE_NAME)) }
                            th.number scope="col" { (lang.t(msg::MANDATE_TICKETS)) }
                            th.number scope="col" { (lang.t(msg::MANDATE_COMMITTED)) }
                            th.number scope="col" { (lang.t(msg::MANDATE_BUDGET_LEFT)) }
                            th scope="col" { (lang.t(msg::REQUEST_STATUS)) }
                        }
                    }
                    tbody {
                        @for mandate in mandates {
                            @let terms = &mandate["terms"];
                            tr {
                                td { a.utrecht-link href={ "/mandates/" (mandate["mandate_id"].as_str().unwrap_or("")) } { (terms["financier"]["name"].as_str().unwrap_or("")) " · " (mandate["mandate_id"].as_str().unwrap_or("")) } }
                                td.number { (lang.eur(terms["ticket_min_eur"].as_u64().unwrap_or(0))) "–" (lang.eur(terms["ticket_max_eur"].as_u64().unwrap_or(0))) }
                                td.number { (lang.eur(mandate["committed_eur"].as_u64().unwrap_or(0))) }
                                td.number { (budget_left(lang, mandate)) }
                                td { (layout::status_badge(lang, mandate["status"].as_str().unwrap_or(""))) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn mandate_form(cx: &Cx, form: &FormState, action: &str, event_id: &str, version: Option<u64>, button: &str) -> Markup {
    let lang = cx.lang;
    let field = |name, label, hint, required| Field { name, label, hint, required };
    let yes_no = vec![
        ("true".to_owned(), lang.t(msg::WORD_YES).to_owned()),
        ("false".to_owned(), lang.t(msg::WORD_NO).to_owned()),
    ];
    html! {
        (layout::error_summary(lang, form))
        form method="post" action=(action) novalidate {
            (layout::form_keys(&cx.csrf, event_id))
            @if let Some(version) = version { input type="hidden" name="version" value=(version); }
            (layout::text_field(lang, form, field("financier.name", lang.t(msg::MANDATE_FINANCIER_NAME), None, true), false))
            (layout::select(lang, form, field("financier.kind", lang.t(msg::MANDATE_KIND), None, true), &options(lang, "kind", &codes(FinancierKind::ALL, FinancierKind::as_str))))
            (layout::text_field(lang, form, field("ticket_min_eur", lang.t(msg::MANDATE_TICKET_MIN), Some(lang.t(msg::FORM_EUR_HINT)), true), true))
            (layout::text_field(lang, form, field("ticket_max_eur", lang.t(msg::MANDATE_TICKET_MAX), Some(lang.t(msg::FORM_EUR_HINT)), true), true))
            (layout::text_field(lang, form, field("budget_eur", lang.t(msg::MANDATE_BUDGET), Some(lang.t(msg::MANDATE_BUDGET_HINT)), false), true))
            (layout::choices(lang, form, field("instruments", lang.t(msg::MANDATE_INSTRUMENTS), None, true), &options(lang, "instrument", &codes(Instrument::ALL, Instrument::as_str)), true))
            (layout::choices(lang, form, field("stages", lang.t(msg::MANDATE_STAGES), None, true), &options(lang, "stage", &codes(Stage::ALL, Stage::as_str)), true))
            (layout::choices(lang, form, field("impact_themes", lang.t(msg::MANDATE_THEMES), Some(lang.t(msg::MANDATE_THEMES_HINT)), false), &sdg_options(lang), true))
            (layout::text_field(lang, form, field("regions", lang.t(msg::MANDATE_REGIONS), Some(lang.t(msg::MANDATE_REGIONS_HINT)), false), false))
            (layout::choices(lang, form, field("required_certifications", lang.t(msg::MANDATE_CERTIFICATIONS), None, false), &options(lang, "certification", &codes(Certification::ALL, Certification::as_str)), true))
            (layout::choices(lang, form, field("co_financing", lang.t(msg::MANDATE_CO_FINANCING), Some(lang.t(msg::MANDATE_CO_FINANCING_HINT)), true), &yes_no, false))
            (layout::date_field(lang, form, field("valid_until", lang.t(msg::MANDATE_VALID_UNTIL), Some(lang.t(msg::FORM_DATE_HINT)), false)))
            (layout::submit_button(button))
        }
    }
}

fn mandate_data(lang: Lang, form: &FormState, mandate_id: &str) -> (Value, Vec<layout::FieldError>) {
    let mut data = DataBuilder::new(lang, form);
    data.set("mandate_id", json!(mandate_id))
        .text("financier.name")
        .text("financier.kind")
        .eur("ticket_min_eur", true)
        .eur("ticket_max_eur", true)
        .many("instruments")
        .many("stages")
        .many_numbers("impact_themes")
        .many("required_certifications")
        .boolean("co_financing")
        .eur("budget_eur", false)
        .optional_text("valid_until");
    let regions: Vec<Value> = form
        .value("regions")
        .split([',', ' ', ';'])
        .map(str::trim)
        .filter(|region| !region.is_empty())
        .map(|region| json!(region.to_uppercase()))
        .collect();
    data.set("regions", Value::Array(regions));
    let errors = std::mem::take(&mut data.errors);
    (data.build(), errors)
}

fn mandate_values(mandate: &Value) -> Vec<(String, String)> {
    let terms = &mandate["terms"];
    let text = |value: &Value| {
        value.as_str().map(str::to_owned).or_else(|| value.as_u64().map(|n| n.to_string())).unwrap_or_default()
    };
    let mut values = vec![
        ("financier.name".to_owned(), text(&terms["financier"]["name"])),
        ("financier.kind".to_owned(), text(&terms["financier"]["kind"])),
        ("ticket_min_eur".to_owned(), text(&terms["ticket_min_eur"])),
        ("ticket_max_eur".to_owned(), text(&terms["ticket_max_eur"])),
        ("budget_eur".to_owned(), text(&terms["budget_eur"])),
        ("valid_until".to_owned(), text(&terms["valid_until"])),
        ("regions".to_owned(), str_list(&terms["regions"]).join(", ")),
        ("co_financing".to_owned(), terms["co_financing"].as_bool().unwrap_or(false).to_string()),
    ];
    for name in ["instruments", "stages", "impact_themes", "required_certifications"] {
        values.extend(str_list(&terms[name]).into_iter().map(|value| (name.to_owned(), value)));
    }
    values
}

/// `GET /mandates/new`.
pub async fn new_form(State(web): State<Web>, headers: HeaderMap, uri: Uri) -> Response {
    let cx = match signed_in(&web, &headers, &uri, &[Role::Financier]).await {
        Ok(cx) => cx,
        Err(response) => return response,
    };
    let lang = cx.lang;
    let form = FormState::from_values(vec![("co_financing".into(), "false".into())]);
    let body = mandate_form(&cx, &form, "/mandates/new", &form::new_event_id(), None, lang.t(msg::MANDATE_PUBLISH));
    html(StatusCode::OK, layout::page(lang, Some(&cx), lang.t(msg::MANDATE_NEW), body))
}

/// `POST /mandates/new`: `tafel.mandate.published`.
pub async fn publish(State(web): State<Web>, headers: HeaderMap, uri: Uri, body: Bytes) -> Response {
    let (cx, mut form) = match posted(&web, &headers, &uri, &[Role::Financier], &body).await {
        Ok(posted) => posted,
        Err(response) => return response,
    };
    let lang = cx.lang;
    let event_id = form.value("event_id").to_owned();
    let mandate_id = form::new_aggregate_id(form.value("financier.name"), &event_id);
    let (data, errors) = mandate_data(lang, &form, &mandate_id);
    let event =
        Outgoing { event_type: "tafel.mandate.published", subject: &mandate_id, data, expected_version: Some(0) };
    if let Some(Sent::Accepted | Sent::NotFound) = send(&web, &cx, &mut form, errors, event, MANDATE_FIELDS).await {
        return see_other(&format!("/mandates/{mandate_id}?done=published"));
    }
    let body = mandate_form(&cx, &form, "/mandates/new", &event_id, None, lang.t(msg::MANDATE_PUBLISH));
    html(StatusCode::BAD_REQUEST, layout::page(lang, Some(&cx), &error_title(lang, lang.t(msg::MANDATE_NEW)), body))
}

async fn own_mandate(web: &Web, cx: &Cx, id: &str) -> Result<Value, Response> {
    let mandate =
        web.query(cx, "mandate", json!({"mandate_id": id})).await.map_err(|refusal| refused_page(cx, &refusal))?;
    if mandate["owner"] != cx.actor.id.as_str() {
        return Err(not_found(cx));
    }
    Ok(mandate)
}

/// `GET /mandates/{id}/revise`.
pub async fn revise_form(State(web): State<Web>, headers: HeaderMap, uri: Uri, Path(id): Path<String>) -> Response {
    let cx = match signed_in(&web, &headers, &uri, &[Role::Financier]).await {
        Ok(cx) => cx,
        Err(response) => return response,
    };
    let mandate = match own_mandate(&web, &cx, &id).await {
        Ok(mandate) => mandate,
        Err(response) => return response,
    };
    let lang = cx.lang;
    let form = FormState::from_values(mandate_values(&mandate));
    let body = mandate_form(
        &cx,
        &form,
        &format!("/mandates/{id}/revise"),
        &form::new_event_id(),
        mandate["version"].as_u64(),
        lang.t(msg::MANDATE_REVISE),
    );
    html(StatusCode::OK, layout::page(lang, Some(&cx), lang.t(msg::MANDATE_REVISE), body))
}

/// `POST /mandates/{id}/revise`: `tafel.mandate.revised`.
pub async fn revise(
    State(web): State<Web>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (cx, mut form) = match posted(&web, &headers, &uri, &[Role::Financier], &body).await {
        Ok(posted) => posted,
        Err(response) => return response,
    };
    let lang = cx.lang;
    let version = form.value("version").parse::<u64>().ok();
    let (data, errors) = mandate_data(lang, &form, &id);
    let event_id = form.value("event_id").to_owned();
    let event = Outgoing { event_type: "tafel.mandate.revised", subject: &id, data, expected_version: version };
    match send(&web, &cx, &mut form, errors, event, MANDATE_FIELDS).await {
        Some(Sent::Accepted) => return see_other(&format!("/mandates/{id}?done=revised")),
        Some(Sent::NotFound) => return not_found(&cx),
        None => {}
    }
    let body =
        mandate_form(&cx, &form, &format!("/mandates/{id}/revise"), &event_id, version, lang.t(msg::MANDATE_REVISE));
    html(StatusCode::BAD_REQUEST, layout::page(lang, Some(&cx), &error_title(lang, lang.t(msg::MANDATE_REVISE)), body))
}

/// `POST /mandates/{id}/close`: `tafel.mandate.closed`.
pub async fn close(
    State(web): State<Web>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (cx, mut form) = match posted(&web, &headers, &uri, &[Role::Financier], &body).await {
        Ok(posted) => posted,
        Err(response) => return response,
    };
    let reason = form.value("reason").trim();
    let reason = if reason.is_empty() { cx.lang.t(msg::MANDATE_CLOSE_NO_REASON) } else { reason };
    let data = json!({"mandate_id": id, "reason": reason});
    let error = match web.submit(&cx, "tafel.mandate.closed", &id, data, None, form.value("event_id")).await {
        SubmitReply::Accepted { .. } => return see_other(&format!("/mandates/{id}?done=closed")),
        SubmitReply::Refused { error, .. } => error,
    };
    if error.code == ErrorCode::NotFound {
        return not_found(&cx);
    }
    refusal_on_form(cx.lang, &mut form, &error, &["reason"]);
    let status = StatusCode::from_u16(error.code.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    render(&web, &cx, &id, None, Some(&form), status).await
}

/// The requests a mandate matches, best first, with the reasons of each score.
fn matches_list(lang: Lang, entries: &[(Value, Option<String>)]) -> Markup {
    html! {
        @if entries.is_empty() {
            p { (lang.t(msg::MATCHES_NONE)) }
        } @else {
            ol.shortlist {
                @for (entry, mandate) in entries {
                    li.shortlist-entry {
                        h3.utrecht-heading-3 {
                            a.utrecht-link href={ "/requests/" (entry["request_id"].as_str().unwrap_or("")) } { (entry["organisation"].as_str().unwrap_or("")) }
                            span.score { " · " (lang.f(msg::SHORTLIST_SCORE, &[("score", &lang.decimal(entry["score"].as_f64().unwrap_or(0.0)))])) }
                        }
                        p {
                            @if let Some(mandate) = mandate { (lang.f(msg::MATCHES_FOR_MANDATE, &[("mandate", mandate)])) " · " }
                            @if entry["fit"] == "full" {
                                (lang.f(msg::SHORTLIST_FIT_FULL, &[("amount", &lang.eur(entry["max_contribution_eur"].as_u64().unwrap_or(0)))]))
                            } @else {
                                (lang.f(msg::SHORTLIST_FIT_PARTIAL, &[("amount", &lang.eur(entry["max_contribution_eur"].as_u64().unwrap_or(0)))]))
                            }
                        }
                        ul.reasons-inline {
                            @for reason in entry["reasons"].as_array().map(Vec::as_slice).unwrap_or_default() {
                                @let criterion = reason["criterion"].as_str().unwrap_or("");
                                li { (lang.label("criterion", criterion)) " (" (lang.decimal(reason["points"].as_f64().unwrap_or(0.0))) "): " (explain::reason(lang, criterion, reason["detail"].as_str().unwrap_or(""))) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `GET /mandates/{id}`: the terms, the budget left, the matches; revise and close.
pub async fn show(State(web): State<Web>, headers: HeaderMap, uri: Uri, Path(id): Path<String>) -> Response {
    let cx = match web.cx(&headers, uri.path()) {
        Ok(cx) => cx,
        Err(response) => return response,
    };
    render(&web, &cx, &id, done_of(&uri).as_deref(), None, StatusCode::OK).await
}

/// The mandate's page; `close_form` is the close form come back with an error.
async fn render(
    web: &Web,
    cx: &Cx,
    id: &str,
    done: Option<&str>,
    close_form: Option<&FormState>,
    status: StatusCode,
) -> Response {
    let mandate = match web.query(cx, "mandate", json!({"mandate_id": id})).await {
        Ok(mandate) => mandate,
        Err(refusal) => return refused_page(cx, &refusal),
    };
    let matches = web.query(cx, "matches", json!({"mandate_id": id, "limit": MATCHES_PER_MANDATE})).await.ok();
    let lang = cx.lang;
    let terms = &mandate["terms"];
    let owner = mandate["owner"] == cx.actor.id.as_str();
    let active = mandate["status"] == "active";
    let list = |set: &str, name: &str| -> String {
        let values = str_list(&terms[name]);
        if values.is_empty() {
            lang.t(msg::WORD_ANY).to_owned()
        } else {
            values.iter().map(|value| lang.label(set, value)).collect::<Vec<_>>().join(", ")
        }
    };
    let title = format!("{} · {}", terms["financier"]["name"].as_str().unwrap_or(""), id);
    let entries: Vec<(Value, Option<String>)> = matches
        .as_ref()
        .and_then(|matches| matches["entries"].as_array())
        .map(|entries| entries.iter().map(|entry| (entry.clone(), None)).collect())
        .unwrap_or_default();
    let body = html! {
        (layout::done_notice(lang, done))
        p { (layout::status_badge(lang, mandate["status"].as_str().unwrap_or(""))) }
        dl.summary-list {
            div { dt { (lang.t(msg::MANDATE_KIND)) } dd { (lang.label("kind", terms["financier"]["kind"].as_str().unwrap_or(""))) } }
            div { dt { (lang.t(msg::MANDATE_TICKETS)) } dd { (lang.eur(terms["ticket_min_eur"].as_u64().unwrap_or(0))) "–" (lang.eur(terms["ticket_max_eur"].as_u64().unwrap_or(0))) } }
            div { dt { (lang.t(msg::MANDATE_BUDGET)) } dd { @match terms["budget_eur"].as_u64() { Some(budget) => (lang.eur(budget)), None => (lang.t(msg::MANDATE_NO_BUDGET)) } } }
            div { dt { (lang.t(msg::MANDATE_COMMITTED)) } dd { (lang.eur(mandate["committed_eur"].as_u64().unwrap_or(0))) } }
            div { dt { (lang.t(msg::MANDATE_BUDGET_LEFT)) } dd { (budget_left(lang, &mandate)) } }
            div { dt { (lang.t(msg::MANDATE_INSTRUMENTS)) } dd { (list("instrument", "instruments")) } }
            div { dt { (lang.t(msg::MANDATE_STAGES)) } dd { (list("stage", "stages")) } }
            div { dt { (lang.t(msg::MANDATE_THEMES)) } dd { (list("sdg", "impact_themes")) } }
            div { dt { (lang.t(msg::MANDATE_REGIONS)) } dd { (list("region", "regions")) } }
            div { dt { (lang.t(msg::MANDATE_CERTIFICATIONS)) } dd { (list("certification", "required_certifications")) } }
            div { dt { (lang.t(msg::MANDATE_CO_FINANCING)) } dd { (lang.t(if terms["co_financing"].as_bool().unwrap_or(false) { msg::WORD_YES } else { msg::WORD_NO })) } }
            div { dt { (lang.t(msg::MANDATE_VALID_UNTIL)) } dd { @match terms["valid_until"].as_str() { Some(date) => (lang.date(date)), None => "—" } } }
        }
        @if owner && active {
            p.actions { a.utrecht-button-link.utrecht-button-link--secondary-action href={ "/mandates/" (id) "/revise" } { (lang.t(msg::MANDATE_REVISE)) } }
        }
        @if matches.is_some() {
            section aria-labelledby="matches-title" {
                h2 #matches-title.utrecht-heading-2 { (lang.t(msg::MATCHES_TITLE)) }
                (matches_list(lang, &entries))
            }
        }
        @if owner && active {
            section aria-labelledby="close-title" {
                h2 #close-title.utrecht-heading-2 { (lang.t(msg::MANDATE_CLOSE_TITLE)) }
                @if let Some(close_form) = close_form { (layout::error_summary(lang, close_form)) }
                form method="post" action={ "/mandates/" (id) "/close" } novalidate {
                    (layout::form_keys(&cx.csrf, &form::new_event_id()))
                    (layout::text_field(lang, close_form.unwrap_or(&FormState::default()), Field { name: "reason", label: lang.t(msg::MANDATE_CLOSE_REASON), hint: None, required: true }, false))
                    button.utrecht-button.utrecht-button--warning type="submit" { (lang.t(msg::MANDATE_CLOSE_BUTTON)) }
                }
            }
        }
    };
    html(status, layout::page(lang, Some(cx), &title, body))
}

/// `GET /matches`: the ready requests that the financier's active mandates match, best
/// first, across its mandates.
pub async fn matches(State(web): State<Web>, headers: HeaderMap, uri: Uri) -> Response {
    let cx = match signed_in(&web, &headers, &uri, &[Role::Financier]).await {
        Ok(cx) => cx,
        Err(response) => return response,
    };
    let mandates = match web.list_all(&cx, "mandates", Some("active"), MAX_MANDATES_MATCHED).await {
        Ok(mandates) => mandates,
        Err(refusal) => return refused_page(&cx, &refusal),
    };
    let mut entries = Vec::new();
    for mandate in &mandates {
        let id = mandate["mandate_id"].as_str().unwrap_or("");
        if let Ok(matches) = web.query(&cx, "matches", json!({"mandate_id": id, "limit": MATCHES_PER_MANDATE})).await {
            let name = format!("{} · {id}", mandate["terms"]["financier"]["name"].as_str().unwrap_or(""));
            for entry in matches["entries"].as_array().cloned().unwrap_or_default() {
                entries.push((entry, Some(name.clone())));
            }
        }
    }
    entries.sort_by(|(a, _), (b, _)| {
        let score = |entry: &Value| entry["score"].as_f64().unwrap_or(0.0);
        score(b).total_cmp(&score(a)).then_with(|| a["request_id"].as_str().cmp(&b["request_id"].as_str()))
    });
    let lang = cx.lang;
    let body = html! {
        p { (lang.t(msg::MATCHES_EXPLAINED)) }
        (matches_list(lang, &entries))
    };
    html(StatusCode::OK, layout::page(lang, Some(&cx), lang.t(msg::NAV_MATCHES), body))
}
