//! `spin:postgres/postgres@4.2.0`: spin-sdk 7's `pg` (the async functions) and spin-sdk
//! 5's `pg4` (the synchronous ones of 4.0.0, served by semver).

use super::bindings::spin::postgres4_2_0::postgres::{
    Column, DbDataType, DbError, DbValue, Error, Host, HostConnection, HostConnectionBuilder,
    HostConnectionBuilderWithStore, HostConnectionWithStore, Interval, ParameterValue, QueryError,
    RangeBoundKind, Row, RowSet,
};
use super::client::{self, PgError, QueryFailure};
use super::values::{self, BoundKind, PgType, PgValue};
use super::{BuilderHandle, ConnectionHandle, Postgres, PostgresView};
use wasmtime::component::{Accessor, FutureReader, Resource, StreamReader};

impl From<PgError> for Error {
    fn from(e: PgError) -> Self {
        match e {
            PgError::ConnectionFailed(m) => Error::ConnectionFailed(m),
            PgError::BadParameter(m) => Error::BadParameter(m),
            PgError::QueryFailed(f) => Error::QueryFailed(match *f {
                QueryFailure::Text(t) => QueryError::Text(t),
                QueryFailure::Db {
                    as_text,
                    severity,
                    code,
                    message,
                    detail,
                    extras,
                } => QueryError::DbError(DbError {
                    as_text,
                    severity,
                    code,
                    message,
                    detail,
                    extras,
                }),
            }),
            PgError::ValueConversionFailed(m) => Error::ValueConversionFailed(m),
            PgError::Other(m) => Error::Other(m),
        }
    }
}

fn kind_in(k: RangeBoundKind) -> BoundKind {
    match k {
        RangeBoundKind::Inclusive => BoundKind::Inclusive,
        RangeBoundKind::Exclusive => BoundKind::Exclusive,
    }
}

fn kind_out(k: BoundKind) -> RangeBoundKind {
    match k {
        BoundKind::Inclusive => RangeBoundKind::Inclusive,
        BoundKind::Exclusive => RangeBoundKind::Exclusive,
    }
}

type WitBound<T> = Option<(T, RangeBoundKind)>;

fn bounds_in<T>((l, h): (WitBound<T>, WitBound<T>)) -> (values::Bound<T>, values::Bound<T>) {
    (
        l.map(|(v, k)| (v, kind_in(k))),
        h.map(|(v, k)| (v, kind_in(k))),
    )
}

fn bounds_out<T>((l, h): (values::Bound<T>, values::Bound<T>)) -> (WitBound<T>, WitBound<T>) {
    (
        l.map(|(v, k)| (v, kind_out(k))),
        h.map(|(v, k)| (v, kind_out(k))),
    )
}

fn parameter(p: ParameterValue) -> PgValue {
    use ParameterValue as P;
    match p {
        P::Boolean(v) => PgValue::Boolean(v),
        P::Int8(v) => PgValue::Int8(v),
        P::Int16(v) => PgValue::Int16(v),
        P::Int32(v) => PgValue::Int32(v),
        P::Int64(v) => PgValue::Int64(v),
        P::Floating32(v) => PgValue::Floating32(v),
        P::Floating64(v) => PgValue::Floating64(v),
        P::Str(v) => PgValue::Str(v),
        P::Binary(v) => PgValue::Binary(v),
        P::Date(v) => PgValue::Date(v),
        P::Time(v) => PgValue::Time(v),
        P::Datetime(v) => PgValue::Datetime(v),
        P::Timestamp(v) => PgValue::Timestamp(v),
        P::Uuid(v) => PgValue::Uuid(v),
        P::Jsonb(v) => PgValue::Jsonb(v),
        P::Decimal(v) => PgValue::Decimal(v),
        P::RangeInt32(v) => PgValue::RangeInt32(bounds_in(v)),
        P::RangeInt64(v) => PgValue::RangeInt64(bounds_in(v)),
        P::RangeDecimal(v) => PgValue::RangeDecimal(bounds_in(v)),
        P::ArrayInt32(v) => PgValue::ArrayInt32(v),
        P::ArrayInt64(v) => PgValue::ArrayInt64(v),
        P::ArrayDecimal(v) => PgValue::ArrayDecimal(v),
        P::ArrayStr(v) => PgValue::ArrayStr(v),
        P::Interval(i) => PgValue::Interval(values::Interval {
            micros: i.micros,
            days: i.days,
            months: i.months,
        }),
        P::DbNull => PgValue::Null,
    }
}

