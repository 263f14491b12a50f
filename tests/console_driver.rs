//! A small W3C WebDriver client for the console's browser tests: it starts Debian's
//! `chromedriver` on a loopback port and drives headless `chromium` through it (new session,
//! navigate, find, click, type, read text, run a script, cookies, frames, screenshots).
//!
//! Written here rather than taken from crates.io: the WebDriver client crates pull in the
//! `webdriver` crate, which is MPL-2.0, a licence `deny.toml` does not allow.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use bytes::Bytes;
use hookline_outbound::{HttpClient, HttpOptions, NetworkGuard};
use http::{HeaderName, HeaderValue, Method};
use serde_json::{json, Value};

/// The chromium and chromedriver binaries (Debian's packages `chromium`, `chromium-driver`).
pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// The key of an element reference in WebDriver answers.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A running chromedriver; killed (by its pid) when dropped.
pub struct Driver {
    child: Child,
    base: String,
    http: HttpClient,
    profile: PathBuf,
}

/// One browser session.
pub struct Browser<'a> {
    driver: &'a Driver,
    session: String,
}

/// An element of the current page.
#[derive(Clone)]
pub struct Element(String);

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl Driver {
    /// Starts chromedriver and waits (bounded) until it is ready.
    pub async fn start() -> Self {
        let port = free_port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let profile =
            std::env::temp_dir().join(format!("hookline-chromium-{}-{port}", std::process::id()));
        let driver = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            http: HttpClient::new(
                NetworkGuard::new(vec!["127.0.0.0/8".parse().unwrap()]),
                HttpOptions {
                    max_response_bytes: 32 << 20,
                    total_timeout: Duration::from_secs(60),
                    ..HttpOptions::default()
                },
            ),
            profile,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(v) = driver.call(Method::GET, "/status", None).await {
                if v["ready"] == true {
                    break;
                }
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not become ready in 30 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        driver
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value, String> {
        let mut headers = Vec::new();
        let body = match body {
            Some(b) => {
                headers.push((
                    HeaderName::from_static("content-type"),
                    HeaderValue::from_static("application/json"),
                ));
                Bytes::from(serde_json::to_vec(&b).unwrap())
            }
            None => Bytes::new(),
        };
        let resp = self
            .http
            .request(method, &format!("{}{path}", self.base), headers, body)
            .await
            .map_err(|e| e.to_string())?;
        let v: Value = serde_json::from_slice(&resp.body).map_err(|e| e.to_string())?;
        if resp.status >= 400 {
            return Err(format!("{path}: {}", v["value"]));
        }
        Ok(v["value"].clone())
    }

    /// A new headless browser with a fresh profile, `width` × `height`.
    pub async fn browser(&self, width: u32, height: u32) -> Browser<'_> {
        let dir = self.profile.join(format!("{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        let args = vec![
            "--headless".to_owned(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-dev-shm-usage".into(),
            // Nothing but loopback: no host name resolves, and the browser's own services
            // (translation, phishing lists, pings, ...) stay off.
            "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1".into(),
            "--disable-domain-reliability".into(),
            "--disable-client-side-phishing-detection".into(),
            "--disable-default-apps".into(),
            "--no-pings".into(),
            "--no-default-browser-check".into(),
            "--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication".into(),
            format!("--user-data-dir={}", dir.display()),
            format!("--window-size={width},{height}"),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args}
        }}});
        let v = self
            .call(Method::POST, "/session", Some(caps))
            .await
            .expect("a browser session");
        Browser {
            driver: self,
            session: v["sessionId"].as_str().unwrap().to_owned(),
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

impl Browser<'_> {
    async fn cmd(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let path = format!("/session/{}{path}", self.session);
        self.driver
            .call(method, &path, body)
            .await
            .unwrap_or_else(|e| panic!("webdriver: {e}"))
    }

    pub async fn goto(&self, url: &str) {
        self.cmd(Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    pub async fn url(&self) -> String {
        self.cmd(Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The first element `css` selects, waiting up to 10 s for it to appear.
    pub async fn find(&self, css: &str) -> Element {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let path = format!("/session/{}/element", self.session);
            match self
                .driver
                .call(
                    Method::POST,
                    &path,
                    Some(json!({"using": "css selector", "value": css})),
                )
                .await
            {
                Ok(v) => return Element(v[ELEMENT].as_str().unwrap().to_owned()),
                Err(e) if Instant::now() >= deadline => {
                    panic!("no element {css:?} on {}: {e}", self.url().await)
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// Every element `css` selects (none is fine).
    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        let v = self
            .cmd(
                Method::POST,
                "/elements",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        v.as_array()
            .into_iter()
            .flatten()
            .map(|e| Element(e[ELEMENT].as_str().unwrap().to_owned()))
            .collect()
    }

    pub async fn click(&self, e: &Element) {
        self.cmd(
            Method::POST,
            &format!("/element/{}/click", e.0),
            Some(json!({})),
        )
        .await;
    }

    /// Clears a field and types `text` into it.
    pub async fn fill(&self, e: &Element, text: &str) {
        self.cmd(
            Method::POST,
            &format!("/element/{}/clear", e.0),
            Some(json!({})),
        )
        .await;
        self.cmd(
            Method::POST,
            &format!("/element/{}/value", e.0),
            Some(json!({"text": text})),
        )
        .await;
    }

    pub async fn text(&self, e: &Element) -> String {
        self.cmd(Method::GET, &format!("/element/{}/text", e.0), None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and returns its value.
    pub async fn run(&self, script: &str, args: Value) -> Value {
        self.cmd(
            Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
        .await
    }

    /// The visible text of the page.
    pub async fn page_text(&self) -> String {
        self.run("return document.body.innerText;", json!([]))
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Waits (up to `within`) until the page's text contains `needle`, reloading between looks
    /// when `reload`.
    pub async fn wait_text(&self, needle: &str, within: Duration, reload: bool) -> String {
        let deadline = Instant::now() + within;
        loop {
            let text = self.page_text().await;
            if text.contains(needle) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "{needle:?} never appeared on {}:\n{text}",
                self.url().await
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
            if reload {
                self.cmd(Method::POST, "/refresh", Some(json!({}))).await;
            }
        }
    }

    /// Waits (up to 10 s) until the address ends with `suffix`.
    pub async fn wait_url(&self, suffix: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let url = self.url().await;
            if url.ends_with(suffix) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "still on {url}, expected …{suffix}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn cookies(&self) -> Vec<Value> {
        self.cmd(Method::GET, "/cookie", None)
            .await
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Switches into the iframe `e` (or back to the top page with `None`).
    pub async fn frame(&self, e: Option<&Element>) {
        let id = e.map_or(Value::Null, |e| json!({ELEMENT: e.0}));
        self.cmd(Method::POST, "/frame", Some(json!({"id": id})))
            .await;
    }

    pub async fn resize(&self, width: u32, height: u32) {
        self.cmd(
            Method::POST,
            "/window/rect",
            Some(json!({"width": width, "height": height})),
        )
        .await;
    }

    /// A PNG of the window, written to `dir/name.png` when `dir` is given.
    pub async fn screenshot(&self, dir: Option<&Path>, name: &str) {
        let v = self.cmd(Method::GET, "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
        if let Some(dir) = dir {
            std::fs::create_dir_all(dir).unwrap();
            std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
        }
    }

    /// Ends the session (closing the browser).
    pub async fn quit(self) {
        let path = format!("/session/{}", self.session);
        let _ = self.driver.call(Method::DELETE, &path, None).await;
    }
}
