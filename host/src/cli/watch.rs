//! `carrel watch`: like `spin watch`, rebuilds a component when a file its
//! `[component.<id>.build] watch` globs cover changes, and restarts `carrel up` when the
//! manifest, a component's wasm or its `files` change (a successful build changes the
//! wasm, so a rebuild restarts too). A failed build leaves the running server as it was.
//!
//! Files are found by polling their modification times: it works the same on every file
//! system (network mounts and containers included) and costs little at this scale.

use anyhow::Context;
use carrel::manifest::{ComponentSource, FileMount, LoadedManifest};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

#[derive(clap::Args, Debug)]
pub struct WatchArgs {
    /// The application manifest.
    #[arg(short = 'f', long = "from", default_value = "spin.toml")]
    pub manifest: PathBuf,
    /// Never run build commands; only restart when the app's files change.
    #[arg(long)]
    pub skip_build: bool,
    /// Milliseconds to wait after a change for further changes before acting.
    #[arg(short = 'd', long, default_value_t = 100)]
    pub debounce: u64,
    /// Arguments for `carrel up`, after `--` (e.g. `-- --listen 127.0.0.1:3001`).
    #[arg(last = true)]
    pub up_args: Vec<String>,
}

/// How often files are looked at.
const POLL: Duration = Duration::from_millis(250);
/// How long a stopping server may drain before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(35);

/// Every file a set of globs covers, with its modification time and length.
type Snapshot = BTreeMap<PathBuf, (SystemTime, u64)>;

fn snapshot(patterns: &[PathBuf]) -> Snapshot {
    let mut files = Snapshot::new();
    for pattern in patterns {
        let Ok(paths) = glob::glob(&pattern.to_string_lossy()) else {
            continue;
        };
        for path in paths.flatten() {
            if let Ok(meta) = std::fs::metadata(&path)
                && meta.is_file()
            {
                files.insert(
                    path,
                    (
                        meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                        meta.len(),
                    ),
                );
            }
        }
    }
    files
}

/// What to watch, read from the manifest.
struct Watched {
    /// Component → the globs of its build's `watch`, resolved.
    builds: BTreeMap<String, Vec<PathBuf>>,
    /// The manifest, every component's wasm and `files`: a change restarts the server.
    app: Vec<PathBuf>,
}

impl Watched {
    fn of(manifest: &LoadedManifest) -> Self {
        let base = manifest.base_dir();
        let mut builds = BTreeMap::new();
        let mut app = vec![manifest.path.clone()];
        for (id, component) in &manifest.manifest.component {
            if let Some(build) = &component.build {
                let workdir = build
                    .workdir
                    .as_ref()
                    .map_or_else(|| base.to_owned(), |w| base.join(w));
                builds.insert(
                    id.clone(),
                    build.watch.iter().map(|g| workdir.join(g)).collect(),
                );
            }
            if let ComponentSource::Local(source) = &component.source {
                app.push(base.join(source));
            }
            for mount in &component.files {
                app.push(match mount {
                    FileMount::Pattern(p) => base.join(p),
                    FileMount::Placement(p) => base.join(&p.source).join("**/*"),
                });
            }
        }
        Self { builds, app }
    }
}

/// Runs until SIGTERM or Ctrl-C, then stops the server and returns.
pub fn run(args: WatchArgs) -> anyhow::Result<()> {
    let stop = stop_flag()?;
    let mut manifest = carrel::manifest::load(&args.manifest)?;
    if !args.skip_build
        && let Err(e) = crate::cli::build::build_all(&manifest, &[])
    {
        eprintln!("carrel watch: {e:#}; serving what was built before");
    }
    let mut watched = Watched::of(&manifest);
    let mut builds: BTreeMap<String, Snapshot> = watched
        .builds
        .iter()
        .map(|(id, globs)| (id.clone(), snapshot(globs)))
        .collect();
    let mut app = snapshot(&watched.app);
    let mut server = Server::start(&args)?;
    let debounce = Duration::from_millis(args.debounce);
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(POLL);
        server.report_exit();
        if !args.skip_build {
            for (id, globs) in &watched.builds {
                let now = snapshot(globs);
                if builds.get(id) == Some(&now) {
                    continue;
                }
                let now = settle(globs, now, debounce);
                builds.insert(id.clone(), now);
                eprintln!("carrel watch: files of component `{id}` changed; building it");
                if let Err(e) = crate::cli::build::build_all(&manifest, std::slice::from_ref(id)) {
                    eprintln!("carrel watch: {e:#}; still serving the previous build");
                }
            }
        }
        let now = snapshot(&watched.app);
        if now == app {
            continue;
        }
        app = settle(&watched.app, now, debounce);
        match carrel::manifest::load(&args.manifest) {
            Ok(reloaded) => {
                manifest = reloaded;
                watched = Watched::of(&manifest);
                builds.retain(|id, _| watched.builds.contains_key(id));
                for (id, globs) in &watched.builds {
                    builds.entry(id.clone()).or_insert_with(|| snapshot(globs));
                }
                app = snapshot(&watched.app);
            }
            Err(e) => {
                eprintln!("carrel watch: {e}; keeping the running server");
                continue;
            }
        }
        eprintln!("carrel watch: the application changed; restarting");
        server.stop();
        server = Server::start(&args)?;
    }
    server.stop();
    Ok(())
}

