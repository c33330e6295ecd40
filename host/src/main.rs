use anyhow::Context;
use carrel_runtime::engine::EngineOptions;
use carrel_runtime::server::{ServerOptions, serve, shutdown_signal};
use carrel_warehouse::app::{App, AppOptions};
use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

// hyper, tokio and wasmtime allocate and free many small objects per request: glibc's
// malloc took ~7% of a WASIp3 hello request. With mimalloc (and one component lookup per
// request) the WASIp3 ratio to `wasmtime serve` went from ~0.91x to ~0.95x (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// carrel: a health data warehouse on a Spin-compatible WebAssembly host.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// A warehouse with two winters of synthetic data, approved studies and demo tokens,
    /// served: the first command to run.
    Demo(carrel::demo::DemoArgs),
    /// Serve a Spin application (`spin.toml`).
    Up(UpArgs),
    /// Run every component's build command, like `spin build`.
    Build(BuildArgs),
    /// Rebuild components when their `watch` files change and restart serving, like
    /// `spin watch`.
    Watch(carrel::watch::WatchArgs),
    /// Manage the master key and data keys of the state directory.
    Keys {
        #[command(flatten)]
        state: carrel_warehouse::state_dir::StateLocation,
        #[command(subcommand)]
        command: carrel_vault::cli::KeysCommand,
    },
    /// Create, list and revoke bearer tokens (ingestion clients, researchers, auditors).
    Tokens {
        #[command(flatten)]
        state: carrel_warehouse::state_dir::StateLocation,
        #[command(subcommand)]
        command: TokensCommand,
    },
    /// Send FHIR files (NDJSON or Bundles) through the ingestion path as one association.
    /// Starts the app in-process; stop `carrel up` on the same state directory first.
    Import(ImportArgs),
    /// Write synthetic out-of-hours consultations as FHIR, with their ground truth.
    Synth(SynthArgs),
    /// Submit, approve, revoke, run and try studies; download their released results.
    Study(carrel_warehouse::study::cli::StudyArgs),
    /// What each component may do and what its binary imports; the hash-chained audit
    /// log: verify, export, read, sign checkpoints.
    Audit(carrel_warehouse::audit_commands::AuditArgs),
    /// Patients' objections: register one and remove the patient's stored consultations.
    Patients(carrel_warehouse::patients::cli::PatientsArgs),
    /// The retention period: remove the consultations older than it.
    Retention(carrel_warehouse::patients::cli::RetentionArgs),
}

