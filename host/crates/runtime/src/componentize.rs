//! Core wasm modules made components at load, as Spin does: a module built for
//! `wasm32-wasip1` (or `wasm32-unknown-unknown`) by wit-bindgen carries its component
//! type in custom sections, and wit-component's encoder turns it into the component it
//! describes, with WASI preview 1 calls adapted to preview 2 by wasmtime's own adapter (of
//! the wasmtime release carrel runs). A module without those sections has no exports a
//! Spin trigger could call, and is refused naming why.

use sha2::{Digest, Sha256};
use wasi_preview1_component_adapter_provider::{
    WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
};
use wasmparser::{Encoding, Parser, Payload};

/// What kind of binary a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryKind {
    Component,
    Module,
}

#[derive(Debug, thiserror::Error)]
pub enum ComponentizeError {
    #[error("not a WebAssembly binary: {0}")]
    NotWasm(String),
    #[error(
        "a core wasm module without component type information: build it with wit-bindgen (spin-sdk) for wasm32-wasip1, or as a component for wasm32-wasip2"
    )]
    NoComponentType,
    #[error("cannot make this core module a component: {0}")]
    Encode(String),
}

/// Whether `bytes` are a component or a core module, from their header.
pub fn kind(bytes: &[u8]) -> Result<BinaryKind, ComponentizeError> {
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.map_err(|e| ComponentizeError::NotWasm(e.to_string()))? {
            Payload::Version { encoding, .. } => {
                return Ok(match encoding {
                    Encoding::Component => BinaryKind::Component,
                    Encoding::Module => BinaryKind::Module,
                });
            }
            _ => continue,
        }
    }
    Err(ComponentizeError::NotWasm("empty file".to_owned()))
}

/// A short tag of the adapter this binary embeds, so a cache entry made with another
/// adapter is never reused.
pub fn adapter_tag() -> String {
    hex::encode(&Sha256::digest(WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER)[..6])
}

/// Whether a module carries the `component-type` custom sections wit-bindgen writes.
fn has_component_type(module: &[u8]) -> Result<bool, ComponentizeError> {
    for payload in Parser::new(0).parse_all(module) {
        if let Payload::CustomSection(section) =
            payload.map_err(|e| ComponentizeError::NotWasm(e.to_string()))?
            && section.name().starts_with("component-type")
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The component a core module describes, WASI preview 1 adapted.
pub fn componentize(module: &[u8]) -> Result<Vec<u8>, ComponentizeError> {
    if !has_component_type(module)? {
        return Err(ComponentizeError::NoComponentType);
    }
    wit_component::ComponentEncoder::default()
        .validate(true)
        .module(module)
        .and_then(|encoder| {
            encoder.adapter(
                WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME,
                WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
            )
        })
        .and_then(|mut encoder| encoder.encode())
        .map_err(|e| ComponentizeError::Encode(format!("{e:#}")))
}

/// `bytes` as a component: unchanged when they already are one.
pub fn componentize_if_module(
    bytes: &[u8],
) -> Result<std::borrow::Cow<'_, [u8]>, ComponentizeError> {
    match kind(bytes)? {
        BinaryKind::Component => Ok(std::borrow::Cow::Borrowed(bytes)),
        BinaryKind::Module => componentize(bytes).map(std::borrow::Cow::Owned),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_pass_through_and_bare_modules_are_refused() {
        let component = std::fs::read(test_programs_artifacts::SPIN5_HELLO).unwrap();
        assert_eq!(kind(&component).unwrap(), BinaryKind::Component);
        assert!(matches!(
            componentize_if_module(&component).unwrap(),
            std::borrow::Cow::Borrowed(_)
        ));
        // The smallest module: magic and version, nothing to export.
        let bare = b"\0asm\x01\0\0\0";
        assert_eq!(kind(bare).unwrap(), BinaryKind::Module);
        let err = componentize(bare).unwrap_err().to_string();
        assert!(err.contains("wit-bindgen"), "{err}");
        assert!(kind(b"not wasm").is_err());
    }

    #[test]
    fn a_wasip1_spin_module_becomes_an_http_component() {
        let module = std::fs::read(test_programs_artifacts::SPIN5_VARIABLES_WASIP1).unwrap();
        assert_eq!(kind(&module).unwrap(), BinaryKind::Module);
        let component = componentize(&module).unwrap();
        let engine = wasmtime::Engine::default();
        let component = wasmtime::component::Component::new(&engine, &component).unwrap();
        let exports: Vec<String> = component
            .component_type()
            .exports(&engine)
            .map(|(name, _)| name.to_owned())
            .collect();
        assert!(
            exports
                .iter()
                .any(|e| e.starts_with("wasi:http/incoming-handler@0.2")),
            "{exports:?}"
        );
    }
}
