use super::*;

fn registry() -> (tempfile::TempDir, StudyRegistry) {
    let dir = tempfile::tempdir().unwrap();
    carrel_vault::init_master_key(dir.path(), &carrel_vault::MasterKeyEnv::unset(), "test")
        .unwrap();
    let registry = StudyRegistry::open(dir.path()).unwrap();
    (dir, registry)
}

#[test]
fn approval_covers_exactly_the_submitted_hashes() {
    let (_dir, r) = registry();
    assert!(matches!(
        r.approve("ili", "w1", "m1", "token:aud").unwrap_err(),
        RegistryError::NotSubmitted(_)
    ));
    r.submit("ili", "w1", "m1", "token:res").unwrap();
    assert_eq!(
        r.latest("ili").unwrap().unwrap().state(),
        ApprovalState::Submitted
    );
    let err = r.approve("ili", "w2", "m1", "token:aud").unwrap_err();
    assert!(err.to_string().contains("binary"), "{err}");
    let err = r.approve("ili", "w1", "m2", "token:aud").unwrap_err();
    assert!(err.to_string().contains("manifest section"), "{err}");
    let approved = r.approve("ili", "w1", "m1", "token:aud").unwrap();
    assert_eq!(approved.state(), ApprovalState::Approved);
    assert_eq!(approved.approved_by.as_deref(), Some("token:aud"));
    assert!(matches!(
        r.approve("ili", "w1", "m1", "token:aud").unwrap_err(),
        RegistryError::AlreadyApproved(_)
    ));
}

#[test]
fn a_revoked_study_needs_a_new_submission_before_approval() {
    let (_dir, r) = registry();
    r.submit("ili", "w1", "m1", "token:res").unwrap();
    r.approve("ili", "w1", "m1", "token:aud").unwrap();
    assert_eq!(
        r.revoke("ili", "token:aud").unwrap().state(),
        ApprovalState::Revoked
    );
    assert!(matches!(
        r.approve("ili", "w1", "m1", "token:aud").unwrap_err(),
        RegistryError::Revoked(_)
    ));
    assert!(matches!(
        r.revoke("ili", "token:aud").unwrap_err(),
        RegistryError::NothingToRevoke(_)
    ));
    r.submit("ili", "w1", "m1", "token:res").unwrap();
    r.approve("ili", "w1", "m1", "token:aud").unwrap();
    assert_eq!(r.all_latest().unwrap().len(), 1);
}

#[test]
fn every_registry_change_is_in_the_audit_log() {
    let (dir, r) = registry();
    r.submit("ili", "w1", "m1", "token:res").unwrap();
    r.approve("ili", "w1", "m1", "token:aud").unwrap();
    r.revoke("ili", "token:aud").unwrap();
    let run = RunRecord {
        run_id: "run-1".into(),
        study: "ili".into(),
        actor: "token:res".into(),
        params: vec![],
        started_at: "t".into(),
        finished_at: "t".into(),
        status: RunStatus::Refused,
        error: Some("revoked".into()),
        researcher_error: Some("revoked".into()),
        wasm_sha256: "w1".into(),
        manifest_sha256: "m1".into(),
        output_sha256: None,
        segments_read: vec![],
        rows_read: 0,
        rows_released: 0,
        disclosure: serde_json::Value::Null,
        denied: vec![],
        logs: vec![],
        contributions_dropped: 0,
        locality: serde_json::Value::Null,
        privacy: None,
        model_report: serde_json::Value::Null,
    };
    let seq = r.record_run(&mut run.clone(), None).unwrap();
    let audit = carrel_vault::AuditLog::open(dir.path()).unwrap();
    let actions: Vec<String> = audit
        .entries(0)
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .filter(|a| a.starts_with("study."))
        .collect();
    assert_eq!(
        actions,
        [
            "study.submit",
            "study.approve",
            "study.revoke",
            "study.run.refused"
        ]
    );
    assert_eq!(audit.head().unwrap().seq, seq);
    assert_eq!(r.run("run-1").unwrap(), run);
    assert_eq!(r.result("run-1").unwrap(), None);
    assert!(matches!(
        r.run("run-2").unwrap_err(),
        RegistryError::UnknownRun(_)
    ));
}

#[test]
fn run_status_is_stored_and_shown_as_its_lower_case_name() {
    for (status, name) in [
        (RunStatus::Succeeded, "succeeded"),
        (RunStatus::Failed, "failed"),
        (RunStatus::Refused, "refused"),
    ] {
        assert_eq!(
            serde_json::to_string(&status).unwrap(),
            format!("\"{name}\"")
        );
        assert_eq!(status.to_string(), name);
        assert_eq!(
            serde_json::from_str::<RunStatus>(&format!("\"{name}\"")).unwrap(),
            status
        );
    }
    assert!(serde_json::from_str::<RunStatus>("\"done\"").is_err());
}
