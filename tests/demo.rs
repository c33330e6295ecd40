//! The front door: `carrel demo` on a fresh state directory (and again on the same one),
//! and `carrel study new` scaffolding a study that builds and passes its synthetic try.

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use support::{carrel_command, guests};

const CONSULTATIONS: u64 = 3000;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ sits below the repository root")
        .to_owned()
}

/// A running `carrel demo` and what it printed before serving.
struct Demo {
    child: Child,
    base: String,
    printed: String,
}

impl Demo {
    fn start(state: &Path) -> Self {
        // The artifacts build puts the warehouse's components where spin.toml expects them.
        assert!(Path::new(guests::ILI_WEEKLY).is_file());
        let mut child = carrel_command()
            .arg("demo")
            .arg("-f")
            .arg(repo().join("spin.toml"))
            .args(["--consultations", &CONSULTATIONS.to_string()])
            .args(["--listen", "127.0.0.1:0", "--state-dir"])
            .arg(state)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn carrel demo");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut printed = String::new();
        let base = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    printed.push_str(&line);
                    printed.push('\n');
                    if let Some(url) = line.strip_prefix("Serving ") {
                        break url.trim().to_owned();
                    }
                }
                _ => {
                    let status = child.wait().expect("wait");
                    panic!("carrel demo exited before serving: {status}\n{printed}");
                }
            }
        };
        std::thread::spawn(move || for _ in lines {});
        Self {
            child,
            base,
            printed,
        }
    }

    /// The token printed on the credentials line of `label`.
    fn token(&self, label: &str) -> String {
        let line = self
            .printed
            .lines()
            .find(|l| l.trim_start().starts_with(label) && l.contains(" token "))
            .unwrap_or_else(|| panic!("no {label} credentials in:\n{}", self.printed));
        line.rsplit(' ').next().unwrap().to_owned()
    }

    /// Sends SIGTERM and expects a clean exit.
    fn stop(mut self) {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        let status = self.child.wait().expect("wait");
        assert!(status.success(), "carrel demo stopped with {status}");
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn stored_rows(state: &Path) -> u64 {
    let vault = carrel_vault::Vault::open(state, &carrel_vault::MasterKeyEnv::unset())
        .expect("open the demo's vault");
    vault
        .segments("consultations")
        .expect("segments")
        .iter()
        .map(|s| s.rows)
        .sum()
}

#[test]
fn demo_fills_approves_runs_and_serves_then_a_second_run_reuses_everything() {
    let state = tempfile::tempdir().expect("temp dir");
    let demo = Demo::start(state.path());
    let printed = demo.printed.clone();
    assert!(printed.contains("DEMO CREDENTIALS"), "{printed}");
    assert!(
        printed.contains("ili_share"),
        "no ILI table printed:\n{printed}"
    );
    let researcher = demo.token("researcher");
    let auditor = demo.token("auditor");
    let ingest = demo.token("ingest");

    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let studies = client
        .get(format!("{}/api/studies", demo.base))
        .bearer_auth(&researcher)
        .send()
        .unwrap();
    assert_eq!(studies.status().as_u16(), 200);
    let studies: serde_json::Value = serde_json::from_str(&studies.text().unwrap()).unwrap();
    for id in ["ili-weekly", "activity", "referral-fit", "referral-eval"] {
        let study = studies
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .unwrap_or_else(|| panic!("{id} missing from {studies}"));
        assert_eq!(study["state"], "approved", "{study}");
    }
    // Every printed URL answers (some pages may not exist yet: any HTTP answer will do).
    let urls: Vec<&str> = printed
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix(&demo.base))
        .filter_map(|rest| rest.split_whitespace().next())
        .collect();
    assert!(urls.len() >= 6, "{printed}");
    for path in urls {
        let answer = client.get(format!("{}{path}", demo.base)).send();
        assert!(answer.is_ok(), "GET {path}: {answer:?}");
    }
    // The temporal validation of the referral model: fitted, exported, evaluated.
    assert!(
        printed.contains("Temporal validation of the referral model")
            && printed.contains("AUROC 0."),
        "{printed}"
    );
    // The demo's runs are the demo researcher's: all five are on their results page.
    let results = client
        .get(format!("{}/results", demo.base))
        .bearer_auth(&researcher)
        .send()
        .unwrap();
    assert_eq!(results.status().as_u16(), 200);
    let results = results.text().unwrap();
    assert_eq!(
        results.matches("class=\"run-link\"").count(),
        5,
        "{results}"
    );
    let front = client.get(format!("{}/", demo.base)).send().unwrap();
    assert_eq!(front.status().as_u16(), 200);
    let as_auditor = client
        .get(format!("{}/api/studies", demo.base))
        .bearer_auth(&auditor)
        .send()
        .unwrap();
    assert_eq!(as_auditor.status().as_u16(), 200);
    demo.stop();

    let credentials = state.path().join("demo/credentials.txt");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&credentials)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert!(
        std::fs::read_to_string(&credentials)
            .unwrap()
            .contains(&researcher)
    );
    let rows = stored_rows(state.path());
    assert_eq!(rows, CONSULTATIONS);

    let again = Demo::start(state.path());
    assert!(
        again.printed.contains("Reusing the demo data"),
        "{}",
        again.printed
    );
    assert!(
        again.printed.contains("approved already"),
        "{}",
        again.printed
    );
    assert!(again.printed.contains("ili_share"), "{}", again.printed);
    assert_eq!(again.token("researcher"), researcher);
    assert_eq!(again.token("ingest"), ingest);
    again.stop();
    assert_eq!(stored_rows(state.path()), rows);
}

