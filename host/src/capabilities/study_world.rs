//! The `carrel:eds/study` world as the host sees it: generated bindings for the study's
//! exports (`start`, `classify`) and its one import (`log`, in [`super::study_log`]).
//! Studies import nothing else: the rows they see are pushed to them by the host.

pub mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "carrel:eds/study",
        imports: { default: trappable },
        exports: { default: async },
    });
}
