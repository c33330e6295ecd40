//! Probe guest built on spin-sdk 5.2 (WASIp2): it exports `wasi:http/incoming-handler@0.2.0`.
//!
//! The host's tests drive it with the query parameter `op` (hello, headers,
//! kv-set/get/delete/exists/keys, var, outbound, trap, loop, recurse, echo, env, file,
//! memory, sleep, tcp, redis, mqtt, pg). `spin7-probe` implements the same behaviour on spin-sdk 7.

mod postgres;
mod services;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use spin_sdk::http::{Method, Request, Response};
use spin_sdk::http_component;
use spin_sdk::key_value::{Error as KvError, Store};

#[http_component]
async fn handle(req: Request) -> Response {
    let params = query_params(req.query());
    let param = |name: &str| params.get(name).cloned().unwrap_or_default();
    match params.get("op").map(String::as_str).unwrap_or("hello") {
        "hello" => text(200, "hello from spin5"),
        "headers" => {
            let mut map = BTreeMap::new();
            for (name, value) in req.headers() {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                map.insert(name.to_ascii_lowercase(), value);
            }
            map.insert(":method".to_owned(), req.method().to_string());
            map.insert(":uri".to_owned(), req.uri().to_owned());
            json(serde_json::json!(map))
        }
        op @ ("kv-set" | "kv-get" | "kv-delete" | "kv-exists" | "kv-keys") => {
            let label = params.get("store").map_or("default", String::as_str);
            match key_value(op, label, &param("key"), req.body()) {
                Ok(reply) => reply,
                Err(KvError::AccessDenied) => text(403, "access-denied"),
                Err(KvError::NoSuchStore) => text(404, "no-such-store"),
                Err(e) => text(500, format!("{e:?}")),
            }
        }
        "var" => match spin_sdk::variables::get(&param("name")) {
            Ok(value) => text(200, value),
            Err(e) => text(500, format!("{e:?}")),
        },
        "outbound" => {
            let request = Request::new(Method::Get, param("url"));
            match spin_sdk::http::send::<_, Response>(request).await {
                Ok(resp) => text(200, format!("status {}", resp.status())),
                Err(e) => text(502, format!("{e:?}")),
            }
        }
        "trap" => panic!("probe asked to trap"),
        "loop" => spin_forever(),
        "recurse" => text(200, format!("depth {}", recurse(0))),
        "echo" => Response::builder()
            .status(200)
            .header("x-body-len", req.body().len().to_string())
            .body(req.into_body())
            .build(),
        "env" => json(serde_json::json!(
            std::env::vars().collect::<BTreeMap<_, _>>()
        )),
        "file" => match std::fs::read(param("path")) {
            Ok(content) => Response::new(200, content),
            Err(e) => text(404, e.to_string()),
        },
        "memory" => {
            let mb: usize = param("mb").parse().unwrap_or(0);
            let mut block = vec![0u8; mb << 20];
            for page in block.chunks_mut(4096) {
                page[0] = 1;
            }
            std::hint::black_box(&block);
            text(200, format!("allocated {mb} MiB"))
        }
        "sleep" => {
            let ms: u64 = param("ms").parse().unwrap_or(0);
            std::thread::sleep(Duration::from_millis(ms));
            text(200, "slept")
        }
        "tcp" => match tcp_ping(&param("addr")) {
            Ok(reply) => text(200, reply),
            Err(e) => text(502, format!("{:?}: {e}", e.kind())),
        },
        "redis" => match services::redis_script(&param("addr"), &param("prefix")) {
            Ok(report) => json(report),
            Err(e) => text(502, format!("{e:?}")),
        },
        "mqtt" => {
            let published =
                services::mqtt_publish(&param("addr"), &param("topic"), req.body(), &param("qos"));
            match published {
                Ok(()) => text(200, "published"),
                Err(e) => text(502, format!("{e:?}")),
            }
        }
        "pg" => match postgres::script(&param("ver"), &param("addr")) {
            Ok(report) => json(report),
            Err(e) => text(502, e),
        },
        other => text(400, format!("unknown op {other:?}")),
    }
}

/// Connects to `addr` over `wasi:sockets`, sends `ping`, and returns the reply.
fn tcp_ping(addr: &str) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.write_all(b"ping")?;
    stream.shutdown(std::net::Shutdown::Write)?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply)?;
    Ok(reply)
}

/// Runs one key-value operation; errors are mapped to statuses by the caller.
fn key_value(op: &str, label: &str, key: &str, value: &[u8]) -> Result<Response, KvError> {
    let store = Store::open(label)?;
    Ok(match op {
        "kv-set" => {
            store.set(key, value)?;
            text(200, "ok")
        }
        "kv-get" => match store.get(key)? {
            Some(value) => Response::new(200, value),
            None => text(404, "not found"),
        },
        "kv-delete" => {
            store.delete(key)?;
            text(200, "ok")
        }
        "kv-exists" => text(200, store.exists(key)?.to_string()),
        _ => {
            let mut keys = store.get_keys()?;
            keys.sort();
            json(serde_json::json!(keys))
        }
    })
}

/// Splits a query string into percent-decoded pairs; the last of a repeated name wins.
fn query_params(query: &str) -> HashMap<String, String> {
    form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

/// Recurses until the guest's stack is exhausted: the host must turn it into a trap.
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let frame = std::hint::black_box([depth; 64]);
    if frame[63] == u64::MAX {
        return 0;
    }
    recurse(depth + 1) + frame[0]
}

fn spin_forever() -> ! {
    let mut counter = 0u64;
    loop {
        std::hint::black_box(&mut counter);
        counter = counter.wrapping_add(1);
    }
}

fn text(status: u16, body: impl Into<String>) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain; charset=utf-8")
        .body(body.into())
        .build()
}

fn json(value: serde_json::Value) -> Response {
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&value).expect("JSON encoding"))
        .build()
}
