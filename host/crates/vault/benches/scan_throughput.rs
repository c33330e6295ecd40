//! Vault throughput: scan (decrypt + decode) of a consultation dataset next to reading
//! the same Arrow IPC unencrypted, append throughput with 10k-row batches, and the peak
//! memory of a full scan.
//!
//! ```text
//! cargo bench -p carrel-vault --bench scan_throughput -- --rows 10000000
//! CARREL_BENCH_ROWS=200000 cargo bench -p carrel-vault --bench scan_throughput
//! ```
//!
//! Options (or environment variables): `--rows` (`CARREL_BENCH_ROWS`, default 10M),
//! `--segment-rows` (`CARREL_BENCH_SEGMENT_ROWS`, default 100k), `--append-rows`
//! (`CARREL_BENCH_APPEND_ROWS`, default 1M), `--dir` (`CARREL_BENCH_DIR`, default a
//! temporary directory). Files are read from the page cache (they were just written), so
//! the figures measure CPU cost, not the disk.

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use arrow_buffer::Buffer;
use arrow_ipc::reader::StreamDecoder;
use arrow_ipc::writer::StreamWriter;
use carrel_vault::consultation::{consultation_column_groups, consultation_schema};
use carrel_vault::{MasterKeyEnv, Vault};
use common::consultation_batch;

const DATASET: &str = "consultations";
const ACTOR: &str = "bench";

fn option(name: &str, env: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
        .or_else(|| std::env::var(env).ok())
        .map(|v| {
            v.replace('_', "")
                .parse()
                .unwrap_or_else(|_| panic!("{name} takes a number"))
        })
        .unwrap_or(default)
}

/// Peak resident memory (`VmHWM`) in KiB; reset with [`reset_peak_memory`].
fn peak_memory_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn resident_memory_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Set in a child process that only opens the vault and scans it, so its peak memory
/// is the scan's and not the loading's (the allocator keeps freed memory resident).
const MEMORY_CHILD_ENV: &str = "CARREL_BENCH_MEMORY_CHILD";

fn measure_scan_memory(root: &Path, key_text: &str, largest_segment: u64) {
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .env(MEMORY_CHILD_ENV, root)
        .env(carrel_vault::MASTER_KEY_ENV, key_text)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "memory child failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let figures = String::from_utf8(output.stdout).unwrap();
    let mut numbers = figures
        .split_whitespace()
        .map(|n| n.parse::<f64>().unwrap() / 1024.0);
    let (before, peak) = (numbers.next().unwrap(), numbers.next().unwrap());
    println!(
        "\npeak memory of a full scan (separate process): VmHWM {peak:.1} MB, {before:.1} MB resident after open, \
         so the scan adds {:.1} MB; largest segment {:.1} MB",
        peak - before,
        largest_segment as f64 / 1e6
    );
}

/// The memory child: prints VmRSS after open and VmHWM after a full scan, in KiB.
fn memory_child(root: &Path) {
    let vault = Vault::open(&root.join("state"), &MasterKeyEnv::from_process()).unwrap();
    let schema = consultation_schema();
    let columns: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let before = resident_memory_kib().unwrap();
    let rows: u64 = vault
        .scan(DATASET, &columns)
        .unwrap()
        .map(|b| b.unwrap().num_rows() as u64)
        .sum();
    assert!(rows > 0);
    println!("{before} {}", peak_memory_kib().unwrap());
}

/// The plaintext layout the vault encrypts: one IPC stream per column group.
fn group_payloads(batch: &RecordBatch) -> Vec<(String, Vec<u8>)> {
    let groups = consultation_column_groups();
    groups
        .groups()
        .into_iter()
        .map(|group| {
            let indices: Vec<usize> = batch
                .schema()
                .fields()
                .iter()
                .enumerate()
                .filter(|(_, f)| groups.group_of(f.name()) == Some(group))
                .map(|(i, _)| i)
                .collect();
            let projected = batch.project(&indices).unwrap();
            let mut writer = StreamWriter::try_new(Vec::new(), &projected.schema()).unwrap();
            writer.write(&projected).unwrap();
            writer.finish().unwrap();
            (group.to_owned(), writer.into_inner().unwrap())
        })
        .collect()
}

fn decode(plaintext: Buffer) -> RecordBatch {
    let mut buffer = plaintext;
    let mut decoder = StreamDecoder::new();
    let mut batch = None;
    while !buffer.is_empty() {
        if let Some(decoded) = decoder.decode(&mut buffer).unwrap() {
            batch = Some(decoded);
        }
    }
    decoder.finish().unwrap();
    batch.unwrap()
}

struct Pass {
    rows: u64,
    plaintext_bytes: u64,
    elapsed: Duration,
    /// CPU time of the process: unlike wall time, barely affected by other processes
    /// competing for the machine's cores, but it counts decryption spread over several
    /// cores at its full cost.
    cpu: Duration,
}

