//! The pages through the router, in-process (`tower::ServiceExt::oneshot`), against a
//! real log: every form refuses a missing or wrong CSRF token and changes nothing;
//! each validation error is rendered beside its field with the input kept; each role is
//! kept out of the others' pages with the same 404 as what does not exist; sign-in,
//! sign-out, cookies and languages. The real browser test is `tests/web.rs`.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tafel_contract::vocab::Role;
use tafel_contract::{PrincipalId, SubmitReply, SubmitRoute};
use tafel_service::Service;
use tafel_service::principals::{PrincipalEntry, Principals, PrincipalsFile, token_sha256};
use tafel_store::{EventLog, OpenOptions, SledLog};
use tafel_web::WebConfig;
use tower::ServiceExt;

const PRINCIPALS: [(&str, Role); 7] = [
    ("acme", Role::Entrepreneur),
    ("rival", Role::Entrepreneur),
    ("coach", Role::Coach),
    ("bank-a", Role::Financier),
    ("bank-b", Role::Financier),
    ("organiser", Role::Organiser),
    ("admin", Role::Admin),
];

struct Site {
    router: Router,
    service: Arc<Service>,
    log: SledLog,
    _dir: tempfile::TempDir,
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn location(&self) -> &str {
        self.headers.get(header::LOCATION).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with(&format!("{name}=")))
            .map(str::to_owned)
    }

    /// The value of the first hidden field `name` of the page.
    fn hidden(&self, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let start =
            self.body.find(&marker).unwrap_or_else(|| panic!("no field {name} in:\n{}", self.body)) + marker.len();
        self.body[start..].split('"').next().unwrap().to_owned()
    }
}

fn request(id: &str) -> Value {
    json!({"request_id": id, "organisation": {"name": "Acme", "kvk": "12345678", "region": "NL324"}, "title": "Bikes",
           "summary": "Refurbished bikes", "amount_eur": 100000, "instruments": ["loan"], "stage": "early_revenue",
           "impact_themes": [8], "certifications": []})
}

fn mandate(id: &str) -> Value {
    json!({"mandate_id": id, "financier": {"name": "Bank A", "kind": "bank"}, "ticket_min_eur": 10000,
           "ticket_max_eur": 500000, "instruments": ["loan"], "stages": ["early_revenue"], "impact_themes": [],
           "regions": [], "required_certifications": [], "co_financing": false})
}

impl Site {
    async fn start(config: WebConfig) -> Site {
        let dir = tempfile::tempdir().unwrap();
        let log = SledLog::open(dir.path(), OpenOptions::default()).unwrap();
        let principals = Principals::from_file(&PrincipalsFile {
            principals: PRINCIPALS
                .iter()
                .map(|(id, role)| PrincipalEntry {
                    id: PrincipalId::parse(id).unwrap(),
                    role: *role,
                    token_sha256: Some(token_sha256(&format!("{id}-token"))),
                    nats_password_bcrypt: None,
                })
                .collect(),
        })
        .unwrap();
        let (service, _) = tafel_service::start(log.clone(), principals, Default::default(), None).await.unwrap();
        let router = tafel_web::routes(service.clone(), config);
        let site = Site { router, service, log, _dir: dir };
        // A programme to act on: acme's ready request r1, rival's request r2 (not
        // coached), bank-a's mandate m1, a round table t1 inviting it with r1 on the
        // agenda.
        let coach = json!({"request_id": "r1", "coach": "coach", "readiness": "ready", "notes": ""});
        site.seed("acme", "tafel.request.submitted", "r1", request("r1")).await;
        site.seed("rival", "tafel.request.submitted", "r2", request("r2")).await;
        site.seed("coach", "tafel.request.coached", "r1", coach).await;
        site.seed("bank-a", "tafel.mandate.published", "m1", mandate("m1")).await;
        let table = json!({"roundtable_id": "t1", "title": "Winter", "date": "2027-01-12", "mandate_ids": ["m1"]});
        site.seed("organiser", "tafel.roundtable.scheduled", "t1", table).await;
        site.seed(
            "organiser",
            "tafel.roundtable.agenda_set",
            "t1",
            json!({"roundtable_id": "t1", "request_ids": ["r1"]}),
        )
        .await;
        site
    }