/// Environment of the outer cargo that must not leak into the nested build.
const NESTED_BUILD_UNSET: &[&str] = &[
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET_DIR",
    "CARGO_BUILD_TARGET",
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "CARGO_MAKEFLAGS",
    "MAKEFLAGS",
    "MFLAGS",
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
];

#[test]
fn a_scaffolded_study_builds_and_passes_its_synthetic_try_without_any_edit() {
    let _ = guests::ALL; // the artifacts build adds the wasm32-wasip2 target when missing
    let repo = repo();
    let root = tempfile::tempdir().expect("temp dir");
    let components = root.path().join("components");
    std::fs::create_dir_all(components.join("studies")).unwrap();
    std::os::unix::fs::symlink(
        repo.join("components/study-sdk"),
        components.join("study-sdk"),
    )
    .unwrap();
    std::fs::copy(
        repo.join("components/Cargo.lock"),
        components.join("Cargo.lock"),
    )
    .unwrap();
    // The real workspace file with only the SDK as a member.
    let workspace = std::fs::read_to_string(repo.join("components/Cargo.toml")).unwrap();
    let start = workspace.find("members = [").unwrap();
    let end = start + workspace[start..].find(']').unwrap() + 1;
    let workspace = format!(
        "{}members = [\n    \"study-sdk\",\n]{}",
        &workspace[..start],
        &workspace[end..]
    );
    std::fs::write(components.join("Cargo.toml"), &workspace).unwrap();
    let manifest = root.path().join("spin.toml");
    std::fs::write(
        &manifest,
        "spin_manifest_version = 2\n\n[application]\nname = \"scaffold-test\"\n",
    )
    .unwrap();

    let study = |args: &[&str]| {
        carrel_command()
            .arg("study")
            .args(args)
            .arg("-f")
            .arg(&manifest)
            .output()
            .expect("run carrel study")
    };
    let out = study(&["new", "my-study"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("warning"),
        "{out:?}"
    );
    let crate_dir = components.join("studies/my-study");
    for file in ["Cargo.toml", "src/lib.rs", "study.toml.example"] {
        assert!(crate_dir.join(file).is_file(), "{file}");
    }
    let members = std::fs::read_to_string(components.join("Cargo.toml")).unwrap();
    assert_eq!(
        members,
        workspace.replace(
            "    \"study-sdk\",\n",
            "    \"study-sdk\",\n    \"studies/my-study\",\n"
        )
    );
    let lock = std::fs::read_to_string(components.join("Cargo.lock")).unwrap();
    assert!(
        lock.contains("name = \"my-study\""),
        "Cargo.lock not updated"
    );
    let spin = std::fs::read_to_string(&manifest).unwrap();
    assert!(
        spin.contains("[component.my-study.tool.carrel.study]"),
        "{spin}"
    );

    // Refusals: an existing directory, invalid names.
    for (args, expected) in [
        (&["new", "my-study"][..], "already exists"),
        (&["new", "9lives"][..], "not a valid study name"),
        (&["new", "My_Study"][..], "not a valid study name"),
    ] {
        let out = study(args);
        assert!(!out.status.success(), "{args:?} succeeded");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
    // Without a manifest (even one that cannot be loaded) it prints the section instead.
    let out = carrel_command()
        .args(["study", "new", "other-study", "--no-manifest", "-f"])
        .arg(root.path().join("missing.toml"))
        .arg("--dir")
        .arg(components.join("studies"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{out:?}");
    assert!(
        stdout.contains("[[trigger.study]]\ncomponent = \"other-study\""),
        "{stdout}"
    );
    assert_eq!(std::fs::read_to_string(&manifest).unwrap(), spin);

    let target = repo.join("target/scaffold-test");
    let mut build = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    for var in NESTED_BUILD_UNSET {
        build.env_remove(var);
    }
    let status = build
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--locked",
            "--offline",
        ])
        .args(["-p", "my-study"])
        .current_dir(&components)
        .env("CARGO_TARGET_DIR", &target)
        .status()
        .expect("run cargo build");
    assert!(status.success(), "the scaffolded study does not build");
    let release = components.join("target/wasm32-wasip2/release");
    std::fs::create_dir_all(&release).unwrap();
    std::fs::copy(
        target.join("wasm32-wasip2/release/my_study.wasm"),
        release.join("my_study.wasm"),
    )
    .unwrap();

    let out = study(&["try", "my-study", "--synthetic", "--consultations", "2000"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("succeeded"), "{stdout}");
    assert!(stdout.contains("age_class"), "{stdout}");
}