#[derive(Args)]
struct SynthArgs {
    /// Number of consultations (Encounters), faulty ones included.
    #[arg(long, default_value_t = 10_000)]
    consultations: u64,
    /// Seed: the same seed writes the same bytes.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long, value_enum, default_value = "ndjson")]
    format: SynthFormatArg,
    /// Fraction of records made invalid (written to separate faulty-*.ndjson files).
    #[arg(long, default_value_t = 0.0)]
    faults: f64,
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum SynthFormatArg {
    Ndjson,
    Bundle,
}

#[derive(Args)]
struct ImportArgs {
    #[command(flatten)]
    manifest: ManifestArg,
    /// State directory; default `.spin` next to the manifest.
    #[arg(long, env = carrel_warehouse::state_dir::ENV)]
    state_dir: Option<PathBuf>,
    /// The association the consultations come from (stamped on every row).
    #[arg(long)]
    association: String,
    /// Files, or directories whose .ndjson and .json files are sent in name order.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

#[derive(Subcommand)]
enum TokensCommand {
    /// Create a token; it is printed once and stored only as a hash.
    Add {
        /// The association an ingestion token speaks for (stamped on every row it sends).
        #[arg(long)]
        association: Option<String>,
        #[arg(long, value_enum)]
        role: carrel_warehouse::tokens::Role,
        /// The holder's name, shown with the token id in the audit log, run records and
        /// pages (`Dr Alice Martin (token:ab12cd34)`); without it, the role stands for it.
        #[arg(long)]
        name: Option<String>,
    },
    /// Revoke a token by its id.
    Revoke { id: String },
    /// List tokens (ids, roles, associations; never the tokens).
    List,
}

#[derive(Args)]
struct ManifestArg {
    /// The application manifest.
    #[arg(short = 'f', long = "from", default_value = "spin.toml")]
    from: PathBuf,
}

#[derive(Args)]
struct BuildArgs {
    #[command(flatten)]
    manifest: ManifestArg,
    /// Build only these components.
    #[arg(short = 'c', long = "component-id")]
    components: Vec<String>,
}

#[derive(Args)]
struct UpArgs {
    #[command(flatten)]
    manifest: ManifestArg,
    /// Address to listen on; port 0 picks a free port (the chosen address is printed).
    #[arg(long, default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// Spin runtime configuration (key-value stores).
    #[arg(long)]
    runtime_config_file: Option<PathBuf>,
    /// State directory (key-value data, caches); default `.spin` next to the manifest.
    #[arg(long, env = carrel_warehouse::state_dir::ENV)]
    state_dir: Option<PathBuf>,
    /// Directory of the components' stdout and stderr files (`<id>_stdout.txt`); default
    /// `logs` in the state directory; an empty value turns the files off.
    #[arg(short = 'L', long)]
    log_dir: Option<PathBuf>,
    /// Build the components before starting.
    #[arg(long)]
    build: bool,
    /// Initialise the state directory first (as `carrel keys init`) if it was never
    /// initialised, so a fresh machine can start the warehouse at once.
    #[arg(long)]
    init: bool,
    /// Seconds a component may take to answer one request.
    #[arg(long, default_value_t = 30.0)]
    request_timeout: f64,
    /// Largest linear memory of one instance, in MiB.
    #[arg(long, default_value_t = 256)]
    max_memory_mib: usize,
    /// MiB of each instance slot's memory kept resident between instances (faster for
    /// components that use much memory, e.g. bulk ingestion; costs resident memory).
    #[arg(long, default_value_t = carrel_runtime::engine::DEFAULT_KEEP_RESIDENT_MIB)]
    keep_resident_mib: usize,
    /// Largest request body accepted, in MiB (larger gets 413).
    #[arg(long, default_value_t = 32)]
    max_body_mib: usize,
    /// Requests handled at once; more wait in a bounded queue, then get 503.
    #[arg(long, default_value_t = 128)]
    max_concurrent_requests: usize,
    /// Requests allowed to wait for a slot before new ones get 503.
    #[arg(long, default_value_t = 1024)]
    max_queued_requests: usize,
    /// Seconds a client may take to send a request's headers, and again its body; a
    /// slower one (slowloris) gets 408 or is disconnected.
    #[arg(long, default_value_t = 30.0)]
    read_timeout: f64,
    /// Study runs the API runs at once, over all researchers; more wait in a bounded
    /// queue, then get 429 with Retry-After.
    #[arg(long, default_value_t = 4)]
    max_study_runs: usize,
    /// Study runs one researcher may have running at once (and, again, waiting).
    #[arg(long, default_value_t = 2)]
    max_study_runs_per_researcher: usize,
    /// Study runs that may wait for their turn, over all researchers.
    #[arg(long, default_value_t = 16)]
    max_queued_study_runs: usize,
    /// Seconds a study run waits for its turn before it gets 429.
    #[arg(long, default_value_t = 30.0)]
    study_run_queue_timeout: f64,
    /// Runs a researcher may have stored (any outcome) before new runs get 429.
    #[arg(long, default_value_t = 1000)]
    max_stored_runs_per_researcher: u64,
    /// Seconds a login to the auditor's or researcher's pages lasts.
    #[arg(long, default_value_t = 8.0 * 3600.0)]
    session_lifetime: f64,
}

fn main() -> anyhow::Result<ExitCode> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CARREL_LOG")
                .unwrap_or_else(|_| "carrel=info,warn".into()),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal: in files and the journal they are noise.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Build(_)) {
        // Whatever this command creates (catalog, journals, key-value stores, segments,
        // caches, locks) is readable by the operator only: the state directory holds keys
        // and health data. `carrel build` writes the user's build outputs and keeps theirs.
        // SAFETY: umask only changes the process's file-creation mask; it is called before
        // any thread is started.
        unsafe {
            libc::umask(0o077);
        }
    }
    match cli.command {
        Command::Build(args) => {
            let manifest = carrel::manifest::load(&args.manifest.from)?;
            carrel::build_command::build_all(&manifest, &args.components)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo(args) => carrel::demo::run(args),
        Command::Watch(args) => carrel::watch::run(args).map(|()| ExitCode::SUCCESS),
        Command::Up(args) => up(args).map(|()| ExitCode::SUCCESS),
        Command::Keys { state, command } => {
            let bar = carrel_warehouse::progress::SegmentBar::new("re-encrypting segments");
            let code = command.run_with_progress(
                &state.resolve(),
                &carrel_vault::MasterKeyEnv::from_process(),
                &mut std::io::stdout(),
                &mut |step| bar.update(step.segments_done, step.segments_total, step.bytes),
            );
            bar.finish();
            code
        }
        Command::Import(args) => import(args),
        Command::Synth(args) => synth(args),
        Command::Study(args) => carrel_warehouse::study::cli::run(args),
        Command::Tokens { state, command } => tokens(&state.resolve(), command),
        Command::Audit(args) => carrel_warehouse::audit_commands::run(args),
        Command::Patients(args) => {
            carrel_warehouse::patients::cli::patients(args).map(|()| ExitCode::SUCCESS)
        }
        Command::Retention(args) => {
            carrel_warehouse::patients::cli::retention(args).map(|()| ExitCode::SUCCESS)
        }
    }
}

fn tokens(state_dir: &std::path::Path, command: TokensCommand) -> anyhow::Result<ExitCode> {
    let store = carrel_warehouse::tokens::TokenStore::open(state_dir)?;
    match command {
        TokensCommand::Add {
            association,
            role,
            name,
        } => {
            let (id, token) = store.add(
                association.as_deref(),
                role,
                name.as_deref(),
                carrel_vault::cli::OPERATOR_ACTOR,
            )?;
            println!(
                "Token {id} ({}{}{}). It is shown only this once:",
                role.as_str(),
                association.map(|a| format!(" for {a}")).unwrap_or_default(),
                name.map(|n| format!(", held by {}", n.trim()))
                    .unwrap_or_default()
            );
            println!("{token}");
        }
        TokensCommand::Revoke { id } => {
            store.revoke(&id, carrel_vault::cli::OPERATOR_ACTOR)?;
            println!("Token {id} revoked.");
        }
        TokensCommand::List => {
            for t in store.list()? {
                let state = t
                    .revoked
                    .map(|r| format!("revoked {r}"))
                    .unwrap_or_else(|| "active".into());
                use carrel_warehouse::study::metadata::terminal_safe;
                println!(
                    "{}  {:<10} {:<20} created {}  {state}  {}",
                    t.id,
                    t.role.as_str(),
                    t.association.unwrap_or_else(|| "-".into()),
                    t.created,
                    terminal_safe(&t.name.unwrap_or_default())
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn synth(args: SynthArgs) -> anyhow::Result<ExitCode> {
    let options = carrel_synth::SynthOptions {
        consultations: args.consultations,
        seed: args.seed,
        format: match args.format {
            SynthFormatArg::Ndjson => carrel_synth::SynthFormat::Ndjson,
            SynthFormatArg::Bundle => carrel_synth::SynthFormat::Bundle,
        },
        faults: args.faults,
        ..Default::default()
    };
    let progress = carrel_warehouse::progress::Progress::new("synth", args.consultations);
    let mut done = 0;
    let started = std::time::Instant::now();
    let truth = carrel_synth::generate(&options, &args.out, &mut |n| {
        let rate = n as f64 / started.elapsed().as_secs_f64().max(1e-3);
        progress.advance(n - done, &format!("{n} consultations, {rate:.0}/s"));
        done = n;
    })?;
    progress.finish();
    println!(
        "Wrote {} valid and {} faulty consultations in {} files to {} ({:.1} s); ground truth in {}",
        truth.consultations,
        truth.faulty,
        truth.files.len() + truth.faulty_files.len(),
        args.out.display(),
        started.elapsed().as_secs_f64(),
        args.out.join(carrel_synth::GROUND_TRUTH_FILE).display()
    );
    Ok(ExitCode::SUCCESS)
}

fn import(args: ImportArgs) -> anyhow::Result<ExitCode> {
    let payloads = carrel::import::collect_payloads(&args.paths)?;
    let mut options = AppOptions::new(&args.manifest.from);
    options.state_dir = args.state_dir;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let started = std::time::Instant::now();
    let summary = runtime.block_on(carrel::import::import(
        &options,
        &args.association,
        &payloads,
    ))?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "Imported {} rows in {} requests in {seconds:.1} s ({:.0} rows/s); {} already imported, {} refused.",
        summary.rows,
        summary.files,
        summary.rows as f64 / seconds.max(1e-3),
        summary.replayed_files,
        summary.refused.len()
    );
    if summary.withheld > 0 {
        println!(
            "{} consultations withheld: their patients objected.",
            summary.withheld
        );
    }
    for (file, why) in &summary.refused {
        println!("refused {}: {why}", file.display());
    }
    Ok(if summary.refused.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn up(args: UpArgs) -> anyhow::Result<()> {
    if args.build {
        let manifest = carrel::manifest::load(&args.manifest.from)?;
        carrel::build_command::build_all(&manifest, &[])?;
    }
    if args.init {
        let manifest = carrel::manifest::load(&args.manifest.from)?;
        let state_dir = args
            .state_dir
            .clone()
            .unwrap_or_else(|| carrel_warehouse::state_dir::beside_loaded(&manifest));
        carrel::demo::init_keys(&state_dir)?;
    }
    anyhow::ensure!(
        args.request_timeout > 0.0,
        "--request-timeout must be positive"
    );
    for (name, value) in [
        ("--read-timeout", args.read_timeout),
        ("--study-run-queue-timeout", args.study_run_queue_timeout),
        ("--session-lifetime", args.session_lifetime),
    ] {
        anyhow::ensure!(
            value > 0.0 && value.is_finite(),
            "{name} must be a positive number of seconds"
        );
    }
    let slots = u32::try_from(args.max_concurrent_requests * 2)
        .context("--max-concurrent-requests is too large")?;
    let options = AppOptions {
        manifest: args.manifest.from.clone(),
        state_dir: args.state_dir,
        runtime_config: args.runtime_config_file,
        log_dir: carrel_runtime::component_logs::LogDir::from_flag(args.log_dir),
        deadline: Duration::from_secs_f64(args.request_timeout),
        engine: EngineOptions {
            // p3 instances may linger idle for reuse, so keep headroom beyond the requests.
            instance_slots: slots.max(16),
            max_memory_bytes: args.max_memory_mib << 20,
            keep_resident_bytes: args.keep_resident_mib << 20,
        },
    };
    let server = ServerOptions {
        max_body_bytes: args.max_body_mib << 20,
        max_concurrent_requests: args.max_concurrent_requests,
        max_queued_requests: args.max_queued_requests,
        read_timeout: Duration::from_secs_f64(args.read_timeout),
        ..ServerOptions::default()
    };
    let front = carrel_warehouse::app::FrontOptions {
        read_timeout: server.read_timeout,
        study_runs: carrel_warehouse::study::run_gate::RunLimits {
            total: args.max_study_runs,
            per_researcher: args.max_study_runs_per_researcher,
            queued: args.max_queued_study_runs,
            queue_wait: Duration::from_secs_f64(args.study_run_queue_timeout),
            stored_per_researcher: args.max_stored_runs_per_researcher,
        },
        session_lifetime: Duration::from_secs_f64(args.session_lifetime),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let app = App::load(&options)?.with_front_options(&front);
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let address = listener.local_addr()?;
        let shutdown = shutdown_signal()?;
        println!("Serving http://{address}");
        for route in app.runtime.router.routes() {
            println!(
                "  http://{address}{} -> {}",
                route.pattern.raw(),
                route.component
            );
        }
        use std::io::Write;
        std::io::stdout().flush()?;
        serve(
            std::sync::Arc::new(carrel::front::Host(app)),
            listener,
            server,
            shutdown,
        )
        .await
    })
}