    async fn seed(&self, principal: &str, event_type: &str, subject: &str, data: Value) {
        let id = format!("seed-{}", self.log.last_sequence() + 1);
        let event = json!({"specversion": "1.0", "id": id, "source": "/test", "type": event_type, "subject": subject, "data": data});
        let reply = self
            .service
            .submit(&serde_json::to_vec(&event).unwrap(), &SubmitRoute::http(&PrincipalId::parse(principal).unwrap()))
            .await;
        assert!(matches!(reply, SubmitReply::Accepted { .. }), "{reply:?}");
    }

    async fn send(&self, method: Method, uri: &str, cookies: &str, headers: &[(&str, &str)], body: String) -> Answer {
        let mut request = Request::builder().method(method).uri(uri);
        if !cookies.is_empty() {
            request = request.header(header::COOKIE, cookies);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if !body.is_empty() {
            request = request.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        }
        let response = self.router.clone().oneshot(request.body(Body::from(body)).unwrap()).await.unwrap();
        let (parts, body) = response.into_parts();
        let body = String::from_utf8(body.collect().await.unwrap().to_bytes().to_vec()).unwrap();
        Answer { status: parts.status, headers: parts.headers, body }
    }

    async fn get(&self, uri: &str, cookies: &str) -> Answer {
        self.send(Method::GET, uri, cookies, &[], String::new()).await
    }

    async fn post(&self, uri: &str, cookies: &str, fields: &[(&str, &str)]) -> Answer {
        let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(fields).finish();
        self.send(Method::POST, uri, cookies, &[], body).await
    }

    /// Signs `principal` in with its token; the session cookie to send from then on.
    async fn sign_in(&self, principal: &str) -> String {
        let page = self.get("/signin", "").await;
        let signin = page.cookie("tafel_signin").unwrap();
        let signin = signin.split(';').next().unwrap().to_owned();
        let token = format!("{principal}-token");
        let answer =
            self.post("/signin", &signin, &[("csrf", &page.hidden("csrf")), ("token", &token), ("next", "")]).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
        let session = answer.cookie("tafel_session").unwrap();
        session.split(';').next().unwrap().to_owned()
    }

    /// The CSRF token of `principal`'s session, from any page.
    async fn csrf(&self, session: &str) -> String {
        self.get("/signin", session).await;
        let page = self.get("/requests/r1", session).await;
        let page = if page.status == StatusCode::OK { page } else { self.get("/roundtables", session).await };
        let page = if page.body.contains("name=\"csrf\"") { page } else { self.get("/mandates", session).await };
        page.hidden("csrf")
    }
}

/// Every form of the pages, as `(who, path, fields)` that would otherwise be accepted
/// or at least reach the service.
/// A form's fields, as sent.
type Fields = Vec<(&'static str, &'static str)>;

fn forms() -> Vec<(&'static str, &'static str, Fields)> {
    let request_fields = vec![
        ("organisation.name", "Acme"),
        ("organisation.kvk", "12345678"),
        ("organisation.region", "NL324"),
        ("title", "Bikes two"),
        ("summary", "More bikes"),
        ("amount_eur", "50.000"),
        ("instruments", "loan"),
        ("stage", "growth"),
        ("impact_themes", "8"),
        ("event_id", "web-csrf-test-1"),
    ];
    let mandate_fields = vec![
        ("financier.name", "Bank A"),
        ("financier.kind", "bank"),
        ("ticket_min_eur", "10000"),
        ("ticket_max_eur", "20000"),
        ("instruments", "loan"),
        ("stages", "growth"),
        ("co_financing", "false"),
        ("event_id", "web-csrf-test-2"),
    ];
    vec![
        ("acme", "/requests/new", request_fields.clone()),
        ("acme", "/requests/r1/revise", request_fields),
        ("acme", "/requests/r1/withdraw", vec![("reason", "done"), ("event_id", "web-csrf-test-3")]),
        ("coach", "/requests/r2/coach", vec![("readiness", "ready"), ("notes", ""), ("event_id", "web-csrf-test-4")]),
        ("bank-a", "/mandates/new", mandate_fields.clone()),
        ("bank-a", "/mandates/m1/revise", mandate_fields),
        ("bank-a", "/mandates/m1/close", vec![("reason", "done"), ("event_id", "web-csrf-test-5")]),
        (
            "organiser",
            "/roundtables/new",
            vec![("title", "Spring"), ("date", "2027-04-01"), ("mandate_ids", "m1"), ("event_id", "web-csrf-test-6")],
        ),
        ("organiser", "/roundtables/t1/agenda", vec![("request_ids", "r1"), ("event_id", "web-csrf-test-7")]),
        (
            "bank-a",
            "/roundtables/t1/assess",
            vec![
                ("prefix", "a0-0-"),
                ("request_id", "r1"),
                ("mandate_id", "m1"),
                ("a0-0-interest", "yes"),
                ("event_id", "web-csrf-test-8"),
            ],
        ),
        (
            "bank-a",
            "/roundtables/t1/recuse",
            vec![
                ("request_id", "r1"),
                ("mandate_id", "m1"),
                ("reason_field", "r"),
                ("r", "x"),
                ("event_id", "web-csrf-test-9"),
            ],
        ),
        ("organiser", "/roundtables/t1/conclude", vec![("outcome", "r1"), ("event_id", "web-csrf-test-10")]),
        ("acme", "/signout", vec![]),
    ]
}

#[tokio::test]
async fn every_form_refuses_a_missing_or_wrong_csrf_token_and_changes_nothing() {
    let site = Site::start(WebConfig::default()).await;
    let before = site.log.last_sequence();
    for (who, path, fields) in forms() {
        let session = site.sign_in(who).await;
        let right = site.csrf(&session).await;
        let last = if right.ends_with('0') { '1' } else { '0' };
        let wrong = format!("{}{last}", &right[..right.len() - 1]);
        for csrf in [None, Some(wrong.as_str()), Some(""), Some("x")] {
            let mut sent = fields.clone();
            if let Some(csrf) = csrf {
                sent.push(("csrf", csrf));
            }
            let answer = site.post(path, &session, &sent).await;
            assert_eq!(answer.status, StatusCode::FORBIDDEN, "{who} {path} with csrf {csrf:?}");
            assert!(answer.body.contains("role=\"alert\""), "{path}: the refusal is announced");
        }
        assert_eq!(site.log.last_sequence(), before, "{path}: nothing was appended");
        // Another person's token is as wrong as a made-up one.
        let other = site.sign_in(if who == "organiser" { "admin" } else { "organiser" }).await;
        let theirs = site.csrf(&other).await;
        let mut sent = fields.clone();
        sent.push(("csrf", &theirs));
        assert_eq!(
            site.post(path, &session, &sent).await.status,
            StatusCode::FORBIDDEN,
            "{path} with another session's token"
        );
    }
    // The sign-in forms want the token of their own cookie.
    let page = site.get("/signin", "").await;
    let answer = site.post("/signin", "", &[("csrf", &page.hidden("csrf")), ("token", "acme-token")]).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert!(answer.cookie("tafel_session").is_none());
    assert_eq!(site.log.last_sequence(), before);

    // And with the right token, each form goes through (or reaches the service).
    let session = site.sign_in("acme").await;
    let csrf = site.csrf(&session).await;
    let (_, path, mut fields) = forms().remove(0);
    fields.push(("csrf", &csrf));
    let answer = site.post(path, &session, &fields).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    assert_eq!(site.log.last_sequence(), before + 1);
}

/// `(form path, who, fields changed from a valid form, field whose error is expected)`.
#[tokio::test]
async fn each_validation_error_is_shown_beside_its_field_with_the_input_kept() {
    let site = Site::start(WebConfig::default()).await;
    let valid_request: Vec<(&str, &str)> = vec![
        ("organisation.name", "Acme"),
        ("organisation.kvk", "12345678"),
        ("organisation.region", "NL324"),
        ("title", "Bikes two"),
        ("summary", "More bikes"),
        ("amount_eur", "50.000"),
        ("instruments", "loan"),
        ("stage", "growth"),
        ("impact_themes", "8"),
    ];
    let valid_mandate: Vec<(&str, &str)> = vec![
        ("financier.name", "Bank A"),
        ("financier.kind", "bank"),
        ("ticket_min_eur", "10000"),
        ("ticket_max_eur", "20000"),
        ("instruments", "loan"),
        ("stages", "growth"),
        ("co_financing", "false"),
    ];
    type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], &'a str);
    let cases: Vec<Case> = vec![
        ("/requests/new", "acme", &[("organisation.kvk", "1234")], "organisation.kvk"),
        ("/requests/new", "acme", &[("organisation.name", "")], "organisation.name"),
        ("/requests/new", "acme", &[("organisation.region", "XX9")], "organisation.region"),
        ("/requests/new", "acme", &[("title", "")], "title"),
        ("/requests/new", "acme", &[("amount_eur", "1,50")], "amount_eur"),
        ("/requests/new", "acme", &[("amount_eur", "0")], "amount_eur"),
        ("/requests/new", "acme", &[("instruments", "")], "instruments"),
        ("/requests/new", "acme", &[("stage", "")], "stage"),
        ("/requests/new", "acme", &[("impact_themes", "")], "impact_themes"),
        ("/requests/new", "acme", &[("founded_year", "1700")], "founded_year"),
        ("/requests/new", "acme", &[("annual_revenue_eur", "lots")], "annual_revenue_eur"),
        ("/requests/r1/revise", "acme", &[("organisation.kvk", "abc")], "organisation.kvk"),
        ("/mandates/new", "bank-a", &[("financier.name", "")], "financier.name"),
        ("/mandates/new", "bank-a", &[("ticket_max_eur", "5000")], "ticket_max_eur"),
        ("/mandates/new", "bank-a", &[("stages", "")], "stages"),
        ("/mandates/new", "bank-a", &[("regions", "nowhere")], "regions"),
        ("/mandates/new", "bank-a", &[("valid_until", "31-12-2027")], "valid_until"),
        ("/mandates/new", "bank-a", &[("budget_eur", "-5")], "budget_eur"),
        ("/mandates/m1/revise", "bank-a", &[("ticket_min_eur", "")], "ticket_min_eur"),
    ];
    let before = site.log.last_sequence();
    for (path, who, changes, field) in cases {
        let session = site.sign_in(who).await;
        let csrf = site.csrf(&session).await;
        let base = if path.starts_with("/requests") { &valid_request } else { &valid_mandate };
        let mut fields: Vec<(&str, &str)> =
            base.iter().filter(|(name, _)| !changes.iter().any(|(c, _)| c == name)).copied().collect();
        fields.extend(changes.iter().filter(|(_, value)| !value.is_empty()).copied());
        fields.push(("csrf", &csrf));
        fields.push(("event_id", "web-validation-1"));
        let answer = site.post(path, &session, &fields).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{path} {changes:?}: {}", answer.body);
        assert!(
            answer.body.contains(&format!("id=\"error-{field}\"")),
            "{path} {changes:?}: no error beside {field}:\n{}",
            answer.body
        );
        assert!(
            answer.body.contains(&format!("href=\"#field-{field}\"")),
            "{path} {changes:?}: the summary links to {field}"
        );
        assert!(answer.body.contains("aria-invalid=\"true\""), "{path} {changes:?}: the field is marked invalid");
        assert!(
            answer.body.contains("<title>Fout: ") || answer.body.contains("<title>Error: "),
            "{path}: the title says so"
        );
        for (name, value) in changes.iter().filter(|(name, value)| {
            !value.is_empty() && !["instruments", "stage", "stages", "impact_themes"].contains(name)
        }) {
            assert!(answer.body.contains(&format!("value=\"{value}\"")), "{path}: the input {name}={value} is kept");
        }
    }
    assert_eq!(site.log.last_sequence(), before, "nothing was appended");

