//! PostgreSQL values as every interface version carries them, one enum for columns read
//! and parameters sent; the versions map it to their own generated types.

use postgres_range::{BoundType, Normalizable, Range, RangeBound};
use rust_decimal::Decimal;
use std::error::Error as StdError;
use std::str::FromStr;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};
use tokio_postgres::Row;
use tokio_postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};

type BoxError = Box<dyn StdError + Sync + Send>;

/// One end of a range: its value and whether it is included (`None`: unbounded).
pub type Bound<T> = Option<(T, BoundKind)>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoundKind {
    Inclusive,
    Exclusive,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PgValue {
    Boolean(bool),
    Int8(i8),
    Int16(i16),
    Int32(i32),
    Int64(i64),
    Floating32(f32),
    Floating64(f64),
    Str(String),
    Binary(Vec<u8>),
    Date((i32, u8, u8)),
    Time((u8, u8, u8, u32)),
    Datetime((i32, u8, u8, u8, u8, u8, u32)),
    Timestamp(i64),
    Uuid(String),
    Jsonb(Vec<u8>),
    Decimal(String),
    RangeInt32((Bound<i32>, Bound<i32>)),
    RangeInt64((Bound<i64>, Bound<i64>)),
    RangeDecimal((Bound<String>, Bound<String>)),
    ArrayInt32(Vec<Option<i32>>),
    ArrayInt64(Vec<Option<i64>>),
    ArrayDecimal(Vec<Option<String>>),
    ArrayStr(Vec<Option<String>>),
    Interval(Interval),
    Null,
    /// A column of a type no interface version has a case for, in the server's binary form.
    Unsupported(Vec<u8>),
}

/// The type of a column, as the interfaces name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PgType {
    Boolean,
    Int8,
    Int16,
    Int32,
    Int64,
    Floating32,
    Floating64,
    Str,
    Binary,
    Date,
    Time,
    Datetime,
    Uuid,
    Jsonb,
    Decimal,
    RangeInt32,
    RangeInt64,
    RangeDecimal,
    ArrayInt32,
    ArrayInt64,
    ArrayDecimal,
    ArrayStr,
    Interval,
    Other(String),
}

/// PostgreSQL's `interval`: months, days and microseconds are kept apart, as the server does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval {
    pub micros: i64,
    pub days: i32,
    pub months: i32,
}

pub fn column_type(t: &Type) -> PgType {
    match *t {
        Type::BOOL => PgType::Boolean,
        Type::CHAR => PgType::Int8,
        Type::INT2 => PgType::Int16,
        Type::INT4 => PgType::Int32,
        Type::INT8 => PgType::Int64,
        Type::FLOAT4 => PgType::Floating32,
        Type::FLOAT8 => PgType::Floating64,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => PgType::Str,
        Type::BYTEA => PgType::Binary,
        Type::DATE => PgType::Date,
        Type::TIME => PgType::Time,
        Type::TIMESTAMP | Type::TIMESTAMPTZ => PgType::Datetime,
        Type::UUID => PgType::Uuid,
        Type::JSONB | Type::JSON => PgType::Jsonb,
        Type::NUMERIC => PgType::Decimal,
        Type::INT4_RANGE => PgType::RangeInt32,
        Type::INT8_RANGE => PgType::RangeInt64,
        Type::NUM_RANGE => PgType::RangeDecimal,
        Type::INT4_ARRAY => PgType::ArrayInt32,
        Type::INT8_ARRAY => PgType::ArrayInt64,
        Type::NUMERIC_ARRAY => PgType::ArrayDecimal,
        Type::TEXT_ARRAY | Type::VARCHAR_ARRAY | Type::BPCHAR_ARRAY => PgType::ArrayStr,
        Type::INTERVAL => PgType::Interval,
        _ => PgType::Other(t.name().to_owned()),
    }
}

