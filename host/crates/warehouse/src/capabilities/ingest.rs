//! `carrel:eds/ingest`: an ingestion component hands identified consultations to the host.
//!
//! Granted by `[component.<id>.tool.carrel] ingest = { dataset, pseudonymiser }`. The host
//! stamps the association of the authenticated client on every row; the component cannot
//! name another. A component without the grant gets `access-denied`, and the attempt is
//! audited as `capability.denied`.

use crate::ingest::bindings;
use crate::ingest::{IngestError, IngestPipeline};
use crate::patients::ObjectionError;
use crate::patients::objections::Channel;
use crate::tokens::Principal;
use bindings::carrel::eds::ingest::{self, IngestError as WitIngestError};
use bindings::carrel::eds::types::{
    IdentifiedConsultation, IdentifiedPatient, ObjectionReceipt, Receipt,
};
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

    async fn object(
        &mut self,
        patient: IdentifiedPatient,
    ) -> wasmtime::Result<Result<ObjectionReceipt, WitIngestError>> {
        Ok(self.object_patient(patient).await)
    }
}

impl IngestView<'_> {
    async fn object_patient(
        &self,
        patient: IdentifiedPatient,
    ) -> Result<ObjectionReceipt, WitIngestError> {
        let Some(pipeline) = self.grant.pipeline.clone() else {
            return Err(self.deny("this component is not granted ingest in its manifest"));
        };
        let Some(association) = self.principal.and_then(|p| p.association.clone()) else {
            return Err(self.deny("the request was not authenticated as an association"));
        };
        let patient = carrel_fhir::IdentifiedPatient {
            nir: patient.nir,
            family: patient.family,
            given: patient.given,
            birth_date: patient.birth_date,
            sex: patient.sex,
            ..Default::default()
        };
        let rights = pipeline.rights().clone();
        let registered = tokio::task::spawn_blocking(move || {
            rights.object(&patient, &association, Channel::Ingest)
        })
        .await
        .map_err(|e| WitIngestError::Other(e.to_string()))?;
        match registered {
            Ok(registered) => Ok(ObjectionReceipt {
                newly_registered: registered.newly_registered,
                audit_seq: registered.audit_seq,
            }),
            Err(ObjectionError::Refused(why)) => Err(WitIngestError::Refused(why)),
            Err(ObjectionError::Internal(why)) => Err(WitIngestError::Other(why)),
        }
    }
}

impl bindings::carrel::eds::types::Host for IngestView<'_> {}
