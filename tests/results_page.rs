//! The researcher's results pages, end to end: the shipped spin.toml and its real
//! `ili-weekly` study over synthetic consultations imported through the real ingestion
//! components, approved and run twice (by region and age class, and national) with the
//! CLI as a researcher, then `carrel up`. Plain HTTP checks of who sees what and of the
//! downloads, then headless Chromium logs in, counts the lines of the curves and the
//! marked cells against the released table itself, and takes a screenshot.

mod support;

use arrow_array::{Array, RecordBatch, StringArray, UInt64Array};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use support::desk::token;
use support::webdriver::{self, Browser};
use support::{Carrel, carrel_command, carrel_ok as run, guests};

const CONSULTATIONS: &str = "20000";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ sits below the repository root")
        .to_owned()
}

/// A warehouse with two `ili-weekly` runs by one researcher, served by `carrel up`.
struct Fixture {
    _dir: tempfile::TempDir,
    state: PathBuf,
    researcher_id: String,
    researcher: String,
    other_researcher: String,
    auditor: String,
    /// By region and age class over one winter.
    regional: String,
    national: String,
    /// What `carrel study run` wrote to stderr, progress lines included.
    run_stderr: String,
    carrel: Carrel,
}

fn carrel(state: &Path, args: &[&str]) -> std::process::Output {
    let out = carrel_command()
        .args(args)
        .arg("-f")
        .arg(repo().join("spin.toml"))
        .arg("--state-dir")
        .arg(state)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "carrel {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn fixture() -> Fixture {
    // The artifacts build puts the shipped components where spin.toml expects them.
    assert!(Path::new(guests::ILI_WEEKLY).is_file());
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    run(&state, &["keys", "init"]);
    let data = dir.path().join("synth");
    let out = carrel_command()
        .args([
            "synth",
            "--seed",
            "3",
            "--consultations",
            CONSULTATIONS,
            "--out",
        ])
        .arg(&data)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let truth: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data.join("ground-truth.json")).unwrap()).unwrap();
    let files: Vec<String> = truth["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| data.join(f.as_str().unwrap()).display().to_string())
        .collect();
    let mut import = vec!["import", "--association", "sos-test"];
    import.extend(files.iter().map(String::as_str));
    carrel(&state, &import);

    let (_, auditor) = token(&state, "auditor");
    let (researcher_id, researcher) = token(&state, "researcher");
    let (_, other_researcher) = token(&state, "researcher");
    carrel(
        &state,
        &["study", "submit", "ili-weekly", "--by", &researcher_id],
    );
    carrel(
        &state,
        &["study", "approve", "ili-weekly", "--token", &auditor],
    );
    let mut run_stderr = String::new();
    let mut study_run = |params: &[&str]| {
        let mut args = vec![
            "study",
            "run",
            "ili-weekly",
            "--json",
            "--by",
            &researcher_id,
        ];
        for p in params {
            args.extend(["--param", p]);
        }
        let out = carrel(&state, &args);
        run_stderr.push_str(&String::from_utf8_lossy(&out.stderr));
        let record: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(record["status"], "succeeded", "{record}");
        record["run_id"].as_str().unwrap().to_owned()
    };
    let regional = study_run(&["from=2024-10-01", "to=2025-03-31"]);
    let national = study_run(&["by=national"]);
    let carrel = Carrel::start(
        &repo().join("spin.toml"),
        &["--state-dir", state.to_str().unwrap()],
        &[],
    );
    Fixture {
        _dir: dir,
        state,
        researcher_id,
        researcher,
        other_researcher,
        auditor,
        regional,
        national,
        run_stderr,
        carrel,
    }
}