/// Reads column `i` of `row`; a value the column's type cannot become is an error naming
/// the column.
pub fn read(row: &Row, i: usize) -> Result<PgValue, String> {
    let column = &row.columns()[i];
    let fail = |e: tokio_postgres::Error| format!("column `{}`: {e}", column.name());
    fn get<'a, T: FromSql<'a>>(
        row: &'a Row,
        i: usize,
        f: impl FnOnce(T) -> Result<PgValue, String>,
    ) -> Result<Result<PgValue, String>, tokio_postgres::Error> {
        Ok(match row.try_get::<_, Option<T>>(i)? {
            Some(v) => f(v),
            None => Ok(PgValue::Null),
        })
    }
    fn ok(v: PgValue) -> Result<PgValue, String> {
        Ok(v)
    }
    let value = match *column.type_() {
        Type::BOOL => get(row, i, |v| ok(PgValue::Boolean(v))),
        Type::CHAR => get(row, i, |v| ok(PgValue::Int8(v))),
        Type::INT2 => get(row, i, |v| ok(PgValue::Int16(v))),
        Type::INT4 => get(row, i, |v| ok(PgValue::Int32(v))),
        Type::INT8 => get(row, i, |v| ok(PgValue::Int64(v))),
        Type::FLOAT4 => get(row, i, |v| ok(PgValue::Floating32(v))),
        Type::FLOAT8 => get(row, i, |v| ok(PgValue::Floating64(v))),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => {
            get(row, i, |v| ok(PgValue::Str(v)))
        }
        Type::BYTEA => get(row, i, |v| ok(PgValue::Binary(v))),
        Type::DATE => get(row, i, |d: Date| ok(PgValue::Date(date_parts(d)))),
        Type::TIME => get(row, i, |t: Time| ok(PgValue::Time(time_parts(t)))),
        Type::TIMESTAMP => get(row, i, |dt: PrimitiveDateTime| {
            ok(PgValue::Datetime(datetime_parts(dt)))
        }),
        Type::TIMESTAMPTZ => get(row, i, |dt: OffsetDateTime| {
            let utc = dt.to_offset(time::UtcOffset::UTC);
            ok(PgValue::Datetime(datetime_parts(PrimitiveDateTime::new(
                utc.date(),
                utc.time(),
            ))))
        }),
        Type::UUID => get(row, i, |u: uuid::Uuid| ok(PgValue::Uuid(u.to_string()))),
        Type::JSONB | Type::JSON => get(row, i, |j: serde_json::Value| {
            serde_json::to_vec(&j)
                .map(PgValue::Jsonb)
                .map_err(|e| e.to_string())
        }),
        Type::NUMERIC => get(row, i, |d: Decimal| ok(PgValue::Decimal(d.to_string()))),
        Type::INT4_RANGE => get(row, i, |r: Range<i32>| {
            ok(PgValue::RangeInt32(bounds(&r, |v| *v)))
        }),
        Type::INT8_RANGE => get(row, i, |r: Range<i64>| {
            ok(PgValue::RangeInt64(bounds(&r, |v| *v)))
        }),
        Type::NUM_RANGE => get(row, i, |r: Range<RangeDecimal>| {
            ok(PgValue::RangeDecimal(bounds(&r, |v| v.0.to_string())))
        }),
        Type::INT4_ARRAY => get(row, i, |v| ok(PgValue::ArrayInt32(v))),
        Type::INT8_ARRAY => get(row, i, |v| ok(PgValue::ArrayInt64(v))),
        Type::NUMERIC_ARRAY => get(row, i, |v: Vec<Option<Decimal>>| {
            ok(PgValue::ArrayDecimal(
                v.into_iter().map(|d| d.map(|d| d.to_string())).collect(),
            ))
        }),
        Type::TEXT_ARRAY | Type::VARCHAR_ARRAY | Type::BPCHAR_ARRAY => {
            get(row, i, |v| ok(PgValue::ArrayStr(v)))
        }
        Type::INTERVAL => get(row, i, |v| ok(PgValue::Interval(v))),
        _ => get(row, i, |v: Raw| ok(PgValue::Unsupported(v.0))),
    };
    value.map_err(fail)?
}

