//! `carrel:eds/log`: messages a study leaves in its run record. Bounded, because a study
//! is untrusted code and its log must not become a channel for row-level data at scale:
//! at most [`MAX_ENTRIES`] messages of at most [`MAX_MESSAGE_CHARS`] characters are kept,
//! and on real data they are shown to auditors only, never to researchers.

use super::study_world::bindings::carrel::eds::log::{self, Level};
use wasmtime::component::{HasData, Linker};

pub const MAX_ENTRIES: usize = 200;
pub const MAX_MESSAGE_CHARS: usize = 500;

/// The messages of one run.
#[derive(Debug, Default, Clone)]
pub struct StudyLog {
    pub entries: Vec<String>,
    pub dropped: u64,
}

pub trait StudyLogState: Send {
    fn study_log(&mut self) -> &mut StudyLog;
}

struct Log;

impl HasData for Log {
    type Data<'a> = &'a mut StudyLog;
}

pub fn add_to_linker<T: StudyLogState + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    log::add_to_linker::<T, Log>(linker, T::study_log)
}

impl log::Host for &mut StudyLog {
    fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        if self.entries.len() >= MAX_ENTRIES {
            self.dropped += 1;
            return Ok(());
        }
        let level = match level {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        };
        let text: String = message.chars().take(MAX_MESSAGE_CHARS).collect();
        self.entries.push(format!("{level}: {text}"));
        Ok(())
    }
}
