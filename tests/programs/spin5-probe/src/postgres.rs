//! Spin's outbound PostgreSQL as spin-sdk 5 offers it: `pg` (`fermyon:spin/postgres@2.0.0`),
//! `pg3` (`spin:postgres/postgres@3.0.0`) and `pg4` (`spin:postgres/postgres@4.0.0`).
//! Each script creates a table, inserts one row of every type its version carries, reads
//! it back and runs a failing query; the report holds what each call returned, as debug
//! text.

use serde_json::{Value, json};

/// Runs the script of interface version `version` (2, 3 or 4) against `address`.
pub fn script(version: &str, address: &str) -> Result<Value, String> {
    match version {
        "2" => v2(address).map_err(|e| format!("{e:?}")),
        "3" => v3(address).map_err(|e| format!("{e:?}")),
        _ => v4(address).map_err(|e| format!("{e:?}")),
    }
}

fn v2(address: &str) -> Result<Value, spin_sdk::pg::PgError> {
    use spin_sdk::pg::{Connection, ParameterValue as P};
    let conn = Connection::open(address)?;
    conn.execute(
        "CREATE TABLE t2 (id int4, name text, big int8, flag bool, ratio float8, blob bytea, nothing text, born date)",
        &[],
    )?;
    let inserted = conn.execute(
        "INSERT INTO t2 VALUES ($1, $2, $3, $4, $5, $6, $7, '1815-12-10')",
        &[
            P::Int32(1),
            P::Str("Ada".into()),
            P::Uint32(4_000_000_000),
            P::Boolean(true),
            P::Floating64(0.25),
            P::Binary(vec![0, 1, 2]),
            P::DbNull,
        ],
    )?;
    let rows = conn.query("SELECT * FROM t2 WHERE id = $1", &[P::Int32(1)])?;
    let failed = conn.query("SELECT * FROM no_such_table", &[]).err();
    Ok(json!({
        "inserted": inserted,
        "columns": rows.columns.iter().map(|c| format!("{} {:?}", c.name, c.data_type)).collect::<Vec<_>>(),
        "rows": rows.rows.iter().map(|r| r.iter().map(|v| format!("{v:?}")).collect::<Vec<_>>()).collect::<Vec<_>>(),
        "failed": format!("{failed:?}"),
    }))
}

fn v3(address: &str) -> Result<Value, spin_sdk::pg3::PgError> {
    use spin_sdk::pg3::{Connection, ParameterValue as P};
    let conn = Connection::open(address)?;
    conn.execute(
        "CREATE TABLE t3 (id int4, name text, born date, at timestamp, noon time, flag bool, uid uuid)",
        &[],
    )?;
    let inserted = conn.execute(
        "INSERT INTO t3 VALUES ($1, $2, $3, $4, $5, $6, '67e55044-10b1-426f-9247-bb680e5fe0c8')",
        &[
            P::Int32(1),
            P::Str("Ada".into()),
            P::Date((1815, 12, 10)),
            P::Datetime((2026, 12, 7, 4, 30, 5, 0)),
            P::Time((12, 0, 1, 500_000)),
            P::Boolean(false),
        ],
    )?;
    let rows = conn.query("SELECT * FROM t3 WHERE id = $1", &[P::Int32(1)])?;
    let failed = conn.query("SELECT * FROM no_such_table", &[]).err();
    Ok(json!({
        "inserted": inserted,
        "columns": rows.columns.iter().map(|c| format!("{} {:?}", c.name, c.data_type)).collect::<Vec<_>>(),
        "rows": rows.rows.iter().map(|r| r.iter().map(|v| format!("{v:?}")).collect::<Vec<_>>()).collect::<Vec<_>>(),
        "failed": format!("{failed:?}"),
    }))
}

fn v4(address: &str) -> Result<Value, spin_sdk::pg4::PgError> {
    use spin_sdk::pg4::{Connection, Interval, ParameterValue as P, RangeBoundKind as K};
    let conn = Connection::open(address)?;
    conn.execute(
        "CREATE TABLE t4 (id int4, name text, born date, at timestamp, score numeric, tags text[], span int4range, doc jsonb, uid uuid, wait interval, bigs int8[], nothing text, spot point DEFAULT '(1,2)')",
        &[],
    )?;
    let inserted = conn.execute(
        "INSERT INTO t4 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        &[
            P::Int32(1),
            P::Str("Ada".into()),
            P::Date((1815, 12, 10)),
            P::Datetime((2026, 12, 7, 4, 30, 5, 0)),
            P::Decimal("12.50".into()),
            P::ArrayStr(vec![Some("a".into()), None]),
            P::RangeInt32((Some((1, K::Inclusive)), Some((5, K::Exclusive)))),
            P::Jsonb(br#"{"k":[1,2]}"#.to_vec()),
            P::Uuid("67e55044-10b1-426f-9247-bb680e5fe0c8".into()),
            P::Interval(Interval {
                micros: 1_500_000,
                days: 2,
                months: 3,
            }),
            P::ArrayInt64(vec![Some(1 << 40), None]),
            P::DbNull,
        ],
    )?;
    let rows = conn.query("SELECT * FROM t4 WHERE id = $1", &[P::Int32(1)])?;
    let failed = conn.query("SELECT * FROM no_such_table", &[]).err();
    Ok(json!({
        "inserted": inserted,
        "columns": rows.columns.iter().map(|c| format!("{} {:?}", c.name, c.data_type)).collect::<Vec<_>>(),
        "rows": rows.rows.iter().map(|r| r.iter().map(|v| format!("{v:?}")).collect::<Vec<_>>()).collect::<Vec<_>>(),
        "failed": format!("{failed:?}"),
    }))
}
