//! Progress of long commands: a bar with rate and ETA on a terminal, plain periodic lines
//! when the output is not a terminal (logs, CI).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

pub struct Progress {
    bar: Option<ProgressBar>,
    label: &'static str,
    /// Off a terminal: (done, total, time of the last line).
    plain: Mutex<(u64, u64, Instant)>,
}

const PLAIN_INTERVAL: Duration = Duration::from_secs(2);

impl Progress {
    /// `total` in whatever unit `advance` counts (bytes, rows).
    pub fn new(label: &'static str, total: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{prefix} [{bar:30}] {percent:>3}% {msg} (ETA {eta})")
                    .expect("static template")
                    .progress_chars("=> "),
            );
            bar.set_prefix(label);
            bar
        });
        Self {
            bar,
            label,
            plain: Mutex::new((0, total, Instant::now())),
        }
    }

    /// Adds to the total, for work found on the way (a study opening another scan).
    pub fn grow(&self, by: u64) {
        if let Some(bar) = &self.bar {
            bar.inc_length(by);
        }
        self.plain.lock().expect("progress lock").1 += by;
    }

    pub fn advance(&self, by: u64, message: &str) {
        if by == 0 {
            return;
        }
        if let Some(bar) = &self.bar {
            bar.inc(by);
            bar.set_message(message.to_owned());
            return;
        }
        let mut state = self.plain.lock().expect("progress lock");
        let (done, total) = (state.0 + by, state.1);
        state.0 = done;
        if state.2.elapsed() >= PLAIN_INTERVAL || done >= total {
            let percent = if total == 0 {
                100.0
            } else {
                done as f64 * 100.0 / total as f64
            };
            eprintln!("{}: {percent:.0}% {message}", self.label);
            state.2 = Instant::now();
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
    }
}

/// The progress of a pass over stored segments (`carrel keys rotate --data` re-encrypting
/// them, `carrel audit verify --segments` reading them), with the rate in MB/s. The bar
/// starts with the first segment, when the total is known.
pub struct SegmentBar {
    label: &'static str,
    progress: OnceLock<(Progress, Instant)>,
    bytes: Mutex<u64>,
}

impl SegmentBar {
    pub fn new(label: &'static str) -> Self {
        Self {
            label,
            progress: OnceLock::new(),
            bytes: Mutex::new(0),
        }
    }

    /// One more segment done, of `total`, of `bytes` bytes.
    pub fn update(&self, done: u64, total: u64, bytes: u64) {
        let (progress, started) = self
            .progress
            .get_or_init(|| (Progress::new(self.label, total), Instant::now()));
        let mut all = self.bytes.lock().expect("progress lock");
        *all += bytes;
        let rate = *all as f64 / 1e6 / started.elapsed().as_secs_f64().max(1e-3);
        progress.advance(1, &format!("{done} of {total} segments, {rate:.1} MB/s"));
    }

    pub fn finish(&self) {
        if let Some((progress, _)) = self.progress.get() {
            progress.finish();
        }
    }
}
