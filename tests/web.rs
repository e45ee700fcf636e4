//! The web pages in a real browser: Debian's chromium, driven through chromedriver
//! (WebDriver, with fantoccini), against the real `tafel serve --demo`. One scenario
//! through all four roles, two browsers at once (the entrepreneur's stays open on its
//! request, in Dutch; the other signs in as coach, financier and organiser in turn, in
//! English). On every page axe-core (the npm package, from the test's own files) runs
//! in the page and no serious or critical WCAG 2.1 A/AA violation may be found; each
//! page's screenshot is saved under `target/tmp/screenshots/`.
//!
//! `scripts/test` installs chromium, chromium-driver and axe-core when missing; without
//! them this test fails (it never skips).

mod support;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use support::{PATIENCE, Tafel, free_port, wait_for_port};

/// axe-core as `scripts/test` installs it (or where `TAFEL_AXE` says).
fn axe_source() -> String {
    let path = std::env::var("TAFEL_AXE").map(PathBuf::from).unwrap_or_else(|_| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/browser/node_modules/axe-core/axe.min.js")
    });
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!("axe-core is missing at {} ({e}): run scripts/test, which installs it", path.display())
    })
}

fn screenshots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn chromedriver(port: u16) -> Driver {
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver is missing: run scripts/test, which installs chromium-driver");
    wait_for_port(port);
    Driver(child)
}

async fn browser(driver_port: u16) -> Client {
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({"args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                        "--window-size=1280,1400", "--disable-background-networking", "--no-first-run"]}),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{driver_port}"))
        .await
        .expect("connect to chromedriver")
}

/// One browser with the page helpers the scenario needs.
struct Page<'a> {
    client: Client,
    base: String,
    axe: &'a str,
    name: &'static str,
    shots: usize,
}

