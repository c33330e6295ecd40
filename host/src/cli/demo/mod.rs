//! `carrel demo`: a warehouse with data in it, on a fresh machine, in one command.
//!
//! It initialises the state directory and its keys, generates synthetic consultations for
//! two winters, ingests them over HTTP through the real ingestion component, creates demo
//! tokens, submits and approves the shipped studies as the demo auditor, runs them, prints
//! the weekly influenza-like-illness table and keeps serving. Everything it makes is kept
//! (`<state>/demo/`), so running it again reuses it: no data is ingested twice.

mod models;
mod runs;

use crate::cli::import::send::Payload;
use anyhow::{Context, bail};
use carrel::manifest::LoadedManifest;
use carrel_runtime::server::{ServerOptions, serve, shutdown_signal};
use carrel_vault::{MasterKeyEnv, VaultError};
use carrel_warehouse::app::{App, AppOptions};
use carrel_warehouse::study::registry::ApprovalState;
use carrel_warehouse::study::{Caller, StudyService};
use carrel_warehouse::tokens::{Role, TokenStore};
use runs::{instant, run_or_reuse};
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;
use time::OffsetDateTime;

#[derive(clap::Args)]
pub struct DemoArgs {
    /// The application manifest.
    #[arg(short = 'f', long = "from", default_value = "spin.toml")]
    pub from: PathBuf,
    /// Synthetic consultations to generate and ingest (first run only).
    #[arg(long, default_value_t = 500_000)]
    pub consultations: u64,
    /// Address to listen on; port 0 picks a free port (the chosen address is printed).
    #[arg(long, default_value = "127.0.0.1:3000")]
    pub listen: SocketAddr,
    /// State directory; default `.spin` next to the manifest.
    #[arg(long, env = carrel_warehouse::state_dir::ENV)]
    pub state_dir: Option<PathBuf>,
    /// Seed of the synthetic data: the same seed gives the same consultations.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// The association the demo's consultations are ingested for.
pub const ASSOCIATION: &str = "demo-sos";
/// The demo's tokens, as printed (mode 0600, under `<state>/demo/`).
pub const CREDENTIALS_FILE: &str = "credentials.txt";
/// Written once the synthetic data is ingested: its [`Parts`].
const INGESTED_FILE: &str = "ingested.json";
const DATASET: &str = "consultations";
/// The shipped studies the demo approves, and the runs it makes of them.
const STUDIES: [&str; 3] = ["ili-weekly", "activity", models::MODEL_EVAL];
const MODEL_FIT: &str = models::MODEL_FIT;
/// By region and age class, two winters are more rows than the default `max_rows`, so
/// the regional run covers the second winter.
const RUNS: [(&str, &str); 3] = [
    ("ili-weekly", "by=national"),
    ("ili-weekly", "from=2024-10-01 to=2025-03-31"),
    ("activity", ""),
];
const ACTOR: &str = "demo";

/// In `<demo>/synth`, once the consultations are generated.
const PARTS_FILE: &str = "parts.json";

/// The generated consultations and their files (each a payload under the server's body
/// limit); also the marker of their ingestion.
#[derive(serde::Serialize, serde::Deserialize)]
struct Parts {
    consultations: u64,
    seed: u64,
    valid: u64,
    files: Vec<String>,
}

pub fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let manifest = carrel::manifest::load(&args.from)?;
    let state_dir = args
        .state_dir
        .clone()
        .unwrap_or_else(|| carrel_warehouse::state_dir::beside_loaded(&manifest));
    build_missing(&manifest)?;
    init_keys(&state_dir)?;
    let demo_dir = state_dir.join("demo");
    std::fs::create_dir_all(&demo_dir)
        .with_context(|| format!("cannot create {}", demo_dir.display()))?;
    let mut options = AppOptions::new(&args.from);
    options.state_dir = Some(state_dir);
    ingest(&args, &options, &demo_dir)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    // A runtime of its own, dropped before the demo loads the warehouse again to serve.
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(prepare_model(&options, &demo_dir))?;
    runtime.block_on(serve_demo(&args, &options, &demo_dir))?;
    Ok(ExitCode::SUCCESS)
}

/// Builds the components whose wasm is missing (a fresh checkout).
fn build_missing(manifest: &LoadedManifest) -> anyhow::Result<()> {
    let missing: Vec<String> = manifest
        .manifest
        .component
        .iter()
        .filter(|(id, c)| {
            c.build.is_some()
                && manifest
                    .component_source_path(id)
                    .is_ok_and(|path| !path.exists())
        })
        .map(|(id, _)| id.clone())
        .collect();
    if !missing.is_empty() {
        println!("Building {} (first run)…", missing.join(", "));
        crate::cli::build::build_all(manifest, &missing)?;
    }
    Ok(())
}

