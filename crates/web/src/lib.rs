//! Tafel's web pages: every role's work in a browser, served by `tafel serve` itself.
//! Server-rendered HTML (maud, checked at compile time) that works without JavaScript;
//! one small script of Tafel's own only makes a shortlist follow its changes live.
//! Dutch and English throughout, accessible to WCAG 2.1 AA, in the look and patterns of
//! NL Design System.
//!
//! A page handler is a transport like the NATS and HTTP API handlers: it parses a form
//! or a path, asks the same [`Service`] (submits as CloudEvents, queries by the
//! contract's names), and renders the answer. No rule and no visibility decision lives
//! here: what the service answers `not_found` is a 404 page, a refusal with a JSON
//! path is an error beside its field.
//!
//! - [`session`]: sign-in with a principal's token (or, with `--demo`, one click), the
//!   session cookie and CSRF tokens; [`i18n`]: languages, messages, amounts and dates.
//! - [`layout`]: the page shell and the form patterns; [`form`]: form fields to event
//!   data and refusals back to fields; [`explain`]: scores and near misses in sentences.
//! - [`pages`]: the pages of each role.

// A handler's early answer (the sign-in page, a 404, a refused form) travels as the
// `Err` of a `Result<_, Response>`, once per request; boxing it would buy nothing.
#![allow(clippy::result_large_err)]

pub mod explain;
pub mod form;
pub mod i18n;
pub mod layout;
pub mod pages;
pub mod session;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use tafel_contract::reply::{ErrorCode, Refusal, SubmitReply};
use tafel_contract::vocab::Role;
use tafel_contract::{PrincipalId, SubmitRoute};
use tafel_domain::Actor;
use tafel_service::{HTTP_MAX_REPLY_BYTES, Service};

use crate::i18n::Lang;
use crate::session::Sessions;

/// Most list queries one page asks (each looks at a bounded number of aggregates), so
/// that a page's work is bounded however long the log; a longer list shows its start.
pub const MAX_LIST_QUERIES: usize = 20;
/// The largest form Tafel reads: an event is at most 64 KiB, and a form says no more.
pub const MAX_FORM_BYTES: usize = 64 * 1024;
/// Every page's Content-Security-Policy: nothing from elsewhere, no inline script or
/// style, no framing.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// What the pages are served with.
#[derive(Clone, Debug, Default)]
pub struct WebConfig {
    /// With `--demo`: the demo's principals, offered on the sign-in page with one click.
    /// Empty otherwise, and then no sign-in without a token exists.
    pub demo_principals: Vec<(PrincipalId, Role)>,
}

/// The pages' shared state.
#[derive(Clone)]
pub struct Web {
    pub service: Arc<Service>,
    pub sessions: Arc<Sessions>,
    pub config: Arc<WebConfig>,
}

/// Who asks, in which language, with the CSRF token their forms carry.
#[derive(Clone, Debug)]
pub struct Cx {
    pub lang: Lang,
    pub actor: Actor,
    pub csrf: String,
    /// Signed in by one click on the demo's sign-in page.
    pub demo: bool,
    /// The path asked for (for the language switch to come back to).
    pub path: String,
}

impl Cx {
    pub fn role(&self) -> Role {
        self.actor.role
    }
}

/// Every page's route, over the same service as the API.
pub fn routes(service: Arc<Service>, config: WebConfig) -> Router {
    let web = Web { service, sessions: Arc::default(), config: Arc::new(config) };
    pages::routes()
        .route("/static/tafel.css", get(stylesheet))
        .route("/static/tafel.js", get(script))
        .layer(DefaultBodyLimit::max(MAX_FORM_BYTES))
        .with_state(web)
}

const STYLESHEET: &str = include_str!("../static/tafel.css");
const SCRIPT: &str = include_str!("../static/tafel.js");

async fn stylesheet() -> Response {
    asset("text/css; charset=utf-8", STYLESHEET)
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = ([(header::CONTENT_TYPE, content_type)], body).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    response.headers_mut().insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

/// An HTML page with the headers every page has: a strict CSP, no sniffing, no framing,
/// no referrer beyond the site, and never cached (pages show what one person may see).
pub fn html(status: StatusCode, markup: maud::Markup) -> Response {
    let mut response = (status, markup).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A 303 to `location` (after a form, so that reloading does not send it again).
pub fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

impl Web {
    /// The signed-in person behind the request, or the sign-in page to go to.
    pub fn cx(&self, headers: &HeaderMap, path: &str) -> Result<Cx, Response> {
        let lang = Lang::of(headers);
        let principals = self.service.principals();
        let demo = !self.config.demo_principals.is_empty();
        match self.sessions.find(headers, &principals, demo) {
            Some((session, actor)) => {
                Ok(Cx { lang, demo: session.is_demo(), actor, csrf: session.csrf, path: path.to_owned() })
            }
            None => Err(see_other(&format!("/signin?next={}", layout::encode(path)))),
        }
    }

    /// Asks query `name` with `body`, as `cx`'s principal, as the API would.
    pub async fn query(&self, cx: &Cx, name: &str, body: Value) -> Result<Value, Refusal> {
        let body = serde_json::to_vec(&body).map_err(|e| Refusal::new(ErrorCode::InvalidQuery, e.to_string()))?;
        let reply = self.service.query_result(name, cx.actor.id.as_str(), &body, HTTP_MAX_REPLY_BYTES).await?;
        serde_json::from_slice(&reply).map_err(|e| Refusal::new(ErrorCode::Unavailable, e.to_string()))
    }

    /// Every item of a list query the principal may see, page after page, up to `most`.
    pub async fn list_all(&self, cx: &Cx, name: &str, state: Option<&str>, most: usize) -> Result<Vec<Value>, Refusal> {
        let mut items = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..MAX_LIST_QUERIES {
            if items.len() >= most {
                break;
            }
            let mut body = json!({"limit": 1000});
            if let Some(state) = state {
                body["state"] = json!(state);
            }
            if let Some(after) = &after {
                body["after"] = json!(after);
            }
            let page = self.query(cx, name, body).await?;
            let page_items = page[name].as_array().cloned().unwrap_or_default();
            items.extend(page_items);
            match page["next"].as_str() {
                Some(next) => after = Some(next.to_owned()),
                None => break,
            }
        }
        items.truncate(most);
        Ok(items)
    }

    /// Submits one event as `cx`'s principal: the envelope is built here, everything
    /// else is the service's. `event_id` comes from the form, so that sending a form
    /// twice is a duplicate, not two events.
    pub async fn submit(
        &self,
        cx: &Cx,
        event_type: &str,
        subject: &str,
        data: Value,
        expected_version: Option<u64>,
        event_id: &str,
    ) -> SubmitReply {
        let mut envelope = json!({
            "specversion": "1.0",
            "id": event_id,
            "source": "/web",
            "type": event_type,
            "subject": subject,
            "datacontenttype": "application/json",
            "data": data,
        });
        if let Some(version) = expected_version {
            envelope["expectedversion"] = json!(version);
        }
        let body = serde_json::to_vec(&envelope).unwrap_or_default();
        self.service.submit(&body, &SubmitRoute::http(&cx.actor.id)).await
    }
}
