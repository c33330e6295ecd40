wasmtime::component::bindgen!({
    path: "../../../wit",
    world: "carrel:eds/spin-mqtt",
    imports: {
        "fermyon:spin/mqtt": async | trappable,
        default: trappable,
    },
    with: {
        "spin:mqtt/mqtt.connection": super::ConnectionHandle,
        "fermyon:spin/mqtt.connection": super::ConnectionHandle,
    },
});