fn value(v: PgValue) -> DbValue {
    use DbValue as D;
    match v {
        PgValue::Boolean(v) => D::Boolean(v),
        PgValue::Int8(v) => D::Int8(v),
        PgValue::Int16(v) => D::Int16(v),
        PgValue::Int32(v) => D::Int32(v),
        PgValue::Int64(v) => D::Int64(v),
        PgValue::Floating32(v) => D::Floating32(v),
        PgValue::Floating64(v) => D::Floating64(v),
        PgValue::Str(v) => D::Str(v),
        PgValue::Binary(v) => D::Binary(v),
        PgValue::Date(v) => D::Date(v),
        PgValue::Time(v) => D::Time(v),
        PgValue::Datetime(v) => D::Datetime(v),
        PgValue::Timestamp(v) => D::Timestamp(v),
        PgValue::Uuid(v) => D::Uuid(v),
        PgValue::Jsonb(v) => D::Jsonb(v),
        PgValue::Decimal(v) => D::Decimal(v),
        PgValue::RangeInt32(v) => D::RangeInt32(bounds_out(v)),
        PgValue::RangeInt64(v) => D::RangeInt64(bounds_out(v)),
        PgValue::RangeDecimal(v) => D::RangeDecimal(bounds_out(v)),
        PgValue::ArrayInt32(v) => D::ArrayInt32(v),
        PgValue::ArrayInt64(v) => D::ArrayInt64(v),
        PgValue::ArrayDecimal(v) => D::ArrayDecimal(v),
        PgValue::ArrayStr(v) => D::ArrayStr(v),
        PgValue::Interval(i) => D::Interval(Interval {
            micros: i.micros,
            days: i.days,
            months: i.months,
        }),
        PgValue::Null => D::DbNull,
        PgValue::Unsupported(raw) => D::Unsupported(raw),
    }
}

fn data_type(t: PgType) -> DbDataType {
    use DbDataType as T;
    match t {
        PgType::Boolean => T::Boolean,
        PgType::Int8 => T::Int8,
        PgType::Int16 => T::Int16,
        PgType::Int32 => T::Int32,
        PgType::Int64 => T::Int64,
        PgType::Floating32 => T::Floating32,
        PgType::Floating64 => T::Floating64,
        PgType::Str => T::Str,
        PgType::Binary => T::Binary,
        PgType::Date => T::Date,
        PgType::Time => T::Time,
        PgType::Datetime => T::Datetime,
        PgType::Uuid => T::Uuid,
        PgType::Jsonb => T::Jsonb,
        PgType::Decimal => T::Decimal,
        PgType::RangeInt32 => T::RangeInt32,
        PgType::RangeInt64 => T::RangeInt64,
        PgType::RangeDecimal => T::RangeDecimal,
        PgType::ArrayInt32 => T::ArrayInt32,
        PgType::ArrayInt64 => T::ArrayInt64,
        PgType::ArrayDecimal => T::ArrayDecimal,
        PgType::ArrayStr => T::ArrayStr,
        PgType::Interval => T::Interval,
        PgType::Other(name) => T::Other(name),
    }
}

fn columns(columns: Vec<(String, PgType)>) -> Vec<Column> {
    columns
        .into_iter()
        .map(|(name, t)| Column {
            name,
            data_type: data_type(t),
        })
        .collect()
}

fn rows(rows: Vec<Vec<PgValue>>) -> Vec<Row> {
    rows.into_iter()
        .map(|r| r.into_iter().map(value).collect())
        .collect()
}

fn row_set(set: client::RowSet) -> RowSet {
    RowSet {
        columns: columns(set.columns),
        rows: rows(set.rows),
    }
}

type Reply<T> = wasmtime::Result<Result<T, Error>>;

