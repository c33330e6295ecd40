wasmtime::component::bindgen!({
    path: "../../../wit",
    world: "carrel:eds/spin-postgres",
    imports: {
        "spin:postgres/postgres": async | trappable,
        "fermyon:spin/postgres": async | trappable,
        default: trappable,
    },
    with: {
        "spin:postgres/postgres@4.2.0.connection": super::ConnectionHandle,
        "spin:postgres/postgres@4.2.0.connection-builder": super::BuilderHandle,
        "spin:postgres/postgres@3.0.0.connection": super::ConnectionHandle,
        "fermyon:spin/postgres.connection": super::ConnectionHandle,
    },
});