    // The coaching and assessment forms, in the same pattern.
    let session = site.sign_in("coach").await;
    let csrf = site.csrf(&session).await;
    let answer =
        site.post("/requests/r2/coach", &session, &[("csrf", &csrf), ("event_id", "web-v-2"), ("notes", "")]).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(answer.body.contains("id=\"error-readiness\""), "{}", answer.body);
    let session = site.sign_in("bank-a").await;
    let csrf = site.csrf(&session).await;
    let fields = [
        ("csrf", csrf.as_str()),
        ("event_id", "web-v-3"),
        ("prefix", "a0-0-"),
        ("request_id", "r1"),
        ("mandate_id", "m1"),
        ("a0-0-amount_eur", "12,5"),
    ];
    let answer = site.post("/roundtables/t1/assess", &session, &fields).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(answer.body.contains("id=\"error-a0-0-amount_eur\""), "{}", answer.body);
    let fields = [
        ("csrf", csrf.as_str()),
        ("event_id", "web-v-4"),
        ("prefix", "a0-0-"),
        ("request_id", "r1"),
        ("mandate_id", "m1"),
    ];
    let answer = site.post("/roundtables/t1/assess", &session, &fields).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(answer.body.contains("id=\"error-a0-0-interest\""), "{}", answer.body);
    assert_eq!(site.log.last_sequence(), before, "nothing was appended");
}

