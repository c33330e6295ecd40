//! `fermyon:spin/key-value@2.0.0`: the WASIp2 interface spin-sdk 5 components import.

use super::bindings::fermyon::spin::key_value::{Error, Host, HostStore};
use super::{KeyValueBackend, KeyValueView, OpenError, StoreHandle, blocking};
use std::sync::Arc;
use wasmtime::component::Resource;

impl From<OpenError> for Error {
    fn from(e: OpenError) -> Self {
        match e {
            OpenError::AccessDenied => Error::AccessDenied,
            OpenError::Other(m) => Error::Other(m),
        }
    }
}

impl KeyValueView<'_> {
    fn backend(&self, store: &Resource<StoreHandle>) -> wasmtime::Result<Arc<dyn KeyValueBackend>> {
        Ok(self.table.get(store)?.backend.clone())
    }
}

impl HostStore for KeyValueView<'_> {
    async fn open(
        &mut self,
        label: String,
    ) -> wasmtime::Result<Result<Resource<StoreHandle>, Error>> {
        match self.grants.open(&label) {
            Ok(handle) => Ok(Ok(self.table.push(handle)?)),
            Err(e) => Ok(Err(e.into())),
        }
    }

    async fn get(
        &mut self,
        store: Resource<StoreHandle>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        let b = self.backend(&store)?;
        Ok(blocking(move || b.get(&key)).await.map_err(Error::Other))
    }

    async fn set(
        &mut self,
        store: Resource<StoreHandle>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let b = self.backend(&store)?;
        Ok(blocking(move || b.set(&key, &value))
            .await
            .map_err(Error::Other))
    }

    async fn delete(
        &mut self,
        store: Resource<StoreHandle>,
        key: String,
    ) -> wasmtime::Result<Result<(), Error>> {
        let b = self.backend(&store)?;
        Ok(blocking(move || b.delete(&key)).await.map_err(Error::Other))
    }

    async fn exists(
        &mut self,
        store: Resource<StoreHandle>,
        key: String,
    ) -> wasmtime::Result<Result<bool, Error>> {
        let b = self.backend(&store)?;
        Ok(blocking(move || b.exists(&key)).await.map_err(Error::Other))
    }

    async fn get_keys(
        &mut self,
        store: Resource<StoreHandle>,
    ) -> wasmtime::Result<Result<Vec<String>, Error>> {
        let b = self.backend(&store)?;
        Ok(blocking(move || b.keys()).await.map_err(Error::Other))
    }

    async fn drop(&mut self, store: Resource<StoreHandle>) -> wasmtime::Result<()> {
        self.table.delete(store)?;
        Ok(())
    }
}

impl Host for KeyValueView<'_> {}
