//! `carrel build`: every component's build command, like `spin build`.

use super::ManifestArg;
use clap::Args;
use std::process::ExitCode;

#[derive(Args)]
pub struct BuildArgs {
    #[command(flatten)]
    pub manifest: ManifestArg,
    /// Build only these components.
    #[arg(short = 'c', long = "component-id")]
    pub components: Vec<String>,
}

pub fn run(args: BuildArgs) -> anyhow::Result<ExitCode> {
    let manifest = carrel::manifest::load(&args.manifest.from)?;
    carrel::build_command::build_all(&manifest, &args.components)?;
    Ok(ExitCode::SUCCESS)
}