#[tokio::test]
async fn each_role_is_kept_out_of_the_others_pages_as_if_they_did_not_exist() {
    let site = Site::start(WebConfig::default()).await;
    let pages = [
        "/requests",
        "/requests/new",
        "/requests/r1",
        "/requests/r2",
        "/requests/r1/revise",
        "/coaching",
        "/mandates",
        "/mandates/new",
        "/mandates/m1",
        "/mandates/m1/revise",
        "/matches",
        "/roundtables",
        "/roundtables/new",
        "/roundtables/t1",
        "/dashboard",
        "/report",
        "/report.csv",
    ];
    // Who may open which page; every other is the 404 page.
    let allowed: [(&str, &[&str]); 7] = [
        ("acme", &["/requests", "/requests/new", "/requests/r1", "/requests/r1/revise"]),
        ("rival", &["/requests", "/requests/new", "/requests/r2"]),
        (
            "coach",
            &["/coaching", "/requests", "/requests/r1", "/requests/r2", "/mandates/m1", "/report", "/report.csv"],
        ),
        (
            "bank-a",
            &[
                "/requests/r1",
                "/mandates",
                "/mandates/new",
                "/mandates/m1",
                "/mandates/m1/revise",
                "/matches",
                "/roundtables",
                "/roundtables/t1",
            ],
        ),
        ("bank-b", &["/mandates", "/mandates/new", "/matches", "/roundtables"]),
        (
            "organiser",
            &[
                "/requests",
                "/requests/r1",
                "/requests/r2",
                "/mandates/m1",
                "/roundtables",
                "/roundtables/new",
                "/roundtables/t1",
                "/dashboard",
                "/report",
                "/report.csv",
            ],
        ),
        (
            "admin",
            &[
                "/requests",
                "/requests/r1",
                "/requests/r2",
                "/mandates/m1",
                "/roundtables",
                "/roundtables/t1",
                "/dashboard",
                "/report",
                "/report.csv",
            ],
        ),
    ];
    for (who, may) in allowed {
        let session = site.sign_in(who).await;
        let missing = site.get("/requests/no-such-request", &session).await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
        for page in pages {
            let answer = site.get(page, &session).await;
            let expected = if may.contains(&page) { StatusCode::OK } else { StatusCode::NOT_FOUND };
            assert_eq!(answer.status, expected, "{who} {page}");
            if expected == StatusCode::NOT_FOUND {
                // Indistinguishable from what does not exist (but for the path it names).
                // The menu marks the section a path lies in; that says nothing of what exists.
                let without = |body: &str, path: &str| {
                    body.replace(path, "").replace(&path.replace('/', "%2F"), "").replace(" aria-current=\"page\"", "")
                };
                assert_eq!(
                    without(&answer.body, page),
                    without(&missing.body, "/requests/no-such-request"),
                    "{who} {page}"
                );
            }
        }
    }
    // Nobody signed in: every page sends to the sign-in page, remembering where to.
    for page in pages {
        let answer = site.get(page, "").await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{page}");
        assert!(answer.location().starts_with("/signin?next="), "{page}");
    }
    // A financier does not see a shortlist; an entrepreneur does see its own.
    let bank = site.sign_in("bank-a").await;
    assert!(!site.get("/requests/r1", &bank).await.body.contains("id=\"shortlist\""));
    let acme = site.sign_in("acme").await;
    assert!(site.get("/requests/r1", &acme).await.body.contains("id=\"shortlist\""));
}

