//! Hostile load on the study API, end to end: concurrent runs from one researcher and from
//! several against the caps (429 with `Retry-After` past them), the quota of stored runs,
//! parameters past their bound (nothing stored), and every list paged with a bounded page
//! size (the API's runs, the results page, the auditor's log and study page).

mod support;

use std::thread;
use std::time::{Duration, Instant};
use support::Carrel;
use support::desk::{Desk, desk, named_token, probe_section};

/// The probe owned by Dr Alice Martin, Dr Bob Durand and Dr Carol Petit, approved.
struct Load {
    d: Desk,
    researchers: Vec<(String, String)>,
}

fn load() -> Load {
    let d = desk(&probe_section("probe", ""), 300, None);
    let researchers: Vec<(String, String)> = ["Dr Alice Martin", "Dr Bob Durand", "Dr Carol Petit"]
        .iter()
        .map(|name| named_token(&d.state, "researcher", name))
        .collect();
    d.study_ok(&["submit", "probe", "--by", &researchers[0].0]);
    for (id, _) in &researchers[1..] {
        d.study_ok(&["owners", "add", "probe", id, "--by", &researchers[0].0]);
    }
    d.study_ok(&["approve", "probe", "--token", &d.auditor_token]);
    Load { d, researchers }
}

impl Load {
    fn serve(&self, extra: &[&str]) -> Carrel {
        let mut args = vec!["--state-dir", self.d.state.to_str().unwrap()];
        args.extend_from_slice(extra);
        Carrel::start(&self.d.app.manifest(), &args, &[])
    }
}