/// Waits until the files stop changing for `debounce`, and returns them as they settled.
fn settle(globs: &[PathBuf], mut last: Snapshot, debounce: Duration) -> Snapshot {
    loop {
        std::thread::sleep(debounce);
        let now = snapshot(globs);
        if now == last {
            return now;
        }
        last = now;
    }
}

/// Set by SIGTERM or Ctrl-C, watched by a thread of its own so the loop stays plain.
fn stop_flag() -> anyhow::Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let signal = runtime.block_on(async { carrel_runtime::server::shutdown_signal() })?;
    let set = flag.clone();
    std::thread::Builder::new()
        .name("carrel-watch-signals".into())
        .spawn(move || {
            runtime.block_on(signal);
            set.store(true, Ordering::Relaxed);
        })?;
    Ok(flag)
}

/// The `carrel up` being watched over.
struct Server {
    child: Child,
    exited: bool,
}

impl Server {
    fn start(args: &WatchArgs) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("cannot find the carrel binary")?;
        let child = Command::new(exe)
            .arg("up")
            .arg("-f")
            .arg(&args.manifest)
            .args(&args.up_args)
            .spawn()
            .context("cannot start `carrel up`")?;
        Ok(Self {
            child,
            exited: false,
        })
    }

    /// Says once when the server stopped by itself (it failed to start, say).
    fn report_exit(&mut self) {
        if !self.exited
            && let Ok(Some(status)) = self.child.try_wait()
        {
            self.exited = true;
            eprintln!("carrel watch: `carrel up` exited ({status}); waiting for changes");
        }
    }

    /// Asks the server to drain (SIGTERM) and waits for it, killing it past the grace.
    fn stop(mut self) {
        if self.child.try_wait().ok().flatten().is_some() {
            return;
        }
        terminate(&self.child);
        let started = Instant::now();
        while started.elapsed() < STOP_GRACE {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(unix)]
fn terminate(child: &Child) {
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: kill(2) with a child's pid and a standard signal has no memory effects.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
    }
}

#[cfg(not(unix))]
fn terminate(child: &Child) {
    let _ = child;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_see_new_changed_and_removed_files() {
        let dir = tempfile::tempdir().unwrap();
        let globs = vec![dir.path().join("src/**/*.rs")];
        std::fs::create_dir_all(dir.path().join("src/a")).unwrap();
        std::fs::write(dir.path().join("src/a/lib.rs"), "fn a() {}").unwrap();
        let first = snapshot(&globs);
        assert_eq!(first.len(), 1);
        std::fs::write(dir.path().join("src/a/lib.rs"), "fn a() { 1; }").unwrap();
        assert_ne!(snapshot(&globs), first);
        std::fs::write(dir.path().join("src/b.rs"), "").unwrap();
        std::fs::write(dir.path().join("src/notes.txt"), "").unwrap();
        assert_eq!(snapshot(&globs).len(), 2);
        std::fs::remove_file(dir.path().join("src/b.rs")).unwrap();
        assert_eq!(snapshot(&globs).len(), 1);
    }

    #[test]
    fn watch_sets_come_from_build_watch_sources_and_files() {
        let dir = tempfile::tempdir().unwrap();
        let text = r#"spin_manifest_version = 2
[application]
name = "w"
[[trigger.http]]
route = "/..."
component = "web"
[component.web]
source = "target/web.wasm"
files = ["static/*.html"]
[component.web.build]
command = "true"
workdir = "web"
watch = ["src/**/*.rs", "Cargo.toml"]
"#;
        let manifest = carrel::manifest::parse(&dir.path().join("spin.toml"), text).unwrap();
        let watched = Watched::of(&manifest);
        assert_eq!(
            watched.builds["web"],
            [
                dir.path().join("web/src/**/*.rs"),
                dir.path().join("web/Cargo.toml")
            ]
        );
        assert_eq!(
            watched.app,
            [
                dir.path().join("spin.toml"),
                dir.path().join("target/web.wasm"),
                dir.path().join("static/*.html")
            ]
        );
    }
}
