//! The guest programs come out of the nested build as real components (or, where a crate
//! asks for it, core modules the host makes components), with the imports and exports
//! that the host has to provide and call.

use wasmparser::{Encoding, Parser, Payload, Validator, WasmFeatures};

/// `\0asm`, then version 0x0d and layer 1: a component, not a core module.
const COMPONENT_PREAMBLE: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];
/// `\0asm`, then version 1: a core module.
const MODULE_PREAMBLE: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];

/// The names a component imports and exports at its top level.
struct Interface {
    imports: Vec<String>,
    exports: Vec<String>,
}

fn interface_of(path: &str) -> Interface {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    let mut interface = Interface {
        imports: Vec::new(),
        exports: Vec::new(),
    };
    // Nested modules and components are parsed inline; only depth 0 is the outer component.
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(&bytes) {
        match payload.unwrap_or_else(|e| panic!("parse {path}: {e}")) {
            Payload::Version { encoding, .. } if depth == 0 => {
                assert_eq!(encoding, Encoding::Component, "{path} is not a component");
            }
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) if depth > 0 => depth -= 1,
            Payload::ComponentImportSection(section) if depth == 0 => {
                for import in section {
                    interface.imports.push(import.unwrap().name.name.to_owned());
                }
            }
            Payload::ComponentExportSection(section) if depth == 0 => {
                for export in section {
                    interface.exports.push(export.unwrap().name.name.to_owned());
                }
            }
            _ => {}
        }
    }
    println!(
        "{path}\n  imports: {:?}\n  exports: {:?}",
        interface.imports, interface.exports
    );
    interface
}

fn assert_lists(list: &[String], wanted: &str, what: &str, path: &str) {
    assert!(
        list.iter().any(|name| name == wanted),
        "{path} should {what} {wanted}, but its list is {list:?}"
    );
}

#[test]
fn every_guest_crate_is_built_as_a_component_or_the_module_it_asks_for() {
    // Every crate directory of tests/programs, so a new guest cannot be left out.
    let programs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../programs");
    let mut crates: Vec<String> = std::fs::read_dir(&programs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("Cargo.toml").is_file())
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    crates.sort();
    let mut names: Vec<&str> = test_programs_artifacts::ALL
        .iter()
        .map(|(name, _)| *name)
        .collect();
    names.sort();
    assert_eq!(names, crates);
    assert!(
        test_programs_artifacts::CORE_MODULES.contains(&"spin5-variables-wasip1")
            && test_programs_artifacts::CORE_MODULES.contains(&"http-unknown"),
        "{:?}",
        test_programs_artifacts::CORE_MODULES
    );
    for (name, path) in test_programs_artifacts::ALL {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{name}: read {path}: {e}"));
        assert!(bytes.len() > 8, "{name}: {path} is too short");
        Validator::new_with_features(WasmFeatures::all())
            .validate_all(&bytes)
            .unwrap_or_else(|e| panic!("{name}: {path} does not validate: {e}"));
        if test_programs_artifacts::CORE_MODULES.contains(name) {
            assert_eq!(
                bytes[..8],
                MODULE_PREAMBLE,
                "{name}: {path} is not a core module"
            );
        } else {
            assert_eq!(
                bytes[..8],
                COMPONENT_PREAMBLE,
                "{name}: {path} is not a component"
            );
            interface_of(path);
        }
    }
}

#[test]
fn the_spin7_guests_import_spin_3_interfaces_and_export_the_wasip3_handler() {
    let path = test_programs_artifacts::SPIN7_PROBE;
    let probe = interface_of(path);
    assert_lists(
        &probe.imports,
        "spin:key-value/key-value@3.0.0",
        "import",
        path,
    );
    assert_lists(
        &probe.imports,
        "spin:variables/variables@3.0.0",
        "import",
        path,
    );
    assert_lists(&probe.exports, "wasi:http/handler@0.3.0", "export", path);
    for service in [
        "spin:redis/redis@3.0.0",
        "spin:mqtt/mqtt@3.0.0",
        "spin:postgres/postgres@4.2.0",
    ] {
        assert_lists(&probe.imports, service, "import", path);
    }

    let path = test_programs_artifacts::SPIN7_HELLO;
    let hello = interface_of(path);
    assert_lists(&hello.exports, "wasi:http/handler@0.3.0", "export", path);
}

#[test]
fn the_spin5_guests_import_fermyon_2_interfaces_and_export_the_wasip2_handler() {
    let path = test_programs_artifacts::SPIN5_PROBE;
    let probe = interface_of(path);
    assert_lists(
        &probe.imports,
        "fermyon:spin/key-value@2.0.0",
        "import",
        path,
    );
    assert_lists(
        &probe.imports,
        "fermyon:spin/variables@2.0.0",
        "import",
        path,
    );
    assert_lists(
        &probe.exports,
        "wasi:http/incoming-handler@0.2.0",
        "export",
        path,
    );
    for service in [
        "fermyon:spin/redis@2.0.0",
        "fermyon:spin/mqtt@2.0.0",
        "fermyon:spin/postgres@2.0.0",
        "spin:postgres/postgres@3.0.0",
        "spin:postgres/postgres@4.0.0",
    ] {
        assert_lists(&probe.imports, service, "import", path);
    }

    let path = test_programs_artifacts::SPIN5_HELLO;
    let hello = interface_of(path);
    assert_lists(
        &hello.exports,
        "wasi:http/incoming-handler@0.2.0",
        "export",
        path,
    );
}
