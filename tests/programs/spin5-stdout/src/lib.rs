//! Writes to stdout and stderr (spin-sdk 5, WASIp2): `GET /?line=TEXT` prints TEXT on
//! stdout and `error: TEXT` on stderr; `?repeat=N` prints TEXT N times (to fill a log).

use spin_sdk::http::{Request, Response};
use spin_sdk::http_component;
use std::io::Write;

#[http_component]
fn handle(req: Request) -> Response {
    let query = req.query().to_owned();
    let param = |name: &str| {
        query
            .split('&')
            .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
            .unwrap_or_default()
            .to_owned()
    };
    let line = param("line");
    let repeat: usize = param("repeat").parse().unwrap_or(1);
    let mut out = std::io::stdout().lock();
    for _ in 0..repeat {
        let _ = writeln!(out, "{line}");
    }
    let _ = out.flush();
    eprintln!("error: {line}");
    Response::builder()
        .status(200)
        .header("content-type", "text/plain; charset=utf-8")
        .body(format!("wrote {repeat} lines"))
        .build()
}
