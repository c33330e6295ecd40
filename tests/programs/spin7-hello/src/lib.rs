//! Minimal spin-sdk 7 (WASIp3) component for benchmarks: answers 200 `hello`.

use spin_sdk::http::{Request, Response};
use spin_sdk::http_service;

#[http_service]
async fn handle(_req: Request) -> Response<String> {
    let mut response = Response::new("hello".to_owned());
    response
        .headers_mut()
        .insert("content-type", "text/plain".parse().expect("header value"));
    response
}
