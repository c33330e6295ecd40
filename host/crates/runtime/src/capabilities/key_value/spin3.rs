//! `spin:key-value/key-value@3.0.0`: the async interface spin-sdk 7 components import.

use super::bindings::spin::key_value::key_value::{Error, Host, HostStore, HostStoreWithStore};
use super::{KeyValue, KeyValueBackend, KeyValueView, OpenError, StoreHandle, blocking};
use std::sync::Arc;
use wasmtime::component::{Accessor, FutureReader, Resource, StreamReader};

impl From<OpenError> for Error {
    fn from(e: OpenError) -> Self {
        match e {
            OpenError::AccessDenied => Error::AccessDenied,
            OpenError::Other(m) => Error::Other(m),
        }
    }
}

fn backend<T>(
    accessor: &Accessor<T, KeyValue>,
    store: &Resource<StoreHandle>,
) -> wasmtime::Result<Arc<dyn KeyValueBackend>> {
    accessor.with(|mut access| Ok(access.get().table.get(store)?.backend.clone()))
}

impl<T> HostStoreWithStore<T> for KeyValue {
    async fn open(
        accessor: &Accessor<T, Self>,
        label: String,
    ) -> wasmtime::Result<Result<Resource<StoreHandle>, Error>> {
        accessor.with(|mut access| {
            let view = access.get();
            match view.grants.open(&label) {
                Ok(handle) => Ok(Ok(view.table.push(handle)?)),
                Err(e) => Ok(Err(e.into())),
            }
        })
    }

    async fn get(
        accessor: &Accessor<T, Self>,
        store: Resource<StoreHandle>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        let b = backend(accessor, &store)?;
        Ok(blocking(move || b.get(&key)).await.map_err(Error::Other))
    }

    async fn set(
        accessor: &Accessor<T, Self>,
        store: Resource<StoreHandle>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let b = backend(accessor, &store)?;
        Ok(blocking(move || b.set(&key, &value))
            .await
            .map_err(Error::Other))
    }

    async fn delete(
        accessor: &Accessor<T, Self>,
        store: Resource<StoreHandle>,
        key: String,
    ) -> wasmtime::Result<Result<(), Error>> {
        let b = backend(accessor, &store)?;
        Ok(blocking(move || b.delete(&key)).await.map_err(Error::Other))
    }

    async fn exists(
        accessor: &Accessor<T, Self>,
        store: Resource<StoreHandle>,
        key: String,
    ) -> wasmtime::Result<Result<bool, Error>> {
        let b = backend(accessor, &store)?;
        Ok(blocking(move || b.exists(&key)).await.map_err(Error::Other))
    }

    async fn get_keys(
        accessor: &Accessor<T, Self>,
        store: Resource<StoreHandle>,
    ) -> wasmtime::Result<(StreamReader<String>, FutureReader<Result<(), Error>>)> {
        let b = backend(accessor, &store)?;
        let (keys, outcome) = match blocking(move || b.keys()).await {
            Ok(keys) => (keys, Ok(())),
            Err(e) => (Vec::new(), Err(Error::Other(e))),
        };
        accessor.with(|mut access| {
            let stream = StreamReader::new(&mut access, keys)?;
            let future =
                FutureReader::new(
                    &mut access,
                    async move { Ok::<_, wasmtime::Error>(outcome) },
                )?;
            Ok((stream, future))
        })
    }
}

impl HostStore for KeyValueView<'_> {
    fn drop(&mut self, store: Resource<StoreHandle>) -> wasmtime::Result<()> {
        self.table.delete(store)?;
        Ok(())
    }
}

impl Host for KeyValueView<'_> {}
