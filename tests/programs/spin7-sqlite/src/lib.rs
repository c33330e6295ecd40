//! SQLite guest on spin-sdk 7 (WASIp3, `spin:sqlite/sqlite@3.1.0`, its async functions).
//!
//! `POST /?db=LABEL` with `{"sql": "...", "params": [...]}` runs one statement on the
//! database LABEL and answers `{"columns", "rows", "changes", "last_insert_rowid"}`; JSON
//! integers, floats, strings and null are SQLite's, `{"blob": [bytes]}` a blob. A refused
//! database is 403 `access-denied`, any other error 500 with the error.

use bytes::Bytes;
use spin_sdk::http::body::IncomingBodyExt;
use spin_sdk::http::{FullBody, Request, Response, StatusCode};
use spin_sdk::http_service;
use spin_sdk::sqlite::{Connection, Error, Value};

type Reply = Response<FullBody<Bytes>>;

#[http_service]
async fn handle(req: Request) -> Reply {
    let (parts, body) = req.into_parts();
    let label = form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "db")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| "default".to_owned());
    let body = match body.bytes().await {
        Ok(b) => b,
        Err(e) => return reply(400, format!("{e:?}")),
    };
    let request: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return reply(400, format!("bad JSON: {e}")),
    };
    let sql = request["sql"].as_str().unwrap_or_default().to_owned();
    let params: Vec<Value> = request["params"]
        .as_array()
        .map(|a| a.iter().map(to_value).collect())
        .unwrap_or_default();
    match run(&label, &sql, params).await {
        Ok(json) => reply(200, json.to_string()),
        Err(Error::AccessDenied) => reply(403, "access-denied"),
        Err(Error::NoSuchDatabase) => reply(404, "no-such-database"),
        Err(e) => reply(500, format!("{e:?}")),
    }
}

async fn run(label: &str, sql: &str, params: Vec<Value>) -> Result<serde_json::Value, Error> {
    let db = Connection::open(label).await?;
    let mut result = db.execute(sql, params).await?;
    let columns = result.columns().to_vec();
    let mut rows = Vec::new();
    while let Some(row) = result.next().await {
        rows.push(row.values.iter().map(from_value).collect::<Vec<_>>());
    }
    result.result().await?;
    Ok(serde_json::json!({
        "columns": columns,
        "rows": rows,
        "changes": db.changes().await,
        "last_insert_rowid": db.last_insert_rowid().await,
    }))
}

fn to_value(json: &serde_json::Value) -> Value {
    match json {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::Integer(i),
            None => Value::Real(n.as_f64().unwrap_or(0.0)),
        },
        serde_json::Value::String(s) => Value::Text(s.clone()),
        other => Value::Blob(
            other["blob"]
                .as_array()
                .map(|b| b.iter().map(|x| x.as_u64().unwrap_or(0) as u8).collect())
                .unwrap_or_default(),
        ),
    }
}

fn from_value(value: &Value) -> serde_json::Value {
    match value {
        Value::Integer(i) => serde_json::json!(i),
        Value::Real(r) => serde_json::json!(r),
        Value::Text(t) => serde_json::json!(t),
        Value::Blob(b) => serde_json::json!({ "blob": b }),
        Value::Null => serde_json::Value::Null,
    }
}

fn reply(status: u16, body: impl Into<String>) -> Reply {
    let mut reply = Response::new(FullBody::new(Bytes::from(body.into())));
    *reply.status_mut() = StatusCode::from_u16(status).expect("valid status");
    reply
}
