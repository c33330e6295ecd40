//! `carrel up`: serve a Spin application with the warehouse around it.

use super::ManifestArg;
use anyhow::Context;
use carrel_runtime::engine::EngineOptions;
use carrel_runtime::server::{ServerOptions, serve, shutdown_signal};
use carrel_warehouse::app::{App, AppOptions};
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub manifest: ManifestArg,
    /// Address to listen on; port 0 picks a free port (the chosen address is printed).
    #[arg(long, default_value = "127.0.0.1:3000")]
    pub listen: SocketAddr,
    /// Spin runtime configuration (key-value stores).
    #[arg(long)]
    pub runtime_config_file: Option<PathBuf>,
    /// State directory (key-value data, caches); default `.spin` next to the manifest.
    #[arg(long, env = carrel_warehouse::state_dir::ENV)]
    pub state_dir: Option<PathBuf>,
    /// Directory of the components' stdout and stderr files (`<id>_stdout.txt`); default
    /// `logs` in the state directory; an empty value turns the files off.
    #[arg(short = 'L', long)]
    pub log_dir: Option<PathBuf>,
    /// Build the components before starting.
    #[arg(long)]
    pub build: bool,
    /// Initialise the state directory first (as `carrel keys init`) if it was never
    /// initialised, so a fresh machine can start the warehouse at once.
    #[arg(long)]
    pub init: bool,
    /// Seconds a component may take to answer one request.
    #[arg(long, default_value_t = 30.0)]
    pub request_timeout: f64,
    /// Largest linear memory of one instance, in MiB.
    #[arg(long, default_value_t = 256)]
    pub max_memory_mib: usize,
    /// MiB of each instance slot's memory kept resident between instances (faster for
    /// components that use much memory, e.g. bulk ingestion; costs resident memory).
    #[arg(long, default_value_t = carrel_runtime::engine::DEFAULT_KEEP_RESIDENT_MIB)]
    pub keep_resident_mib: usize,
    /// Largest request body accepted, in MiB (larger gets 413).
    #[arg(long, default_value_t = 32)]
    pub max_body_mib: usize,
    /// Requests handled at once; more wait in a bounded queue, then get 503.
    #[arg(long, default_value_t = 128)]
    pub max_concurrent_requests: usize,
    /// Requests allowed to wait for a slot before new ones get 503.
    #[arg(long, default_value_t = 1024)]
    pub max_queued_requests: usize,
    /// Seconds a client may take to send a request's headers, and again its body; a
    /// slower one (slowloris) gets 408 or is disconnected.
    #[arg(long, default_value_t = 30.0)]
    pub read_timeout: f64,
    /// Study runs the API runs at once, over all researchers; more wait in a bounded
    /// queue, then get 429 with Retry-After.
    #[arg(long, default_value_t = 4)]
    pub max_study_runs: usize,
    /// Study runs one researcher may have running at once (and, again, waiting).
    #[arg(long, default_value_t = 2)]
    pub max_study_runs_per_researcher: usize,
    /// Study runs that may wait for their turn, over all researchers.
    #[arg(long, default_value_t = 16)]
    pub max_queued_study_runs: usize,
    /// Seconds a study run waits for its turn before it gets 429.
    #[arg(long, default_value_t = 30.0)]
    pub study_run_queue_timeout: f64,
    /// Runs a researcher may have stored (any outcome) before new runs get 429.
    #[arg(long, default_value_t = 1000)]
    pub max_stored_runs_per_researcher: u64,
    /// Seconds a login to the auditor's or researcher's pages lasts.
    #[arg(long, default_value_t = 8.0 * 3600.0)]
    pub session_lifetime: f64,
}

pub fn run(args: UpArgs) -> anyhow::Result<()> {
    if args.build {
        let manifest = carrel::manifest::load(&args.manifest.from)?;
        super::build::build_all(&manifest, &[])?;
    }
    if args.init {
        let manifest = carrel::manifest::load(&args.manifest.from)?;
        let state_dir = args
            .state_dir
            .clone()
            .unwrap_or_else(|| carrel_warehouse::state_dir::beside_loaded(&manifest));
        super::demo::init_keys(&state_dir)?;
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
        .await?;
        Ok(())
    })
}