/// GET with a bearer token or a cookie: (status, body bytes, location).
fn get(
    f: &Fixture,
    path: &str,
    bearer: Option<&str>,
    cookie: Option<&str>,
) -> (u16, Vec<u8>, String) {
    let mut request =
        support::no_redirects(std::time::Duration::from_secs(120)).get(f.carrel.url(path));
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    let r = request.send().unwrap();
    let location = r
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (r.status().as_u16(), r.bytes().unwrap().to_vec(), location)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The released table of a run, from the API.
fn released(f: &Fixture, run_id: &str) -> RecordBatch {
    let (status, body, _) = get(
        f,
        &format!("/api/runs/{run_id}/result.arrow"),
        Some(&f.researcher),
        None,
    );
    assert_eq!(status, 200);
    let mut batches = carrel_pseudonym::from_ipc(&body).unwrap();
    assert_eq!(batches.len(), 1);
    batches.remove(0)
}

fn kind(table: &RecordBatch, column: usize) -> Option<&str> {
    table
        .schema_ref()
        .field(column)
        .metadata()
        .get("carrel.kind")
        .map(String::as_str)
}

fn strings<'a>(table: &'a RecordBatch, name: &str) -> &'a StringArray {
    table
        .column_by_name(name)
        .unwrap()
        .as_any()
        .downcast_ref()
        .unwrap()
}

fn counts<'a>(table: &'a RecordBatch, name: &str) -> &'a UInt64Array {
    table
        .column_by_name(name)
        .unwrap()
        .as_any()
        .downcast_ref()
        .unwrap()
}

/// Cells of the first `rows` rows the page must mark: (redacted, undefined shares). A
/// null count is redacted; a null share is redacted with its numerator or denominator,
/// and undefined (denominator 0) otherwise.
fn expected_marks(table: &RecordBatch, rows: usize) -> (usize, usize) {
    let (mut redacted, mut undefined) = (0, 0);
    for column in 0..table.num_columns() {
        let values = table.column(column);
        for row in 0..rows.min(table.num_rows()) {
            if values.is_valid(row) {
                continue;
            }
            match kind(table, column) {
                Some("count") => redacted += 1,
                Some("share") => {
                    let meta = table.schema_ref().field(column).metadata();
                    let n = counts(table, &meta["carrel.numerator"]);
                    let d = counts(table, &meta["carrel.denominator"]);
                    if n.is_null(row) || d.is_null(row) {
                        redacted += 1;
                    } else {
                        undefined += 1;
                    }
                }
                _ => {}
            }
        }
    }
    (redacted, undefined)
}

fn distinct(values: &StringArray) -> usize {
    values.iter().collect::<BTreeSet<_>>().len()
}

/// Per week from the first to the last of a national table: whether `numerator` over
/// `coded` is known (both released, `coded` above 0).
fn known_weeks(table: &RecordBatch, numerator: &str) -> Vec<bool> {
    let weeks = strings(table, "week");
    let monday = |label: &str| {
        let (year, week) = label.split_once("-W").unwrap();
        time::Date::from_iso_week_date(
            year.parse().unwrap(),
            week.parse().unwrap(),
            time::Weekday::Monday,
        )
        .unwrap()
    };
    let first = monday(weeks.value(0));
    let last = monday(weeks.value(weeks.len() - 1));
    let mut known = vec![false; ((last - first).whole_days() / 7 + 1) as usize];
    let (n, d) = (counts(table, numerator), counts(table, "coded"));
    for row in 0..table.num_rows() {
        let at = ((monday(weeks.value(row)) - first).whole_days() / 7) as usize;
        known[at] = n.is_valid(row) && d.is_valid(row) && d.value(row) > 0;
    }
    known
}

