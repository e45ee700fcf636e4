//! The organiser's dashboard and the programme report, with its charts drawn as
//! inline SVG (readable without JavaScript and by screen readers: each chart has a
//! title, and its figures are in a table beside it) and a CSV download.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde_json::{Value, json};
use tafel_contract::vocab::Role;

use super::mandates::mandates_table;
use super::roundtables::roundtables_table;
use super::{parameter, refused_page, signed_in};
use crate::i18n::{Lang, msg};
use crate::layout;
use crate::{Cx, Web, html};

/// Most aggregates the dashboard counts (the list queries' pages, one after another).
const MAX_COUNTED: usize = 10_000;
const STATUSES: [&str; 4] = ["awaiting_coaching", "needs_work", "ready", "withdrawn"];

/// `GET /dashboard`.
pub async fn dashboard(State(web): State<Web>, headers: HeaderMap, uri: Uri) -> Response {
    let cx = match signed_in(&web, &headers, &uri, &[Role::Organiser, Role::Admin]).await {
        Ok(cx) => cx,
        Err(response) => return response,
    };
    let requests = web.list_all(&cx, "requests", None, MAX_COUNTED).await;
    let mandates = web.list_all(&cx, "mandates", Some("active"), MAX_COUNTED).await;
    let roundtables = web.list_all(&cx, "roundtables", None, MAX_COUNTED).await;
    let (requests, mandates, roundtables) = match (requests, mandates, roundtables) {
        (Ok(r), Ok(m), Ok(t)) => (r, m, t),
        (Err(refusal), _, _) | (_, Err(refusal), _) | (_, _, Err(refusal)) => return refused_page(&cx, &refusal),
    };
    let today = time::OffsetDateTime::now_utc().date().to_string();
    let upcoming: Vec<Value> = roundtables
        .into_iter()
        .filter(|table| {
            table["status"] != "concluded" && table["date"].as_str().is_some_and(|date| *date >= *today.as_str())
        })
        .collect();
    let lang = cx.lang;
    let count = |status: &str| requests.iter().filter(|request| request["status"] == status).count();
    let budget_left: u64 = mandates.iter().filter_map(|mandate| mandate["remaining_budget_eur"].as_u64()).sum();
    let body = html! {
        section aria-labelledby="readiness-title" {
            h2 #readiness-title.utrecht-heading-2 { (lang.t(msg::DASHBOARD_READINESS)) }
            ul.figures {
                @for status in STATUSES {
                    li { a href={ "/requests" } { span.figure { (count(status)) } span.figure-label { (lang.label("status", status)) } } }
                }
            }
        }
        section aria-labelledby="mandates-title" {
            h2 #mandates-title.utrecht-heading-2 { (lang.t(msg::DASHBOARD_MANDATES)) }
            p { (lang.f(msg::DASHBOARD_MANDATES_SUM, &[("count", &mandates.len().to_string()), ("left", &lang.eur(budget_left))])) }
            (mandates_table(lang, &mandates))
        }
        section aria-labelledby="upcoming-title" {
            h2 #upcoming-title.utrecht-heading-2 { (lang.t(msg::DASHBOARD_UPCOMING)) }
            (roundtables_table(lang, &upcoming))
            @if cx.role() == Role::Organiser {
                p { a.utrecht-button-link.utrecht-button-link--primary-action href="/roundtables/new" { (lang.t(msg::ROUNDTABLE_NEW)) } }
            }
        }
    };
    html(StatusCode::OK, layout::page(lang, Some(&cx), lang.t(msg::NAV_DASHBOARD), body))
}

fn year_of(uri: &Uri) -> Option<i64> {
    parameter(uri, "year").and_then(|year| year.parse().ok())
}

async fn report_of(web: &Web, cx: &Cx, year: Option<i64>) -> Result<Value, Response> {
    let body = year.map_or_else(|| json!({}), |year| json!({"year": year}));
    web.query(cx, "report", body).await.map_err(|refusal| refused_page(cx, &refusal))
}

