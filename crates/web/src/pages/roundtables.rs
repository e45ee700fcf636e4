//! Round tables: the organiser schedules one, sets its agenda from the ready requests
//! (with their shortlists), reads the joint assessment matrix and concludes with
//! commitments prefilled from the stated interest and any consortium; an invited
//! financier assesses blind, or recuses itself. What each sees of the others'
//! assessments is the service's answer.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use maud::{Markup, html};
use serde_json::{Value, json};
use tafel_contract::reply::{ErrorCode, SubmitReply};
use tafel_contract::vocab::Role;

use super::requests::error_title;
use super::{done_of, options, posted, refused_page, signed_in, str_list};
use crate::form::{self, DataBuilder, refusal_on_form, refusal_sentence};
use crate::i18n::{Lang, msg};
use crate::layout::{self, Field, FormState};
use crate::{Cx, Web, html, see_other};

const MAX_LISTED: usize = 1000;
/// Most ready requests the agenda form offers, and shortlist entries shown with each.
const MAX_AGENDA_CHOICES: usize = 200;
const SHORTLIST_PREVIEW: usize = 3;

/// `GET /roundtables`: all for an organiser, those it is invited to for a financier.
pub async fn list(State(web): State<Web>, headers: HeaderMap, uri: Uri) -> Response {
    let cx = match signed_in(&web, &headers, &uri, &[Role::Organiser, Role::Admin, Role::Financier]).await {
        Ok(cx) => cx,
        Err(response) => return response,
    };
    let roundtables = match web.list_all(&cx, "roundtables", None, MAX_LISTED).await {
        Ok(roundtables) => roundtables,
        Err(refusal) => return refused_page(&cx, &refusal),
    };
    let lang = cx.lang;
    let title = lang.t(if cx.role() == Role::Financier { msg::NAV_MY_ROUNDTABLES } else { msg::NAV_ROUNDTABLES });
    let body = html! {
        (layout::done_notice(lang, done_of(&uri).as_deref()))
        @if cx.role() == Role::Organiser {
            p { a.utrecht-button-link.utrecht-button-link--primary-action href="/roundtables/new" { (lang.t(msg::ROUNDTABLE_NEW)) } }
        }
        (roundtables_table(lang, &roundtables))
    };
    html(StatusCode::OK, layout::page(lang, Some(&cx), title, body))
}