#[tokio::test]
async fn sign_in_keeps_a_strict_http_only_cookie_and_sign_out_ends_it() {
    let site = Site::start(WebConfig::default()).await;
    let page = site.get("/signin", "").await;
    assert!(!page.body.contains("/signin/demo"), "no one-click sign-in without --demo");
    let signin = page.cookie("tafel_signin").unwrap();
    assert!(
        signin.contains("HttpOnly") && signin.contains("SameSite=Strict") && !signin.contains("Secure"),
        "{signin}"
    );
    let signin = signin.split(';').next().unwrap().to_owned();
    let csrf = page.hidden("csrf");

    let wrong = site.post("/signin", &signin, &[("csrf", &csrf), ("token", "acme-tokeN")]).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.body.contains("id=\"error-token\""));
    assert!(wrong.cookie("tafel_session").is_none());

    // Over TLS (a proxy says so) the cookie is Secure too.
    let tls = site
        .send(
            Method::POST,
            "/signin",
            &signin,
            &[("x-forwarded-proto", "https")],
            form_urlencoded::Serializer::new(String::new())
                .extend_pairs([("csrf", csrf.as_str()), ("token", "acme-token"), ("next", "//evil.example")])
                .finish(),
        )
        .await;
    assert_eq!(tls.status, StatusCode::SEE_OTHER);
    assert_eq!(tls.location(), "/requests", "never sent elsewhere");
    let cookie = tls.cookie("tafel_session").unwrap();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict") && cookie.contains("Secure"), "{cookie}");
    let session = cookie.split(';').next().unwrap().to_owned();
    assert_eq!(site.get("/requests", &session).await.status, StatusCode::OK);

    let csrf = site.csrf(&session).await;
    let out = site.post("/signout", &session, &[("csrf", &csrf)]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(out.cookie("tafel_session").unwrap().contains("Max-Age=0"));
    let after = site.get("/requests", &session).await;
    assert_eq!(after.status, StatusCode::SEE_OTHER, "the old cookie no longer signs in");

    // Demo sign-in is refused without --demo.
    let page = site.get("/signin", "").await;
    let signin = page.cookie("tafel_signin").unwrap().split(';').next().unwrap().to_owned();
    let demo = site.post("/signin/demo", &signin, &[("csrf", &page.hidden("csrf")), ("principal", "acme")]).await;
    assert_eq!(demo.status, StatusCode::NOT_FOUND);
    assert!(demo.cookie("tafel_session").is_none());
}

