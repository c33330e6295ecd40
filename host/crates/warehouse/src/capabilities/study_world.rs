//! The study worlds as the host sees them: generated bindings for each world's exports and
//! their one import (`log`, in [`super::study_log`]). Studies import nothing else: the rows
//! they see are pushed to them by the host. The `study-types` and `log` interfaces are
//! generated once, in [`bindings`], and shared by the model worlds.
//!
//! - `study`: `start`, `classify` (contributions to declared measures);
//! - `model-evaluation`: `check`, `start`, `score` (a model's score per row);
//! - `model-fit`: `start`, `features` (a feature vector and outcome per row).

pub mod bindings {
    wasmtime::component::bindgen!({
        path: "../../../wit",
        world: "carrel:eds/study",
        imports: { default: trappable },
        exports: { default: async },
    });
}

pub mod evaluation {
    wasmtime::component::bindgen!({
        path: "../../../wit",
        world: "carrel:eds/model-evaluation",
        imports: { default: trappable },
        exports: { default: async },
        with: {
            "carrel:eds/study-types": super::bindings::carrel::eds::study_types,
            "carrel:eds/log": super::bindings::carrel::eds::log,
        },
    });
}

pub mod fit {
    wasmtime::component::bindgen!({
        path: "../../../wit",
        world: "carrel:eds/model-fit",
        imports: { default: trappable },
        exports: { default: async },
        with: {
            "carrel:eds/study-types": super::bindings::carrel::eds::study_types,
            "carrel:eds/log": super::bindings::carrel::eds::log,
        },
    });
}