/// Creates the master key as `carrel keys init` does, unless the state has one.
pub fn init_keys(state_dir: &Path) -> anyhow::Result<()> {
    let env = MasterKeyEnv::from_process();
    match carrel_vault::init_master_key(state_dir, &env, carrel_vault::cli::OPERATOR_ACTOR) {
        Ok(report) => {
            println!(
                "Initialised the warehouse in {} (master key from {}).",
                state_dir.display(),
                report.source
            );
            Ok(())
        }
        Err(VaultError::MasterKeyExists { .. } | VaultError::AlreadyInitialised { .. }) => Ok(()),
        Err(e) => Err(e).context(format!("cannot initialise {}", state_dir.display())),
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Option<T> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// Generates the consultations into `<demo>/synth` unless they are there, and ingests them
/// unless that was done: the import is idempotent per file anyway (its idempotency key is
/// the file's sha256), so an interrupted ingestion resumes without duplicates.
fn ingest(args: &DemoArgs, options: &AppOptions, demo_dir: &Path) -> anyhow::Result<()> {
    let marker = demo_dir.join(INGESTED_FILE);
    if let Some(done) = read_json::<Parts>(&marker) {
        let other = (done.consultations, done.seed) != (args.consultations, args.seed);
        println!(
            "Reusing the demo data in the warehouse: {} consultations (seed {}){}.",
            done.valid,
            done.seed,
            if other {
                "; for another size or seed, use another --state-dir"
            } else {
                ""
            }
        );
        return Ok(());
    }
    let synth_dir = demo_dir.join("synth");
    let parts = match read_json::<Parts>(&synth_dir.join(PARTS_FILE)) {
        Some(p) if (p.consultations, p.seed) == (args.consultations, args.seed) => p,
        _ => synthesise(args, &synth_dir)?,
    };
    let payloads: Vec<Payload> = parts
        .files
        .iter()
        .map(|f| Payload {
            files: vec![synth_dir.join(f)],
        })
        .collect();
    println!("Ingesting them over HTTP through POST /ingest/fhir as association {ASSOCIATION}…");
    let started = Instant::now();
    // A runtime of its own, dropped on return: that ends the instances the import leaves
    // idle, which hold the warehouse and its lock, before the demo opens it to serve.
    let summary = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(crate::cli::import::send::import(
            options,
            ASSOCIATION,
            &payloads,
        ))?;
    if let Some((file, why)) = summary.refused.first() {
        bail!("the ingestion refused {}: {why}", file.display());
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "Ingested {} consultations in {seconds:.1} s ({:.0}/s); {} files were in already.",
        summary.rows,
        summary.rows as f64 / seconds.max(1e-3),
        summary.replayed_files
    );
    std::fs::write(&marker, serde_json::to_vec_pretty(&parts)?)
        .with_context(|| format!("cannot write {}", marker.display()))?;
    Ok(())
}

/// Generates the consultations into `dir`.
fn synthesise(args: &DemoArgs, dir: &Path) -> anyhow::Result<Parts> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("cannot clear {}", dir.display()))?;
    }
    println!(
        "Generating {} synthetic consultations over two winters (seed {})…",
        args.consultations, args.seed
    );
    let options = carrel_synth::SynthOptions {
        consultations: args.consultations,
        seed: args.seed,
        ..Default::default()
    };
    let progress = carrel_warehouse::progress::Progress::new("synth", args.consultations);
    let mut done = 0;
    let truth = carrel_synth::generate(&options, dir, &mut |n| {
        progress.advance(n - done, &format!("{n} consultations"));
        done = n;
    })?;
    progress.finish();
    let parts = Parts {
        consultations: args.consultations,
        seed: args.seed,
        valid: truth.consultations,
        files: truth.files,
    };
    std::fs::write(dir.join(PARTS_FILE), serde_json::to_vec_pretty(&parts)?)?;
    Ok(parts)
}

/// The demo's tokens: (role, id, token).
struct Credentials(Vec<(Role, String, String)>);

impl Credentials {
    fn get(&self, role: Role) -> (&str, &str) {
        let (_, id, token) = self.0.iter().find(|c| c.0 == role).expect("every role");
        (id, token)
    }
}

