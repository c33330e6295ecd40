//! `carrel:eds/log`, and the study's standard output and error: messages a study leaves in
//! its run record. Bounded, because a study is untrusted code and its log must not become
//! a channel for row-level data at scale: at most [`MAX_ENTRIES`] messages of at most
//! [`MAX_MESSAGE_CHARS`] characters are kept, and on real data they are shown to auditors
//! only, never to researchers. A line a study prints (Python's `print`, Rust's `println!`)
//! is one message, `stdout: …` or `stderr: …`, under the same bounds as `log`.

use super::study_world::bindings::carrel::eds::log::{self, Level};
use bytes::Bytes;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use wasmtime::component::{HasData, Linker};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

pub const MAX_ENTRIES: usize = 200;
pub const MAX_MESSAGE_CHARS: usize = 500;
/// Of a printed line, the host holds this many bytes at most (the message keeps fewer
/// characters still); the rest of the line is not kept.
const MAX_LINE_BYTES: usize = 4 * MAX_MESSAGE_CHARS;

/// The messages of one run.
#[derive(Debug, Default, Clone)]
pub struct StudyLog {
    pub entries: Vec<String>,
    pub dropped: u64,
}

impl StudyLog {
    /// Keeps `message` under `prefix` while there is room, else counts it as dropped.
    fn push(&mut self, prefix: &str, message: &str) {
        if self.entries.len() >= MAX_ENTRIES {
            self.dropped += 1;
            return;
        }
        let text: String = message.chars().take(MAX_MESSAGE_CHARS).collect();
        self.entries.push(format!("{prefix}: {text}"));
    }
}

/// Which standard stream a study wrote to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stdio {
    Stdout,
    Stderr,
}

impl Stdio {
    fn name(self) -> &'static str {
        match self {
            Stdio::Stdout => "stdout",
            Stdio::Stderr => "stderr",
        }
    }
}

#[derive(Default)]
struct Shared {
    log: StudyLog,
    /// The unfinished line of stdout and of stderr.
    partial: [Vec<u8>; 2],
}

/// The log of one instance, written by the `log` interface and by the study's standard
/// output and error, in the order the study wrote them.
#[derive(Clone, Default)]
pub struct SharedLog(Arc<Mutex<Shared>>);

impl SharedLog {
    pub fn new(log: StudyLog) -> Self {
        Self(Arc::new(Mutex::new(Shared {
            log,
            partial: Default::default(),
        })))
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        // A panic while holding the lock leaves whole entries behind: keep them.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Bytes the study wrote to `stream`: each whole line becomes a message.
    pub fn write(&self, stream: Stdio, mut bytes: &[u8]) {
        let mut shared = self.lock();
        let Shared { log, partial } = &mut *shared;
        let line = &mut partial[stream as usize];
        while !bytes.is_empty() {
            let (part, rest, ended) = match bytes.iter().position(|&b| b == b'\n') {
                Some(at) => (&bytes[..at], &bytes[at + 1..], true),
                None => (bytes, &[][..], false),
            };
            bytes = rest;
            if log.entries.len() >= MAX_ENTRIES {
                // No room left: count the lines, keep nothing.
                if ended {
                    line.clear();
                    log.dropped += 1;
                }
                continue;
            }
            let room = MAX_LINE_BYTES - line.len();
            line.extend_from_slice(&part[..part.len().min(room)]);
            if ended {
                log.push(stream.name(), &String::from_utf8_lossy(line));
                line.clear();
            }
        }
    }

    /// The run's log so far, with unfinished lines as messages; the shared log is left
    /// empty.
    pub fn take(&self) -> StudyLog {
        let mut shared = self.lock();
        let Shared { log, partial } = &mut *shared;
        for (stream, line) in [Stdio::Stdout, Stdio::Stderr].into_iter().zip(partial) {
            if !line.is_empty() {
                log.push(stream.name(), &String::from_utf8_lossy(line));
                line.clear();
            }
        }
        std::mem::take(log)
    }

    /// The study's standard output or error, writing into this log.
    pub fn stream(&self, stream: Stdio) -> LogStream {
        LogStream {
            log: self.clone(),
            stream,
        }
    }
}

pub trait StudyLogState: Send {
    fn study_log(&mut self) -> &SharedLog;
}

struct Log;

impl HasData for Log {
    type Data<'a> = &'a SharedLog;
}

pub fn add_to_linker<T: StudyLogState + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    log::add_to_linker::<T, Log>(linker, T::study_log)
}

impl log::Host for &SharedLog {
    fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        let level = match level {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        };
        self.lock().log.push(level, &message);
        Ok(())
    }
}

/// A study's standard output or error: never a terminal, always ready, every byte handed
/// to the log at once (so nothing is lost when the instance ends).
#[derive(Clone)]
pub struct LogStream {
    log: SharedLog,
    stream: Stdio,
}

impl IsTerminal for LogStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogStream {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl OutputStream for LogStream {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.log.write(self.stream, &bytes);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(64 * 1024)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for LogStream {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for LogStream {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.log.write(self.stream, bytes);
        Poll::Ready(Ok(bytes.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printed_lines_become_messages_in_the_order_written() {
        let log = SharedLog::new(StudyLog::default());
        log.write(Stdio::Stdout, b"first ");
        log::Host::log(&mut &log, Level::Info, "between".into()).unwrap();
        log.write(Stdio::Stdout, b"line\nsecond\n");
        log.write(Stdio::Stderr, b"unfinished");
        let taken = log.take();
        assert_eq!(
            taken.entries,
            [
                "info: between",
                "stdout: first line",
                "stdout: second",
                "stderr: unfinished"
            ]
        );
        assert!(log.take().entries.is_empty(), "taken once");
    }

    #[test]
    fn printing_is_bounded_like_the_log() {
        let log = SharedLog::new(StudyLog::default());
        let long = vec![b'x'; 10 * MAX_LINE_BYTES];
        log.write(Stdio::Stdout, &long);
        log.write(Stdio::Stdout, b"\n");
        let lines = "row\n".repeat(1000);
        log.write(Stdio::Stderr, lines.as_bytes());
        let taken = log.take();
        assert_eq!(taken.entries.len(), MAX_ENTRIES);
        assert!(
            taken
                .entries
                .iter()
                .all(|e| e.chars().count() <= MAX_MESSAGE_CHARS + "stdout: ".len())
        );
        assert_eq!(
            taken.entries[0],
            format!("stdout: {}", "x".repeat(MAX_MESSAGE_CHARS))
        );
        // One message a line, the long one included; past the bound, lines are counted.
        let kept = taken.entries.len() as u64;
        assert_eq!(kept + taken.dropped, 1 + 1000);
    }
}
