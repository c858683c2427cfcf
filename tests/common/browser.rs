//! Browser tests: Debian's `chromium` driven through `chromedriver` with fantoccini, and
//! axe-core (from npm, run in the same page) for accessibility checks.
//!
//! `Browser::start().await` finds `/usr/bin/chromedriver` and `/usr/bin/chromium` (as root it
//! installs them once, under a lock file, when they are missing; otherwise it panics saying
//! what to install), starts chromedriver on a free loopback port in a process group of its
//! own, and opens a headless session with a fresh profile and a 1280x900 viewport. Helpers
//! cover what tests do (open a URL, fill a field by its label, press a button and wait for
//! the next page, read the text and the cookies, full-page screenshots); `client()` gives
//! fantoccini for the rest. `axe.rs` runs axe-core in the page, `setup.rs` installs what is
//! missing, `driver.rs` talks to chromedriver where fantoccini cannot.
//!
//! Cleanup does not depend on the test passing: dropping the `Browser` (which also happens
//! while a failing test unwinds) ends the WebDriver session, kills chromedriver's whole
//! process group, and then any process still using the session's profile directory, so no
//! chromium outlives its test.

pub mod axe;
pub mod driver;
pub mod setup;

use driver::{delete_session, driver_status};
use fantoccini::cookies::Cookie;
use fantoccini::elements::{Element, ElementRef};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Debian's chromedriver (package `chromium-driver`).
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// Debian's chromium (package `chromium`).
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// The viewport (the page's area, inside the window) every session starts with.
pub const WINDOW: (u32, u32) = (1280, 900);
/// Tallest full-page screenshot, in CSS pixels.
const MAX_SHOT_HEIGHT: u32 = 8000;
/// The key under which WebDriver returns an element from a script.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A headless chromium session and the chromedriver behind it.
pub struct Browser {
    client: Option<Client>,
    driver: Child,
    port: u16,
    session: Option<String>,
    /// How much taller the window is than its viewport.
    frame: u32,
    /// Holds `profile/` (chromium's user data dir) and `chromedriver.log`.
    dir: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a headless chromium session (see the module docs).
    pub async fn start() -> Browser {
        setup::ensure_installed(&[(CHROMEDRIVER, "chromium-driver"), (CHROMIUM, "chromium")]);
        let dir = tempfile::Builder::new()
            .prefix("postern-browser-")
            .tempdir()
            .expect("temporary directory for the browser");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg(format!(
                "--log-path={}",
                dir.path().join("chromedriver.log").display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("chromedriver starts");
        // From here on a panic drops `browser`, which kills chromedriver.
        let mut browser = Browser {
            client: None,
            driver,
            port,
            session: None,
            frame: 0,
            dir,
        };
        browser.wait_for_driver().await;
        let capabilities = browser.capabilities();
        // With both of rustls's providers in the build (ring for Postern, aws-lc-rs through
        // fantoccini), rustls wants one chosen; a second call just returns Err.
        let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
        let client = ClientBuilder::rustls()
            .expect("TLS roots for the WebDriver client")
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .unwrap_or_else(|e| panic!("no chromium session: {e}\n{}", browser.driver_log()));
        browser.session = client.session_id().await.ok().flatten();
        browser.client = Some(client);
        browser.fit_viewport().await;
        browser
    }

    /// Makes the viewport (not the window) `WINDOW` big.
    async fn fit_viewport(&mut self) {
        let (width, height) = WINDOW;
        let frame = self
            .client()
            .execute("return window.outerHeight - window.innerHeight;", vec![])
            .await
            .expect("window size");
        self.frame = frame.as_u64().unwrap_or(0) as u32;
        if self.frame > 0 {
            let client = self.client();
            let set = client.set_window_size(width, height + self.frame).await;
            set.expect("resize the window");
        }
    }

    fn capabilities(&self) -> serde_json::Map<String, Value> {
        let (width, height) = WINDOW;
        let profile = self.profile();
        let args = json!([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            format!("--user-data-dir={}", profile.display()),
            format!("--window-size={width},{height}"),
        ]);
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
        });
        match capabilities {
            Value::Object(map) => map,
            _ => unreachable!(),
        }
    }