/// The tokens stored by a previous run if they are still valid, else new ones.
fn credentials(tokens: &TokenStore, path: &Path) -> anyhow::Result<Credentials> {
    let stored = std::fs::read_to_string(path).unwrap_or_default();
    let mut found = Vec::new();
    let mut changed = false;
    for role in [Role::Ingest, Role::Researcher, Role::Auditor] {
        let valid = stored
            .lines()
            .filter_map(|line| {
                let mut words = line.split_whitespace();
                (words.next()? == role.as_str()).then_some(())?;
                Some((words.next()?.to_owned(), words.next()?.to_owned()))
            })
            .find(|(id, token)| {
                matches!(tokens.authenticate(token), Ok(Ok(p)) if &p.token_id == id && p.role == role)
            });
        let (id, token) = match valid {
            Some(pair) => pair,
            None => {
                changed = true;
                let association = (role == Role::Ingest).then_some(ASSOCIATION);
                let name = format!("Demo {}", role.as_str());
                tokens.add(association, role, Some(&name), ACTOR)?
            }
        };
        found.push((role, id, token));
    }
    if changed {
        let mut text = String::from(
            "# carrel demo credentials: for this demo warehouse only, never for real data.\n# role id token\n",
        );
        for (role, id, token) in &found {
            text.push_str(&format!("{} {id} {token}\n", role.as_str()));
        }
        write_private(path, &text)?;
    }
    Ok(Credentials(found))
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    let mut open = std::fs::OpenOptions::new();
    open.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        open.mode(0o600);
        if path.exists() {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        }
    }
    open.open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Submits (as the demo researcher) and approves (as the demo auditor) each shipped study
/// unless its current binary and manifest section are approved already.
async fn approve(
    desk: &StudyService,
    ids: &[&str],
    researcher: &Caller,
    auditor: &Caller,
) -> anyhow::Result<()> {
    for &id in ids {
        let wasm = desk.current_wasm_sha256(id)?;
        let manifest = desk.spec(id)?.manifest_sha256.clone();
        let latest = desk.registry.latest(id)?;
        let same = latest
            .as_ref()
            .is_some_and(|s| s.wasm_sha256 == wasm && s.manifest_sha256 == manifest);
        let done = match latest.map(|s| s.state()) {
            Some(ApprovalState::Approved) if same => "approved already",
            Some(ApprovalState::Submitted) if same => "approved by the demo auditor",
            _ => "submitted by the demo researcher, approved by the demo auditor",
        };
        if !done.ends_with("already") {
            if done.starts_with("submitted") {
                desk.submit(id, researcher).await?;
            }
            desk.approve(id, auditor)?;
        }
        println!("Study {id}: {done} (wasm sha256 {}…).", &wasm[..12]);
    }
    Ok(())
}

/// Runs each demo run unless an identical one (same study, parameters, binary, manifest
/// and no data since) succeeded before; prints the national ILI table.
async fn run_studies(
    desk: &StudyService,
    researcher: &Caller,
    newest_data: Option<OffsetDateTime>,
) -> anyhow::Result<()> {
    for (id, param) in RUNS {
        let record = run_or_reuse(desk, researcher, id, param, newest_data).await?;
        if param == "by=national"
            && let Some(bytes) = desk.registry.result(&record.run_id)?
        {
            let (window, first, total) = around_peak(&bytes, 12)?;
            println!(
                "Weekly influenza-like illness, national: weeks {} to {} of {total}, around the peak (the whole table: /results):",
                first + 1,
                first + 12.min(total)
            );
            crate::cli::table_print::print_table(&window, 12)?;
        }
    }
    Ok(())
}

/// `rows` rows of the released ILI table around its largest `ili` count (a summer week's
/// count is small, hence redacted): the window as Arrow IPC, its first row, the row count.
fn around_peak(ipc: &[u8], rows: usize) -> anyhow::Result<(Vec<u8>, usize, usize)> {
    use arrow_array::{Array, UInt64Array};
    let batches = carrel_pseudonym::from_ipc(ipc)?;
    let schema = batches.first().context("an empty table")?.schema();
    let table = arrow_select::concat::concat_batches(&schema, &batches)?;
    let total = table.num_rows();
    let peak = table
        .column_by_name("ili")
        .and_then(|c| c.as_any().downcast_ref::<UInt64Array>())
        .and_then(|ili| {
            (0..ili.len())
                .filter(|&i| ili.is_valid(i))
                .max_by_key(|&i| ili.value(i))
        })
        .unwrap_or(0);
    let first = peak
        .saturating_sub(rows / 2)
        .min(total.saturating_sub(rows));
    let window = table.slice(first, rows.min(total - first));
    Ok((carrel_pseudonym::to_ipc(&window)?, first, total))
}