/// CPU time of the whole process (all threads, including finished ones), user + system.
fn process_cpu_time() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given; RUSAGE_SELF is always valid.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init()
    };
    let micros = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    Duration::from_micros(micros(usage.ru_utime) + micros(usage.ru_stime))
}

impl Pass {
    /// Prints wall-clock and CPU-time rates; returns rows per wall second and per CPU second.
    fn report(&self, label: &str) -> (f64, f64) {
        let (wall, cpu) = (self.elapsed.as_secs_f64(), self.cpu.as_secs_f64());
        let megabytes = self.plaintext_bytes as f64 / 1e6;
        println!(
            "{label:<34} wall {wall:>7.3} s {:>8.1} MB/s {:>11.0} rows/s | cpu {cpu:>7.3} s {:>8.1} MB/s {:>11.0} rows/s",
            megabytes / wall,
            self.rows as f64 / wall,
            megabytes / cpu,
            self.rows as f64 / cpu,
        );
        (self.rows as f64 / wall, self.rows as f64 / cpu)
    }
}

/// Reads the unencrypted group files of every segment and rebuilds full batches, as a
/// scan does, without decryption. Each group's buffer is reused from one segment to the
/// next once the segment's batch is dropped, as the vault's scan reuses its own: both
/// read into pages already mapped.
fn plain_scan(plain_dir: &Path, segments: u64, groups: &[String]) -> Pass {
    use std::io::Read;
    let schema = std::sync::Arc::new(consultation_schema());
    let (started, cpu_started) = (Instant::now(), process_cpu_time());
    let (mut rows, mut bytes) = (0, 0);
    let mut buffers: Vec<Vec<u8>> = groups.iter().map(|_| Vec::new()).collect();
    for segment in 0..segments {
        let mut parts = Vec::new();
        let mut wholes = Vec::new();
        for (group, buffer) in groups.iter().zip(&mut buffers) {
            let mut plaintext = std::mem::take(buffer);
            plaintext.clear();
            std::fs::File::open(plain_dir.join(format!("{segment:06}-{group}.arrow")))
                .and_then(|mut file| file.read_to_end(&mut plaintext))
                .unwrap();
            bytes += plaintext.len() as u64;
            let whole = Buffer::from_vec(plaintext);
            parts.push(decode(whole.clone()));
            wholes.push(whole);
        }
        let columns = schema
            .fields()
            .iter()
            .map(|field| {
                parts
                    .iter()
                    .find_map(|p| p.column_by_name(field.name()))
                    .unwrap()
                    .clone()
            })
            .collect();
        let batch = RecordBatch::try_new(schema.clone(), columns).unwrap();
        rows += batch.num_rows() as u64;
        drop((batch, parts));
        for (whole, buffer) in wholes.into_iter().zip(&mut buffers) {
            *buffer = whole
                .into_vec()
                .expect("no array points into the buffer any more");
        }
    }
    Pass {
        rows,
        plaintext_bytes: bytes,
        elapsed: started.elapsed(),
        cpu: process_cpu_time() - cpu_started,
    }
}

fn vault_scan(vault: &Vault, columns: &[&str]) -> Pass {
    let (started, cpu_started) = (Instant::now(), process_cpu_time());
    let mut scan = vault.scan(DATASET, columns).unwrap();
    let rows: u64 = scan
        .by_ref()
        .map(|batch| batch.unwrap().num_rows() as u64)
        .sum();
    Pass {
        rows,
        plaintext_bytes: scan.stats().bytes_decrypted,
        elapsed: started.elapsed(),
        cpu: process_cpu_time() - cpu_started,
    }
}

/// The fastest of `passes` by wall time and the cheapest by CPU time, as one pass.
fn best(passes: Vec<Pass>) -> Pass {
    let elapsed = passes.iter().map(|p| p.elapsed).min().unwrap();
    let cpu = passes.iter().map(|p| p.cpu).min().unwrap();
    Pass {
        rows: passes[0].rows,
        plaintext_bytes: passes[0].plaintext_bytes,
        elapsed,
        cpu,
    }
}

