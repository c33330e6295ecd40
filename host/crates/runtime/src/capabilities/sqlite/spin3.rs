//! `spin:sqlite/sqlite@3.1.0`: the synchronous functions spin-sdk 5's `sqlite3` module
//! calls (3.0.0, served here by semver) and the async ones spin-sdk 7 calls.

use super::bindings::spin::sqlite::sqlite::{
    Error, Host, HostConnection, HostConnectionWithStore, QueryResult, RowResult, Value,
};
use super::database::{self, QueryOutput, SqliteError};
use super::{ConnectionHandle, Sqlite, SqliteView, blocking, connect};
use std::sync::{Arc, Mutex};
use wasmtime::component::{Accessor, FutureReader, Resource, StreamReader};

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

fn row(values: Vec<rusqlite::types::Value>) -> RowResult {
    use rusqlite::types::Value as Sql;
    RowResult {
        values: values
            .into_iter()
            .map(|value| match value {
                Sql::Integer(i) => Value::Integer(i),
                Sql::Real(r) => Value::Real(r),
                Sql::Text(t) => Value::Text(t),
                Sql::Blob(b) => Value::Blob(b),
                Sql::Null => Value::Null,
            })
            .collect(),
    }
}

/// Runs a statement off the async executor.
async fn run(
    conn: Arc<Mutex<rusqlite::Connection>>,
    statement: String,
    parameters: Vec<Value>,
    limits: super::QueryLimits,
) -> Result<QueryOutput, SqliteError> {
    let parameters = parameters.into_iter().map(to_sql).collect();
    blocking(move || database::execute(&conn, &statement, parameters, limits)).await
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
        let output = run(conn, statement, parameters, self.instance.grants.limits).await;
        Ok(match output {
            Ok(QueryOutput { error: Some(e), .. }) | Err(e) => Err(e.into()),
            Ok(output) => Ok(QueryResult {
                columns: output.columns,
                rows: output.rows.into_iter().map(row).collect(),
            }),
        })
    }

    async fn last_insert_rowid(
        &mut self,
        connection: Resource<ConnectionHandle>,
    ) -> wasmtime::Result<i64> {
        let conn = self.connection(&connection)?;
        Ok(blocking(move || Ok(database::last_insert_rowid(&conn)))
            .await
            .unwrap_or(0))
    }

    async fn changes(&mut self, connection: Resource<ConnectionHandle>) -> wasmtime::Result<u64> {
        let conn = self.connection(&connection)?;
        Ok(blocking(move || Ok(database::changes(&conn)))
            .await
            .unwrap_or(0))
    }

    async fn drop(&mut self, connection: Resource<ConnectionHandle>) -> wasmtime::Result<()> {
        self.close(connection)
    }
}

type Rows = (
    Vec<String>,
    StreamReader<RowResult>,
    FutureReader<Result<(), Error>>,
);

impl<T> HostConnectionWithStore<T> for Sqlite {
    async fn open_async(
        accessor: &Accessor<T, Self>,
        database: String,
    ) -> wasmtime::Result<Result<Resource<ConnectionHandle>, Error>> {
        let database = match accessor.with(|mut access| access.get().admit(&database)) {
            Ok(d) => d,
            Err(e) => return Ok(Err(e.into())),
        };
        match connect(database).await {
            Ok(connection) => accessor.with(|mut access| Ok(Ok(access.get().push(connection)?))),
            Err(e) => Ok(Err(e.into())),
        }
    }

    async fn execute_async(
        accessor: &Accessor<T, Self>,
        connection: Resource<ConnectionHandle>,
        statement: String,
        parameters: Vec<Value>,
    ) -> wasmtime::Result<Result<Rows, Error>> {
        let (conn, limits) = accessor.with(|mut access| -> wasmtime::Result<_> {
            let view = access.get();
            Ok((view.connection(&connection)?, view.instance.grants.limits))
        })?;
        let output = match run(conn, statement, parameters, limits).await {
            Ok(output) => output,
            Err(e) => return Ok(Err(e.into())),
        };
        let outcome = match output.error {
            Some(e) => Err(Error::from(e)),
            None => Ok(()),
        };
        let rows: Vec<RowResult> = output.rows.into_iter().map(row).collect();
        accessor.with(|mut access| {
            let stream = StreamReader::new(&mut access, rows)?;
            let future =
                FutureReader::new(
                    &mut access,
                    async move { Ok::<_, wasmtime::Error>(outcome) },
                )?;
            Ok(Ok((output.columns, stream, future)))
        })
    }

    async fn last_insert_rowid_async(
        accessor: &Accessor<T, Self>,
        connection: Resource<ConnectionHandle>,
    ) -> wasmtime::Result<i64> {
        let conn = accessor.with(|mut access| access.get().connection(&connection))?;
        Ok(blocking(move || Ok(database::last_insert_rowid(&conn)))
            .await
            .unwrap_or(0))
    }

    async fn changes_async(
        accessor: &Accessor<T, Self>,
        connection: Resource<ConnectionHandle>,
    ) -> wasmtime::Result<u64> {
        let conn = accessor.with(|mut access| access.get().connection(&connection))?;
        Ok(blocking(move || Ok(database::changes(&conn)))
            .await
            .unwrap_or(0))
    }
}

impl Host for SqliteView<'_> {}
