//! The warehouse the hostile HTTP tests attack: the real spin.toml (ingest-fhir and
//! pseudonymise components) under `carrel up`, an ingest token, and the checks that
//! nothing was stored.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::support::{self, Carrel, carrel_ok as run};

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

pub struct Warehouse {
    _dir: tempfile::TempDir,
    pub state: PathBuf,
    pub token: String,
    carrel: Option<Carrel>,
}

/// A warehouse with one ingest token, started with `extra` arguments to `carrel up`.
pub fn start(extra: &[&str]) -> Warehouse {
    // The artifacts crate has built components/ into components/target, where spin.toml looks.
    let _ = support::guests::INGEST_FHIR;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    run(&state, &["keys", "init"]);
    let token = support::ingest_token(&state, "sos-hostile");
    let mut args = vec!["--state-dir", state.to_str().unwrap()];
    args.extend_from_slice(extra);
    let shared = shared_cache();
    copy_new_files(&shared, &state.join("cache"));
    let carrel = Carrel::start(&repo().join("spin.toml"), &args, &[]);
    copy_new_files(&state.join("cache"), &shared);
    Warehouse {
        _dir: dir,
        state,
        token,
        carrel: Some(carrel),
    }
}

/// Native code of the components, compiled by the first warehouse of a test run and
/// copied into the state of the next ones: compiling the five components of spin.toml
/// again for each test took most of its time. Entries are keyed by engine and binary
/// hash, so a stale one is never used.
fn shared_cache() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("hostile_http-component-cache")
}

/// Copies the files under `from` (two levels: engine, binary) missing from `to`, each
/// through a temporary name so a concurrent reader never sees half a file.
fn copy_new_files(from: &Path, to: &Path) {
    let Ok(engines) = std::fs::read_dir(from) else {
        return;
    };
    for engine in engines.flatten() {
        let Ok(files) = std::fs::read_dir(engine.path()) else {
            continue;
        };
        let target_dir = to.join(engine.file_name());
        std::fs::create_dir_all(&target_dir).unwrap();
        for file in files.flatten() {
            let target = target_dir.join(file.file_name());
            if target.exists() || file.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let partial = target_dir.join(format!(
                ".{}.{}",
                file.file_name().to_string_lossy(),
                std::process::id()
            ));
            if std::fs::copy(file.path(), &partial).is_ok() {
                let _ = std::fs::rename(&partial, &target);
            }
        }
    }
}

/// A raw answer: its status code, and the whole text received.
pub struct RawAnswer {
    pub status: Option<u16>,
    pub text: String,
    /// How long until the server answered or closed the connection.
    pub took: Duration,
}

impl Warehouse {
    fn carrel(&self) -> &Carrel {
        self.carrel.as_ref().expect("server running")
    }

    pub fn address(&self) -> String {
        self.carrel().base.trim_start_matches("http://").to_owned()
    }

    /// POSTs to /ingest/fhir with the token; the answer as JSON when it is JSON.
    pub fn ingest(&self, body: Vec<u8>, content_type: Option<&str>) -> (u16, serde_json::Value) {
        let carrel = self.carrel();
        let mut request = carrel
            .client
            .post(carrel.url("/ingest/fhir"))
            .bearer_auth(&self.token)
            .body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let response = request.send().expect("request");
        let status = response.status().as_u16();
        let text = response.text().expect("body");
        let value = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
        (status, value)
    }

    pub fn health(&self) -> u16 {
        self.carrel().get("/.well-known/spin/health").0
    }

    /// Writes `request` on a fresh connection and reads until the server closes it or
    /// `wait` passes. Bytes are sent as they are: no client library tidies the path.
    pub fn raw(&self, request: &[u8], wait: Duration) -> RawAnswer {
        let mut stream = TcpStream::connect(self.address()).expect("connect");
        stream.set_read_timeout(Some(wait)).unwrap();
        let started = Instant::now();
        // The server may answer and close before reading everything (431, 413).
        let _ = stream.write_all(request);
        read_answer(stream, started)
    }

    /// Stops the server; the segments stored and the audit log, which still verifies.
    pub fn stop(mut self) -> (usize, String) {
        drop(self.carrel.take());
        let vault =
            carrel_vault::Vault::open(&self.state, &carrel_vault::MasterKeyEnv::unset()).unwrap();
        let segments = vault.segments("consultations").unwrap_or_default().len();
        let log = run(&self.state, &["audit", "export"]);
        assert!(run(&self.state, &["audit", "verify"]).starts_with("OK"));
        (segments, log)
    }

    /// Stops the server and checks that nothing reached storage: no segment, and no
    /// `dataset.append` in the audit log.
    pub fn assert_nothing_stored(self) {
        let (segments, log) = self.stop();
        assert_eq!(segments, 0, "stored: {segments} segments");
        assert!(!log.contains("dataset.append"), "{log}");
    }
}

/// Reads an HTTP answer until the connection closes or the read timeout passes.
pub fn read_answer(mut stream: TcpStream, started: Instant) -> RawAnswer {
    let mut received = Vec::new();
    let mut buffer = [0u8; 8192];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => received.extend_from_slice(&buffer[..n]),
        }
    }
    let took = started.elapsed();
    let text = String::from_utf8_lossy(&received).into_owned();
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok());
    RawAnswer { status, text, took }
}

/// The issues of an OperationOutcome, as (expression, diagnostics, code).
pub fn issues(outcome: &serde_json::Value) -> Vec<(String, String, String)> {
    assert_eq!(outcome["resourceType"], "OperationOutcome", "{outcome}");
    outcome["issue"]
        .as_array()
        .expect("issues")
        .iter()
        .map(|issue| {
            (
                issue["expression"][0]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                issue["diagnostics"].as_str().unwrap_or_default().to_owned(),
                issue["code"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// Asserts a 400 OperationOutcome with an issue at `location` whose diagnostics hold
/// `words`.
pub fn assert_refused(answer: &(u16, serde_json::Value), location: &str, words: &str) {
    let (status, outcome) = answer;
    assert_eq!(*status, 400, "{outcome}");
    let issues = issues(outcome);
    assert!(
        issues
            .iter()
            .any(|(at, why, _)| at == location && why.contains(words)),
        "no issue at `{location}` saying `{words}`: {issues:#?}"
    );
}