/// A parameter as the driver sends it; a value that is not what its case says (a bad
/// date, a UUID that does not parse) is an error naming the parameter.
pub fn parameter(index: usize, value: PgValue) -> Result<Box<dyn ToSql + Send + Sync>, String> {
    let bad = |what: &str| format!("parameter ${}: {what}", index + 1);
    Ok(match value {
        PgValue::Boolean(v) => Box::new(v),
        PgValue::Int8(v) => Box::new(v),
        PgValue::Int16(v) => Box::new(v),
        PgValue::Int32(v) => Box::new(v),
        PgValue::Int64(v) => Box::new(v),
        PgValue::Floating32(v) => Box::new(v),
        PgValue::Floating64(v) => Box::new(v),
        PgValue::Str(v) => Box::new(v),
        PgValue::Binary(v) => Box::new(v),
        PgValue::Date((y, m, d)) => Box::new(date(y, m, d).ok_or_else(|| bad("not a date"))?),
        PgValue::Time((h, m, s, ns)) => {
            Box::new(Time::from_hms_nano(h, m, s, ns).map_err(|_| bad("not a time of day"))?)
        }
        PgValue::Datetime((y, mo, d, h, mi, s, ns)) => {
            let date = date(y, mo, d).ok_or_else(|| bad("not a date"))?;
            let time = Time::from_hms_nano(h, mi, s, ns).map_err(|_| bad("not a time of day"))?;
            Box::new(PrimitiveDateTime::new(date, time))
        }
        PgValue::Timestamp(secs) => Box::new(
            OffsetDateTime::from_unix_timestamp(secs).map_err(|_| bad("timestamp out of range"))?,
        ),
        PgValue::Uuid(v) => Box::new(uuid::Uuid::parse_str(&v).map_err(|_| bad("not a UUID"))?),
        PgValue::Jsonb(v) => {
            Box::new(serde_json::from_slice::<serde_json::Value>(&v).map_err(|_| bad("not JSON"))?)
        }
        PgValue::Decimal(v) => Box::new(decimal(&v).ok_or_else(|| bad("not a decimal"))?),
        PgValue::RangeInt32((low, high)) => Box::new(range(low, high)),
        PgValue::RangeInt64((low, high)) => Box::new(range(low, high)),
        PgValue::RangeDecimal((low, high)) => {
            let parse = |b: Bound<String>| match b {
                None => Ok(None),
                Some((v, kind)) => decimal(&v)
                    .map(|d| Some((RangeDecimal(d), kind)))
                    .ok_or_else(|| bad("a range bound is not a decimal")),
            };
            Box::new(range(parse(low)?, parse(high)?))
        }
        PgValue::ArrayInt32(v) => Box::new(v),
        PgValue::ArrayInt64(v) => Box::new(v),
        PgValue::ArrayDecimal(v) => Box::new(
            v.iter()
                .map(|d| d.as_deref().map(decimal).map(|d| d.ok_or(())).transpose())
                .collect::<Result<Vec<Option<Decimal>>, ()>>()
                .map_err(|_| bad("an element is not a decimal"))?,
        ),
        PgValue::ArrayStr(v) => Box::new(v),
        PgValue::Interval(v) => Box::new(v),
        PgValue::Null => Box::new(Null),
        PgValue::Unsupported(_) => return Err(bad("an unsupported value cannot be sent")),
    })
}

/// About what a value costs in memory, to bound a result's size.
pub fn size_of(value: &PgValue) -> usize {
    let strings = |v: &[Option<String>]| v.iter().flatten().map(String::len).sum::<usize>();
    16 + match value {
        PgValue::Str(s) | PgValue::Uuid(s) | PgValue::Decimal(s) => s.len(),
        PgValue::Binary(b) | PgValue::Jsonb(b) | PgValue::Unsupported(b) => b.len(),
        PgValue::ArrayInt32(v) => v.len() * 8,
        PgValue::ArrayInt64(v) => v.len() * 16,
        PgValue::ArrayDecimal(v) | PgValue::ArrayStr(v) => v.len() * 24 + strings(v),
        PgValue::RangeDecimal(_) => 64,
        _ => 0,
    }
}

fn date(y: i32, m: u8, d: u8) -> Option<Date> {
    Date::from_calendar_date(y, Month::try_from(m).ok()?, d).ok()
}

fn decimal(text: &str) -> Option<Decimal> {
    Decimal::from_str(text)
        .or_else(|_| Decimal::from_scientific(text))
        .ok()
}

fn date_parts(d: Date) -> (i32, u8, u8) {
    (d.year(), d.month() as u8, d.day())
}

fn time_parts(t: Time) -> (u8, u8, u8, u32) {
    (t.hour(), t.minute(), t.second(), t.nanosecond())
}

fn datetime_parts(dt: PrimitiveDateTime) -> (i32, u8, u8, u8, u8, u8, u32) {
    let ((y, mo, d), (h, mi, s, ns)) = (date_parts(dt.date()), time_parts(dt.time()));
    (y, mo, d, h, mi, s, ns)
}

fn bounds<T: PartialOrd + Normalizable, U>(
    range: &Range<T>,
    f: impl Fn(&T) -> U,
) -> (Bound<U>, Bound<U>) {
    let kind = |t: BoundType| match t {
        BoundType::Inclusive => BoundKind::Inclusive,
        BoundType::Exclusive => BoundKind::Exclusive,
    };
    (
        range.lower().map(|b| (f(&b.value), kind(b.type_))),
        range.upper().map(|b| (f(&b.value), kind(b.type_))),
    )
}

