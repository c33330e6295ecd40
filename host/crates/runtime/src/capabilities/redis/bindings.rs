wasmtime::component::bindgen!({
    path: "../../../wit",
    world: "carrel:eds/spin-redis",
    imports: {
        "fermyon:spin/redis": async | trappable,
        default: trappable,
    },
    with: {
        "spin:redis/redis.connection": super::ConnectionHandle,
        "fermyon:spin/redis.connection": super::ConnectionHandle,
    },
});
