//! The native limit of ingestion for `host/benches/ingest.sh`: the same parse
//! (carrel-fhir) and pseudonymisation (carrel-pseudonym, with the host's HMAC keyed hash)
//! the components run in Wasm, compiled natively and called in-process on the given
//! NDJSON files, one thread per core. Prints consultations per second.

use carrel_warehouse::capabilities::keyed_hash::{KeyedHashGrants, PseudonymSecret};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

fn main() -> anyhow::Result<()> {
    let files: Vec<PathBuf> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .map(PathBuf::from)
        .collect();
    anyhow::ensure!(!files.is_empty(), "usage: ingest_native FILE.ndjson…");
    let state = tempfile::tempdir()?;
    let secret = PseudonymSecret::load_or_create(state.path())?;
    let grants = KeyedHashGrants::new(&secret, &["patient".into(), "consultation".into()]);
    let next = AtomicUsize::new(0);
    let rows = AtomicU64::new(0);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
        {
            scope.spawn(|| {
                let mut hasher = grants.clone();
                while let Some(file) = files.get(next.fetch_add(1, Ordering::SeqCst)) {
                    let body = std::fs::read(file).expect("read input");
                    let ingested = carrel_fhir::parse_ndjson(&body).expect("valid input");
                    let batch = carrel_pseudonym::pseudonymise(
                        "sos-bench",
                        &ingested.consultations,
                        &mut hasher,
                    )
                    .expect("pseudonymise");
                    let ipc = carrel_pseudonym::to_ipc(&batch).expect("ipc");
                    std::hint::black_box(ipc);
                    rows.fetch_add(batch.num_rows() as u64, Ordering::SeqCst);
                }
            });
        }
    });
    let seconds = started.elapsed().as_secs_f64();
    let n = rows.load(Ordering::SeqCst);
    println!("{n} {seconds:.3} {:.0}", n as f64 / seconds);
    Ok(())
}