fn range<T: PartialOrd + Normalizable>(low: Bound<T>, high: Bound<T>) -> Range<T> {
    let kind = |k| match k {
        BoundKind::Inclusive => BoundType::Inclusive,
        BoundKind::Exclusive => BoundType::Exclusive,
    };
    Range::new(
        low.map(|(v, k)| RangeBound::new(v, kind(k))),
        high.map(|(v, k)| RangeBound::new(v, kind(k))),
    )
}

/// A decimal as a range element: `numrange` is continuous, so its bounds stay as given.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
struct RangeDecimal(Decimal);

impl Normalizable for RangeDecimal {
    fn normalize<S: postgres_range::BoundSided>(bound: RangeBound<S, Self>) -> RangeBound<S, Self> {
        bound
    }
}

impl<'a> FromSql<'a> for RangeDecimal {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        Decimal::from_sql(ty, raw).map(RangeDecimal)
    }
    fn accepts(ty: &Type) -> bool {
        <Decimal as FromSql>::accepts(ty)
    }
}

impl ToSql for RangeDecimal {
    fn to_sql(&self, ty: &Type, out: &mut bytes::BytesMut) -> Result<IsNull, BoxError> {
        self.0.to_sql(ty, out)
    }
    fn accepts(ty: &Type) -> bool {
        <Decimal as ToSql>::accepts(ty)
    }
    to_sql_checked!();
}

/// `interval` on the wire: microseconds, days, months (16 bytes, big-endian).
impl<'a> FromSql<'a> for Interval {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        let raw: &[u8; 16] = raw.try_into().map_err(|_| "an interval is 16 bytes")?;
        let (micros, rest) = raw.split_at(8);
        let (days, months) = rest.split_at(4);
        Ok(Interval {
            micros: i64::from_be_bytes(micros.try_into()?),
            days: i32::from_be_bytes(days.try_into()?),
            months: i32::from_be_bytes(months.try_into()?),
        })
    }
    fn accepts(ty: &Type) -> bool {
        *ty == Type::INTERVAL
    }
}

impl ToSql for Interval {
    fn to_sql(&self, _: &Type, out: &mut bytes::BytesMut) -> Result<IsNull, BoxError> {
        out.extend_from_slice(&self.micros.to_be_bytes());
        out.extend_from_slice(&self.days.to_be_bytes());
        out.extend_from_slice(&self.months.to_be_bytes());
        Ok(IsNull::No)
    }
    fn accepts(ty: &Type) -> bool {
        *ty == Type::INTERVAL
    }
    to_sql_checked!();
}

/// NULL, for a parameter of any type.
#[derive(Debug)]
struct Null;

impl ToSql for Null {
    fn to_sql(&self, _: &Type, _: &mut bytes::BytesMut) -> Result<IsNull, BoxError> {
        Ok(IsNull::Yes)
    }
    fn accepts(_: &Type) -> bool {
        true
    }
    to_sql_checked!();
}

/// Any column, as the bytes the server sent.
struct Raw(Vec<u8>);

impl<'a> FromSql<'a> for Raw {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        Ok(Raw(raw.to_vec()))
    }
    fn accepts(_: &Type) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_round_trips_through_its_wire_form() {
        let interval = Interval {
            micros: -1_500_000,
            days: 3,
            months: 14,
        };
        let mut out = bytes::BytesMut::new();
        interval.to_sql(&Type::INTERVAL, &mut out).unwrap();
        assert_eq!(Interval::from_sql(&Type::INTERVAL, &out).unwrap(), interval);
        assert!(Interval::from_sql(&Type::INTERVAL, &out[..15]).is_err());
    }

    #[test]
    fn bad_parameters_name_their_position() {
        let err = |v| parameter(2, v).err().unwrap();
        assert_eq!(
            err(PgValue::Date((2024, 2, 30))),
            "parameter $3: not a date"
        );
        assert_eq!(
            err(PgValue::Uuid("nope".into())),
            "parameter $3: not a UUID"
        );
        assert_eq!(
            err(PgValue::Decimal("1.2.3".into())),
            "parameter $3: not a decimal"
        );
        assert!(parameter(0, PgValue::Decimal("1e3".into())).is_ok());
    }
}
