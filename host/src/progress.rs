//! Progress of long commands: a bar with rate and ETA on a terminal, plain periodic lines
//! when the output is not a terminal (logs, CI).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Progress {
    bar: Option<ProgressBar>,
    label: &'static str,
    total: u64,
    plain: Mutex<(u64, Instant)>,
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
            total,
            plain: Mutex::new((0, Instant::now())),
        }
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
        state.0 += by;
        if state.1.elapsed() >= PLAIN_INTERVAL || state.0 >= self.total {
            let percent = if self.total == 0 {
                100.0
            } else {
                state.0 as f64 * 100.0 / self.total as f64
            };
            eprintln!("{}: {percent:.0}% {message}", self.label);
            state.1 = Instant::now();
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
    }
}
