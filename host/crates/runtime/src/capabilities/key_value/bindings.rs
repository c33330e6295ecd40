wasmtime::component::bindgen!({
    path: "../../../wit",
    world: "carrel:eds/spin-key-value",
    imports: {
        "fermyon:spin/key-value": async | trappable,
        default: trappable,
    },
    with: {
        "spin:key-value/key-value.store": super::StoreHandle,
        "fermyon:spin/key-value.store": super::StoreHandle,
    },
});