#[test]
fn a_researcher_sees_and_downloads_only_their_own_runs_with_a_token_or_the_login_cookie() {
    let f = fixture();
    // Not on a terminal, `study run` reports its reading in plain lines.
    assert!(
        f.run_stderr.contains("reading segments: 100%") && f.run_stderr.contains("rows/s"),
        "{}",
        f.run_stderr
    );

    let (status, _, location) = get(&f, "/results", None, None);
    assert_eq!((status, location.as_str()), (303, "/results/login"));
    let (status, body, _) = get(&f, "/results", Some(&f.auditor), None);
    assert_eq!(status, 403, "{}", text(&body));
    let (status, body, _) = get(&f, "/results", Some(&f.researcher), None);
    let list = text(&body);
    assert_eq!(status, 200, "{list}");
    for id in [&f.regional, &f.national] {
        assert!(list.contains(&format!("href=\"/results/{id}\"")), "{list}");
    }
    assert!(list.contains(&format!("token:{}", f.researcher_id)));

    // Another researcher, who does not own the study, sees neither the runs nor their
    // files, by any route.
    let (status, body, _) = get(&f, "/results", Some(&f.other_researcher), None);
    assert_eq!(status, 200);
    assert!(text(&body).contains("id=\"no-runs\""), "{}", text(&body));
    for path in [
        format!("/results/{}", f.national),
        format!("/results/{}/result.csv", f.national),
        format!("/results/{}/result.arrow", f.national),
        format!("/api/runs/{}", f.national),
        format!("/api/runs/{}/result.csv", f.national),
        format!("/api/runs/{}/result.arrow", f.national),
        "/api/studies/ili-weekly/runs".to_owned(),
    ] {
        let (status, _, _) = get(&f, &path, Some(&f.other_researcher), None);
        assert_eq!(status, 404, "{path}");
    }

    let (status, body, _) = get(
        &f,
        &format!("/results/{}", f.national),
        Some(&f.researcher),
        None,
    );
    let page = text(&body);
    assert_eq!(status, 200, "{page}");
    let record: serde_json::Value = serde_json::from_slice(
        &get(
            &f,
            &format!("/api/runs/{}", f.national),
            Some(&f.researcher),
            None,
        )
        .1,
    )
    .unwrap();
    for key in ["wasm_sha256", "manifest_sha256", "output_sha256"] {
        let hash = record[key].as_str().unwrap();
        assert_eq!(hash.len(), 64);
        assert!(page.contains(hash), "{key} missing");
    }
    assert!(page.contains("<code>by=national</code>"), "{page}");
    assert!(!page.contains("<script"), "the page needs no script");

    // The login form sets a cookie for /results only; it opens the pages and downloads.
    let refused = support::no_redirects(std::time::Duration::from_secs(120))
        .post(f.carrel.url("/results/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={}", f.auditor))
        .send()
        .unwrap();
    assert_eq!(refused.status().as_u16(), 403);
    assert!(refused.headers().get("set-cookie").is_none());
    let accepted = support::no_redirects(std::time::Duration::from_secs(120))
        .post(f.carrel.url("/results/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={}", f.researcher))
        .send()
        .unwrap();
    assert_eq!(accepted.status().as_u16(), 303);
    let set_cookie = accepted.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    for attribute in [
        "carrel_results=",
        "HttpOnly",
        "SameSite=Strict",
        "Path=/results",
    ] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    let cookie = set_cookie.split(';').next().unwrap();
    for file in ["result.csv", "result.arrow"] {
        let (status, by_cookie, _) = get(
            &f,
            &format!("/results/{}/{file}", f.regional),
            None,
            Some(cookie),
        );
        assert_eq!(status, 200, "{file}");
        let (status, by_api, _) = get(
            &f,
            &format!("/api/runs/{}/{file}", f.regional),
            Some(&f.researcher),
            None,
        );
        assert_eq!(status, 200);
        assert_eq!(
            by_cookie, by_api,
            "{file}: the page and the API serve the same file"
        );
    }
    // The results cookie is not an auditor's login.
    let (status, _, location) = get(&f, "/audit", None, Some(cookie));
    assert_eq!((status, location.as_str()), (303, "/audit/login"));
    let logins = run(&f.state, &["audit", "log", "--action", "auth.login"]);
    assert!(logins.contains("route:/results/login"), "{logins}");
    drop(f.carrel);

    // `keys rotate --data` reports its progress in plain lines too.
    let out = carrel_command()
        .args(["keys", "rotate", "--data", "--state-dir"])
        .arg(&f.state)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("re-encrypting segments: 100%") && stderr.contains("MB/s"),
        "{stderr}"
    );
}

