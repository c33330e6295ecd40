wasmtime::component::bindgen!({
    path: "../../../wit",
    world: "carrel:eds/spin-sqlite",
    imports: {
        "fermyon:spin/sqlite": async | trappable,
        "spin:sqlite/sqlite": async | trappable,
        default: trappable,
    },
    with: {
        "spin:sqlite/sqlite.connection": super::ConnectionHandle,
        "fermyon:spin/sqlite.connection": super::ConnectionHandle,
    },
});
