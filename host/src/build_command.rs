//! `carrel build`: runs each component's `[component.<id>.build]` commands, like `spin build`.

use crate::manifest::LoadedManifest;
use anyhow::{Context, bail};
use std::process::Command;

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
