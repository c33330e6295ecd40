//! A `wasm32-unknown-unknown` module made of wit-bindgen bindings only: it exports
//! `wasi:http/incoming-handler@0.2` (through the `wasip2` crate) and imports Spin's
//! `fermyon:spin/variables@2.0.0` (from the repository's own WIT). It answers every
//! request with the variable `greeting`, or 500 and the error when there is none.

use wasip2::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

wit_bindgen::generate!({
    inline: "package carrel:test-unknown; world guest { import fermyon:spin/variables@2.0.0; }",
    path: "../../../wit/deps/fermyon-spin@2.0.0",
    generate_all,
});

struct Handler;

impl wasip2::exports::http::incoming_handler::Guest for Handler {
    fn handle(_request: IncomingRequest, response_out: ResponseOutparam) {
        let (status, body) = match fermyon::spin::variables::get("greeting") {
            Ok(value) => (200, value),
            Err(e) => (500, format!("{e:?}")),
        };
        let response = OutgoingResponse::new(Fields::new());
        response.set_status_code(status).expect("a valid status");
        let outgoing = response.body().expect("the body, taken once");
        ResponseOutparam::set(response_out, Ok(response));
        let stream = outgoing.write().expect("the stream, taken once");
        stream
            .blocking_write_and_flush(body.as_bytes())
            .expect("the host takes the body");
        drop(stream);
        OutgoingBody::finish(outgoing, None).expect("the body ends");
    }
}

wasip2::http::proxy::export!(Handler with_types_in wasip2);
