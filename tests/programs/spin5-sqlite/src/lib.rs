//! SQLite guest on spin-sdk 5 (WASIp2): `?api=v2` uses `fermyon:spin/sqlite@2.0.0` (the
//! SDK's `sqlite` module), `?api=v3` the synchronous `spin:sqlite/sqlite@3.0.0` (its
//! `sqlite3` module).
//!
//! `POST /?db=LABEL&api=…` with `{"sql": "...", "params": [...]}` runs one statement and
//! answers `{"columns", "rows"}` (v3 adds `changes` and `last_insert_rowid`), as
//! `spin7-sqlite` does. A refused database is 403 `access-denied`.

use spin_sdk::http::{Request, Response};
use spin_sdk::http_component;
use spin_sdk::{sqlite, sqlite3};
use std::collections::HashMap;

#[http_component]
fn handle(req: Request) -> Response {
    answer(&req)
}

fn answer(req: &Request) -> Response {
    let params: HashMap<String, String> = form_urlencoded::parse(req.query().as_bytes())
        .into_owned()
        .collect();
    let label = params.get("db").map_or("default", String::as_str);
    let request: serde_json::Value = match serde_json::from_slice(req.body()) {
        Ok(v) => v,
        Err(e) => return reply(400, format!("bad JSON: {e}")),
    };
    let sql = request["sql"].as_str().unwrap_or_default();
    let values = request["params"].as_array().cloned().unwrap_or_default();
    let outcome = match params.get("api").map(String::as_str).unwrap_or("v2") {
        "v3" => v3(label, sql, &values).map_err(|e| match e {
            sqlite3::Error::AccessDenied => (403, "access-denied".to_owned()),
            sqlite3::Error::NoSuchDatabase => (404, "no-such-database".to_owned()),
            e => (500, format!("{e:?}")),
        }),
        _ => v2(label, sql, &values).map_err(|e| match e {
            sqlite::Error::AccessDenied => (403, "access-denied".to_owned()),
            sqlite::Error::NoSuchDatabase => (404, "no-such-database".to_owned()),
            e => (500, format!("{e:?}")),
        }),
    };
    match outcome {
        Ok(json) => reply(200, json.to_string()),
        Err((status, text)) => reply(status, text),
    }
}

/// Both SDK modules have the same value type under two names: one macro converts both.
macro_rules! conversions {
    ($module:ident, $to:ident, $from:ident) => {
        fn $to(json: &serde_json::Value) -> $module::Value {
            use $module::Value;
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

        fn $from(value: &$module::Value) -> serde_json::Value {
            use $module::Value;
            match value {
                Value::Integer(i) => serde_json::json!(i),
                Value::Real(r) => serde_json::json!(r),
                Value::Text(t) => serde_json::json!(t),
                Value::Blob(b) => serde_json::json!({ "blob": b }),
                Value::Null => serde_json::Value::Null,
            }
        }
    };
}

conversions!(sqlite, to_v2, from_v2);
conversions!(sqlite3, to_v3, from_v3);

fn v2(
    label: &str,
    sql: &str,
    values: &[serde_json::Value],
) -> Result<serde_json::Value, sqlite::Error> {
    let db = sqlite::Connection::open(label)?;
    let params: Vec<sqlite::Value> = values.iter().map(to_v2).collect();
    let result = db.execute(sql, &params)?;
    let rows: Vec<Vec<serde_json::Value>> = result
        .rows
        .iter()
        .map(|row| row.values.iter().map(from_v2).collect())
        .collect();
    Ok(serde_json::json!({ "columns": result.columns, "rows": rows }))
}

fn v3(
    label: &str,
    sql: &str,
    values: &[serde_json::Value],
) -> Result<serde_json::Value, sqlite3::Error> {
    let db = sqlite3::Connection::open(label)?;
    let params: Vec<sqlite3::Value> = values.iter().map(to_v3).collect();
    let result = db.execute(sql, &params)?;
    let rows: Vec<Vec<serde_json::Value>> = result
        .rows
        .iter()
        .map(|row| row.values.iter().map(from_v3).collect())
        .collect();
    Ok(serde_json::json!({
        "columns": result.columns,
        "rows": rows,
        "changes": db.changes(),
        "last_insert_rowid": db.last_insert_rowid(),
    }))
}

fn reply(status: u16, body: String) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain; charset=utf-8")
        .body(body)
        .build()
}
