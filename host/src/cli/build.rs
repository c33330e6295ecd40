//! `carrel build`: runs each component's `[component.<id>.build]` commands, like `spin build`
//! (also before `carrel up --build`, the demo, and each change `carrel watch` sees).

use super::ManifestArg;
use anyhow::{Context, bail};
use carrel::manifest::LoadedManifest;
use clap::Args;
use std::process::Command;
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
    build_all(&manifest, &args.components)?;
    Ok(ExitCode::SUCCESS)
}

/// Runs the build commands of every component, or of those in `only`.
pub fn build_all(manifest: &LoadedManifest, only: &[String]) -> anyhow::Result<()> {
    for (id, component) in &manifest.manifest.component {
        if !only.is_empty() && !only.contains(id) {
            continue;
        }
        let Some(build) = &component.build else {
            continue;
        };
        let workdir = match &build.workdir {
            Some(w) => manifest.base_dir().join(w),
            None => manifest.base_dir().to_owned(),
        };
        for command in build.command.commands() {
            eprintln!("Building component {id} with `{command}`");
            let status = Command::new("sh")
                .arg("-c")
                .arg(command)
                .current_dir(&workdir)
                .envs(&build.environment)
                .status()
                .with_context(|| format!("cannot run the build command of component `{id}`"))?;
            if !status.success() {
                bail!(
                    "build command `{command}` of component `{id}` failed ({status}) in {}",
                    workdir.display()
                );
            }
        }
    }
    Ok(())
}
