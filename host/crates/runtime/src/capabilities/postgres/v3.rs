//! `spin:postgres/postgres@3.0.0`: spin-sdk 5's `pg3`, scalar, date and time values. A
//! column of a type 3.0.0 has no case for reads as `unsupported`.

use super::bindings::spin::postgres3_0_0::postgres::{
    Column, DbDataType, DbValue, Error, Host, HostConnection, ParameterValue, RowSet,
};
use super::client::{self, PgError};
use super::values::{PgType, PgValue};
use super::{ConnectionHandle, PostgresView};
use wasmtime::component::Resource;

impl From<PgError> for Error {
    fn from(e: PgError) -> Self {
        match e {
            PgError::ConnectionFailed(m) => Error::ConnectionFailed(m),
            PgError::BadParameter(m) => Error::BadParameter(m),
            PgError::QueryFailed(f) => Error::QueryFailed(f.text().to_owned()),
            PgError::ValueConversionFailed(m) => Error::ValueConversionFailed(m),
            PgError::Other(m) => Error::Other(m),
        }
    }
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
        PgValue::Null => D::DbNull,
        _ => D::Unsupported,
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
        _ => T::Other,
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
            .map(|set| RowSet {
                columns: set
                    .columns
                    .into_iter()
                    .map(|(name, t)| Column {
                        name,
                        data_type: data_type(t),
                    })
                    .collect(),
                rows: set
                    .rows
                    .into_iter()
                    .map(|r| r.into_iter().map(value).collect())
                    .collect(),
            })
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

impl Host for PostgresView<'_> {}
