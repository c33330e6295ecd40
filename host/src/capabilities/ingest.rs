//! `carrel:eds/ingest`: an ingestion component hands identified consultations to the host.
//!
//! Granted by `[component.<id>.tool.carrel] ingest = { dataset, pseudonymiser }`. The host
//! stamps the association of the authenticated client on every row; the component cannot
//! name another. A component without the grant gets `access-denied`, and the attempt is
//! audited as `capability.denied`.

pub mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "carrel:eds/ingester",
        imports: { default: async | trappable },
    });
}

use crate::ingest::{IngestError, IngestPipeline};
use crate::tokens::Principal;
use bindings::carrel::eds::ingest::{self, IngestError as WitIngestError};
use bindings::carrel::eds::types::{IdentifiedConsultation, Receipt};
use carrel_vault::{AuditAction, AuditEvent, AuditLog};
use std::sync::Arc;
use wasmtime::component::{HasData, Linker};

/// What one component may do with `ingest`, computed once per app.
#[derive(Clone, Default)]
pub struct IngestGrant {
    pub component: String,
    pub pipeline: Option<Arc<IngestPipeline>>,
    pub audit: Option<Arc<AuditLog>>,
}

pub struct IngestView<'a> {
    pub grant: &'a IngestGrant,
    pub principal: Option<&'a Principal>,
}

pub trait IngestState: Send {
    fn ingest(&mut self) -> IngestView<'_>;
}

pub struct Ingest;

impl HasData for Ingest {
    type Data<'a> = IngestView<'a>;
}

pub fn add_to_linker<T: IngestState + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    ingest::add_to_linker::<T, Ingest>(linker, T::ingest)
}

impl IngestView<'_> {
    fn deny(&self, why: &str) -> WitIngestError {
        tracing::warn!(component = %self.grant.component, why, "ingest denied");
        if let Some(audit) = &self.grant.audit {
            let actor = self
                .principal
                .map(|p| format!("token:{}", p.token_id))
                .unwrap_or_else(|| "anonymous".into());
            let event = AuditEvent::new(
                actor,
                AuditAction::CapabilityDenied,
                format!("component:{}", self.grant.component),
            )
            .with_details(serde_json::json!({"capability": "carrel:eds/ingest", "reason": why}));
            if let Err(e) = audit.append(&event) {
                tracing::error!(error = %e, "cannot audit a denied ingest");
            }
        }
        WitIngestError::AccessDenied(why.to_owned())
    }
}

impl ingest::Host for IngestView<'_> {
    async fn submit(
        &mut self,
        batch_key: String,
        rows: Vec<IdentifiedConsultation>,
    ) -> wasmtime::Result<Result<Receipt, WitIngestError>> {
        let Some(pipeline) = self.grant.pipeline.clone() else {
            return Ok(Err(
                self.deny("this component is not granted ingest in its manifest")
            ));
        };
        let Some(association) = self.principal.and_then(|p| p.association.clone()) else {
            return Ok(Err(
                self.deny("the request was not authenticated as an association")
            ));
        };
        Ok(
            match pipeline.submit(&association, &batch_key, rows).await {
                Ok(receipt) => Ok(receipt),
                Err(IngestError::Refused(why)) => Err(WitIngestError::Refused(why)),
                Err(IngestError::Internal(why)) => Err(WitIngestError::Other(why)),
            },
        )
    }
}

impl bindings::carrel::eds::types::Host for IngestView<'_> {}
