//! The limit that `host/benches/all.sh` measures `carrel up` against: a native hyper 1.x
//! server on tokio's multi-threaded runtime (as `carrel up` is) answering what the hello
//! components answer: 200, `content-type: text/plain`, `hello`. It prints the address it
//! listens on, then serves until it is killed.
//!
//! ```text
//! native_hello ADDRESS        (127.0.0.1:0 for any free port)
//! ```
//!
//! Without an address (as `cargo bench` runs every bench) it says so and exits.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

async fn hello(
    _request: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut response = Response::new(Full::new(Bytes::from_static(b"hello")));
    response
        .headers_mut()
        .insert("content-type", http::HeaderValue::from_static("text/plain"));
    Ok(response)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let Some(address) = std::env::args().skip(1).find(|a| !a.starts_with("--")) else {
        eprintln!("native_hello serves until killed: host/benches/all.sh runs it with an address");
        return Ok(());
    };
    let listener = tokio::net::TcpListener::bind(&address).await?;
    println!("{}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        tokio::spawn(async move {
            // A client closing its connection mid-request is not the bench's concern.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service_fn(hello))
                .await;
        });
    }
}
