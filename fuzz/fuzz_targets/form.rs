//! The web pages' forms and query strings (crates/web), through the real router: every
//! form by every principal (signed in as a person is, with a session cookie and the
//! session's CSRF token, or without the token), any body; every page by every
//! principal, any query string; in Dutch and in English; the sign-in forms with the
//! sign-in page's cookie and token. Signing out is left out: it would end the
//! sessions the other inputs need (it takes nothing but the token). A page answers with HTML (or
//! the report's CSV) and a status below 500; never a panic.
//!
//! The input: a byte of who and how (the principal in its low three bits; 0x80 leaves
//! the CSRF token out, 0x40 asks a page with the rest as its query string instead of
//! posting a form, 0x20 asks in English), a byte choosing the form or page, the rest.

#![no_main]

#[path = "world.rs"]
mod world;

use std::sync::OnceLock;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use libfuzzer_sys::fuzz_target;
use tafel_contract::PrincipalId;
use tower::ServiceExt;

/// Largest page read back.
const MOST_BYTES: usize = 16 << 20;

struct Site {
    router: axum::Router,
    /// Each principal's session cookie and CSRF token, in the order of `PRINCIPALS`.
    sessions: Vec<(String, String)>,
    /// The sign-in page's cookie and CSRF token (the sign-in forms take these).
    signin: (String, String),
}

fn ask(router: &axum::Router, request: Request<Body>) -> (StatusCode, Vec<String>, Vec<u8>) {
    let world = world::world();
    world.runtime.block_on(async {
        let response = router.clone().oneshot(request).await.expect("the router answers");
        let status = response.status();
        let cookies = response
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .map(|value| value.split(';').next().unwrap_or("").to_owned())
            .collect();
        let body = axum::body::to_bytes(response.into_body(), MOST_BYTES).await.expect("a whole page");
        (status, cookies, body.to_vec())
    })
}

/// The value of the first hidden field `name` of a page.
fn hidden(page: &[u8], name: &str) -> String {
    let page = String::from_utf8_lossy(page);
    let marker = format!("name=\"{name}\" value=\"");
    let start = page.find(&marker).unwrap_or_else(|| panic!("no hidden {name} in the page")) + marker.len();
    page[start..].split('"').next().unwrap_or("").to_owned()
}

fn get(path: &str, cookie: &str) -> Request<Body> {
    Request::builder()
        .method(Method::GET)
        .uri(path)
        .header(header::COOKIE, cookie)
        .body(Body::empty())
        .expect("a request")
}

fn site() -> &'static Site {
    static SITE: OnceLock<Site> = OnceLock::new();
    SITE.get_or_init(|| {
        let world = world::world();
        let demo_principals = world::PRINCIPALS
            .iter()
            .map(|(id, role)| {
                let role = serde_json::from_value(serde_json::json!(role)).expect("a role");
                (PrincipalId::parse(id).expect("an id"), role)
            })
            .collect();
        let router = tafel_web::routes(world.service.clone(), tafel_web::WebConfig { demo_principals });
        let sessions = world::PRINCIPALS
            .iter()
            .map(|(id, _)| {
                // Signed in as a person is: the sign-in page's cookie and token, one
                // click on the demo principal, then a page's CSRF token.
                let (_, cookies, page) = ask(&router, get("/signin", ""));
                let signin = cookies.into_iter().find(|c| c.starts_with("tafel_signin=")).expect("a sign-in cookie");
                let body = format!("csrf={}&principal={id}", hidden(&page, "csrf"));
                let request = Request::builder()
                    .method(Method::POST)
                    .uri("/signin/demo")
                    .header(header::COOKIE, &signin)
                    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(Body::from(body))
                    .expect("a request");
                let (status, cookies, _) = ask(&router, request);
                assert_eq!(status, StatusCode::SEE_OTHER, "signing in as {id}");
                let session = cookies.into_iter().find(|c| c.starts_with("tafel_session=")).expect("a session");
                let (_, _, page) = ask(&router, get("/mandates", &session));
                (session, hidden(&page, "csrf"))
            })
            .collect();
        let (_, cookies, page) = ask(&router, get("/signin", ""));
        let cookie = cookies.into_iter().find(|c| c.starts_with("tafel_signin=")).expect("a sign-in cookie");
        Site { router, sessions, signin: (cookie, hidden(&page, "csrf")) }
    })
}

fuzz_target!(|input: &[u8]| {
    let [how, which, rest @ ..] = input else { return };
    let site = site();
    let principal = usize::from(how & 0x07) % world::PRINCIPALS.len();
    let (mut session, mut csrf) = (&site.sessions[principal].0, &site.sessions[principal].1);
    let language = if how & 0x20 != 0 { "en" } else { "nl" };
    let request = if how & 0x40 != 0 {
        let page = world::PAGES[usize::from(*which) % world::PAGES.len()];
        let Ok(query) = std::str::from_utf8(rest) else { return };
        let Ok(uri) = format!("{page}?{query}").parse::<axum::http::Uri>() else { return };
        Request::builder()
            .method(Method::GET)
            .uri(uri)
            .header(header::COOKIE, session)
            .header(header::ACCEPT_LANGUAGE, language)
            .body(Body::empty())
            .expect("a request")
    } else {
        let (path, _, _) = world::FORMS[usize::from(*which) % world::FORMS.len()];
        if path.starts_with("/signin") {
            (session, csrf) = (&site.signin.0, &site.signin.1);
        }
        let mut body = if how & 0x80 != 0 { Vec::new() } else { format!("csrf={csrf}&").into_bytes() };
        body.extend_from_slice(rest);
        Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(header::COOKIE, session)
            .header(header::ACCEPT_LANGUAGE, language)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .expect("a request")
    };
    let path = request.uri().to_string();
    let (status, _, body) = ask(&site.router, request);
    assert!(
        !status.is_server_error() || status == StatusCode::SERVICE_UNAVAILABLE,
        "{path} as {} answered {status}: {}",
        world::PRINCIPALS[principal].0,
        String::from_utf8_lossy(&body)
    );
    assert!(std::str::from_utf8(&body).is_ok(), "{path} answered bytes that are not UTF-8");
});