#[tokio::test]
async fn with_the_demo_one_click_signs_in_a_demo_principal_only() {
    let config = WebConfig { demo_principals: vec![(PrincipalId::parse("acme").unwrap(), Role::Entrepreneur)] };
    let site = Site::start(config).await;
    let page = site.get("/signin", "").await;
    assert!(page.body.contains("action=\"/signin/demo\"") && page.body.contains("Demo."));
    let signin = page.cookie("tafel_signin").unwrap().split(';').next().unwrap().to_owned();
    let csrf = page.hidden("csrf");
    let other = site.post("/signin/demo", &signin, &[("csrf", &csrf), ("principal", "organiser")]).await;
    assert_eq!(other.status, StatusCode::NOT_FOUND, "not a demo principal");
    let demo = site.post("/signin/demo", &signin, &[("csrf", &csrf), ("principal", "acme")]).await;
    assert_eq!(demo.status, StatusCode::SEE_OTHER);
    let session = demo.cookie("tafel_session").unwrap().split(';').next().unwrap().to_owned();
    let home = site.get("/requests", &session).await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.body.contains("demo-banner"), "a demo session says so on every page");
}

#[tokio::test]
async fn pages_are_in_the_language_asked_for_and_remembered() {
    let site = Site::start(WebConfig::default()).await;
    let english =
        site.send(Method::GET, "/signin", "", &[("accept-language", "en-GB,en;q=0.9,nl;q=0.5")], String::new()).await;
    assert!(english.body.contains("<html lang=\"en\">") && english.body.contains("Sign in"));
    let dutch = site.send(Method::GET, "/signin", "", &[("accept-language", "de, fr")], String::new()).await;
    assert!(dutch.body.contains("<html lang=\"nl\">") && dutch.body.contains("Aanmelden"), "Dutch by default");
    let chosen = site.send(Method::GET, "/signin", "tafel_lang=nl", &[("accept-language", "en")], String::new()).await;
    assert!(chosen.body.contains("<html lang=\"nl\">"), "the choice beats the browser's");
    let switch = site.get("/language/en?back=%2Frequests%2Fr1", "").await;
    assert_eq!(switch.location(), "/requests/r1");
    assert!(switch.cookie("tafel_lang").unwrap().starts_with("tafel_lang=en;"));
    let away = site.get("/language/en?back=%2F%2Fevil.example", "").await;
    assert_eq!(away.location(), "/", "never sent elsewhere");

    // Amounts and dates as each language writes them.
    let session = site.sign_in("acme").await;
    let nl = site.get("/requests/r1", &format!("{session}; tafel_lang=nl")).await.body;
    let en = site.get("/requests/r1", &format!("{session}; tafel_lang=en")).await.body;
    assert!(nl.contains("€\u{a0}100.000") && en.contains("€100,000"));
    // Every page has the headers that keep it to itself.
    let answer = site.get("/requests/r1", &session).await;
    let csp = answer.headers.get(header::CONTENT_SECURITY_POLICY).unwrap().to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(answer.headers.get(header::CACHE_CONTROL).unwrap(), "no-store");
}