pub fn roundtables_table(lang: Lang, roundtables: &[Value]) -> Markup {
    html! {
        @if roundtables.is_empty() {
            p { (lang.t(msg::ROUNDTABLES_NONE)) }
        } @else {
            div.table-scroll {
                table.utrecht-table {
                    thead.utrecht-table__header {
                        tr {
                            th scope="col" { (lang.t(msg::ROUNDTABLE_TITLE)) }
                            th scope="col" { (lang.t(msg::ROUNDTABLE_DATE)) }
                            th.number scope="col" { (lang.t(msg::ROUNDTABLE_AGENDA)) }
                            th scope="col" { (lang.t(msg::REQUEST_STATUS)) }
                        }
                    }
                    tbody {
                        @for roundtable in roundtables {
                            tr {
                                td { a.utrecht-link href={ "/roundtables/" (roundtable["roundtable_id"].as_str().unwrap_or("")) } { (roundtable["title"].as_str().unwrap_or("")) } }
                                td { (lang.date(roundtable["date"].as_str().unwrap_or(""))) }
                                td.number { (roundtable["agenda"].as_array().map_or(0, Vec::len)) }
                                td { (layout::status_badge(lang, roundtable["status"].as_str().unwrap_or(""))) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn schedule_form(cx: &Cx, form: &FormState, mandates: &[Value], event_id: &str) -> Markup {
    let lang = cx.lang;
    let invited: Vec<(String, String)> = mandates
        .iter()
        .map(|mandate| {
            let id = mandate["mandate_id"].as_str().unwrap_or("").to_owned();
            let label = format!("{} · {id}", mandate["terms"]["financier"]["name"].as_str().unwrap_or(""));
            (id, label)
        })
        .collect();
    html! {
        (layout::error_summary(lang, form))
        form method="post" action="/roundtables/new" novalidate {
            (layout::form_keys(&cx.csrf, event_id))
            (layout::text_field(lang, form, Field { name: "title", label: lang.t(msg::ROUNDTABLE_TITLE), hint: None, required: true }, false))
            (layout::date_field(lang, form, Field { name: "date", label: lang.t(msg::ROUNDTABLE_DATE), hint: Some(lang.t(msg::FORM_DATE_HINT)), required: true }))
            (layout::choices(lang, form, Field { name: "mandate_ids", label: lang.t(msg::ROUNDTABLE_INVITED), hint: Some(lang.t(msg::ROUNDTABLE_INVITED_HINT)), required: true }, &invited, true))
            (layout::submit_button(lang.t(msg::ROUNDTABLE_SCHEDULE)))
        }
    }
}

/// `GET /roundtables/new`.
pub async fn new_form(State(web): State<Web>, headers: HeaderMap, uri: Uri) -> Response {
    let cx = match signed_in(&web, &headers, &uri, &[Role::Organiser]).await {
        Ok(cx) => cx,
        Err(response) => return response,
    };
    let mandates = match web.list_all(&cx, "mandates", Some("active"), MAX_LISTED).await {
        Ok(mandates) => mandates,
        Err(refusal) => return refused_page(&cx, &refusal),
    };
    let lang = cx.lang;
    let body = schedule_form(&cx, &FormState::default(), &mandates, &form::new_event_id());
    html(StatusCode::OK, layout::page(lang, Some(&cx), lang.t(msg::ROUNDTABLE_NEW), body))
}

/// `POST /roundtables/new`: `tafel.roundtable.scheduled`.
pub async fn schedule(State(web): State<Web>, headers: HeaderMap, uri: Uri, body: Bytes) -> Response {
    let (cx, mut form) = match posted(&web, &headers, &uri, &[Role::Organiser], &body).await {
        Ok(posted) => posted,
        Err(response) => return response,
    };
    let lang = cx.lang;
    let roundtable_id = form::new_aggregate_id(form.value("title"), form.value("event_id"));
    let mut data = DataBuilder::new(lang, &form);
    data.set("roundtable_id", json!(roundtable_id)).text("title").text("date").many("mandate_ids");
    let data = data.build();
    let event_id = form.value("event_id").to_owned();
    match web.submit(&cx, "tafel.roundtable.scheduled", &roundtable_id, data, Some(0), &event_id).await {
        SubmitReply::Accepted { .. } => return see_other(&format!("/roundtables/{roundtable_id}?done=scheduled")),
        SubmitReply::Refused { error, .. } => {
            refusal_on_form(lang, &mut form, &error, &["title", "date", "mandate_ids"])
        }
    }
    let mandates = web.list_all(&cx, "mandates", Some("active"), MAX_LISTED).await.unwrap_or_default();
    let body = schedule_form(&cx, &form, &mandates, &event_id);
    html(StatusCode::BAD_REQUEST, layout::page(lang, Some(&cx), &error_title(lang, lang.t(msg::ROUNDTABLE_NEW)), body))
}

/// What the page needs beside the round table: the mandates the viewer may see (by
/// id) and the agenda's requests.
struct Context {
    roundtable: Value,
    mandates: HashMap<String, Value>,
    requests: HashMap<String, Value>,
}

async fn context(web: &Web, cx: &Cx, id: &str) -> Result<Context, Response> {
    let roundtable = web
        .query(cx, "roundtable", json!({"roundtable_id": id}))
        .await
        .map_err(|refusal| refused_page(cx, &refusal))?;
    let mut mandates = HashMap::new();
    for mandate_id in str_list(&roundtable["mandate_ids"]) {
        // Another financier's mandate is not_found for a financier: simply not shown.
        if let Ok(mandate) = web.query(cx, "mandate", json!({"mandate_id": mandate_id})).await {
            mandates.insert(mandate_id, mandate);
        }
    }
    let mut requests = HashMap::new();
    for request_id in str_list(&roundtable["agenda"]) {
        if let Ok(request) = web.query(cx, "request", json!({"request_id": request_id})).await {
            requests.insert(request_id, request);
        }
    }
    Ok(Context { roundtable, mandates, requests })
}

fn mandate_label(context: &Context, mandate_id: &str) -> String {
    context
        .mandates
        .get(mandate_id)
        .and_then(|mandate| mandate["terms"]["financier"]["name"].as_str())
        .unwrap_or(mandate_id)
        .to_owned()
}

fn request_label(context: &Context, request_id: &str) -> String {
    context
        .requests
        .get(request_id)
        .and_then(|request| request["details"]["title"].as_str())
        .unwrap_or(request_id)
        .to_owned()
}

/// `GET /roundtables/{id}`.
pub async fn show(State(web): State<Web>, headers: HeaderMap, uri: Uri, Path(id): Path<String>) -> Response {
    let cx = match signed_in(&web, &headers, &uri, &[Role::Organiser, Role::Admin, Role::Financier]).await {
        Ok(cx) => cx,
        Err(response) => return response,
    };
    render(&web, &cx, &id, done_of(&uri).as_deref(), None, StatusCode::OK).await
}

/// A form of the page that came back with errors, by its name (`agenda`, `conclude`,
/// or an assessment's prefix).
type Failed<'a> = Option<(&'a str, &'a FormState)>;

async fn render(web: &Web, cx: &Cx, id: &str, done: Option<&str>, failed: Failed<'_>, status: StatusCode) -> Response {
    let context = match context(web, cx, id).await {
        Ok(context) => context,
        Err(response) => return response,
    };
    let lang = cx.lang;
    let roundtable = &context.roundtable;
    let concluded = roundtable["status"] == "concluded";
    let body = html! {
        (layout::done_notice(lang, done))
        p { (layout::status_badge(lang, roundtable["status"].as_str().unwrap_or(""))) " " (lang.date(roundtable["date"].as_str().unwrap_or(""))) }
        p { (lang.t(msg::ROUNDTABLE_INVITED)) ": " (str_list(&roundtable["mandate_ids"]).iter().map(|m| mandate_label(&context, m)).collect::<Vec<_>>().join(", ")) }
        @if cx.role() == Role::Financier {
            (financier_part(cx, &context, failed))
        } @else {
            @if cx.role() == Role::Organiser && !concluded {
                (agenda_form(web, cx, &context, failed.filter(|(name, _)| *name == "agenda").map(|(_, form)| form)).await)
            }
            (joint_matrix(lang, &context))
            @if cx.role() == Role::Organiser && !concluded && !str_list(&roundtable["agenda"]).is_empty() {
                (conclude_form(cx, &context, failed.filter(|(name, _)| *name == "conclude").map(|(_, form)| form)))
            }
            @if concluded { (outcomes(lang, &context)) }
        }
    };
    let title = roundtable["title"].as_str().unwrap_or(id).to_owned();
    let title = if failed.is_some() { error_title(lang, &title) } else { title };
    html(status, layout::page(lang, Some(cx), &title, body))
}

async fn agenda_form(web: &Web, cx: &Cx, context: &Context, failed: Option<&FormState>) -> Markup {
    let lang = cx.lang;
    let ready = web.list_all(cx, "requests", Some("ready"), MAX_AGENDA_CHOICES).await.unwrap_or_default();
    let agenda = str_list(&context.roundtable["agenda"]);
    let mut previews = Vec::new();
    for request in &ready {
        let id = request["request_id"].as_str().unwrap_or("");
        // At the default limit, which the matcher keeps ready; the page shows the first few.
        let shortlist = web.query(cx, "shortlist", json!({"request_id": id})).await.ok();
        previews.push(shortlist);
    }
    let fresh = FormState::from_values(agenda.iter().map(|id| ("request_ids".to_owned(), id.clone())).collect());
    let form = failed.unwrap_or(&fresh);
    let id = context.roundtable["roundtable_id"].as_str().unwrap_or("");
    html! {
        section aria-labelledby="agenda-title" {
            h2 #agenda-title.utrecht-heading-2 { (lang.t(msg::AGENDA_TITLE)) }
            p { (lang.t(msg::AGENDA_EXPLAINED)) }
            (layout::error_summary(lang, form))
            @if ready.is_empty() {
                p { (lang.t(msg::AGENDA_NO_READY)) }
            } @else {
                form method="post" action={ "/roundtables/" (id) "/agenda" } novalidate {
                    (layout::form_keys(&cx.csrf, &form::new_event_id()))
                    input type="hidden" name="version" value=(context.roundtable["version"].as_u64().unwrap_or(0));
                    fieldset.utrecht-form-fieldset #field-request_ids {
                        legend.utrecht-form-fieldset__legend { (lang.t(msg::AGENDA_REQUESTS)) }
                        @if let Some(error) = form.error("request_ids") { p.utrecht-form-field-error-message { (error) } }
                        @for (index, (request, preview)) in ready.iter().zip(&previews).enumerate() {
                            @let request_id = request["request_id"].as_str().unwrap_or("");
                            div.choice.agenda-choice {
                                input.utrecht-checkbox type="checkbox" name="request_ids" value=(request_id) id={ "agenda-" (index) } checked[form.has("request_ids", request_id)];
                                label for={ "agenda-" (index) } {
                                    strong { (request["details"]["title"].as_str().unwrap_or("")) }
                                    " · " (request["details"]["organisation"]["name"].as_str().unwrap_or("")) " · " (lang.eur(request["details"]["amount_eur"].as_u64().unwrap_or(0)))
                                }
                                @if let Some(preview) = preview {
                                    @let entries = preview["entries"].as_array().map(Vec::as_slice).unwrap_or_default();
                                    @let entries = &entries[..entries.len().min(SHORTLIST_PREVIEW)];
                                    p.preview {
                                        @if entries.is_empty() { (lang.t(msg::SHORTLIST_EMPTY)) } @else {
                                            (lang.t(msg::AGENDA_TOP)) ": "
                                            (entries.iter().map(|entry| format!("{} ({})", entry["financier"].as_str().unwrap_or(""), lang.decimal(entry["score"].as_f64().unwrap_or(0.0)))).collect::<Vec<_>>().join(", "))
                                        }
                                        " · " a.utrecht-link href={ "/requests/" (request_id) } { (lang.t(msg::AGENDA_SEE_SHORTLIST)) }
                                    }
                                }
                            }
                        }
                    }
                    (layout::submit_button(lang.t(msg::AGENDA_BUTTON)))
                }
            }
        }
    }
}

fn assessment<'a>(context: &'a Context, request_id: &str, mandate_id: &str) -> Option<&'a Value> {
    context.roundtable["assessments"]
        .as_array()?
        .iter()
        .find(|a| a["request_id"] == request_id && a["mandate_id"] == mandate_id)
}

fn recused(context: &Context, request_id: &str, mandate_id: &str) -> bool {
    context.roundtable["recusals"]
        .as_array()
        .is_some_and(|recusals| recusals.iter().any(|r| r["request_id"] == request_id && r["mandate_id"] == mandate_id))
}

fn scores_text(lang: Lang, scores: &Value) -> Option<String> {
    let (impact, team, financials) =
        (scores["impact"].as_u64()?, scores["team"].as_u64()?, scores["financials"].as_u64()?);
    Some(lang.f(
        msg::ASSESS_SCORES_SHORT,
        &[("impact", &impact.to_string()), ("team", &team.to_string()), ("financials", &financials.to_string())],
    ))
}

/// The joint view: a row per request on the agenda, a column per invited mandate.
fn joint_matrix(lang: Lang, context: &Context) -> Markup {
    let agenda = str_list(&context.roundtable["agenda"]);
    let mandate_ids = str_list(&context.roundtable["mandate_ids"]);
    let joint = context.roundtable["joint"].as_array().cloned().unwrap_or_default();
    html! {
        section aria-labelledby="joint-title" {
            h2 #joint-title.utrecht-heading-2 { (lang.t(msg::JOINT_TITLE)) }
            @if agenda.is_empty() {
                p { (lang.t(msg::JOINT_NO_AGENDA)) }
            } @else {
                div.table-scroll {
                    table.utrecht-table.matrix {
                        caption { (lang.t(msg::JOINT_CAPTION)) }
                        thead.utrecht-table__header {
                            tr {
                                th scope="col" { (lang.t(msg::JOINT_REQUEST)) }
                                @for mandate_id in &mandate_ids { th scope="col" { (mandate_label(context, mandate_id)) } }
                                th.number scope="col" { (lang.t(msg::JOINT_INTEREST_EUR)) }
                            }
                        }
                        tbody {
                            @for request_id in &agenda {
                                @let item = joint.iter().find(|item| item["request_id"] == request_id.as_str());
                                tr {
                                    th scope="row" {
                                        a.utrecht-link href={ "/requests/" (request_id) } { (request_label(context, request_id)) }
                                        @if let Some(item) = item { br; span.muted { (lang.f(msg::JOINT_ASKED, &[("amount", &lang.eur(item["asked_eur"].as_u64().unwrap_or(0)))])) } }
                                    }
                                    @for mandate_id in &mandate_ids {
                                        td {
                                            @if recused(context, request_id, mandate_id) {
                                                span.badge.badge--recused { (lang.t(msg::JOINT_RECUSED)) }
                                            } @else if let Some(assessment) = assessment(context, request_id, mandate_id) {
                                                @let interest = assessment["interest"].as_str().unwrap_or("");
                                                span class={ "badge badge--" (interest) } { (lang.label("interest", interest)) }
                                                @if let Some(amount) = assessment["amount_eur"].as_u64() { br; (lang.eur(amount)) }
                                                @if let Some(scores) = scores_text(lang, &assessment["scores"]) { br; span.muted { (scores) } }
                                            } @else if context.roundtable["status"] == "concluded" {
                                                span.muted { (lang.t(msg::JOINT_NONE)) }
                                            } @else {
                                                span.muted { (lang.t(msg::JOINT_NOT_YET)) }
                                            }
                                        }
                                    }
                                    td.number { @if let Some(item) = item { (lang.eur(item["interest_eur"].as_u64().unwrap_or(0))) } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The commitment a conclusion proposes for one request and mandate: the mandate's
/// part of the joint view's consortium, else the amount it stated, else the request's
/// amount within the mandate's tickets; on the request's first instrument the mandate
/// takes.
fn proposed(
    context: &Context,
    item: Option<&Value>,
    request_id: &str,
    mandate_id: &str,
    stated: Option<u64>,
) -> (u64, String) {
    let request = context.requests.get(request_id);
    let asked = request.and_then(|request| request["details"]["amount_eur"].as_u64()).unwrap_or(0);
    let part = item
        .and_then(|item| item["consortium"].as_array())
        .and_then(|parts| parts.iter().find(|part| part["mandate_id"] == mandate_id))
        .and_then(|part| part["amount_eur"].as_u64());
    let terms = context.mandates.get(mandate_id).map(|mandate| &mandate["terms"]);
    let ticket_max = terms.and_then(|terms| terms["ticket_max_eur"].as_u64()).unwrap_or(u64::MAX);
    let amount = part.or(stated).unwrap_or(asked.min(ticket_max));
    let offered = terms.map(|terms| str_list(&terms["instruments"])).unwrap_or_default();
    let wanted = request.map(|request| str_list(&request["details"]["instruments"])).unwrap_or_default();
    let instrument =
        wanted.iter().find(|instrument| offered.contains(instrument)).or(wanted.first()).cloned().unwrap_or_default();
    (amount, instrument)
}

fn conclude_form(cx: &Cx, context: &Context, failed: Option<&FormState>) -> Markup {
    let lang = cx.lang;
    let roundtable = &context.roundtable;
    let id = roundtable["roundtable_id"].as_str().unwrap_or("");
    let joint = roundtable["joint"].as_array().cloned().unwrap_or_default();
    let instruments: Vec<&str> = tafel_contract::vocab::Instrument::ALL.iter().map(|i| i.as_str()).collect();
    let empty = FormState::default();
    let form = failed.unwrap_or(&empty);
    html! {
        section aria-labelledby="conclude-title" {
            h2 #conclude-title.utrecht-heading-2 { (lang.t(msg::CONCLUDE_TITLE)) }
            p { (lang.t(msg::CONCLUDE_EXPLAINED)) }
            (layout::error_summary(lang, form))
            form method="post" action={ "/roundtables/" (id) "/conclude" } novalidate {
                (layout::form_keys(&cx.csrf, &form::new_event_id()))
                // Concluded on the joint view as shown: a change since is a conflict.
                input type="hidden" name="version" value=(roundtable["version"].as_u64().unwrap_or(0));
                @for request_id in str_list(&roundtable["agenda"]) {
                    @let item = joint.iter().find(|item| item["request_id"] == request_id.as_str());
                    fieldset.utrecht-form-fieldset.outcome {
                        legend.utrecht-form-fieldset__legend { (request_label(context, &request_id)) }
                        input type="hidden" name="outcome" value=(request_id);
                        @let interested: Vec<&Value> = roundtable["assessments"].as_array().map(|all| all.iter().filter(|a| a["request_id"] == request_id.as_str() && (a["interest"] == "yes" || a["interest"] == "maybe")).collect()).unwrap_or_default();
                        @if interested.is_empty() {
                            p.muted { (lang.t(msg::CONCLUDE_NO_INTEREST)) }
                        }
                        @for assessment in interested {
                            @let mandate_id = assessment["mandate_id"].as_str().unwrap_or("");
                            @let key = format!("{request_id}.{mandate_id}");
                            @let (amount, instrument) = proposed(context, item, &request_id, mandate_id, assessment["amount_eur"].as_u64());
                            @let in_consortium = item.and_then(|item| item["consortium"].as_array()).is_some_and(|parts| parts.iter().any(|part| part["mandate_id"] == mandate_id));
                            @let commit = if failed.is_some() { form.has(&format!("commit.{key}"), "yes") } else { in_consortium || assessment["interest"] == "yes" };
                            @let amount_text = if failed.is_some() { form.value(&format!("amount.{key}")).to_owned() } else { amount.to_string() };
                            @let instrument = if failed.is_some() { form.value(&format!("instrument.{key}")).to_owned() } else { instrument };
                            div.commitment {
                                div.choice {
                                    input.utrecht-checkbox type="checkbox" name={ "commit." (key) } value="yes" id={ "field-commit." (key) } checked[commit];
                                    label for={ "field-commit." (key) } {
                                        (lang.f(msg::CONCLUDE_COMMIT, &[("financier", &mandate_label(context, mandate_id))]))
                                        " (" (lang.label("interest", assessment["interest"].as_str().unwrap_or(""))) ")"
                                        @if in_consortium { " · " (lang.t(msg::CONCLUDE_IN_CONSORTIUM)) }
                                    }
                                }
                                div.utrecht-form-field.inline {
                                    label.utrecht-form-label for={ "field-amount." (key) } { (lang.t(msg::CONCLUDE_AMOUNT)) }
                                    input.utrecht-textbox type="text" inputmode="numeric" name={ "amount." (key) } id={ "field-amount." (key) } value=(amount_text);
                                }
                                div.utrecht-form-field.inline {
                                    label.utrecht-form-label for={ "field-instrument." (key) } { (lang.t(msg::CONCLUDE_INSTRUMENT)) }
                                    select.utrecht-select name={ "instrument." (key) } id={ "field-instrument." (key) } {
                                        @for (value, label) in options(lang, "instrument", &instruments) {
                                            option value=(value) selected[value == instrument] { (label) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                (layout::submit_button(lang.t(msg::CONCLUDE_BUTTON)))
            }
        }
    }
}

fn outcomes(lang: Lang, context: &Context) -> Markup {
    html! {
        section aria-labelledby="outcomes-title" {
            h2 #outcomes-title.utrecht-heading-2 { (lang.t(msg::OUTCOMES_TITLE)) }
            div.table-scroll {
                table.utrecht-table {
                    thead.utrecht-table__header { tr { th scope="col" { (lang.t(msg::JOINT_REQUEST)) } th scope="col" { (lang.t(msg::OUTCOMES_FINANCIER)) } th.number scope="col" { (lang.t(msg::CONCLUDE_AMOUNT)) } th scope="col" { (lang.t(msg::CONCLUDE_INSTRUMENT)) } } }
                    tbody {
                        @for outcome in context.roundtable["outcomes"].as_array().cloned().unwrap_or_default() {
                            @let request_id = outcome["request_id"].as_str().unwrap_or("").to_owned();
                            @let commitments = outcome["commitments"].as_array().cloned().unwrap_or_default();
                            @if commitments.is_empty() {
                                tr { th scope="row" { (request_label(context, &request_id)) } td colspan="3" { (lang.t(msg::OUTCOMES_NONE)) } }
                            }
                            @for commitment in commitments {
                                tr {
                                    th scope="row" { (request_label(context, &request_id)) }
                                    td { (mandate_label(context, commitment["mandate_id"].as_str().unwrap_or(""))) }
                                    td.number { (lang.eur(commitment["amount_eur"].as_u64().unwrap_or(0))) }
                                    td { (lang.label("instrument", commitment["instrument"].as_str().unwrap_or(""))) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// An invited financier's part: per request on the agenda and per own invited mandate,
/// the blind assessment form (its own earlier assessment prefilled) and recusal.
fn financier_part(cx: &Cx, context: &Context, failed: Failed<'_>) -> Markup {
    let lang = cx.lang;
    let roundtable = &context.roundtable;
    let id = roundtable["roundtable_id"].as_str().unwrap_or("");
    let own: Vec<String> = str_list(&roundtable["mandate_ids"])
        .into_iter()
        .filter(|mandate_id| {
            context.mandates.get(mandate_id).is_some_and(|mandate| mandate["owner"] == cx.actor.id.as_str())
        })
        .collect();
    let concluded = roundtable["status"] == "concluded";
    let interests = options(lang, "interest", &["yes", "maybe", "no"]);
    let scores: Vec<(String, String)> = (1..=5).map(|n: u8| (n.to_string(), n.to_string())).collect();
    html! {
        p { (lang.t(msg::ASSESS_BLIND)) }
        @if str_list(&roundtable["agenda"]).is_empty() { p { (lang.t(msg::JOINT_NO_AGENDA)) } }
        @for (index, request_id) in str_list(&roundtable["agenda"]).iter().enumerate() {
            section.assessment aria-labelledby={ "agenda-item-" (index) } {
                h2.utrecht-heading-2 id={ "agenda-item-" (index) } { a.utrecht-link href={ "/requests/" (request_id) } { (request_label(context, request_id)) } }
                @if let Some(request) = context.requests.get(request_id) {
                    p { (request["details"]["organisation"]["name"].as_str().unwrap_or("")) " · " (lang.eur(request["details"]["amount_eur"].as_u64().unwrap_or(0))) }
                }
                @for (column, mandate_id) in own.iter().enumerate() {
                    @let prefix = format!("a{index}-{column}-");
                    @let earlier = assessment(context, request_id, mandate_id);
                    @let form = match failed {
                        Some((name, form)) if name == prefix => form.clone(),
                        _ => FormState::from_values(earlier.map(|a| assessment_values(&prefix, a)).unwrap_or_default()),
                    };
                    h3.utrecht-heading-3 { (lang.f(msg::ASSESS_WITH, &[("mandate", &mandate_label(context, mandate_id))])) }
                    @if recused(context, request_id, mandate_id) {
                        p { span.badge.badge--recused { (lang.t(msg::JOINT_RECUSED)) } }
                    } @else if concluded {
                        p { @match earlier { Some(a) => (lang.label("interest", a["interest"].as_str().unwrap_or(""))), None => (lang.t(msg::JOINT_NOT_YET)) } }
                    } @else {
                        (layout::error_summary(lang, &form))
                        form method="post" action={ "/roundtables/" (id) "/assess" } novalidate {
                            (layout::form_keys(&cx.csrf, &form::new_event_id()))
                            input type="hidden" name="prefix" value=(prefix);
                            input type="hidden" name="request_id" value=(request_id);
                            input type="hidden" name="mandate_id" value=(mandate_id);
                            (layout::choices(lang, &form, Field { name: &format!("{prefix}interest"), label: lang.t(msg::ASSESS_INTEREST), hint: None, required: true }, &interests, false))
                            (layout::text_field(lang, &form, Field { name: &format!("{prefix}amount_eur"), label: lang.t(msg::ASSESS_AMOUNT), hint: Some(lang.t(msg::FORM_EUR_HINT)), required: false }, true))
                            (layout::textarea(lang, &form, Field { name: &format!("{prefix}conditions"), label: lang.t(msg::ASSESS_CONDITIONS), hint: None, required: false }))
                            div.score-fields {
                                (layout::select(lang, &form, Field { name: &format!("{prefix}scores.impact"), label: lang.t(msg::ASSESS_IMPACT), hint: None, required: false }, &scores))
                                (layout::select(lang, &form, Field { name: &format!("{prefix}scores.team"), label: lang.t(msg::ASSESS_TEAM), hint: None, required: false }, &scores))
                                (layout::select(lang, &form, Field { name: &format!("{prefix}scores.financials"), label: lang.t(msg::ASSESS_FINANCIALS), hint: None, required: false }, &scores))
                            }
                            (layout::submit_button(lang.t(if earlier.is_some() { msg::ASSESS_AGAIN } else { msg::ASSESS_BUTTON })))
                        }
                        details.recuse {
                            summary { (lang.t(msg::RECUSE_TITLE)) }
                            form method="post" action={ "/roundtables/" (id) "/recuse" } novalidate {
                                (layout::form_keys(&cx.csrf, &form::new_event_id()))
                                input type="hidden" name="request_id" value=(request_id);
                                input type="hidden" name="mandate_id" value=(mandate_id);
                                (layout::text_field(lang, &FormState::default(), Field { name: &format!("{prefix}reason"), label: lang.t(msg::RECUSE_REASON), hint: None, required: true }, false))
                                input type="hidden" name="reason_field" value={ (prefix) "reason" };
                                button.utrecht-button.utrecht-button--secondary-action type="submit" { (lang.t(msg::RECUSE_BUTTON)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn assessment_values(prefix: &str, assessment: &Value) -> Vec<(String, String)> {
    let mut values = vec![(format!("{prefix}interest"), assessment["interest"].as_str().unwrap_or("").to_owned())];
    if let Some(amount) = assessment["amount_eur"].as_u64() {
        values.push((format!("{prefix}amount_eur"), amount.to_string()));
    }
    if let Some(conditions) = assessment["conditions"].as_str() {
        values.push((format!("{prefix}conditions"), conditions.to_owned()));
    }
    for score in ["impact", "team", "financials"] {
        if let Some(value) = assessment["scores"][score].as_u64() {
            values.push((format!("{prefix}scores.{score}"), value.to_string()));
        }
    }
    values
}

/// `POST /roundtables/{id}/agenda`: `tafel.roundtable.agenda_set`.
pub async fn set_agenda(
    State(web): State<Web>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (cx, mut form) = match posted(&web, &headers, &uri, &[Role::Organiser], &body).await {
        Ok(posted) => posted,
        Err(response) => return response,
    };
    let mut data = DataBuilder::new(cx.lang, &form);
    data.set("roundtable_id", json!(id)).many("request_ids");
    let data = data.build();
    let version = form.value("version").parse::<u64>().ok();
    match web.submit(&cx, "tafel.roundtable.agenda_set", &id, data, version, form.value("event_id")).await {
        SubmitReply::Accepted { .. } => see_other(&format!("/roundtables/{id}?done=agenda_set")),
        SubmitReply::Refused { error, .. } if error.code == ErrorCode::NotFound => refused_page(&cx, &error),
        SubmitReply::Refused { error, .. } => {
            refusal_on_form(cx.lang, &mut form, &error, &["request_ids"]);
            render(&web, &cx, &id, None, Some(("agenda", &form)), StatusCode::BAD_REQUEST).await
        }
    }
}

/// `POST /roundtables/{id}/assess`: `tafel.roundtable.assessed`.
pub async fn assess(
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
    let prefix = form.value("prefix").to_owned();
    // The fields without their prefix, as the event's data.
    let plain = FormState::from_values(
        form.values
            .iter()
            .filter_map(|(key, value)| Some((key.strip_prefix(prefix.as_str())?.to_owned(), value.clone())))
            .collect(),
    );
    let mut data = DataBuilder::new(cx.lang, &plain);
    data.set("roundtable_id", json!(id))
        .set("request_id", json!(form.value("request_id")))
        .set("mandate_id", json!(form.value("mandate_id")))
        .text("interest")
        .eur("amount_eur", false)
        .optional_text("conditions");
    let scores: Vec<(&str, Option<u64>)> = ["impact", "team", "financials"]
        .iter()
        .map(|s| (*s, plain.value(&format!("scores.{s}")).parse().ok()))
        .collect();
    if scores.iter().all(|(_, score)| score.is_some()) {
        data.set(
            "scores",
            json!(
                scores
                    .iter()
                    .map(|(name, score)| ((*name).to_owned(), json!(score)))
                    .collect::<serde_json::Map<_, _>>()
            ),
        );
    } else if scores.iter().any(|(_, score)| score.is_some()) {
        data.errors.push(layout::FieldError {
            field: format!("{prefix}scores.impact"),
            message: cx.lang.t(msg::ASSESS_ALL_SCORES).to_owned(),
        });
    }
    let errors: Vec<layout::FieldError> = std::mem::take(&mut data.errors)
        .into_iter()
        .map(|mut error| {
            if !error.field.starts_with(&prefix) {
                error.field = format!("{prefix}{}", error.field);
            }
            error
        })
        .collect();
    let data = data.build();
    if errors.is_empty() {
        match web.submit(&cx, "tafel.roundtable.assessed", &id, data, None, form.value("event_id")).await {
            SubmitReply::Accepted { .. } => return see_other(&format!("/roundtables/{id}?done=assessed")),
            SubmitReply::Refused { error, .. } if error.code == ErrorCode::NotFound => {
                return refused_page(&cx, &error);
            }
            SubmitReply::Refused { error, .. } => {
                let fields = ["interest", "amount_eur", "conditions", "scores"];
                match form::field_of(&error, &fields) {
                    Some(field) => {
                        let field = if field == "scores" { "scores.impact".to_owned() } else { field };
                        let message = msg::by_name(&format!("invalid.{field}"))
                            .map_or_else(|| error.message.clone(), |key| cx.lang.t(key).to_owned());
                        form.errors.push(layout::FieldError { field: format!("{prefix}{field}"), message });
                    }
                    None => form.general = Some(refusal_sentence(cx.lang, &error)),
                }
            }
        }
    } else {
        form.errors = errors;
    }
    render(&web, &cx, &id, None, Some((prefix.as_str(), &form)), StatusCode::BAD_REQUEST).await
}

/// `POST /roundtables/{id}/recuse`: `tafel.roundtable.recused`.
pub async fn recuse(
    State(web): State<Web>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (cx, form) = match posted(&web, &headers, &uri, &[Role::Financier], &body).await {
        Ok(posted) => posted,
        Err(response) => return response,
    };
    let reason = form.value(form.value("reason_field")).trim().to_owned();
    let reason = if reason.is_empty() { cx.lang.t(msg::RECUSE_NO_REASON).to_owned() } else { reason };
    let data = json!({"roundtable_id": id, "request_id": form.value("request_id"), "mandate_id": form.value("mandate_id"), "reason": reason});
    match web.submit(&cx, "tafel.roundtable.recused", &id, data, None, form.value("event_id")).await {
        SubmitReply::Accepted { .. } => see_other(&format!("/roundtables/{id}?done=recused")),
        SubmitReply::Refused { error, .. } => refused_page(&cx, &error),
    }
}

/// `POST /roundtables/{id}/conclude`: `tafel.roundtable.concluded`, an outcome per
/// request on the agenda with the commitments ticked.
pub async fn conclude(
    State(web): State<Web>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (cx, mut form) = match posted(&web, &headers, &uri, &[Role::Organiser], &body).await {
        Ok(posted) => posted,
        Err(response) => return response,
    };
    let lang = cx.lang;
    let mut outcomes = Vec::new();
    for request_id in
        form.values.iter().filter(|(key, _)| key == "outcome").map(|(_, value)| value.clone()).collect::<Vec<_>>()
    {
        let mut commitments = Vec::new();
        let prefix = format!("commit.{request_id}.");
        for (key, _) in form.values.iter().filter(|(key, value)| key.starts_with(&prefix) && value == "yes") {
            let mandate_id = &key[prefix.len()..];
            let pair = format!("{request_id}.{mandate_id}");
            let Some(amount) = form::parse_eur(form.value(&format!("amount.{pair}"))) else {
                form.errors.push(layout::FieldError {
                    field: format!("amount.{pair}"),
                    message: lang.t(msg::FORM_NOT_AN_AMOUNT).to_owned(),
                });
                continue;
            };
            commitments.push(json!({"mandate_id": mandate_id, "amount_eur": amount, "instrument": form.value(&format!("instrument.{pair}"))}));
        }
        outcomes.push(json!({"request_id": request_id, "commitments": commitments}));
    }
    if form.errors.is_empty() {
        let data = json!({"roundtable_id": id, "outcomes": outcomes});
        let version = form.value("version").parse::<u64>().ok();
        match web.submit(&cx, "tafel.roundtable.concluded", &id, data, version, form.value("event_id")).await {
            SubmitReply::Accepted { .. } => return see_other(&format!("/roundtables/{id}?done=concluded")),
            SubmitReply::Refused { error, .. } if error.code == ErrorCode::NotFound => {
                return refused_page(&cx, &error);
            }
            SubmitReply::Refused { error, .. } => form.general = Some(refusal_sentence(lang, &error)),
        }
    }
    render(&web, &cx, &id, None, Some(("conclude", &form)), StatusCode::BAD_REQUEST).await
}
