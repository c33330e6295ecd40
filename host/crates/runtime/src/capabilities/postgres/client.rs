//! Connections, statements and errors on `tokio-postgres`, for every interface version.

use super::values::{self, PgType, PgValue};
use crate::capabilities::outbound_http::OutboundGrants;
use crate::error::with_causes;
use futures::StreamExt;
use std::time::Duration;
use tokio_postgres::config::Host;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Config, NoTls};

/// How long connecting, or any one statement, may take.
const TIMEOUT: Duration = Duration::from_secs(30);
/// The largest result built in the host; no guest could receive more than its memory.
const MAX_RESULT_BYTES: usize = 64 << 20;

/// An error in the terms of the interfaces (4.x carries query failures structured).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PgError {
    #[error("connection failed: {0}")]
    ConnectionFailed(String),
    #[error("bad parameter: {0}")]
    BadParameter(String),
    #[error("query failed: {0}")]
    QueryFailed(Box<QueryFailure>),
    #[error("value conversion failed: {0}")]
    ValueConversionFailed(String),
    #[error("{0}")]
    Other(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryFailure {
    Text(String),
    Db {
        as_text: String,
        severity: String,
        code: String,
        message: String,
        detail: Option<String>,
        extras: Vec<(String, String)>,
    },
}

impl QueryFailure {
    pub fn text(&self) -> &str {
        match self {
            QueryFailure::Text(t) => t,
            QueryFailure::Db { as_text, .. } => as_text,
        }
    }
}

impl std::fmt::Display for QueryFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.text())
    }
}

impl From<tokio_postgres::Error> for QueryFailure {
    fn from(e: tokio_postgres::Error) -> Self {
        match e.as_db_error() {
            Some(db) => {
                let extras = [
                    ("hint", db.hint()),
                    ("schema", db.schema()),
                    ("table", db.table()),
                    ("column", db.column()),
                    ("constraint", db.constraint()),
                ];
                QueryFailure::Db {
                    as_text: db.to_string(),
                    severity: db.severity().to_owned(),
                    code: db.code().code().to_owned(),
                    message: db.message().to_owned(),
                    detail: db.detail().map(str::to_owned),
                    extras: extras
                        .into_iter()
                        .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned())))
                        .collect(),
                }
            }
            None => QueryFailure::Text(with_causes(&e)),
        }
    }
}

/// A `postgres://` URL or a `host=… port=…` string.
pub fn parse_address(address: &str) -> Result<Config, PgError> {
    address
        .parse::<Config>()
        .map_err(|e| PgError::ConnectionFailed(format!("invalid address: {e}")))
}

/// Every host the driver could connect to must be allowed: each `host` with its port, and
/// each `hostaddr` (which the driver dials instead of the name). Unix sockets never are.
pub fn check_hosts(config: &Config, grants: &OutboundGrants) -> Result<(), PgError> {
    let ports = config.get_ports();
    let port = |i: usize| match ports {
        [] => 5432,
        [one] => *one,
        many => many.get(i).copied().unwrap_or(5432),
    };
    let mut targets = Vec::new();
    for (i, host) in config.get_hosts().iter().enumerate() {
        match host {
            Host::Tcp(name) => targets.push((name.clone(), port(i))),
            Host::Unix(_) => {
                return Err(PgError::ConnectionFailed(
                    "Unix-socket addresses are not allowed".into(),
                ));
            }
        }
    }
    for (i, ip) in config.get_hostaddrs().iter().enumerate() {
        targets.push((ip.to_string(), port(i)));
    }
    if targets.is_empty() {
        return Err(PgError::ConnectionFailed(
            "the address names no host".into(),
        ));
    }
    for (host, port) in targets {
        if !grants.allows_service("postgres", &host, Some(port)) {
            tracing::warn!("PostgreSQL address not allowed by allowed_outbound_hosts");
            let host = if host.contains(':') {
                format!("[{host}]")
            } else {
                host
            };
            // Spin's refusal, word for word.
            return Err(PgError::ConnectionFailed(format!(
                "address postgres://{host}:{port} is not permitted"
            )));
        }
    }
    Ok(())
}

/// Opens a connection without TLS and drives it in its own task until the client drops.
pub async fn connect(mut config: Config) -> Result<Client, PgError> {
    config.connect_timeout(TIMEOUT);
    let (client, connection) = tokio::time::timeout(TIMEOUT, config.connect(NoTls))
        .await
        .map_err(|_| PgError::ConnectionFailed("timed out".into()))?
        .map_err(|e| PgError::ConnectionFailed(with_causes(&e)))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "PostgreSQL connection ended");
        }
    });
    Ok(client)
}

/// The columns and rows of a query.
pub struct RowSet {
    pub columns: Vec<(String, PgType)>,
    pub rows: Vec<Vec<PgValue>>,
}

type Parameters = Vec<Box<dyn ToSql + Send + Sync>>;

fn parameters(params: Vec<PgValue>) -> Result<Parameters, PgError> {
    params
        .into_iter()
        .enumerate()
        .map(|(i, v)| values::parameter(i, v).map_err(PgError::BadParameter))
        .collect()
}

async fn bounded<T>(f: impl Future<Output = Result<T, PgError>>) -> Result<T, PgError> {
    tokio::time::timeout(TIMEOUT, f).await.unwrap_or_else(|_| {
        Err(PgError::Other(format!(
            "no answer within {} s",
            TIMEOUT.as_secs()
        )))
    })
}

pub async fn query(
    client: &Client,
    statement: &str,
    params: Vec<PgValue>,
) -> Result<RowSet, PgError> {
    let params = parameters(params)?;
    bounded(async {
        let prepared = client
            .prepare(statement)
            .await
            .map_err(|e| PgError::QueryFailed(Box::new(e.into())))?;
        let columns = prepared
            .columns()
            .iter()
            .map(|c| (c.name().to_owned(), values::column_type(c.type_())))
            .collect();
        let stream = client
            .query_raw(
                &prepared,
                params.iter().map(|p| &**p as &(dyn ToSql + Sync)),
            )
            .await
            .map_err(|e| PgError::QueryFailed(Box::new(e.into())))?;
        let mut stream = std::pin::pin!(stream);
        let (mut rows, mut bytes) = (Vec::new(), 0usize);
        while let Some(row) = stream.next().await {
            let row = row.map_err(|e| PgError::QueryFailed(Box::new(e.into())))?;
            let values = (0..row.len())
                .map(|i| values::read(&row, i))
                .collect::<Result<Vec<_>, _>>()
                .map_err(PgError::ValueConversionFailed)?;
            bytes += values.iter().map(values::size_of).sum::<usize>();
            if bytes > MAX_RESULT_BYTES {
                return Err(PgError::Other(format!(
                    "the result is larger than {} MiB",
                    MAX_RESULT_BYTES >> 20
                )));
            }
            rows.push(values);
        }
        Ok(RowSet { columns, rows })
    })
    .await
}

pub async fn execute(
    client: &Client,
    statement: &str,
    params: Vec<PgValue>,
) -> Result<u64, PgError> {
    let params = parameters(params)?;
    bounded(async {
        client
            .execute_raw(
                statement,
                params.iter().map(|p| &**p as &(dyn ToSql + Sync)),
            )
            .await
            .map_err(|e| PgError::QueryFailed(Box::new(e.into())))
    })
    .await
}
