//! Spin's outbound PostgreSQL as spin-sdk 7 offers it (`spin:postgres/postgres@4.2.0`,
//! async, rows as a stream): the same script as `spin5-probe`'s `pg4`.

use serde_json::{Value, json};
use spin_sdk::pg::{Connection, Interval, ParameterValue as P, RangeBoundKind as K};

pub async fn script(address: &str) -> Result<Value, String> {
    run(address).await.map_err(|e| format!("{e:?}"))
}

async fn run(address: &str) -> Result<Value, spin_sdk::pg::Error> {
    let conn = Connection::open(address).await?;
    conn.execute(
        "CREATE TABLE t7 (id int4, name text, born date, at timestamp, score numeric, tags text[], span int4range, doc jsonb, uid uuid, wait interval, bigs int8[], nothing text, spot point DEFAULT '(1,2)')",
        vec![],
    )
    .await?;
    let inserted = conn
        .execute(
            "INSERT INTO t7 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            vec![
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
        )
        .await?;
    let result = conn
        .query("SELECT * FROM t7 WHERE id = $1", vec![P::Int32(1)])
        .await?;
    let columns: Vec<String> = result
        .columns()
        .iter()
        .map(|c| format!("{} {:?}", c.name, c.data_type))
        .collect();
    let width = columns.len();
    let rows: Vec<Vec<String>> = result
        .collect()
        .await?
        .iter()
        .map(|r| (0..width).map(|i| format!("{:?}", r[i])).collect())
        .collect();
    let failed = conn
        .query("SELECT * FROM no_such_table", vec![])
        .await
        .err();
    Ok(json!({
        "inserted": inserted,
        "columns": columns,
        "rows": rows,
        "failed": format!("{failed:?}"),
    }))
}
