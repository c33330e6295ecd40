use super::*;
use crate::study::registry::RunStatus;
use crate::tokens::TokenStore;

struct Fixture {
    dir: tempfile::TempDir,
    registry: StudyRegistry,
    tokens: TokenStore,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    carrel_vault::init_master_key(dir.path(), &carrel_vault::MasterKeyEnv::unset(), "test")
        .unwrap();
    let registry = StudyRegistry::open(dir.path()).unwrap();
    let tokens = TokenStore::open(dir.path()).unwrap();
    Fixture {
        dir,
        registry,
        tokens,
    }
}

impl Fixture {
    fn token(&self, role: Role, name: Option<&str>) -> TokenInfo {
        let (id, _) = self.tokens.add(None, role, name, OPERATOR).unwrap();
        self.tokens.get(&id).unwrap()
    }

    fn caller(&self, token: &TokenInfo) -> Caller {
        Caller::Holder(token.principal())
    }

    fn actions(&self) -> Vec<(String, String)> {
        carrel_vault::AuditLog::open(self.dir.path())
            .unwrap()
            .entries(0)
            .unwrap()
            .into_iter()
            .filter(|e| e.action.starts_with("study."))
            .map(|e| (e.actor, e.action))
            .collect()
    }
}

fn run(id: &str, study: &str, actor: &str) -> RunRecord {
    RunRecord {
        run_id: id.into(),
        study: study.into(),
        actor: actor.into(),
        params: vec![],
        started_at: "2026-03-01T10:00:00Z".into(),
        finished_at: "2026-03-01T10:00:04Z".into(),
        status: RunStatus::Succeeded,
        error: None,
        researcher_error: None,
        wasm_sha256: "w".into(),
        manifest_sha256: "m".into(),
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
    }
}

#[test]
fn the_first_researcher_to_submit_owns_the_study_and_others_are_told_it_is_not_theirs() {
    let f = fixture();
    let alice = f.token(Role::Researcher, Some("Dr Alice Martin"));
    let bob = f.token(Role::Researcher, None);
    let (a, b) = (f.caller(&alice), f.caller(&bob));
    f.registry.submit_as("ili", "w1", "m1", &a).unwrap();
    let owners = f.registry.owners("ili").unwrap();
    assert_eq!(owners.len(), 1);
    assert_eq!(owners[0].token_id, alice.id);
    assert_eq!(
        owners[0].holder,
        format!("Dr Alice Martin (token:{})", alice.id)
    );
    assert_eq!(
        f.registry.latest("ili").unwrap().unwrap().submitted_by,
        owners[0].holder
    );
    // Bob can neither submit a new version nor run it.
    for refused in [
        f.registry.submit_as("ili", "w2", "m1", &b).unwrap_err(),
        f.registry.check_submitter("ili", &b).unwrap_err(),
        f.registry.check_owner("ili", &b, "run").unwrap_err(),
    ] {
        assert!(matches!(refused, RegistryError::NotYours(_)), "{refused}");
        assert_eq!(refused.to_string(), "no study `ili` of yours");
    }
    assert_eq!(f.registry.latest("ili").unwrap().unwrap().wasm_sha256, "w1");
    // Alice submits again and runs; the operator may do anything.
    f.registry.submit_as("ili", "w2", "m1", &a).unwrap();
    f.registry.check_owner("ili", &a, "run").unwrap();
    f.registry
        .check_owner("ili", &Caller::Operator, "run")
        .unwrap();
    assert_eq!(f.registry.owners("ili").unwrap().len(), 1);
    let actions = f.actions();
    assert_eq!(
        actions
            .iter()
            .filter(|(actor, action)| action == "study.denied" && actor.contains(&bob.id))
            .count(),
        3,
        "{actions:?}"
    );
}

#[test]
fn a_study_the_operator_submitted_first_is_nobodys_until_the_operator_adds_an_owner() {
    let f = fixture();
    let alice = f.token(Role::Researcher, None);
    let a = f.caller(&alice);
    f.registry
        .submit_as("ili", "w1", "m1", &Caller::Operator)
        .unwrap();
    assert!(f.registry.owners("ili").unwrap().is_empty());
    assert!(matches!(
        f.registry.submit_as("ili", "w1", "m1", &a).unwrap_err(),
        RegistryError::NotYours(_)
    ));
    f.registry
        .add_owner("ili", &alice, &Caller::Operator)
        .unwrap();
    f.registry.submit_as("ili", "w1", "m1", &a).unwrap();
    assert_eq!(f.registry.owners("ili").unwrap().len(), 1);
}

