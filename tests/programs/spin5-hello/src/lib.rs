//! Minimal spin-sdk 5.2 (WASIp2) component for benchmarks: answers 200 `hello`.

use spin_sdk::http::{Request, Response};
use spin_sdk::http_component;

#[http_component]
fn handle(_req: Request) -> Response {
    Response::builder()
        .status(200)
        .header("content-type", "text/plain")
        .body("hello")
        .build()
}
