//! Probe guest built on spin-sdk 7 (WASIp3): it exports `wasi:http/handler@0.3.0`.
//!
//! The host's tests drive it with the query parameter `op` (hello, headers,
//! kv-set/get/delete/exists/keys, var, outbound, trap, loop, recurse, echo, env, file,
//! memory, sleep, redis, mqtt, pg). `spin5-probe` implements the same behaviour on spin-sdk 5.

mod postgres;
mod services;

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use spin_sdk::http::body::IncomingBodyExt;
use spin_sdk::http::{FullBody, HeaderValue, Request, Response, StatusCode};
use spin_sdk::http_service;
use spin_sdk::key_value::{Error as KvError, Store};

type Reply = Response<FullBody<Bytes>>;

#[http_service]
async fn handle(req: Request) -> Reply {
    let (parts, body) = req.into_parts();
    let params = query_params(parts.uri.query().unwrap_or(""));
    let param = |name: &str| params.get(name).cloned().unwrap_or_default();
    match params.get("op").map(String::as_str).unwrap_or("hello") {
        "hello" => text(200, "hello from spin7"),
        "headers" => {
            let mut map = BTreeMap::new();
            for (name, value) in &parts.headers {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                map.insert(name.as_str().to_ascii_lowercase(), value);
            }
            map.insert(":method".to_owned(), parts.method.to_string());
            map.insert(":uri".to_owned(), parts.uri.to_string());
            json(serde_json::json!(map))
        }
        op @ ("kv-set" | "kv-get" | "kv-delete" | "kv-exists" | "kv-keys") => {
            let value = if op == "kv-set" {
                match body.bytes().await {
                    Ok(value) => value,
                    Err(e) => return text(400, format!("{e:?}")),
                }
            } else {
                Bytes::new()
            };
            let label = params.get("store").map_or("default", String::as_str);
            match key_value(op, label, &param("key"), value).await {
                Ok(reply) => reply,
                Err(KvError::AccessDenied) => text(403, "access-denied"),
                Err(KvError::NoSuchStore) => text(404, "no-such-store"),
                Err(e) => text(500, format!("{e:?}")),
            }
        }
        "var" => match spin_sdk::variables::get(param("name")).await {
            Ok(value) => text(200, value),
            Err(e) => text(500, format!("{e:?}")),
        },
        "outbound" => match spin_sdk::http::get(param("url")).await {
            Ok(resp) => text(200, format!("status {}", resp.status().as_u16())),
            Err(e) => text(502, format!("{e:?}")),
        },
        "trap" => panic!("probe asked to trap"),
        "loop" => spin_forever(),
        "recurse" => text(200, format!("depth {}", recurse(0))),
        "echo" => match body.bytes().await {
            Ok(bytes) => {
                let len = bytes.len();
                let mut reply = reply(200, bytes);
                reply
                    .headers_mut()
                    .insert("x-body-len", HeaderValue::from(len));
                reply
            }
            Err(e) => text(400, format!("{e:?}")),
        },
        "env" => json(serde_json::json!(
            std::env::vars().collect::<BTreeMap<_, _>>()
        )),
        "file" => match std::fs::read(param("path")) {
            Ok(content) => reply(200, Bytes::from(content)),
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
            spin_sdk::wasip3::clocks::monotonic_clock::wait_for(ms * 1_000_000).await;
            text(200, "slept")
        }
        "redis" => match services::redis_script(&param("addr"), &param("prefix")).await {
            Ok(report) => json(report),
            Err(e) => text(502, format!("{e:?}")),
        },
        "mqtt" => {
            let payload = match body.bytes().await {
                Ok(payload) => payload.to_vec(),
                Err(e) => return text(400, format!("{e:?}")),
            };
            let (addr, topic, qos) = (param("addr"), param("topic"), param("qos"));
            match services::mqtt_publish(&addr, &topic, payload, &qos).await {
                Ok(()) => text(200, "published"),
                Err(e) => text(502, format!("{e:?}")),
            }
        }
        "pg" => match postgres::script(&param("addr")).await {
            Ok(report) => json(report),
            Err(e) => text(502, e),
        },
        other => text(400, format!("unknown op {other:?}")),
    }
}

/// Runs one key-value operation; errors are mapped to statuses by the caller.
async fn key_value(op: &str, label: &str, key: &str, value: Bytes) -> Result<Reply, KvError> {
    let store = Store::open(label).await?;
    Ok(match op {
        "kv-set" => {
            store.set(key, value).await?;
            text(200, "ok")
        }
        "kv-get" => match store.get(key).await? {
            Some(value) => reply(200, Bytes::from(value)),
            None => text(404, "not found"),
        },
        "kv-delete" => {
            store.delete(key).await?;
            text(200, "ok")
        }
        "kv-exists" => text(200, store.exists(key).await?.to_string()),
        _ => {
            // Drain the stream first, then the future tells whether it was complete.
            let mut keys = store.get_keys().await;
            let mut all = Vec::new();
            while let Some(key) = keys.next().await {
                all.push(key);
            }
            keys.result().await?;
            all.sort();
            json(serde_json::json!(all))
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

fn reply(status: u16, body: Bytes) -> Reply {
    let mut reply = Response::new(FullBody::new(body));
    *reply.status_mut() = StatusCode::from_u16(status).expect("valid status");
    reply
}

fn text(status: u16, body: impl Into<String>) -> Reply {
    let mut reply = reply(status, Bytes::from(body.into()));
    let plain = HeaderValue::from_static("text/plain; charset=utf-8");
    reply.headers_mut().insert("content-type", plain);
    reply
}

fn json(value: serde_json::Value) -> Reply {
    let body = serde_json::to_vec(&value).expect("JSON encoding");
    let mut reply = reply(200, Bytes::from(body));
    let kind = HeaderValue::from_static("application/json");
    reply.headers_mut().insert("content-type", kind);
    reply
}