impl HostConnection for PostgresView<'_> {
    async fn open(&mut self, address: String) -> Reply<Resource<ConnectionHandle>> {
        Ok(self.open_connection(&address).await?.map_err(Into::into))
    }

    async fn query(
        &mut self,
        c: Resource<ConnectionHandle>,
        statement: String,
        params: Vec<ParameterValue>,
    ) -> Reply<RowSet> {
        let c = self.client(&c)?;
        let params = params.into_iter().map(parameter).collect();
        Ok(client::query(&c, &statement, params)
            .await
            .map(row_set)
            .map_err(Into::into))
    }

    async fn execute(
        &mut self,
        c: Resource<ConnectionHandle>,
        statement: String,
        params: Vec<ParameterValue>,
    ) -> Reply<u64> {
        let c = self.client(&c)?;
        let params = params.into_iter().map(parameter).collect();
        Ok(client::execute(&c, &statement, params)
            .await
            .map_err(Into::into))
    }

    async fn drop(&mut self, c: Resource<ConnectionHandle>) -> wasmtime::Result<()> {
        self.close(c)
    }
}

impl HostConnectionBuilder for PostgresView<'_> {
    async fn new(&mut self, address: String) -> wasmtime::Result<Resource<BuilderHandle>> {
        Ok(self.table.push(BuilderHandle { address })?)
    }

    async fn set_ca_root(&mut self, _: Resource<BuilderHandle>, _: String) -> Reply<()> {
        Ok(Err(Error::Other(
            "TLS is not supported by this host: connections are plain TCP".into(),
        )))
    }

    async fn build(&mut self, b: Resource<BuilderHandle>) -> Reply<Resource<ConnectionHandle>> {
        let address = self.table.get(&b)?.address.clone();
        Ok(self.open_connection(&address).await?.map_err(Into::into))
    }

    async fn drop(&mut self, b: Resource<BuilderHandle>) -> wasmtime::Result<()> {
        self.table.delete(b)?;
        Ok(())
    }
}

/// Admits and opens a connection without holding the store across the connect.
async fn open_async<T>(
    accessor: &Accessor<T, Postgres>,
    address: String,
) -> Reply<Resource<ConnectionHandle>> {
    let config = match accessor.with(|mut a| a.get().admit(&address)) {
        Ok(c) => c,
        Err(e) => return Ok(Err(e.into())),
    };
    match client::connect(config).await {
        Ok(c) => accessor.with(|mut a| Ok(Ok(a.get().push(c)?))),
        Err(e) => Ok(Err(e.into())),
    }
}

impl<T> HostConnectionWithStore<T> for Postgres {
    async fn open_async(
        accessor: &Accessor<T, Self>,
        address: String,
    ) -> Reply<Resource<ConnectionHandle>> {
        open_async(accessor, address).await
    }

    async fn query_async(
        accessor: &Accessor<T, Self>,
        c: Resource<ConnectionHandle>,
        statement: String,
        params: Vec<ParameterValue>,
    ) -> Reply<(
        Vec<Column>,
        StreamReader<Row>,
        FutureReader<Result<(), Error>>,
    )> {
        let c = accessor.with(|mut a| a.get().client(&c))?;
        let params = params.into_iter().map(parameter).collect();
        // The whole result is read (within the host's size bound) before the guest sees
        // the first row: the stream then carries rows that are already here.
        let set = match client::query(&c, &statement, params).await {
            Ok(set) => set,
            Err(e) => return Ok(Err(e.into())),
        };
        let (cols, rows) = (columns(set.columns), rows(set.rows));
        accessor.with(|mut access| {
            let stream = StreamReader::new(&mut access, rows)?;
            let done = FutureReader::new(&mut access, async { Ok::<_, wasmtime::Error>(Ok(())) })?;
            Ok(Ok((cols, stream, done)))
        })
    }

    async fn execute_async(
        accessor: &Accessor<T, Self>,
        c: Resource<ConnectionHandle>,
        statement: String,
        params: Vec<ParameterValue>,
    ) -> Reply<u64> {
        let c = accessor.with(|mut a| a.get().client(&c))?;
        let params = params.into_iter().map(parameter).collect();
        Ok(client::execute(&c, &statement, params)
            .await
            .map_err(Into::into))
    }
}

impl<T> HostConnectionBuilderWithStore<T> for Postgres {
    async fn build_async(
        accessor: &Accessor<T, Self>,
        b: Resource<BuilderHandle>,
    ) -> Reply<Resource<ConnectionHandle>> {
        let address =
            accessor.with(|mut a| a.get().table.get(&b).map(|builder| builder.address.clone()))?;
        open_async(accessor, address).await
    }
}

impl Host for PostgresView<'_> {}