#[tokio::test]
async fn a_form_sent_twice_is_one_event_and_a_stale_form_is_a_conflict() {
    let site = Site::start(WebConfig::default()).await;
    let session = site.sign_in("acme").await;
    let csrf = site.csrf(&session).await;
    let before = site.log.last_sequence();
    let fields = [
        ("csrf", csrf.as_str()),
        ("event_id", "web-0123456789abcdef01234567"),
        ("organisation.name", "Acme"),
        ("organisation.kvk", "12345678"),
        ("organisation.region", "NL324"),
        ("title", "Twice"),
        ("summary", "Sent twice"),
        ("amount_eur", "50000"),
        ("instruments", "loan"),
        ("stage", "growth"),
        ("impact_themes", "8"),
    ];
    let first = site.post("/requests/new", &session, &fields).await;
    let second = site.post("/requests/new", &session, &fields).await;
    assert_eq!(first.status, StatusCode::SEE_OTHER, "{}", first.body);
    assert_eq!(second.status, StatusCode::SEE_OTHER, "a double click is a duplicate: {}", second.body);
    assert_eq!(first.location(), second.location());
    assert_eq!(site.log.last_sequence(), before + 1, "one request, not two");

    // The coach's verdict is on the request as shown: a revision in between is a
    // conflict, not a verdict on what the coach never saw.
    let coach = site.sign_in("coach").await;
    let page = site.get("/requests/r2", &coach).await;
    let (csrf, version) = (page.hidden("csrf"), page.hidden("version"));
    site.seed("rival", "tafel.request.revised", "r2", request("r2")).await;
    let stale =
        [("csrf", csrf.as_str()), ("event_id", "web-stale-1"), ("version", version.as_str()), ("readiness", "ready")];
    let answer = site.post("/requests/r2/coach", &coach, &stale).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(
        answer.body.contains("Reload the page") || answer.body.contains("Laad de pagina opnieuw"),
        "{}",
        answer.body
    );

    // A withdrawal's reason the contract refuses is shown beside its field.
    let acme = site.sign_in("acme").await;
    let csrf = site.csrf(&acme).await;
    let bad = [("csrf", csrf.as_str()), ("event_id", "web-bad-1"), ("reason", "bell \u{7}")];
    let answer = site.post("/requests/r1/withdraw", &acme, &bad).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(answer.body.contains("id=\"error-reason\""), "{}", answer.body);
}

