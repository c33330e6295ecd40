//! Starts the real `carrel up` on 127.0.0.1:0 for end-to-end tests and talks HTTP to it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use test_programs_artifacts as guests;

pub mod batches;
pub mod desk;
pub mod patients;
pub mod python;
pub mod webdriver;

/// An ingest token of `association`, made with `carrel tokens add`.
pub fn ingest_token(state: &Path, association: &str) -> String {
    let out = carrel_ok(
        state,
        &[
            "tokens",
            "add",
            "--association",
            association,
            "--role",
            "ingest",
        ],
    );
    out.lines().last().unwrap().trim().to_owned()
}

/// A blocking HTTP client that does not follow redirects (the tests look at them), with
/// `timeout` per request.
pub fn no_redirects(timeout: Duration) -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .build()
        .unwrap()
}

/// Whether a test that needs a tool must be skipped: true, after saying so, when the tool
/// is missing on a developer's machine. `.ci/run` installs every such tool, so under CI
/// (`CI` set) a missing one fails the test instead of skipping it.
pub fn skipped_without(present: bool, tool: &str, install: &str) -> bool {
    if present {
        return false;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must run the tests that need {tool}: {install}"
    );
    eprintln!("SKIPPED: {tool} is needed ({install})");
    true
}

/// An application directory with components copied in and a manifest written.
pub struct TestApp {
    pub dir: tempfile::TempDir,
}

impl TestApp {
    /// `components`: (file name in the app dir, artifact path).
    pub fn new(manifest: &str, components: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        for (name, artifact) in components {
            std::fs::copy(artifact, dir.path().join(name)).expect("copy component");
        }
        std::fs::write(dir.path().join("spin.toml"), manifest).expect("write manifest");
        Self { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn manifest(&self) -> PathBuf {
        self.dir.path().join("spin.toml")
    }

    pub fn start(&self, extra: &[&str]) -> Carrel {
        Carrel::start(&self.manifest(), extra, &[])
    }

    /// Runs `carrel up`, expecting it to refuse to start; returns its stderr.
    pub fn start_fails(&self) -> String {
        self.start_fails_with(&[])
    }

    /// Runs `carrel up` with `extra` arguments, expecting it to refuse to start; returns its
    /// stderr.
    pub fn start_fails_with(&self, extra: &[&str]) -> String {
        let out = carrel_command()
            .args(["up", "-f"])
            .arg(self.manifest())
            .args(["--listen", "127.0.0.1:0"])
            .args(extra)
            .output()
            .expect("run carrel up");
        assert!(
            !out.status.success(),
            "carrel up started but should not have"
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}

/// The two probes, as most manifests in these tests name them.
pub const PROBES: &[(&str, &str)] = &[
    ("spin7_probe.wasm", guests::SPIN7_PROBE),
    ("spin5_probe.wasm", guests::SPIN5_PROBE),
];

/// Runs a `carrel` command against `state` (as `--state-dir`), expecting success; returns stdout.
pub fn carrel_ok(state: &Path, args: &[&str]) -> String {
    let out = carrel_command()
        .args(args)
        .arg("--state-dir")
        .arg(state)
        .output()
        .expect("run carrel");
    assert!(
        out.status.success(),
        "carrel {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// A running `carrel up`; killed when dropped.
pub struct Carrel {
    pub child: Child,
    pub base: String,
    pub client: reqwest::blocking::Client,
}

pub fn carrel_command() -> Command {
    Command::new(env!("CARGO_BIN_EXE_carrel"))
}

impl Carrel {
    pub fn start(manifest: &Path, extra: &[&str], env: &[(&str, &str)]) -> Self {
        Self::spawn(manifest, extra, env, Stdio::inherit())
    }

    /// Like `start`, with the log (stderr) kept for [`Carrel::terminate_with_log`]; for
    /// short runs only, as nothing reads the log until then.
    pub fn start_keeping_log(manifest: &Path, extra: &[&str]) -> Self {
        Self::spawn(manifest, extra, &[], Stdio::piped())
    }

    fn spawn(manifest: &Path, extra: &[&str], env: &[(&str, &str)], stderr: Stdio) -> Self {
        let mut child = carrel_command()
            .args(["up", "-f"])
            .arg(manifest)
            .args(["--listen", "127.0.0.1:0"])
            .args(extra)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn carrel up");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let base = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(url) = line.strip_prefix("Serving ") {
                        break url.trim().to_owned();
                    }
                }
                _ => {
                    let status = child.wait().expect("wait");
                    panic!("carrel up exited before serving: {status}");
                }
            }
        };
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("client");
        Self {
            child,
            base,
            client,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        let r = self.client.get(self.url(path)).send().expect("request");
        (r.status().as_u16(), r.text().expect("body"))
    }

    pub fn post(&self, path: &str, body: impl Into<reqwest::blocking::Body>) -> (u16, String) {
        let r = self
            .client
            .post(self.url(path))
            .body(body)
            .send()
            .expect("request");
        (r.status().as_u16(), r.text().expect("body"))
    }

    /// Sends SIGTERM and returns the exit status and the log of a `start_keeping_log` server.
    pub fn terminate_with_log(mut self) -> (std::process::ExitStatus, String) {
        let mut stderr = self
            .child
            .stderr
            .take()
            .expect("started with start_keeping_log");
        let (status, _) = self.terminate_ref();
        let mut log = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut log).expect("read log");
        (status, log)
    }

    /// Sends SIGTERM and waits for the process to exit, returning how long that took.
    pub fn terminate(mut self) -> (std::process::ExitStatus, Duration) {
        self.terminate_ref()
    }

    fn terminate_ref(&mut self) -> (std::process::ExitStatus, Duration) {
        let start = Instant::now();
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        let status = self.child.wait().expect("wait");
        (status, start.elapsed())
    }
}

impl Drop for Carrel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
