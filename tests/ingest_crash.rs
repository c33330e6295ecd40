//! Crashes: sustained ingestion from several clients while `carrel up` is killed with
//! SIGKILL at random points and restarted, many times. Afterwards every acknowledged batch
//! is stored exactly once, no batch is ever half-visible, the audit log verifies, and
//! key-value data written before a kill is still there.

mod support;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use support::batches::{Batch, stored_segments, synthetic_batches};
use support::desk::INGESTION;
use support::{Carrel, TestApp, carrel_command, carrel_ok as run, guests};

const KILLS: u64 = 12;
const CLIENTS: usize = 4;

/// A small deterministic generator for the kill points (xorshift64*).
struct Dice(u64);

impl Dice {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// What the clients learnt: receipts of acknowledged batches, and key-value writes
/// acknowledged by the probe.
#[derive(Default)]
struct Acknowledged {
    receipts: Mutex<BTreeMap<usize, serde_json::Value>>,
    kv_writes: AtomicU64,
    /// Requests cut by a kill (no answer).
    cut: AtomicU64,
    /// The batches of those requests.
    cut_batches: Mutex<BTreeSet<usize>>,
}

/// Posts batches from `queue` until it is empty (or, when `endless`, sending them all again
/// as replays) or the server dies; a batch whose request failed goes back on the queue,
/// to be sent again (with the same key) after the restart.
fn ingest_client(
    carrel: &Carrel,
    token: &str,
    batches: &[Batch],
    queue: &Mutex<VecDeque<usize>>,
    acked: &Acknowledged,
    endless: bool,
) {
    loop {
        let next = {
            let mut queue = queue.lock().unwrap();
            if queue.is_empty() && endless {
                queue.extend(0..batches.len());
            }
            queue.pop_front()
        };
        let Some(index) = next else {
            return;
        };
        let batch = &batches[index];
        let sent = carrel
            .client
            .post(carrel.url("/ingest/fhir"))
            .bearer_auth(token)
            .header("content-type", "application/fhir+ndjson")
            .header("idempotency-key", &batch.key)
            .body(batch.body.clone())
            .send();
        let answer = match sent {
            Ok(response) => {
                let status = response.status().as_u16();
                match response.text() {
                    Ok(text) => Some((status, text)),
                    Err(_) => None,
                }
            }
            Err(_) => None,
        };
        match answer {
            Some((200 | 201, text)) => {
                let receipt: serde_json::Value = serde_json::from_str(&text).unwrap();
                assert_eq!(receipt["rows_accepted"], batch.rows, "{}", batch.key);
                let mut receipts = acked.receipts.lock().unwrap();
                if let Some(first) = receipts.get(&index) {
                    assert_eq!(first["batch_id"], receipt["batch_id"], "{}", batch.key);
                }
                receipts.insert(index, receipt);
            }
            Some((503 | 429, _)) => {
                queue.lock().unwrap().push_back(index);
                std::thread::sleep(Duration::from_millis(100));
            }
            None => {
                acked.cut.fetch_add(1, Ordering::SeqCst);
                acked.cut_batches.lock().unwrap().insert(index);
                // The server is gone: stop until the next round sends it again.
                queue.lock().unwrap().push_back(index);
                return;
            }
            Some((status, text)) => panic!("{}: unexpected {status}: {text}", batch.key),
        }
    }
}

/// Writes key-value pairs through the spin7 probe, counting the acknowledged ones.
fn kv_client(carrel: &Carrel, acked: &Acknowledged, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        let n = acked.kv_writes.load(Ordering::SeqCst);
        let url = carrel.url(&format!("/p7/x?op=kv-set&store=default&key=k{n}"));
        match carrel.client.post(url).body(format!("v{n}")).send() {
            Ok(r) if r.status().as_u16() == 200 => {
                acked.kv_writes.fetch_add(1, Ordering::SeqCst);
            }
            _ => return,
        }
    }
}

fn manifest() -> String {
    format!(
        "spin_manifest_version = 2\n[application]\nname = \"crash\"\n{INGESTION}\n{}",
        r#"
[[trigger.http]]
route = "/p7/..."
component = "p7"

[component.p7]
source = "spin7_probe.wasm"
key_value_stores = ["default"]
"#
    )
}