/// `GET /report?year=`: the figures, three charts, and the CSV.
pub async fn report(State(web): State<Web>, headers: HeaderMap, uri: Uri) -> Response {
    let cx = match signed_in(&web, &headers, &uri, &[Role::Organiser, Role::Admin, Role::Coach]).await {
        Ok(cx) => cx,
        Err(response) => return response,
    };
    let year = year_of(&uri);
    let report = match report_of(&web, &cx, year).await {
        Ok(report) => report,
        Err(response) => return response,
    };
    let lang = cx.lang;
    let this_year = time::OffsetDateTime::now_utc().year() as i64;
    let figure = |name: &str| report[name].as_u64().unwrap_or(0);
    let by_sdg: Vec<(String, u64)> = report["committed_eur_by_sdg"]
        .as_object()
        .map(|map| {
            let mut rows: Vec<(u8, u64)> =
                map.iter().filter_map(|(sdg, eur)| Some((sdg.parse().ok()?, eur.as_u64()?))).collect();
            rows.sort();
            rows.into_iter()
                .map(|(sdg, eur)| (format!("{sdg}. {}", lang.label("sdg", &sdg.to_string())), eur))
                .collect()
        })
        .unwrap_or_default();
    let by_instrument: Vec<(String, u64)> = report["committed_eur_by_instrument"]
        .as_object()
        .map(|map| {
            map.iter()
                .map(|(instrument, eur)| (lang.label("instrument", instrument), eur.as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default();
    let funnel: Vec<(String, u64)> = [
        (msg::FUNNEL_SUBMITTED, "requests_submitted"),
        (msg::FUNNEL_COACHED, "requests_coached"),
        (msg::FUNNEL_READY, "requests_ready"),
        (msg::FUNNEL_COMMITTED, "requests_committed"),
    ]
    .iter()
    .map(|(key, name)| (lang.t(*key).to_owned(), figure(name)))
    .collect();
    let csv_link = match year {
        Some(year) => format!("/report.csv?year={year}"),
        None => "/report.csv".to_owned(),
    };
    let body = html! {
        form.year-form method="get" action="/report" {
            div.utrecht-form-field.inline {
                label.utrecht-form-label for="field-year" { (lang.t(msg::REPORT_YEAR)) }
                select.utrecht-select #field-year name="year" {
                    option value="" selected[year.is_none()] { (lang.t(msg::REPORT_ALL_TIME)) }
                    @for candidate in (2020..=this_year).rev() {
                        option value=(candidate) selected[year == Some(candidate)] { (candidate) }
                    }
                }
            }
            button.utrecht-button.utrecht-button--secondary-action type="submit" { (lang.t(msg::REPORT_SHOW)) }
        }
        ul.figures {
            li { span.figure { (lang.eur(figure("committed_eur"))) } span.figure-label { (lang.t(msg::REPORT_COMMITTED)) } }
            li { span.figure { (figure("roundtables_held")) } span.figure-label { (lang.t(msg::REPORT_ROUNDTABLES)) } }
            li { span.figure { (figure("entrepreneurs_participating")) } span.figure-label { (lang.t(msg::REPORT_ENTREPRENEURS)) } }
            li { span.figure { (figure("financiers_participating")) } span.figure-label { (lang.t(msg::REPORT_FINANCIERS)) } }
            li { span.figure { (figure("mandates_active")) } span.figure-label { (lang.t(msg::REPORT_MANDATES)) } }
            li { span.figure { (figure("requests_withdrawn")) } span.figure-label { (lang.t(msg::REPORT_WITHDRAWN)) } }
        }
        (chart(lang, "funnel", lang.t(msg::REPORT_FUNNEL), &funnel, false))
        (chart(lang, "by-sdg", lang.t(msg::REPORT_BY_SDG), &by_sdg, true))
        (chart(lang, "by-instrument", lang.t(msg::REPORT_BY_INSTRUMENT), &by_instrument, true))
        p { a.utrecht-link href=(csv_link) download { (lang.t(msg::REPORT_CSV)) } }
    };
    let title = match year {
        Some(year) => lang.f(msg::REPORT_TITLE_YEAR, &[("year", &year.to_string())]),
        None => lang.t(msg::REPORT_TITLE).to_owned(),
    };
    html(StatusCode::OK, layout::page(lang, Some(&cx), &title, body))
}

/// Chart geometry, in SVG user units.
const CHART_WIDTH: u64 = 800;
const LABEL_WIDTH: u64 = 370;
const VALUE_WIDTH: u64 = 110;
const BAR_HEIGHT: u64 = 24;
const BAR_GAP: u64 = 10;

/// A horizontal bar chart of `rows` as inline SVG, with its figures in a table that
/// screen readers (and anyone who prefers numbers) can read.
fn chart(lang: Lang, id: &str, title: &str, rows: &[(String, u64)], euros: bool) -> Markup {
    let most = rows.iter().map(|(_, value)| *value).max().unwrap_or(0).max(1);
    let bar_room = CHART_WIDTH - LABEL_WIDTH - VALUE_WIDTH;
    let height = (rows.len() as u64).max(1) * (BAR_HEIGHT + BAR_GAP) + BAR_GAP;
    let value_text = |value: u64| if euros { lang.eur(value) } else { lang.number(value) };
    html! {
        section.chart aria-labelledby={ (id) "-title" } {
            h2.utrecht-heading-2 id={ (id) "-title" } { (title) }
            @if rows.is_empty() {
                p { (lang.t(msg::REPORT_NOTHING)) }
            } @else {
                svg xmlns="http://www.w3.org/2000/svg" viewBox={ "0 0 " (CHART_WIDTH) " " (height) } width="100%"
                    role="img" aria-labelledby={ (id) "-svg-title" } class="bar-chart" {
                    title id={ (id) "-svg-title" } { (title) }
                    @for (index, (label, value)) in rows.iter().enumerate() {
                        @let y = BAR_GAP + index as u64 * (BAR_HEIGHT + BAR_GAP);
                        @let width = (value * bar_room / most).max(u64::from(*value > 0));
                        g {
                            text x=(LABEL_WIDTH - 8) y=(y + BAR_HEIGHT * 2 / 3) text-anchor="end" class="chart-label" { (label) }
                            rect x=(LABEL_WIDTH) y=(y) width=(width) height=(BAR_HEIGHT) class="chart-bar" {}
                            text x=(LABEL_WIDTH + width + 6) y=(y + BAR_HEIGHT * 2 / 3) class="chart-value" { (value_text(*value)) }
                        }
                    }
                }
                details {
                    summary { (lang.t(msg::REPORT_AS_TABLE)) }
                    table.utrecht-table {
                        caption.visually-hidden { (title) }
                        tbody {
                            @for (label, value) in rows {
                                tr { th scope="row" { (label) } td.number { (value_text(*value)) } }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `GET /report.csv?year=`: the report as `tafel report --format csv` writes it.
pub async fn report_csv(State(web): State<Web>, headers: HeaderMap, uri: Uri) -> Response {
    let cx = match signed_in(&web, &headers, &uri, &[Role::Organiser, Role::Admin, Role::Coach]).await {
        Ok(cx) => cx,
        Err(response) => return response,
    };
    let year = year_of(&uri);
    let report = match report_of(&web, &cx, year).await {
        Ok(report) => report,
        Err(response) => return response,
    };
    let csv = serde_json::from_value::<tafel_domain::report::Report>(report)
        .map_err(|e| e.to_string())
        .and_then(|report| tafel_service::report::render(&report, "csv"));
    let Ok(csv) = csv else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let name = year.map_or_else(|| "tafel-report.csv".to_owned(), |year| format!("tafel-report-{year}.csv"));
    let mut response = ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], csv).into_response();
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        response.headers_mut().insert(header::CONTENT_DISPOSITION, value);
    }
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