#[tokio::test]
async fn a_financier_sees_only_its_own_invited_mandates_before_the_conclusion() {
    let site = Site::start(WebConfig::default()).await;
    let mut theirs = mandate("m2");
    theirs["financier"]["name"] = json!("Bank B");
    site.seed("bank-b", "tafel.mandate.published", "m2", theirs).await;
    let table = json!({"roundtable_id": "t2", "title": "Both", "date": "2027-02-01", "mandate_ids": ["m1", "m2"]});
    site.seed("organiser", "tafel.roundtable.scheduled", "t2", table).await;
    let reply =
        site.service.query_result("roundtable", "bank-a", br#"{"roundtable_id": "t2"}"#, 1 << 20).await.unwrap();
    let reply: Value = serde_json::from_slice(&reply).unwrap();
    assert_eq!(reply["mandate_ids"], json!(["m1"]), "no financier learns which mandates others hold");
    let organiser =
        site.service.query_result("roundtable", "organiser", br#"{"roundtable_id": "t2"}"#, 1 << 20).await.unwrap();
    assert_eq!(serde_json::from_slice::<Value>(&organiser).unwrap()["mandate_ids"], json!(["m1", "m2"]));
    let session = site.sign_in("bank-a").await;
    let page = site.get("/roundtables/t2", &session).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains("m2") && !page.body.contains("Bank B"), "{}", page.body);
}

#[tokio::test]
async fn a_live_shortlist_ends_when_its_session_does() {
    let site = Site::start(WebConfig::default()).await;
    let session = site.sign_in("acme").await;
    let response = site
        .router
        .clone()
        .oneshot(
            Request::get("/requests/r1/shortlist/live").header(header::COOKIE, &session).body(Body::empty()).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let next_data = async |body: &mut Body| -> Option<String> {
        loop {
            let frame =
                tokio::time::timeout(std::time::Duration::from_secs(10), body.frame()).await.expect("in time")?;
            if let Ok(data) = frame.unwrap().into_data() {
                let text = String::from_utf8_lossy(&data).into_owned();
                if text.contains("event: shortlist") {
                    return Some(text);
                }
            }
        }
    };
    assert!(next_data(&mut body).await.is_some(), "the shortlist now comes first");
    let mut fitting = mandate("m3");
    fitting["financier"]["name"] = json!("Bank Three");
    site.seed("bank-b", "tafel.mandate.published", "m3", fitting).await;
    assert!(next_data(&mut body).await.unwrap().contains("Bank Three"), "a change arrives");
    let csrf = site.csrf(&session).await;
    assert_eq!(site.post("/signout", &session, &[("csrf", &csrf)]).await.status, StatusCode::SEE_OTHER);
    let mut another = mandate("m4");
    another["financier"]["name"] = json!("Bank Four");
    site.seed("bank-b", "tafel.mandate.published", "m4", another).await;
    assert_eq!(next_data(&mut body).await, None, "signed out, the stream ends instead of showing the change");
}