    /// Waits until chromedriver answers `/status` as ready; panics with its log if it exits
    /// or does not answer within 20 seconds.
    async fn wait_for_driver(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let status = tokio::time::timeout(Duration::from_secs(2), driver_status(self.port));
            if let Ok(Some(body)) = status.await {
                if body.contains("\"ready\":true") {
                    return;
                }
            }
            let exited = self.driver.try_wait().expect("chromedriver's status");
            if exited.is_some() || Instant::now() > deadline {
                panic!("chromedriver not ready ({exited:?})\n{}", self.driver_log());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn profile(&self) -> PathBuf {
        self.dir.path().join("profile")
    }

    /// The end of chromedriver's log, for failure messages.
    pub fn driver_log(&self) -> String {
        let log =
            std::fs::read_to_string(self.dir.path().join("chromedriver.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(40)..].join("\n");
        format!("chromedriver's log (last lines):\n{tail}")
    }

    /// The fantoccini client, for anything the helpers below do not cover.
    pub fn client(&self) -> &Client {
        self.client.as_ref().expect("a session")
    }

    /// chromedriver's process id (also its process group id).
    pub fn driver_pid(&self) -> u32 {
        self.driver.id()
    }

    /// chromium's profile directory: every chromium process of this session names it on
    /// its command line.
    pub fn profile_dir(&self) -> PathBuf {
        self.profile()
    }

    /// Opens `url`.
    pub async fn goto(&self, url: &str) {
        self.client()
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("goto {url}: {e}"));
    }

    /// The current page's URL.
    pub async fn url(&self) -> String {
        self.client()
            .current_url()
            .await
            .expect("current URL")
            .to_string()
    }

    /// The form control labelled `label` (a `<label>` whose text is `label`, or else starts
    /// with it), or else the control named `label`; panics if there is none.
    pub async fn control(&self, label: &str) -> Element {
        const FIND: &str = "const want = arguments[0];\
            const norm = s => s.replace(/\\s+/g, ' ').trim();\
            const labels = [...document.querySelectorAll('label')].filter(l => l.control);\
            const hit = labels.find(l => norm(l.textContent) === want)\
                || labels.find(l => norm(l.textContent).startsWith(want));\
            return hit ? hit.control : (document.getElementsByName(want)[0] || null);";
        self.element(FIND, label, "form control labelled or named")
            .await
    }

    /// Clears the control labelled or named `label` and types `value` into it.
    pub async fn fill(&self, label: &str, value: &str) {
        let control = self.control(label).await;
        control.clear().await.expect("clear the field");
        control
            .send_keys(value)
            .await
            .unwrap_or_else(|e| panic!("type into {label:?}: {e}"));
    }

    /// Clicks the button (`<button>` or `<input type=submit|button>`) whose text is `text`;
    /// when it submits a form, waits until the next page has loaded.
    pub async fn click_button(&self, text: &str) {
        const FIND: &str = "const want = arguments[0];\
            const norm = s => s.replace(/\\s+/g, ' ').trim();\
            const all = document.querySelectorAll('button, input[type=submit], input[type=button]');\
            return [...all].find(b => norm(b.tagName === 'INPUT' ? b.value : b.textContent) === want)\
                || null;";
        let button = self.element(FIND, text, "button").await;
        let submits = self
            .client()
            .execute(
                "const b = arguments[0]; return !!(b.form && b.type === 'submit');",
                vec![serde_json::to_value(&button).expect("element as JSON")],
            )
            .await
            .expect("the button's type");
        if submits == json!(true) {
            self.mark_document().await;
        }
        button
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {text:?}: {e}"));
        if submits == json!(true) {
            self.wait_for_new_document(text).await;
        }
    }

    /// Marks the current document, so that `wait_for_new_document` can tell it from the
    /// next one.
    async fn mark_document(&self) {
        self.client()
            .execute("document.posternOld = true;", vec![])
            .await
            .expect("mark the document");
    }

    /// Waits (up to 20 seconds) until the marked document is replaced by a loaded one.
    async fn wait_for_new_document(&self, after: &str) {
        const NEW: &str =
            "return document.posternOld === undefined && document.readyState === 'complete';";
        let deadline = Instant::now() + Duration::from_secs(20);
        // Scripts may fail while the next page commits: that counts as "not yet".
        while self.client().execute(NEW, vec![]).await.ok() != Some(json!(true)) {
            assert!(Instant::now() < deadline, "no new page after {after:?}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Follows the link whose text is `text` and waits for the page it opens.
    pub async fn click_link(&self, text: &str) {
        let link = self
            .client()
            .find(Locator::LinkText(text))
            .await
            .unwrap_or_else(|e| panic!("no link {text:?}: {e}"));
        self.mark_document().await;
        link.click()
            .await
            .unwrap_or_else(|e| panic!("click {text:?}: {e}"));
        self.wait_for_new_document(text).await;
    }

    /// Runs `script` (which returns an element or null) with `arg`.
    async fn element(&self, script: &str, arg: &str, what: &str) -> Element {
        let found = self
            .client()
            .execute(script, vec![json!(arg)])
            .await
            .unwrap_or_else(|e| panic!("looking for the {what} {arg:?}: {e}"));
        match found.get(ELEMENT_KEY).and_then(Value::as_str) {
            Some(id) => {
                Element::from_element_id(self.client().clone(), ElementRef::from(id.to_string()))
            }
            None => panic!("no {what} {arg:?} on {}", self.url().await),
        }
    }

    /// The page's visible text.
    pub async fn text(&self) -> String {
        let body = self
            .client()
            .find(Locator::Css("body"))
            .await
            .expect("a body");
        body.text().await.expect("the body's text")
    }

    /// The page's title.
    pub async fn title(&self) -> String {
        self.client().title().await.expect("the title")
    }

    /// Every cookie the browser holds for the current page.
    pub async fn cookies(&self) -> Vec<Cookie<'static>> {
        self.client().get_all_cookies().await.expect("cookies")
    }

    /// The cookie `name` of the current page, if set.
    pub async fn cookie(&self, name: &str) -> Option<Cookie<'static>> {
        self.cookies().await.into_iter().find(|c| c.name() == name)
    }

    /// Writes a PNG of the whole page (the window grows to the page's height, up to a
    /// limit, and shrinks back) to `path`, creating its directory.
    pub async fn screenshot(&self, path: &Path) {
        const MISSING: &str = "const body = document.body ? document.body.scrollHeight : 0;\
            return Math.max(document.documentElement.scrollHeight, body) - window.innerHeight;";
        let (width, height) = WINDOW;
        let client = self.client();
        let mut tall = height + self.frame;
        // The window's outer size is set, the page's height is measured inside: a few
        // rounds until the page fits.
        for _ in 0..4 {
            let missing = client.execute(MISSING, vec![]).await.expect("page height");
            let missing = missing.as_i64().unwrap_or(0);
            if missing <= 0 || tall >= MAX_SHOT_HEIGHT {
                break;
            }
            tall = (tall + missing as u32).min(MAX_SHOT_HEIGHT);
            client.set_window_size(width, tall).await.expect("resize");
        }
        let png = client.screenshot().await.expect("screenshot");
        if tall > height + self.frame {
            let set = client.set_window_size(width, height + self.frame).await;
            set.expect("resize");
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("screenshot directory");
        }
        std::fs::write(path, png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }

    /// Ends the session politely (chromium exits), then cleans up as `Drop` does.
    pub async fn close(mut self) {
        if let Some(client) = self.client.take() {
            if client.close().await.is_ok() {
                self.session = None;
            }
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // No panics here: this runs while a failing test unwinds.
        if let Some(session) = self.session.take() {
            delete_session(self.port, &session);
        }
        let group = self.driver.id() as libc::pid_t;
        // SAFETY: kill(2) with a negative pid signals the process group chromedriver leads
        // (spawned with process_group(0)); it touches no memory of ours.
        unsafe {
            libc::kill(-group, libc::SIGKILL);
        }
        let _ = self.driver.wait();
        let profile = self.profile();
        for pid in driver::processes_naming(&profile) {
            // SAFETY: as above, for one process that uses this session's profile.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
}
