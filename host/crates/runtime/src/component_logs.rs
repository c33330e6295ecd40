//! Each component's stdout and stderr, kept as Spin keeps them: appended to
//! `<log-dir>/<component>_stdout.txt` and `<component>_stderr.txt`, the log directory
//! being `<state-dir>/logs` unless `--log-dir` moves it (`--log-dir ""` turns the files
//! off, and the output then goes to carrel's own stderr, as in Spin).
//!
//! A component may print what it handles, so the files are readable by the operator only
//! (mode 0600) and are not echoed into carrel's own log, which usually ends in the
//! system journal. A guest could also print without end: each file takes at most
//! [`MAX_BYTES_PER_RUN`] per run of carrel, then one line saying so, then nothing more.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

/// How much one component's stdout (or stderr) may add to its file in one run.
pub const MAX_BYTES_PER_RUN: u64 = 64 << 20;

/// Where component output goes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum LogDir {
    /// `<state-dir>/logs`.
    #[default]
    StateDir,
    /// Files off: output goes to carrel's stderr.
    Disabled,
    At(PathBuf),
}

impl LogDir {
    /// From `--log-dir`: absent is the default, an empty path turns files off.
    pub fn from_flag(flag: Option<PathBuf>) -> Self {
        match flag {
            None => LogDir::StateDir,
            Some(p) if p.as_os_str().is_empty() => LogDir::Disabled,
            Some(p) => LogDir::At(p),
        }
    }

    /// The directory, created, or `None` when files are off.
    pub fn resolve(&self, state_dir: &Path) -> std::io::Result<Option<PathBuf>> {
        let dir = match self {
            LogDir::Disabled => return Ok(None),
            LogDir::StateDir => state_dir.join("logs"),
            LogDir::At(p) => p.clone(),
        };
        std::fs::create_dir_all(&dir)?;
        Ok(Some(dir))
    }
}

/// A component id made safe as a file name: anything but letters, digits, `-` and `_`
/// becomes `_`.
fn file_stem(component: &str) -> String {
    component
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// One log file, shared by every instance of its component.
pub struct LogFile {
    file: Mutex<File>,
    written: AtomicU64,
    limit: u64,
}

impl LogFile {
    fn open(path: &Path, limit: u64) -> std::io::Result<Self> {
        let mut options = std::fs::OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        Ok(Self {
            file: Mutex::new(options.open(path)?),
            written: AtomicU64::new(0),
            limit,
        })
    }

    /// Appends what fits under the limit; the guest is always told everything was
    /// written, so a full log never fails it.
    fn append(&self, bytes: &[u8]) {
        let before = self
            .written
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        if before >= self.limit {
            return;
        }
        let room = (self.limit - before).min(bytes.len() as u64) as usize;
        let mut file = self.file.lock().expect("log file lock");
        let mut result = file.write_all(&bytes[..room]);
        if room < bytes.len() {
            result = result.and_then(|()| {
                writeln!(
                    file,
                    "\n[carrel: this component wrote more than {} bytes in this run; the rest is dropped]",
                    self.limit
                )
            });
        }
        if let Err(e) = result {
            tracing::warn!(error = %e, "cannot write a component's log");
        }
    }
}

/// Where one stream of a component goes: its log file, or carrel's stderr.
#[derive(Clone)]
pub enum OutputSink {
    File(Arc<LogFile>),
    HostStderr,
}

/// A component's stdout and stderr, opened once per app.
#[derive(Clone)]
pub struct ComponentOutput {
    pub stdout: OutputSink,
    pub stderr: OutputSink,
}

impl ComponentOutput {
    /// Output to carrel's own stderr, as without a log directory.
    pub fn host_stderr() -> Self {
        Self {
            stdout: OutputSink::HostStderr,
            stderr: OutputSink::HostStderr,
        }
    }

    /// Opens (appending) the component's two files in `dir`, or sends both streams to
    /// carrel's stderr when there is no directory.
    pub fn open(dir: Option<&Path>, component: &str) -> std::io::Result<Self> {
        let Some(dir) = dir else {
            return Ok(Self::host_stderr());
        };
        let stem = file_stem(component);
        let open = |suffix: &str| -> std::io::Result<OutputSink> {
            let path = dir.join(format!("{stem}_{suffix}.txt"));
            LogFile::open(&path, MAX_BYTES_PER_RUN)
                .map(|f| OutputSink::File(Arc::new(f)))
                .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))
        };
        Ok(Self {
            stdout: open("stdout")?,
            stderr: open("stderr")?,
        })
    }
}

impl IsTerminal for OutputSink {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for OutputSink {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        match self {
            OutputSink::File(file) => Box::new(LogWriter(file.clone())),
            OutputSink::HostStderr => Box::new(tokio::io::stderr()),
        }
    }
}

/// Writes are small and local, so they are done in place rather than on another thread.
struct LogWriter(Arc<LogFile>);

impl AsyncWrite for LogWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.0.append(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_files_are_named_after_the_component_and_appended() {
        let dir = tempfile::tempdir().unwrap();
        for _ in 0..2 {
            let output = ComponentOutput::open(Some(dir.path()), "api/v1").unwrap();
            let OutputSink::File(file) = &output.stdout else {
                panic!("a file")
            };
            file.append(b"hello\n");
        }
        let path = dir.path().join("api_v1_stdout.txt");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "hello\nhello\n");
        assert!(dir.path().join("api_v1_stderr.txt").is_file());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn output_past_the_limit_is_dropped_after_one_note() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x_stdout.txt");
        let file = LogFile::open(&path, 10).unwrap();
        file.append(b"0123456");
        file.append(b"789abcdef");
        file.append(b"zzz");
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "0123456789\n[carrel: this component wrote more than 10 bytes in this run; the rest is dropped]\n"
        );
    }

    #[test]
    fn an_empty_log_dir_flag_turns_files_off() {
        assert_eq!(LogDir::from_flag(Some(PathBuf::new())), LogDir::Disabled);
        assert_eq!(LogDir::from_flag(None), LogDir::StateDir);
        let state = tempfile::tempdir().unwrap();
        let dir = LogDir::StateDir.resolve(state.path()).unwrap().unwrap();
        assert!(dir.ends_with("logs") && dir.is_dir());
        assert_eq!(LogDir::Disabled.resolve(state.path()).unwrap(), None);
    }
}
