//! A real browser for the console's end-to-end tests: Debian's headless
//! Chromium, driven over W3C WebDriver (chromedriver) with plain HTTP
//! calls, and axe-core (npm) run in each page it shows.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

/// The W3C WebDriver element key (§12.1).
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Browser {
    driver: Child,
    http: reqwest::Client,
    session: String,
    base: String,
    _profile: tempfile::TempDir,
}

/// Whether chromium and chromedriver are installed (under CI: they must be).
pub fn installed() -> bool {
    super::have("chromium") && super::have("chromedriver")
}

/// axe-core's script, as `.ci/run` installs it (or `AXE_JS`).
pub fn axe_script() -> String {
    let path = std::env::var("AXE_JS")
        .unwrap_or_else(|_| format!("{}/.ci/node/node_modules/axe-core/axe.min.js", env!("CARGO_MANIFEST_DIR")));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("axe-core at {path} ({e}): .ci/run installs it with npm"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Browser {
    pub async fn start() -> Browser {
        let port = free_port();
        use std::os::unix::process::CommandExt;
        // Its own process group: the browsers it starts end with it.
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        for _ in 0..100 {
            if http.get(format!("{base}/status")).send().await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1280,1000", "--lang=fr-FR",
                         format!("--user-data-dir={}", profile.path().display())]
            }
        }}});
        let created: Value =
            http.post(format!("{base}/session")).json(&caps).send().await.unwrap().json().await.unwrap();
        let session = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("chromedriver refused the session: {created}"))
            .to_string();
        let b = Browser { driver, http, session, base, _profile: profile };
        // Elements are looked for a few seconds before a test gives up.
        b.call(reqwest::Method::POST, "/timeouts", Some(json!({"implicit": 5000}))).await;
        b
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut req = self.http.request(method, url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let v: Value = req.send().await.unwrap().json().await.unwrap();
        if let Some(err) = v["value"].get("error") {
            panic!("WebDriver {path}: {err} {}", v["value"]["message"]);
        }
        v["value"].clone()
    }

    pub async fn go(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({"url": url}))).await;
    }

    pub async fn url(&self) -> String {
        self.call(reqwest::Method::GET, "/url", None).await.as_str().unwrap().to_string()
    }

    async fn find(&self, css: &str) -> String {
        let v =
            self.call(reqwest::Method::POST, "/element", Some(json!({"using": "css selector", "value": css}))).await;
        v[ELEMENT].as_str().unwrap().to_string()
    }

    /// Type into the field named by its label's text: found as a person
    /// finds it, through the label, not through the markup.
    pub async fn type_into(&self, label: &str, text: &str) {
        let id = self
            .script(
                "for (const l of document.querySelectorAll('label')) { if (l.textContent.trim().replace(/\\s*\\*$/, '') === arguments[0]) return l.htmlFor; } return null;",
                json!([label]),
            )
            .await;
        let id = id.as_str().unwrap_or_else(|| panic!("no field labelled « {label} »"));
        let el = self.find(&format!("#{id}")).await;
        self.call(reqwest::Method::POST, &format!("/element/{el}/clear"), Some(json!({}))).await;
        self.call(reqwest::Method::POST, &format!("/element/{el}/value"), Some(json!({"text": text}))).await;
    }

    /// Click the button (or link) whose text this is.
    pub async fn press(&self, text: &str) {
        let v = self
            .call(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "xpath", "value": format!("//button[normalize-space()=\"{text}\"] | //a[normalize-space()=\"{text}\"]")})),
            )
            .await;
        let el = v[ELEMENT].as_str().unwrap().to_string();
        // The page before the click marks its window; the next page's has no mark.
        self.script("window.__avant_le_clic = true;", json!([])).await;
        self.call(reqwest::Method::POST, &format!("/element/{el}/click"), Some(json!({}))).await;
        self.wait_for_next_page().await;
    }

    /// Wait until the page a click led to has loaded (every press submits a
    /// form or follows a link; a form the browser itself refuses stays).
    async fn wait_for_next_page(&self) {
        for _ in 0..100 {
            let loaded =
                self.script("return !window.__avant_le_clic && document.readyState === 'complete';", json!([])).await;
            if loaded.as_bool() == Some(true) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Press Tab once; the text of the element that then has the focus.
    pub async fn tab(&self) -> String {
        let keys = json!({"actions": [{"type": "key", "id": "clavier", "actions": [
            {"type": "keyDown", "value": "\u{E004}"}, {"type": "keyUp", "value": "\u{E004}"}]}]});
        self.call(reqwest::Method::POST, "/actions", Some(keys)).await;
        self.script("return document.activeElement.textContent.trim();", json!([]))
            .await
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    /// The window's size in CSS pixels: 640 wide is 1280 at 200 % zoom.
    pub async fn resize(&self, width: u32, height: u32) {
        self.call(reqwest::Method::POST, "/window/rect", Some(json!({"width": width, "height": height}))).await;
    }

    /// Whether the page scrolls sideways (RGAA 10.11: it must reflow).
    pub async fn scrolls_sideways(&self) -> bool {
        self.script("return document.documentElement.scrollWidth > document.documentElement.clientWidth;", json!([]))
            .await
            .as_bool()
            .unwrap_or(true)
    }

    /// Tick the checkbox labelled so.
    pub async fn tick(&self, label: &str) {
        let v = self
            .call(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "xpath", "value": format!("//label[normalize-space()=\"{label}\"]")})),
            )
            .await;
        let el = v[ELEMENT].as_str().unwrap().to_string();
        self.call(reqwest::Method::POST, &format!("/element/{el}/click"), Some(json!({}))).await;
    }

    pub async fn text(&self, css: &str) -> String {
        let el = self.find(css).await;
        self.call(reqwest::Method::GET, &format!("/element/{el}/text"), None).await.as_str().unwrap().to_string()
    }

    pub async fn script(&self, body: &str, args: Value) -> Value {
        self.call(reqwest::Method::POST, "/execute/sync", Some(json!({"script": body, "args": args}))).await
    }

    /// axe-core's serious and critical violations on the page shown.
    pub async fn accessibility_violations(&self, axe: &str) -> Vec<String> {
        self.script(axe, json!([])).await;
        let found = self
            .call(
                reqwest::Method::POST,
                "/execute/async",
                Some(json!({"script": "const done = arguments[arguments.length - 1];
                    axe.run(document, {runOnly: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']})
                      .then(r => done(r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
                        .map(v => v.id + ': ' + v.nodes.map(n => n.target.join(' ')).join(', '))))
                      .catch(e => done(['axe failed: ' + e]));", "args": []})),
            )
            .await;
        found.as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect()
    }

    /// A PNG of the page, written under `SCREENSHOTS_DIR` (default
    /// `target/screenshots`), for the README.
    pub async fn screenshot(&self, name: &str) {
        use base64::Engine;
        let png = self.call(reqwest::Method::GET, "/screenshot", None).await;
        let bytes = base64::engine::general_purpose::STANDARD.decode(png.as_str().unwrap()).unwrap();
        let dir = std::env::var("SCREENSHOTS_DIR")
            .unwrap_or_else(|_| format!("{}/target/screenshots", env!("CARGO_MANIFEST_DIR")));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(format!("{dir}/{name}.png"), bytes).unwrap();
    }
}

impl Browser {
    pub async fn quit(self) {
        let _ = self.http.delete(format!("{}/session/{}", self.base, self.session)).send().await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill").args(["-9", "--", &group]).status();
        let _ = self.driver.wait();
    }
}
