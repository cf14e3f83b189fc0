//! A real browser for the tests: headless Chromium driven over WebDriver by chromedriver, which
//! each test starts on a free port and stops when it ends.
//!
//! [`run`] wraps a test body: whether the body returns an error, panics or runs out of time, it
//! saves a screenshot and the page's HTML to `target/browser-artifacts/<test name>/` before
//! failing the test, and it always closes the browser session.

use std::future::Future;
use std::panic::{resume_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use fantoccini::wd::Capabilities;
use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;
use tempfile::TempDir;

pub const CHROMEDRIVER: &str = "chromedriver";
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// How long a whole browser test may take before it fails (with artifacts).
pub const TEST_TIMEOUT: Duration = Duration::from_secs(90);

/// How long an explicit wait for an element may take.
pub const WAIT: Duration = Duration::from_secs(10);

/// A running chromedriver, killed when dropped, with the browser profile it hands to Chromium.
pub struct Chromedriver {
    child: Child,
    pub url: String,
    dir: TempDir,
}

impl Chromedriver {
    /// Starts chromedriver on a free port and waits until it answers; `None` (with a note) when
    /// chromedriver or Chromium is not installed, which fails instead under `CI=true`.
    pub async fn start() -> Option<Chromedriver> {
        if !Path::new(CHROMIUM).exists() {
            return skip(&format!("{CHROMIUM} is not installed"));
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let log = dir.path().join("chromedriver.log");
        let spawned = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return skip(&format!("{CHROMEDRIVER} is not installed"));
            }
            Err(e) => panic!("cannot start {CHROMEDRIVER}: {e}"),
        };
        let mut driver = Chromedriver { child, url: format!("http://127.0.0.1:{port}"), dir };
        driver.wait_until_ready().await;
        Some(driver)
    }

    async fn wait_until_ready(&mut self) {
        let status = format!("{}/status", self.url);
        let http = reqwest::Client::builder().timeout(Duration::from_secs(2)).build().expect("client");
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(exit) = self.child.try_wait().expect("poll chromedriver") {
                panic!("chromedriver exited at start ({exit}); its log: {}", self.log());
            }
            if let Ok(response) = http.get(&status).send().await {
                let body: serde_json::Value = response.json().await.unwrap_or_default();
                if body["value"]["ready"] == true {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "chromedriver did not answer on {status} within {WAIT:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Opens a browser session: headless Chromium with a fresh profile.
    pub async fn connect(&self) -> Client {
        let profile = self.dir.path().join("profile");
        let args = [
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            format!("--user-data-dir={}", profile.display()),
        ];
        let mut capabilities = Capabilities::new();
        capabilities.insert("goog:chromeOptions".into(), json!({ "binary": CHROMIUM, "args": args }));
        ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("cannot open a Chromium session: {e}; chromedriver's log: {}", self.log()))
    }

    fn log(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("chromedriver.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn skip(why: &str) -> Option<Chromedriver> {
    if super::in_ci() {
        panic!("CI=true but the browser tests cannot run: {why} (apt-get install chromium chromium-driver)");
    }
    eprintln!("skipping browser test: {why} (apt-get install chromium chromium-driver); set CI=true to fail instead");
    None
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

/// Where a failed browser test leaves its screenshot and HTML: `target/browser-artifacts/NAME/`.
pub fn artifacts_dir(name: &str) -> PathBuf {
    // CARGO_TARGET_TMPDIR is `<target dir>/tmp`, wherever CARGO_TARGET_DIR points.
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(tmp).join("browser-artifacts").join(name)
}

/// Runs `test` against a fresh headless Chromium: on an error, a panic or a time-out it saves
/// `screenshot.png`, `page.html` and `failure.txt` into [`artifacts_dir`] and fails the test.
/// Skips (see [`Chromedriver::start`]) when no browser is installed.
pub async fn run<F, Fut>(name: &str, test: F)
where
    F: FnOnce(Client) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let Some(driver) = Chromedriver::start().await else { return };
    let client = driver.connect().await;
    let outcome = tokio::time::timeout(TEST_TIMEOUT, CatchUnwind(Box::pin(test(client.clone())))).await;
    let failure = match &outcome {
        Ok(Ok(Ok(()))) => None,
        Ok(Ok(Err(e))) => Some(format!("error: {e:?}")),
        Ok(Err(panic)) => Some(format!("panic: {}", panic_message(panic.as_ref()))),
        Err(_) => Some(format!("timed out after {TEST_TIMEOUT:?}")),
    };
    if let Some(failure) = &failure {
        save_artifacts(&client, name, failure).await;
    }
    if let Err(e) = client.close().await {
        eprintln!("closing the browser session failed: {e}");
    }
    drop(driver);
    match outcome {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => panic!("browser test {name} failed: {e:?}"),
        Ok(Err(panic)) => resume_unwind(panic),
        Err(_) => panic!("browser test {name} timed out after {TEST_TIMEOUT:?}"),
    }
}

async fn save_artifacts(client: &Client, name: &str, failure: &str) {
    let dir = artifacts_dir(name);
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("cannot create {}: {e}", dir.display());
        return;
    }
    let url = client.current_url().await.map(|u| u.to_string()).unwrap_or_else(|e| format!("(unknown: {e})"));
    let _ = std::fs::write(dir.join("failure.txt"), format!("url: {url}\n\n{failure}\n"));
    match client.screenshot().await {
        Ok(png) => {
            let _ = std::fs::write(dir.join("screenshot.png"), png);
        }
        Err(e) => eprintln!("no screenshot: {e}"),
    }
    match client.source().await {
        Ok(html) => {
            let _ = std::fs::write(dir.join("page.html"), html);
        }
        Err(e) => eprintln!("no page source: {e}"),
    }
    eprintln!("browser test {name} failed at {url}; screenshot and HTML in {}", dir.display());
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(non-string panic payload)".to_owned()
    }
}

/// A future that turns a panic while polling the inner future into an `Err` with its payload.
struct CatchUnwind<F>(Pin<Box<F>>);

impl<F: Future> Future for CatchUnwind<F> {
    type Output = std::thread::Result<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.0.as_mut();
        match std::panic::catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(value)) => Poll::Ready(Ok(value)),
            Err(panic) => Poll::Ready(Err(panic)),
        }
    }
}
