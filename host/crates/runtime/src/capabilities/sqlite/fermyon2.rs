//! `fermyon:spin/sqlite@2.0.0`: the WASIp2 interface of spin-sdk 5's `sqlite` module.

use super::bindings::fermyon::spin::sqlite::{
    Error, Host, HostConnection, QueryResult, RowResult, Value,
};
use super::database::{self, SqliteError};
use super::{ConnectionHandle, SqliteView, blocking, connect};
use wasmtime::component::Resource;

impl From<SqliteError> for Error {
    fn from(e: SqliteError) -> Self {
        match e {
            SqliteError::NoSuchDatabase => Error::NoSuchDatabase,
            SqliteError::AccessDenied => Error::AccessDenied,
            SqliteError::InvalidConnection => Error::InvalidConnection,
            SqliteError::DatabaseFull => Error::DatabaseFull,
            SqliteError::Io(m) => Error::Io(m),
        }
    }
}

fn to_sql(value: Value) -> rusqlite::types::Value {
    use rusqlite::types::Value as Sql;
    match value {
        Value::Integer(i) => Sql::Integer(i),
        Value::Real(r) => Sql::Real(r),
        Value::Text(t) => Sql::Text(t),
        Value::Blob(b) => Sql::Blob(b),
        Value::Null => Sql::Null,
    }
}

fn from_sql(value: rusqlite::types::Value) -> Value {
    use rusqlite::types::Value as Sql;
    match value {
        Sql::Integer(i) => Value::Integer(i),
        Sql::Real(r) => Value::Real(r),
        Sql::Text(t) => Value::Text(t),
        Sql::Blob(b) => Value::Blob(b),
        Sql::Null => Value::Null,
    }
}

impl HostConnection for SqliteView<'_> {
    async fn open(
        &mut self,
        database: String,
    ) -> wasmtime::Result<Result<Resource<ConnectionHandle>, Error>> {
        let database = match self.admit(&database) {
            Ok(d) => d,
            Err(e) => return Ok(Err(e.into())),
        };
        match connect(database).await {
            Ok(connection) => Ok(Ok(self.push(connection)?)),
            Err(e) => Ok(Err(e.into())),
        }
    }

    async fn execute(
        &mut self,
        connection: Resource<ConnectionHandle>,
        statement: String,
        parameters: Vec<Value>,
    ) -> wasmtime::Result<Result<QueryResult, Error>> {
        let conn = self.connection(&connection)?;
        let limits = self.instance.grants.limits;
        let parameters = parameters.into_iter().map(to_sql).collect();
        let output =
            blocking(move || database::execute(&conn, &statement, parameters, limits)).await;
        Ok(match output {
            Ok(output) => match output.error {
                Some(e) => Err(e.into()),
                None => Ok(QueryResult {
                    columns: output.columns,
                    rows: output
                        .rows
                        .into_iter()
                        .map(|row| RowResult {
                            values: row.into_iter().map(from_sql).collect(),
                        })
                        .collect(),
                }),
            },
            Err(e) => Err(e.into()),
        })
    }

    async fn drop(&mut self, connection: Resource<ConnectionHandle>) -> wasmtime::Result<()> {
        self.close(connection)
    }
}

impl Host for SqliteView<'_> {}
