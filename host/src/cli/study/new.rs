//! `carrel study new`: writes a new study (Rust, Python, or a model evaluation's section)
//! with the warehouse's scaffolds, and tells the researcher what to do next.

use carrel_warehouse::study::scaffold::{self, SECTION_FILE, ScaffoldOptions, relative};
use carrel_warehouse::study::scaffold_model;
use carrel_warehouse::study::scaffold_python::{self, COMPONENTIZE_PY_VERSION};
use std::path::Path;
use std::process::ExitCode;

/// `carrel study new`: scaffolds and tells the researcher what to do next.
pub fn rust(options: &ScaffoldOptions) -> anyhow::Result<ExitCode> {
    let done = scaffold::scaffold(options)?;
    let name = &options.name;
    let cwd = std::env::current_dir().unwrap_or_default();
    let shown = |p: &Path| relative(p, &cwd);
    println!(
        "Created study `{name}` in {}: Cargo.toml, src/lib.rs (a worked example: consultations and influenza-like illness by ISO week and age class, with a test) and {SECTION_FILE}.",
        shown(&done.crate_dir)
    );
    println!(
        "Added \"{}\" to the members of {}.",
        done.member,
        shown(&done.workspace.join("Cargo.toml"))
    );
    match &done.lock_problem {
        None => println!("Updated {}.", shown(&done.workspace.join("Cargo.lock"))),
        Some(why) => eprintln!(
            "warning: could not update {} ({why}); run `cargo update --workspace` in {} before a --locked build",
            shown(&done.workspace.join("Cargo.lock")),
            shown(&done.workspace)
        ),
    }
    let flag = tell_section(options, done.manifest_updated, &done.section);
    println!(
        "Next:\n  (cd {} && cargo build --release --target wasm32-wasip2 -p {name})\n  carrel study try {name} --synthetic{flag}\nIts test runs natively: (cd {} && cargo test -p {name} --target <your target, e.g. x86_64-unknown-linux-gnu>)",
        shown(&done.workspace),
        shown(&done.workspace)
    );
    Ok(ExitCode::SUCCESS)
}

/// `carrel study new --lang python`: scaffolds and tells the researcher what to do next.
pub fn python(options: &ScaffoldOptions) -> anyhow::Result<ExitCode> {
    let done = scaffold_python::scaffold(options)?;
    let name = &options.name;
    let cwd = std::env::current_dir().unwrap_or_default();
    let shown = relative(&done.project_dir, &cwd);
    println!(
        "Created the Python study `{name}` in {shown}: app.py (a worked example: consultations and influenza-like illness by ISO week and age class), test_app.py, README.md and {}.",
        SECTION_FILE
    );
    let flag = tell_section(options, done.manifest_updated, &done.section);
    println!(
        "Next:\n  (cd {shown} && python3 -m unittest)\n  pip install componentize-py=={COMPONENTIZE_PY_VERSION}   (once)\n  carrel build -c {name}{flag}\n  carrel study try {name} --synthetic{flag}"
    );
    Ok(ExitCode::SUCCESS)
}

/// `carrel study new NAME --template model-eval`: appends the section of study `name` to
/// `manifest` (or prints it when `add` is false) and says what to do next.
pub fn model_eval(name: &str, manifest: &Path, add: bool) -> anyhow::Result<ExitCode> {
    let section = scaffold_model::section(name)?;
    if !add {
        println!("Paste this section into your spin.toml:\n{section}");
        return Ok(ExitCode::SUCCESS);
    }
    scaffold_model::append(name, manifest, &section)?;
    let model = scaffold_model::model_file(name);
    println!(
        "Appended the section of `{name}` to {}.\nNext:\n  1. put your ONNX model at {model} (next to the manifest) and list its inputs, in order, as `features`;\n  2. fill in purpose, legal_basis and principal_investigator;\n  3. carrel build, then carrel study submit {name}: the study checks the model in its sandbox (operators, input width) before an auditor approves it.",
        manifest.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Says where the new study's section went (appended to the manifest, or printed to be
/// pasted), and returns the `-f` flag the next commands need for that manifest.
fn tell_section(options: &ScaffoldOptions, manifest_updated: bool, section: &str) -> String {
    if manifest_updated {
        println!(
            "Appended its section to {}: fill in purpose, legal_basis and principal_investigator before submitting.",
            options.manifest.display()
        );
    } else {
        println!(
            "Paste this section into your spin.toml (it is also in {SECTION_FILE}):\n{section}"
        );
    }
    if options.manifest == Path::new("spin.toml") {
        String::new()
    } else {
        format!(" -f {}", options.manifest.display())
    }
}