#[test]
fn the_results_page_draws_a_line_per_series_with_gaps_and_marks_every_redacted_cell_in_a_browser() {
    if webdriver::skipped_without_browser() {
        return;
    }
    let f = fixture();
    let regional = released(&f, &f.regional);
    let national = released(&f, &f.national);
    let b = Browser::start();

    b.goto(&f.carrel.url("/results"));
    b.wait_for_url(|u| u.ends_with("/results/login"));
    b.send_keys(&b.find("#token"), &f.researcher);
    b.click(&b.find("#login-submit"));
    b.wait_for_url(|u| u.ends_with("/results"));
    assert_eq!(b.find_all("#runs tr.run").len(), 2);
    b.click(&b.find(&format!("a.run-link[href=\"/results/{}\"]", f.regional)));
    b.wait_for_url(|u| u.ends_with(&f.regional));

    // One chart per share and dimension, one path per value of the dimension.
    let shares = ["ili_share", "gastro_share", "bronchiolitis_share"];
    for share in shares {
        for dimension in ["region", "age_class"] {
            let chart = format!("svg#curve-{dimension}-{share}");
            let paths = b.find_all(&format!("{chart} path.series"));
            assert_eq!(
                paths.len(),
                distinct(strings(&regional, dimension)),
                "{chart}"
            );
            let title = b.text(&b.find(&format!("{chart} text.chart-title")));
            assert!(
                title.contains(share) && title.ends_with(dimension),
                "{title}"
            );
        }
    }
    assert_eq!(b.find_all("svg.curves").len(), 6);
    let (redacted, undefined) = expected_marks(&regional, 250);
    assert!(redacted > 0, "the fixture should redact something");
    assert_eq!(b.find_all("#result-table td.redacted").len(), redacted);
    assert_eq!(b.find_all("#result-table td.na").len(), undefined);
    assert_eq!(
        b.find_all("#result-table tbody tr").len(),
        regional.num_rows().min(250)
    );
    let legend = b.text(&b.find("#legend"));
    assert!(legend.contains("under the threshold of 8"), "{legend}");
    assert!(legend.contains("nearest multiple of 5"), "{legend}");

    // National: one line per indicator; a redacted week is a gap, never a zero.
    b.click(&b.find("header a[href=\"/results\"]"));
    b.wait_for_url(|u| u.ends_with("/results"));
    b.click(&b.find(&format!("a.run-link[href=\"/results/{}\"]", f.national)));
    b.wait_for_url(|u| u.ends_with(&f.national));
    for (share, numerator) in shares.iter().zip(["ili", "gastro", "bronchiolitis"]) {
        let paths = b.find_all(&format!("svg#curve-all-{share} path.series"));
        assert_eq!(paths.len(), 1, "{share}");
        let d = b.attribute(&paths[0], "d").unwrap_or_default();
        let known = known_weeks(&national, numerator);
        let runs = known
            .iter()
            .enumerate()
            .filter(|(i, k)| **k && (*i == 0 || !known[i - 1]))
            .count();
        assert_eq!(
            d.matches('M').count(),
            runs,
            "{share}: one subpath per run of known weeks"
        );
        assert_eq!(
            d.matches(['M', 'L']).count(),
            known.iter().filter(|k| **k).count(),
            "{share}: one point per known week"
        );
    }
    assert!(
        known_weeks(&national, "ili").contains(&false),
        "the fixture should have gaps"
    );
    let (redacted, _) = expected_marks(&national, 250);
    assert_eq!(b.find_all("#result-table td.redacted").len(), redacted);
    let shot = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots/results.png");
    let shot = b.screenshot(&shot);
    assert!(std::fs::metadata(&shot).unwrap().len() > 1000);

    b.click(&b.find("#logout"));
    b.wait_for_url(|u| u.ends_with("/results/login"));
    b.goto(&f.carrel.url("/results"));
    b.wait_for_url(|u| u.ends_with("/results/login"));
}
