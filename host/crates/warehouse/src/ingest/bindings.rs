//! The generated Rust of `carrel:eds/ingester`: the identified and canonical consultation
//! types the pipeline works on, and the `ingest` interface that
//! [`crate::capabilities::ingest`] implements for components. Generated here, below both,
//! so the pipeline does not reach up into the capability for its own types.

wasmtime::component::bindgen!({
    path: "../../../wit",
    world: "carrel:eds/ingester",
    imports: { default: async | trappable },
});