impl Page<'_> {
    async fn go(&self, path: &str) {
        self.client.goto(&format!("{}{path}", self.base)).await.unwrap();
    }

    async fn path(&self) -> String {
        let url = self.client.current_url().await.unwrap();
        match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        }
    }

    /// The text of the first element `css` selects, asked again while the page is
    /// still being replaced (a form's answer arriving).
    async fn text(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let found = match self.client.find(Locator::Css(css)).await {
                Ok(element) => element.text().await,
                Err(error) => Err(error),
            };
            match found {
                Ok(text) => return text,
                Err(error) if Instant::now() > deadline => panic!("no {css}: {error}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    async fn type_into(&self, name: &str, text: &str) {
        let field = self
            .client
            .find(Locator::Css(&format!("[name='{name}']")))
            .await
            .unwrap_or_else(|e| panic!("no field {name}: {e}"));
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    async fn tick(&self, name: &str, value: &str) {
        self.client
            .find(Locator::Css(&format!("input[name='{name}'][value='{value}']")))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }

    async fn press(&self, css: &str) {
        self.client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("no {css}: {e}")).click().await.unwrap();
    }

    async fn sign_in_as(&self, principal: &str) {
        self.go("/signin").await;
        self.press(&format!("form[action='/signin/demo'] input[value='{principal}'] ~ button")).await;
        let deadline = Instant::now() + PATIENCE;
        while self.path().await.starts_with("/signin") {
            assert!(Instant::now() < deadline, "{principal} was not signed in");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn sign_out(&self) {
        self.press("form[action='/signout'] button").await;
        self.wait_for_path("/signin").await;
    }

    /// axe-core in the page: no serious or critical WCAG 2.1 A/AA violation; then the
    /// screenshot.
    async fn check(&mut self, what: &str) {
        self.client.execute(self.axe, vec![]).await.expect("axe-core loads");
        let script = r#"
            const done = arguments[arguments.length - 1];
            axe.run(document, {runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}})
              .then(result => done(result.violations
                 .filter(v => v.impact === "serious" || v.impact === "critical")
                 .map(v => v.id + " (" + v.impact + "): " + v.nodes.map(n => n.target.join(" ")).slice(0, 5).join(", "))))
              .catch(error => done(["axe failed: " + error]));"#;
        let violations = self.client.execute_async(script, vec![]).await.expect("axe runs");
        let violations: Vec<String> = serde_json::from_value(violations).unwrap();
        let path = self.path().await;
        assert!(violations.is_empty(), "{what} ({path}): accessibility violations:\n{}", violations.join("\n"));
        self.shots += 1;
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(screenshots().join(format!("{}-{:02}-{what}.png", self.name, self.shots)), png).unwrap();
        // No page over 100 KB before images.
        let size = self.client.execute("return document.documentElement.outerHTML.length", vec![]).await.unwrap();
        assert!(size.as_u64().unwrap() < 100 * 1024, "{what}: the page has {size} characters");
    }

    /// Waits until the address ends with `ending` (a form went through); panics with
    /// the page's text otherwise.
    async fn wait_for_path(&self, ending: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let path = self.path().await;
            if path.ends_with(ending) {
                return path;
            }
            if Instant::now() > deadline {
                let main = self.text("main").await;
                panic!("the address never ended with {ending:?}: {path}\n{main}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Scrolls the element `css` to the top of the window (for the screenshot).
    async fn scroll_to(&self, css: &str) {
        let script = format!("document.querySelector({css:?}).scrollIntoView()");
        self.client.execute(&script, vec![]).await.unwrap();
    }

    async fn wait_for_text(&self, css: &str, text: &str) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let now = self.text(css).await;
            if now.contains(text) {
                return;
            }
            assert!(Instant::now() < deadline, "{css} never showed {text:?}; it shows:\n{now}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_does_its_work_in_a_browser() {
    let axe = axe_source();
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let tafel = Tafel::serve(data.path(), &["--demo", "--http", &format!("127.0.0.1:{port}")]);
    tafel.wait_for_log("tafel is up");
    let base = format!("http://127.0.0.1:{port}");
    let driver_port = free_port();
    let _driver = chromedriver(driver_port);
    let mut founder =
        Page { client: browser(driver_port).await, base: base.clone(), axe: &axe, name: "entrepreneur", shots: 0 };
    let mut desk = Page { client: browser(driver_port).await, base: base.clone(), axe: &axe, name: "desk", shots: 0 };

    // The entrepreneur, in Dutch: submits a request; the KvK number is wrong at first.
    founder.go("/language/nl?back=/signin").await;
    founder.check("signin").await;
    founder.sign_in_as("fietsfabriek").await;
    founder.check("my-requests").await;
    founder.go("/requests/new").await;
    founder.check("new-request").await;
    founder.type_into("organisation.name", "De Fietsfabriek").await;
    founder.type_into("organisation.kvk", "1234").await;
    founder.type_into("organisation.region", "NL324").await;
    founder.type_into("title", "Bakfietsen voor de binnenstad").await;
    founder
        .type_into(
            "summary",
            "Elektrische bakfietsen voor bezorging in Haarlem, gebouwd door mensen met een afstand tot werk.",
        )
        .await;
    founder.type_into("amount_eur", "90.000").await;
    founder.tick("instruments", "loan").await;
    founder.tick("stage", "early_revenue").await;
    founder.tick("impact_themes", "8").await;
    founder.tick("impact_themes", "11").await;
    founder.press("main form button[type='submit']").await;
    founder.wait_for_text("main", "Er is een probleem").await;
    let error = founder.text("[id='error-organisation.kvk']").await;
    assert!(error.contains("8 cijfers"), "the error beside the KvK field: {error}");
    assert!(founder.text(".error-summary").await.contains("8 cijfers"));
    assert_eq!(
        founder.client.find(Locator::Css("[name='title']")).await.unwrap().prop("value").await.unwrap().as_deref(),
        Some("Bakfietsen voor de binnenstad"),
        "the input is kept"
    );
    founder.check("new-request-error").await;
    founder.type_into("organisation.kvk", "60123457").await;
    founder.press("main form button[type='submit']").await;
    let path = founder.wait_for_path("?done=submitted").await;
    assert!(path.starts_with("/requests/bakfietsen-voor-de-binnenstad-"), "{path}");
    let request_id = path.trim_start_matches("/requests/").trim_end_matches("?done=submitted").to_owned();
    assert!(founder.text("main").await.contains("wacht op coaching"));
    founder.check("request-submitted").await;

    // The coach, in English: marks it ready.
    desk.go("/language/en?back=/signin").await;
    desk.sign_in_as("coach-marieke").await;
    desk.check("coaching").await;
    desk.press(&format!("a[href='/requests/{request_id}']")).await;
    desk.check("coach-request").await;
    desk.tick("readiness", "ready").await;
    desk.type_into("notes", "Clear plan; cash flow checked.").await;
    desk.press("form[action$='/coach'] button[type='submit']").await;
    desk.wait_for_path("/coaching?done=coached").await;
    desk.sign_out().await;

    // A financier publishes a mandate that fits: the entrepreneur's open page shows it
    // without being reloaded.
    founder.go(&format!("/requests/{request_id}")).await;
    assert!(!founder.text("#shortlist").await.contains("Live Testfonds"));
    desk.sign_in_as("triodos").await;
    desk.check("matches").await;
    desk.go("/mandates/new").await;
    desk.check("new-mandate").await;
    desk.type_into("financier.name", "Live Testfonds").await;
    desk.client
        .find(Locator::Css("select[name='financier.kind'] option[value='impact_fund']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    desk.type_into("ticket_min_eur", "10.000").await;
    desk.type_into("ticket_max_eur", "500.000").await;
    for instrument in ["loan", "equity"] {
        desk.tick("instruments", instrument).await;
    }
    for stage in ["early_revenue", "growth"] {
        desk.tick("stages", stage).await;
    }
    desk.press("main form button[type='submit']").await;
    let mandate_path = desk.wait_for_path("?done=published").await;
    let mandate_id = mandate_path.trim_start_matches("/mandates/").trim_end_matches("?done=published").to_owned();
    desk.check("mandate").await;
    founder.wait_for_text("#shortlist", "Live Testfonds").await;
    founder.check("shortlist-live").await;

    // It sees the ready request among its matches, with reasons.
    desk.go("/matches").await;
    desk.client
        .find(Locator::Css(&format!("main a[href='/requests/{request_id}']")))
        .await
        .expect("the new request is among the matches");
    assert!(desk.text("main").await.contains("Impact themes"), "the reasons are shown");
    desk.sign_out().await;

    // The organiser schedules a round table with that mandate and sets the agenda.
    desk.sign_in_as("organiser-haarlem").await;
    desk.check("dashboard").await;
    desk.go("/roundtables/new").await;
    desk.check("new-roundtable").await;
    desk.type_into("title", "Ronde tafel winter").await;
    desk.type_into("date", "12-01-2027").await;
    desk.tick("mandate_ids", &mandate_id).await;
    desk.press("main form button[type='submit']").await;
    let table_path = desk.wait_for_path("?done=scheduled").await;
    let table = table_path.trim_end_matches("?done=scheduled").to_owned();
    desk.tick("request_ids", &request_id).await;
    desk.press("form[action$='/agenda'] button[type='submit']").await;
    desk.wait_for_path("?done=agenda_set").await;
    desk.check("agenda-set").await;
    desk.sign_out().await;

    // The financier assesses blind.
    desk.sign_in_as("triodos").await;
    desk.go(&table).await;
    desk.check("assess").await;
    desk.tick("a0-0-interest", "yes").await;
    desk.type_into("a0-0-amount_eur", "90.000").await;
    for (score, value) in [("impact", "4"), ("team", "4"), ("financials", "3")] {
        desk.client
            .find(Locator::Css(&format!("select[name='a0-0-scores.{score}'] option[value='{value}']")))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }
    desk.press("form[action$='/assess'] button[type='submit']").await;
    desk.wait_for_path("?done=assessed").await;
    desk.check("assessed").await;
    desk.sign_out().await;

    // The organiser reads the joint view, concludes with the prefilled commitment, and
    // reads the report.
    desk.sign_in_as("organiser-haarlem").await;
    desk.go(&table).await;
    let matrix = desk.text("table.matrix").await;
    assert!(matrix.contains("yes") && matrix.contains("€90,000"), "the joint view: {matrix}");
    desk.scroll_to("#joint-title").await;
    desk.check("joint").await;
    desk.press("form[action$='/conclude'] button[type='submit']").await;
    desk.wait_for_path("?done=concluded").await;
    assert!(desk.text("main").await.contains("€90,000"));
    desk.check("concluded").await;
    desk.go("/report").await;
    let by_instrument = desk.text("#by-instrument-title + svg").await;
    assert!(by_instrument.contains("loan"), "the chart by instrument: {by_instrument}");
    assert!(desk.text("main").await.contains("€680,000"), "the demo's €590,000 and these €90,000");
    desk.check("report").await;
    let csv = desk.client.execute("return fetch('/report.csv').then(r => r.text())", vec![]).await.unwrap();
    assert!(csv.as_str().unwrap().contains("committed_eur,680000"), "{csv}");

    // Every role is kept out of the others' pages.
    desk.go("/requests/new").await;
    assert!(desk.text("h1").await.contains("not found"));
    founder.go("/dashboard").await;
    assert!(founder.text("h1").await.contains("niet gevonden"));
    founder.check("not-found").await;

    founder.client.close().await.unwrap();
    desk.client.close().await.unwrap();
}