#[test]
fn owners_add_and_remove_owners_but_a_study_keeps_one_and_only_researchers_own() {
    let f = fixture();
    let alice = f.token(Role::Researcher, Some("Alice"));
    let bob = f.token(Role::Researcher, Some("Bob"));
    let eve = f.token(Role::Researcher, Some("Eve"));
    let auditor = f.token(Role::Auditor, None);
    let (a, b, e) = (f.caller(&alice), f.caller(&bob), f.caller(&eve));
    f.registry.submit_as("ili", "w1", "m1", &a).unwrap();
    // Eve, not an owner, may not add herself.
    assert!(matches!(
        f.registry.add_owner("ili", &eve, &e).unwrap_err(),
        RegistryError::NotYours(_)
    ));
    let owners = f.registry.add_owner("ili", &bob, &a).unwrap();
    assert_eq!(owners.len(), 2);
    assert_eq!(owners[1].added_by, a.actor());
    assert!(matches!(
        f.registry.add_owner("ili", &bob, &a).unwrap_err(),
        RegistryError::Owners(_)
    ));
    let refused = f.registry.add_owner("ili", &auditor, &a).unwrap_err();
    assert!(refused.to_string().contains("researcher"), "{refused}");
    f.tokens.revoke(&eve.id, OPERATOR).unwrap();
    let revoked = f.tokens.get(&eve.id).unwrap();
    assert!(matches!(
        f.registry.add_owner("ili", &revoked, &a).unwrap_err(),
        RegistryError::Owners(_)
    ));
    // Bob, now an owner, submits and removes Alice; he cannot remove himself, the last.
    f.registry.submit_as("ili", "w2", "m1", &b).unwrap();
    let left = f.registry.remove_owner("ili", &alice.id, &b).unwrap();
    assert_eq!(left.len(), 1);
    assert!(matches!(
        f.registry.check_owner("ili", &a, "run").unwrap_err(),
        RegistryError::NotYours(_)
    ));
    let refused = f.registry.remove_owner("ili", &bob.id, &b).unwrap_err();
    assert!(
        refused.to_string().contains("at least one owner"),
        "{refused}"
    );
    assert!(matches!(
        f.registry.remove_owner("ili", &eve.id, &b).unwrap_err(),
        RegistryError::Owners(_)
    ));
    let actions: Vec<String> = f.actions().into_iter().map(|(_, a)| a).collect();
    assert!(
        actions.contains(&"study.owner.add".to_owned()),
        "{actions:?}"
    );
    assert!(
        actions.contains(&"study.owner.remove".to_owned()),
        "{actions:?}"
    );
}

#[test]
fn only_owners_and_auditors_read_a_studys_runs_and_others_see_no_such_run() {
    let f = fixture();
    let alice = f.token(Role::Researcher, None);
    let bob = f.token(Role::Researcher, None);
    let auditor = f.token(Role::Auditor, None);
    let (a, b, au) = (f.caller(&alice), f.caller(&bob), f.caller(&auditor));
    f.registry.submit_as("ili", "w", "m", &a).unwrap();
    f.registry.submit_as("flu", "w", "m", &b).unwrap();
    f.registry
        .record_run(&mut run("run-a", "ili", &a.actor()), Some(b"table"))
        .unwrap();
    f.registry
        .record_run(&mut run("run-b", "flu", &b.actor()), None)
        .unwrap();

    assert_eq!(f.registry.run_for(&a, "run-a").unwrap().run_id, "run-a");
    assert_eq!(
        f.registry.result_for(&a, "run-a").unwrap().as_deref(),
        Some(&b"table"[..])
    );
    for refused in [
        f.registry.run_for(&b, "run-a").unwrap_err(),
        f.registry.result_for(&b, "run-a").unwrap_err(),
        f.registry.run_for(&b, "run-nope").unwrap_err(),
    ] {
        assert!(matches!(refused, RegistryError::UnknownRun(_)), "{refused}");
    }
    assert!(matches!(
        f.registry.runs_for(&b, Some("ili")).unwrap_err(),
        RegistryError::NotYours(_)
    ));
    let ids = |runs: Vec<RunRecord>| runs.into_iter().map(|r| r.run_id).collect::<Vec<_>>();
    assert_eq!(ids(f.registry.runs_for(&a, None).unwrap()), ["run-a"]);
    assert_eq!(ids(f.registry.runs_for(&b, None).unwrap()), ["run-b"]);
    assert_eq!(ids(f.registry.runs_for(&au, None).unwrap()).len(), 2);
    assert_eq!(
        ids(f.registry.runs_for(&Caller::Operator, Some("ili")).unwrap()),
        ["run-a"]
    );
    f.registry.run_for(&au, "run-a").unwrap();
    // Auditors read, but own nothing and cannot run.
    assert!(f.registry.owned_studies(&auditor.id).unwrap().is_empty());
    assert!(matches!(
        f.registry.check_owner("ili", &au, "run").unwrap_err(),
        RegistryError::NotYours(_)
    ));
    assert!(matches!(
        f.registry.submit_as("new", "w", "m", &au).unwrap_err(),
        RegistryError::NotYours(_)
    ));
}

#[test]
fn approvals_are_an_auditors_or_the_operators() {
    let f = fixture();
    let alice = f.token(Role::Researcher, None);
    let auditor = f.token(Role::Auditor, Some("Dr Audrey Tor"));
    assert!(f.caller(&alice).approver().is_err());
    assert_eq!(
        f.caller(&auditor).approver().unwrap(),
        format!("Dr Audrey Tor (token:{})", auditor.id)
    );
    assert_eq!(Caller::Operator.approver().unwrap(), "operator");
}

#[test]
fn a_catalog_from_before_owners_makes_each_studys_first_submitting_token_its_owner() {
    let f = fixture();
    f.registry.submit("ili", "w", "m", "token:ab12").unwrap();
    f.registry.submit("ili", "w", "m", "token:cd34").unwrap();
    f.registry.submit("flu", "w", "m", OPERATOR).unwrap();
    let conn = f.registry.conn.lock().unwrap();
    conn.execute_batch("DROP TABLE study_owners").unwrap();
    crate::study::registry::create_owners_table(&conn).unwrap();
    let owners = owners_in(&conn, "ili").unwrap();
    assert_eq!(owners.len(), 1);
    assert_eq!(owners[0].token_id, "ab12");
    assert!(owners_in(&conn, "flu").unwrap().is_empty());
    // Opening it again changes nothing.
    conn.execute("DELETE FROM study_owners", []).unwrap();
    crate::study::registry::create_owners_table(&conn).unwrap();
    assert!(owners_in(&conn, "ili").unwrap().is_empty());
}
