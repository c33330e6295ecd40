//! A `wasm32-wasip1` module on spin-sdk 5, like the SDK's own `variables` example: answers
//! `GET /?name=NAME` with the variable's value (500 with the error when it has none), and
//! `?file=PATH` with a file's content, to show its WASI preview 1 calls are adapted.

use spin_sdk::http::{Request, Response};
use spin_sdk::http_component;

#[http_component]
fn handle(req: Request) -> Response {
    let query = req.query();
    let param = |name: &str| {
        query
            .split('&')
            .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
            .unwrap_or_default()
            .to_owned()
    };
    let file = param("file");
    if !file.is_empty() {
        return match std::fs::read_to_string(&file) {
            Ok(text) => reply(200, text),
            Err(e) => reply(404, e.to_string()),
        };
    }
    match spin_sdk::variables::get(&param("name")) {
        Ok(value) => reply(200, value),
        Err(e) => reply(500, format!("{e:?}")),
    }
}

fn reply(status: u16, body: String) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain; charset=utf-8")
        .body(body)
        .build()
}