/// The demo's warehouse, loaded, with its tokens and callers.
struct Opened {
    app: App,
    desk: Arc<StudyService>,
    credentials: Credentials,
    credentials_path: PathBuf,
    researcher: Caller,
    auditor: Caller,
    rows: u64,
    newest_data: Option<OffsetDateTime>,
}

fn open(options: &AppOptions, demo_dir: &Path) -> anyhow::Result<Opened> {
    let app = App::load(options)?;
    let warehouse = app.warehouse.as_ref().context(
        "this app has no warehouse (no ingestion, no studies): use the shipped spin.toml",
    )?;
    let desk = app
        .studies
        .clone()
        .context("this manifest declares no studies: use the shipped spin.toml")?;
    let credentials_path = demo_dir.join(CREDENTIALS_FILE);
    let credentials = credentials(&warehouse.tokens, &credentials_path)?;
    let segments = warehouse.vault.segments(DATASET)?;
    let rows: u64 = segments.iter().map(|s| s.rows).sum();
    let newest_data = segments.iter().filter_map(|s| instant(&s.created)).max();
    let holder = |role: Role| -> anyhow::Result<Caller> {
        let principal = warehouse
            .tokens
            .authenticate(credentials.get(role).1)?
            .map_err(|_| anyhow::anyhow!("the demo's {} token is not valid", role.as_str()))?;
        Ok(Caller::Holder(principal))
    };
    let researcher = holder(Role::Researcher)?;
    let auditor = holder(Role::Auditor)?;
    Ok(Opened {
        desk,
        credentials,
        credentials_path,
        researcher,
        auditor,
        rows,
        newest_data,
        app,
    })
}

/// Fits the referral model on the first year and writes it where `referral-eval` reads
/// it, with a warehouse of its own: the evaluation's approval covers the model file's
/// sha-256, which the warehouse reads when it loads.
async fn prepare_model(options: &AppOptions, demo_dir: &Path) -> anyhow::Result<()> {
    let opened = open(options, demo_dir)?;
    approve(
        &opened.desk,
        &[MODEL_FIT],
        &opened.researcher,
        &opened.auditor,
    )
    .await?;
    let manifest_dir = opened
        .app
        .runtime
        .manifest_path
        .parent()
        .unwrap_or(Path::new("."))
        .to_path_buf();
    models::fit(
        &opened.desk,
        &manifest_dir,
        &opened.researcher,
        opened.newest_data,
    )
    .await
}

async fn serve_demo(args: &DemoArgs, options: &AppOptions, demo_dir: &Path) -> anyhow::Result<()> {
    let Opened {
        app,
        desk,
        credentials,
        credentials_path: path,
        researcher,
        auditor,
        rows,
        newest_data,
    } = open(options, demo_dir)?;
    approve(&desk, &STUDIES, &researcher, &auditor).await?;
    run_studies(&desk, &researcher, newest_data).await?;
    models::evaluate(&desk, &researcher, newest_data).await?;

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let base = format!("http://{}", listener.local_addr()?);
    println!(
        "\nDEMO CREDENTIALS (this demo warehouse only; kept in {}, mode 0600):",
        path.display()
    );
    for (role, label) in [
        (Role::Ingest, "ingest (demo-sos)"),
        (Role::Researcher, "researcher"),
        (Role::Auditor, "auditor"),
    ] {
        let (id, token) = credentials.get(role);
        println!("  {label:<20} id {id}  token {token}");
    }
    println!("\nThe warehouse, {rows} consultations:");
    for (path, what) in [
        ("/", "front page (no token)"),
        ("/results", "the researcher's results (researcher token)"),
        ("/audit", "the auditor's view (auditor token, /audit/login)"),
        ("/register", "public register of studies (no token)"),
        (
            "/api/studies",
            "the study API (researcher or auditor token)",
        ),
        ("/ingest/fhir", "POST FHIR consultations (ingest token)"),
    ] {
        println!("  {base}{path:<14} {what}");
    }
    println!(
        "For example:\n  curl -H \"Authorization: Bearer {}\" {base}/api/studies\nCtrl-C stops it; `carrel demo` again starts it with the same data.",
        credentials.get(Role::Researcher).1
    );
    let shutdown = shutdown_signal()?;
    println!("Serving {base}");
    std::io::stdout().flush()?;
    serve(
        std::sync::Arc::new(carrel::front::Host(app)),
        listener,
        ServerOptions::default(),
        shutdown,
    )
    .await?;
    Ok(())
}
