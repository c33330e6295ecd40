//! Calls its own app (spin-sdk 7, WASIp3), like the SDK's `outbound-http-to-same-app`
//! example: `GET …?url=URL` sends `GET URL` (a relative `/path`, `http://self/path`,
//! `http://<component>.spin.internal/path`) and answers `status N` and the body, or 502 and
//! the error. Without `url` it answers `hello from PATH`, with the headers Spin sets.

use bytes::Bytes;
use spin_sdk::http::body::IncomingBodyExt;
use spin_sdk::http::{FullBody, Request, Response, StatusCode};
use spin_sdk::http_service;

type Reply = Response<FullBody<Bytes>>;

#[http_service]
async fn handle(req: Request) -> Reply {
    let url = form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "url")
        .map(|(_, v)| v.into_owned());
    let Some(url) = url else {
        let header = |name: &str| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned()
        };
        return reply(
            200,
            format!(
                "hello from {}\nspin-path-info: {}\nspin-client-addr: {}\n",
                req.uri().path(),
                header("spin-path-info"),
                header("spin-client-addr")
            ),
        );
    };
    match spin_sdk::http::get(url).await {
        Ok(response) => {
            let status = response.status().as_u16();
            let body = match response.into_body().bytes().await {
                Ok(b) => String::from_utf8_lossy(&b).into_owned(),
                Err(e) => format!("(body unreadable: {e:?})"),
            };
            reply(200, format!("status {status}\n{body}"))
        }
        Err(e) => reply(502, format!("{e:?}")),
    }
}

fn reply(status: u16, body: String) -> Reply {
    let mut reply = Response::new(FullBody::new(Bytes::from(body)));
    *reply.status_mut() = StatusCode::from_u16(status).expect("valid status");
    reply
}