#[test]
fn sigkill_during_sustained_ingestion_loses_and_duplicates_nothing() {
    let app = TestApp::new(
        &manifest(),
        &[
            ("ingest_fhir.wasm", guests::INGEST_FHIR),
            ("pseudonymise.wasm", guests::PSEUDONYMISE),
            ("spin7_probe.wasm", guests::SPIN7_PROBE),
        ],
    );
    let state = app.path().join("state");
    run(&state, &["keys", "init"]);
    let token = support::ingest_token(&state, "sos-crash");
    let batches = synthetic_batches(&app.path().join("synth"), 6000, 20, "crash");
    let batch_sizes: Vec<u64> = batches.iter().map(|b| b.rows).collect();
    let state_arg = state.to_str().unwrap().to_owned();

    let acked = Acknowledged::default();
    let queue = Mutex::new((0..batches.len()).collect::<VecDeque<_>>());
    let seed = std::env::var("CARREL_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_c4a5);
    let mut dice = Dice(seed);
    let mut kills = 0;
    let mut kv_before_last_kill = 0;
    // KILLS rounds end in a SIGKILL, the clients sending without pause (once every batch
    // is in, they send them all again, so kills also land on replays); the last round
    // sends every batch once more (replays must answer their first receipt) and runs to
    // the end.
    for round in 0..=KILLS {
        let kill = round < KILLS;
        if !kill {
            queue.lock().unwrap().extend(0..batches.len());
        }
        let carrel = Carrel::start(&app.manifest(), &["--state-dir", &state_arg], &[]);
        let pid = carrel.child.id().to_string();
        let stop = AtomicBool::new(false);
        std::thread::scope(|scope| {
            for _ in 0..CLIENTS {
                scope.spawn(|| ingest_client(&carrel, &token, &batches, &queue, &acked, kill));
            }
            scope.spawn(|| kv_client(&carrel, &acked, &stop));
            if kill {
                std::thread::sleep(Duration::from_millis(150 + dice.below(900)));
                let killed = std::process::Command::new("kill")
                    .args(["-KILL", &pid])
                    .status()
                    .unwrap();
                assert!(killed.success());
                kills += 1;
            } else {
                let started = std::time::Instant::now();
                while !queue.lock().unwrap().is_empty() {
                    assert!(started.elapsed() < Duration::from_secs(300), "stuck");
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
            stop.store(true, Ordering::Relaxed);
        });
        if kill {
            kv_before_last_kill = acked.kv_writes.load(Ordering::SeqCst);
        } else {
            // Key-value data acknowledged before the kills is still there.
            let written = kv_before_last_kill;
            assert!(written > 0);
            for n in [0, written / 2, written - 1] {
                let (status, value) =
                    carrel.get(&format!("/p7/x?op=kv-get&store=default&key=k{n}"));
                assert_eq!((status, value), (200, format!("v{n}")), "k{n} of {written}");
            }
        }
        drop(carrel);

        // Between restarts: the log verifies and every stored segment is one whole batch.
        let verify = carrel_command()
            .args(["audit", "verify", "--state-dir", &state_arg])
            .output()
            .unwrap();
        assert!(verify.status.success(), "after kill {kills}: {verify:?}");
        let segments = stored_segments(&state);
        for (id, rows) in &segments {
            assert!(batch_sizes.contains(rows), "segment {id}: {rows} rows");
        }
        let receipts = acked.receipts.lock().unwrap();
        for receipt in receipts.values() {
            let segment = receipt["segment"].as_str().unwrap();
            assert_eq!(
                segments.get(segment).copied(),
                receipt["rows_accepted"].as_u64(),
                "acknowledged segment {segment} after kill {kills}"
            );
        }
        // A segment nobody acknowledged comes from a request cut by a kill after its
        // commit; the batch's replay in a later round answers that segment's receipt.
        let cut_unacknowledged = acked
            .cut_batches
            .lock()
            .unwrap()
            .iter()
            .filter(|index| !receipts.contains_key(index))
            .count();
        assert!(
            segments.len() <= receipts.len() + cut_unacknowledged,
            "{} segments, {} acknowledged, {cut_unacknowledged} cut and not yet replayed",
            segments.len(),
            receipts.len()
        );
    }

    // Exactly once: one segment per batch, each the batch's rows.
    let receipts = acked.receipts.into_inner().unwrap();
    assert_eq!(receipts.len(), batches.len());
    let segments = stored_segments(&state);
    assert_eq!(segments.len(), batches.len(), "one segment per batch");
    let stored: u64 = segments.values().sum();
    assert_eq!(stored, batch_sizes.iter().sum::<u64>());
    let cut = acked.cut.load(Ordering::SeqCst);
    assert!(
        cut >= KILLS,
        "only {cut} requests were in flight at the kills"
    );
    eprintln!(
        "{kills} kills (seed {seed:#x}) cut {cut} requests in flight: {} batches, {stored} rows, \
         each stored once; {} key-value writes",
        batches.len(),
        acked.kv_writes.load(Ordering::SeqCst)
    );
}
