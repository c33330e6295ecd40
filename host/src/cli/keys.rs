//! `carrel keys`: the master key and data keys of the state directory, with a progress
//! bar while segments are re-encrypted.

use std::path::Path;
use std::process::ExitCode;

pub fn run(state_dir: &Path, command: carrel_vault::cli::KeysCommand) -> anyhow::Result<ExitCode> {
    let bar = carrel_warehouse::progress::SegmentBar::new("re-encrypting segments");
    let code = command.run_with_progress(
        state_dir,
        &carrel_vault::MasterKeyEnv::from_process(),
        &mut std::io::stdout(),
        &mut |step| bar.update(step.segments_done, step.segments_total, step.bytes),
    );
    bar.finish();
    Ok(code?)
}