/// `POST /api/studies/probe/runs` with `body` as `token`: status, Retry-After, body.
fn post_run(carrel: &Carrel, token: &str, body: String) -> (u16, Option<String>, String) {
    let response = carrel
        .client
        .post(carrel.url("/api/studies/probe/runs"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .unwrap();
    let retry = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (response.status().as_u16(), retry, response.text().unwrap())
}

fn op(name: &str) -> String {
    format!("{{\"params\": {{\"op\": \"{name}\"}}}}")
}

/// Runs `op` once for each token at the same moment; the answers in the tokens' order.
fn at_once(carrel: &Carrel, tokens: &[&str], op_name: &str) -> Vec<(u16, Option<String>, String)> {
    thread::scope(|scope| {
        let handles: Vec<_> = tokens
            .iter()
            .map(|token| scope.spawn(move || post_run(carrel, token, op(op_name))))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

#[test]
fn study_runs_past_the_caps_wait_in_a_bounded_queue_then_get_429_with_retry_after() {
    let l = load();
    let carrel = l.serve(&[
        "--max-study-runs",
        "2",
        "--max-study-runs-per-researcher",
        "1",
        "--max-queued-study-runs",
        "4",
        "--study-run-queue-timeout",
        "30",
    ]);
    // `loop` runs until the study's 5 s deadline: each run holds its place that long.
    let alice = l.researchers[0].1.as_str();
    let answers = at_once(&carrel, &[alice; 4], "loop");
    let refused: Vec<_> = answers.iter().filter(|(s, _, _)| *s == 429).collect();
    // One runs, one waits (a researcher's share of the queue is their cap), two refused.
    assert_eq!(refused.len(), 2, "{answers:?}");
    for (_, retry, body) in &refused {
        assert!(retry.is_some(), "429 without Retry-After: {body}");
        assert!(body.contains("retry later"), "{body}");
    }
    assert!(
        answers
            .iter()
            .filter(|(s, _, _)| *s != 429)
            .all(|(s, _, body)| *s == 422 && body.contains("timed out")),
        "{answers:?}"
    );

    // Three researchers at once, two places: the third waits for a place, none refused.
    let tokens: Vec<&str> = l.researchers.iter().map(|(_, t)| t.as_str()).collect();
    let started = Instant::now();
    let answers = at_once(&carrel, &tokens, "loop");
    let took = started.elapsed();
    assert!(answers.iter().all(|(s, _, _)| *s == 422), "{answers:?}");
    assert!(
        took >= Duration::from_secs(9),
        "three 5 s runs on two places take two rounds, not {took:?}"
    );
}

#[test]
fn stored_runs_have_a_quota_parameters_a_bound_and_every_list_is_paged() {
    let l = load();
    let carrel = l.serve(&["--max-stored-runs-per-researcher", "5"]);
    let (alice_id, alice) = (&l.researchers[0].0, l.researchers[0].1.as_str());
    let bob = l.researchers[1].1.as_str();
    let stored = || -> usize {
        let out = support::carrel_ok(&l.d.state, &["audit", "runs"]);
        serde_json::from_str::<Vec<serde_json::Value>>(&out)
            .unwrap()
            .len()
    };

    // Parameters past their bound are refused before anything is kept.
    let huge = format!("{{\"params\": {{\"op\": \"{}\"}}}}", "x".repeat(6000));
    assert_eq!(post_run(&carrel, alice, huge).0, 413);
    let long = format!("{{\"params\": {{\"op\": \"{}\"}}}}", "x".repeat(4500));
    let (status, _, body) = post_run(&carrel, alice, long);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("4096 bytes"), "{body}");
    let (status, _, body) = post_run(&carrel, alice, op("\\u001b]0;pwned\\u0007"));
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("parameter `op`") && body.contains("control"),
        "{body}"
    );
    assert_eq!(stored(), 0);

    // An undeclared parameter is refused by the desk, and the refused run is stored.
    for _ in 0..5 {
        let (status, _, body) =
            post_run(&carrel, alice, "{\"params\": {\"nope\": \"1\"}}".to_owned());
        assert_eq!(status, 409, "{body}");
    }
    let (status, retry, body) = post_run(&carrel, alice, op("count"));
    assert_eq!(status, 429, "{body}");
    assert!(retry.is_some());
    assert!(
        body.contains(&format!("token {alice_id} has 5 stored runs")) && body.contains("quota"),
        "{body}"
    );
    assert_eq!(stored(), 5);
    // Another researcher's quota is their own.
    let (status, _, body) = post_run(&carrel, bob, op("count"));
    assert_eq!(status, 201, "{body}");

    // The API's list of runs, two at a time, by its Link header.
    let mut next = Some("/api/studies/probe/runs?limit=2".to_owned());
    let mut seen = Vec::new();
    while let Some(path) = next.take() {
        let response = carrel
            .client
            .get(carrel.url(&path))
            .bearer_auth(&l.d.auditor_token)
            .send()
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        next = response
            .headers()
            .get("link")
            .map(|v| v.to_str().unwrap().to_owned())
            .map(|link| {
                link.trim_start_matches('<')
                    .split('>')
                    .next()
                    .unwrap()
                    .to_owned()
            });
        let page: Vec<serde_json::Value> = serde_json::from_str(&response.text().unwrap()).unwrap();
        assert!(page.len() <= 2);
        seen.extend(
            page.into_iter()
                .map(|r| r["run_id"].as_str().unwrap().to_owned()),
        );
    }
    seen.dedup();
    assert_eq!(seen.len(), 6, "{seen:?}");
    let all = carrel
        .client
        .get(carrel.url("/api/studies/probe/runs?limit=1000000"))
        .bearer_auth(alice)
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(
        serde_json::from_str::<Vec<serde_json::Value>>(&all)
            .unwrap()
            .len(),
        6
    );

    // The results page, two runs a page.
    let page = carrel
        .client
        .get(carrel.url("/results?limit=2"))
        .bearer_auth(alice)
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(page.matches("<tr class=\"run\">").count(), 2, "{page}");
    assert!(page.contains("id=\"page-older\""), "{page}");

    // The auditor's log: 60 refusals of a researcher's token make it longer than a page.
    for _ in 0..60 {
        let refused = carrel
            .client
            .post(carrel.url("/api/studies/probe/approve"))
            .bearer_auth(alice)
            .send()
            .unwrap();
        assert_eq!(refused.status().as_u16(), 403);
    }
    let log = carrel
        .client
        .get(carrel.url("/audit/log"))
        .bearer_auth(&l.d.auditor_token)
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(log.matches("<tr class=\"entry\">").count(), 50, "{log}");
    let older = log
        .split("id=\"page-older\" href=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a link to older entries")
        .replace("&amp;", "&");
    let older_page = carrel
        .client
        .get(carrel.url(&older))
        .bearer_auth(&l.d.auditor_token)
        .send()
        .unwrap()
        .text()
        .unwrap();
    let first_seq = |page: &str| -> u64 {
        page.split("<td class=\"num seq\">")
            .nth(1)
            .and_then(|s| s.split('<').next())
            .unwrap()
            .parse()
            .unwrap()
    };
    let last_seq = |page: &str| -> u64 {
        page.split("<td class=\"num seq\">")
            .last()
            .and_then(|s| s.split('<').next())
            .unwrap()
            .parse()
            .unwrap()
    };
    assert_eq!(
        first_seq(&older_page),
        last_seq(&log) - 1,
        "pages follow each other"
    );
    assert!(older_page.contains("id=\"page-newer\""), "{older_page}");
}