/// The machine's 1-, 5- and 15-minute load averages: other processes compete for the
/// cores, which shows in wall-clock figures.
fn load_average() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn main() {
    if let Ok(root) = std::env::var(MEMORY_CHILD_ENV) {
        memory_child(Path::new(&root));
        return;
    }
    let rows = option("--rows", "CARREL_BENCH_ROWS", 10_000_000);
    let segment_rows = option("--segment-rows", "CARREL_BENCH_SEGMENT_ROWS", 100_000);
    let append_rows = option("--append-rows", "CARREL_BENCH_APPEND_ROWS", 1_000_000);
    let temp = tempfile::tempdir().unwrap();
    let root = std::env::var("CARREL_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| temp.path().to_owned());
    let state_dir = root.join("state");
    let plain_dir = root.join("plain");
    std::fs::create_dir_all(&plain_dir).unwrap();
    // A key from the environment lets a profiler re-run the scan-only child on the same state.
    let key_text = std::env::var(carrel_vault::MASTER_KEY_ENV)
        .unwrap_or_else(|_| MasterKeyEnv::generate_value().to_string());
    let key = MasterKeyEnv::with_value(key_text.as_str());
    let vault = Vault::open(&state_dir, &key).unwrap();
    vault
        .create_dataset(
            DATASET,
            &consultation_schema(),
            &consultation_column_groups(),
            ACTOR,
        )
        .unwrap();
    let groups: Vec<String> = consultation_column_groups()
        .groups()
        .into_iter()
        .map(str::to_owned)
        .collect();

    println!(
        "carrel-vault scan benchmark: {rows} rows in segments of {segment_rows}, state in {}",
        root.display()
    );
    println!(
        "cores: {}, load average at start: {}",
        cores(),
        load_average()
    );
    let (mut generating, mut appending) = (Duration::ZERO, Duration::ZERO);
    let (mut segments, mut stored_bytes, mut largest_segment) = (0u64, 0u64, 0u64);
    let mut start = 0;
    while start < rows {
        let count = segment_rows.min(rows - start);
        let began = Instant::now();
        let batch = consultation_batch(start, count as usize);
        generating += began.elapsed();
        let began = Instant::now();
        let receipt = vault.append(DATASET, &batch, ACTOR).unwrap();
        appending += began.elapsed();
        stored_bytes += receipt.bytes;
        largest_segment = largest_segment.max(receipt.bytes);
        for (group, payload) in group_payloads(&batch) {
            std::fs::write(
                plain_dir.join(format!("{segments:06}-{group}.arrow")),
                payload,
            )
            .unwrap();
        }
        segments += 1;
        start += count;
    }
    println!(
        "loaded {segments} segments, {:.1} MB encrypted on disk, largest segment {:.1} MB; generating {:.1} s, appending {:.1} s ({:.0} rows/s with {segment_rows}-row batches)",
        stored_bytes as f64 / 1e6,
        largest_segment as f64 / 1e6,
        generating.as_secs_f64(),
        appending.as_secs_f64(),
        rows as f64 / appending.as_secs_f64()
    );

    const PASSES: usize = 5;
    println!("\nfull scan, all 11 columns (best of {PASSES} alternating passes, warm page cache):");
    let schema = consultation_schema();
    let all_columns: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let (mut plain_passes, mut vault_passes) = (Vec::new(), Vec::new());
    for _ in 0..PASSES {
        plain_passes.push(plain_scan(&plain_dir, segments, &groups));
        vault_passes.push(vault_scan(&vault, &all_columns));
    }
    let (plain, encrypted) = (best(plain_passes), best(vault_passes));
    assert_eq!((plain.rows, encrypted.rows), (rows, rows));
    let (plain_wall, plain_cpu) = plain.report("unencrypted Arrow IPC read+decode");
    let (vault_wall, vault_cpu) = encrypted.report("vault scan (decrypt+decode)");
    println!(
        "ratio vault / unencrypted: {:.2}x by wall time, {:.2}x by CPU time (target >= 0.9x)",
        vault_wall / plain_wall,
        vault_cpu / plain_cpu
    );

    println!("\nscan of 3 columns in one group (demographics):");
    vault_scan(&vault, &["age_years", "sex", "departement"]).report("vault scan, 1 of 4 groups");

    // The child needs the state directory lock.
    drop(vault);
    measure_scan_memory(&root, &key_text, largest_segment);
    let vault = Vault::open(&state_dir, &key).unwrap();

    let batches: Vec<RecordBatch> = (0..append_rows.div_ceil(10_000))
        .map(|i| consultation_batch(i * 10_000, 10_000))
        .collect();
    vault
        .create_dataset(
            "append_bench",
            &consultation_schema(),
            &consultation_column_groups(),
            ACTOR,
        )
        .unwrap();
    let began = Instant::now();
    for batch in &batches {
        vault.append("append_bench", batch, ACTOR).unwrap();
    }
    let elapsed = began.elapsed().as_secs_f64();
    println!(
        "\nappend, {} batches of 10000 rows (each durable: fsync file, directory, catalog): {:.0} rows/s, {:.1} ms per append",
        batches.len(),
        (batches.len() * 10_000) as f64 / elapsed,
        elapsed * 1000.0 / batches.len() as f64
    );
    println!("load average at end: {}", load_average());
}
