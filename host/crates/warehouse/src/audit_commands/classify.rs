//! What each imported interface is, which manifest grant it needs, and the findings that
//! come from comparing a component's imports with its grants.

use super::report::{Capability, Finding, FindingKind, Grants, ImportClass, ImportView};

/// Splits `wasi:http/types@0.2.0` into the interface and its version.
pub fn split_version(name: &str) -> (&str, Option<&str>) {
    match name.split_once('@') {
        Some((interface, version)) => (interface, Some(version)),
        None => (name, None),
    }
}

/// Interfaces that grant something, without their version.
const CAPABILITY_INTERFACES: &[(&str, Capability)] = &[
    ("wasi:http/outgoing-handler", Capability::OutboundHttp),
    // WASIp3: importing the handler (or the client) sends requests.
    ("wasi:http/handler", Capability::OutboundHttp),
    ("wasi:http/client", Capability::OutboundHttp),
    // TCP connections, to what `*://` entries of `allowed_outbound_hosts` allow.
    ("wasi:sockets/tcp", Capability::OutboundHttp),
    ("wasi:sockets/tcp-create-socket", Capability::OutboundHttp),
    // Spin's service clients, to what `redis://`, `mqtt://` and `postgres://` entries allow.
    ("fermyon:spin/redis", Capability::OutboundHttp),
    ("spin:redis/redis", Capability::OutboundHttp),
    ("fermyon:spin/mqtt", Capability::OutboundHttp),
    ("spin:mqtt/mqtt", Capability::OutboundHttp),
    ("fermyon:spin/postgres", Capability::OutboundHttp),
    ("spin:postgres/postgres", Capability::OutboundHttp),
    ("fermyon:spin/key-value", Capability::KeyValue),
    ("spin:key-value/key-value", Capability::KeyValue),
    ("fermyon:spin/sqlite", Capability::Sqlite),
    ("spin:sqlite/sqlite", Capability::Sqlite),
    ("fermyon:spin/variables", Capability::Variables),
    ("spin:variables/variables", Capability::Variables),
    ("carrel:eds/ingest", Capability::Ingest),
    ("carrel:eds/keyed-hash", Capability::KeyedHash),
    ("carrel:eds/log", Capability::Dataset),
];

/// Interfaces that only define types.
const TYPE_INTERFACES: &[&str] = &[
    "wasi:http/types",
    "carrel:eds/types",
    "carrel:eds/study-types",
    "fermyon:spin/rdbms-types",
    // The network handle a TCP socket needs: nothing without a grant.
    "wasi:sockets/network",
    "wasi:sockets/instance-network",
];

/// WASI packages Rust's standard library brings: the host gives them nothing beyond the
/// component's grants (no files unless `files`, no variables unless `environment`, …).
const BASELINE_PACKAGES: &[&str] = &[
    "wasi:cli/",
    "wasi:clocks/",
    "wasi:random/",
    "wasi:io/",
    "wasi:filesystem/",
];

/// Classifies one imported name, without regard to grants.
pub fn classify(name: &str) -> ImportView {
    let (interface, version) = split_version(name);
    let (class, capability, note) =
        if let Some((_, cap)) = CAPABILITY_INTERFACES.iter().find(|(i, _)| *i == interface) {
            let note = match interface {
                "carrel:eds/log" => "a study's run log",
                _ => cap.describe(),
            };
            (ImportClass::Capability, Some(*cap), note.to_owned())
        } else if TYPE_INTERFACES.contains(&interface) {
            (ImportClass::Types, None, "types only".to_owned())
        } else if BASELINE_PACKAGES.iter().any(|p| interface.starts_with(p)) {
            (
                ImportClass::Baseline,
                None,
                "baseline WASI: given nothing beyond the grants".to_owned(),
            )
        } else if interface.starts_with("wasi:sockets/") {
            (
                ImportClass::Never,
                None,
                "UDP and name lookup: never granted by carrel".to_owned(),
            )
        } else {
            (
                ImportClass::Unknown,
                None,
                "not an interface carrel provides".to_owned(),
            )
        };
    ImportView {
        name: name.to_owned(),
        interface: interface.to_owned(),
        version: version.map(str::to_owned),
        class,
        capability,
        granted: None,
        note,
    }
}

/// Sets `granted` on capability imports and returns the findings, in a stable order:
/// imports without a grant (in import order), then grants the binary cannot use.
pub fn compare(imports: &mut [ImportView], grants: &Grants) -> Vec<Finding> {
    let mut findings = Vec::new();
    for import in imports.iter_mut() {
        match import.class {
            ImportClass::Capability => {
                let capability = import.capability.expect("capability imports name one");
                let granted = capability.granted(grants);
                import.granted = Some(granted);
                if !granted {
                    findings.push(Finding {
                        kind: FindingKind::ImportWithoutGrant,
                        capability: Some(capability),
                        subject: import.name.clone(),
                        message: format!(
                            "imports {} ({}) without {}: every use will be denied at run time",
                            import.name,
                            capability.describe(),
                            capability.grant_field()
                        ),
                    });
                }
            }
            ImportClass::Never => findings.push(Finding {
                kind: FindingKind::NeverGrantedImport,
                capability: None,
                subject: import.name.clone(),
                message: format!(
                    "imports {}: carrel never grants UDP or name lookup, every use will be denied",
                    import.name
                ),
            }),
            ImportClass::Unknown => findings.push(Finding {
                kind: FindingKind::UnknownImport,
                capability: None,
                subject: import.name.clone(),
                message: format!(
                    "imports {}, which carrel does not provide: the component cannot be instantiated",
                    import.name
                ),
            }),
            ImportClass::Baseline | ImportClass::Types => {}
        }
    }
    for capability in Capability::ALL {
        if capability.granted(grants) && !imports.iter().any(|i| capability.used_by(i)) {
            findings.push(Finding {
                kind: FindingKind::UnusedGrant,
                capability: Some(capability),
                subject: capability.grant_field().to_owned(),
                message: format!(
                    "{} = {} is granted but the binary imports no interface for {}: excess privilege, remove it",
                    capability.grant_field(),
                    capability.grant_text(grants),
                    capability.describe()
                ),
            });
        }
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn imports(names: &[&str]) -> Vec<ImportView> {
        names.iter().map(|n| classify(n)).collect()
    }

    fn kinds(findings: &[Finding]) -> Vec<(FindingKind, String)> {
        findings
            .iter()
            .map(|f| (f.kind, f.subject.clone()))
            .collect()
    }

    #[test]
    fn report_flags_an_outbound_import_without_a_grant() {
        let mut list = imports(&["wasi:http/outgoing-handler@0.2.0", "wasi:http/types@0.2.0"]);
        let findings = compare(&mut list, &Grants::default());
        assert_eq!(
            kinds(&findings),
            [(
                FindingKind::ImportWithoutGrant,
                "wasi:http/outgoing-handler@0.2.0".to_owned()
            )]
        );
        assert!(findings[0].message.contains("allowed_outbound_hosts"));
        assert_eq!(list[0].granted, Some(false));
        assert_eq!(list[1].class, ImportClass::Types);
    }

    #[test]
    fn a_granted_outbound_import_is_not_flagged() {
        let mut list = imports(&["wasi:http/handler@0.3.0-rc-2025-09-16"]);
        let grants = Grants {
            allowed_outbound_hosts: vec!["https://example.org".into()],
            ..Grants::default()
        };
        assert!(compare(&mut list, &grants).is_empty());
        assert_eq!(list[0].granted, Some(true));
        assert_eq!(list[0].version.as_deref(), Some("0.3.0-rc-2025-09-16"));
    }

    #[test]
    fn report_flags_a_store_the_binary_cannot_open_as_excess() {
        let mut list = imports(&["wasi:cli/environment@0.2.6", "wasi:http/types@0.2.6"]);
        let grants = Grants {
            key_value_stores: vec!["default".into()],
            ..Grants::default()
        };
        assert_eq!(
            kinds(&compare(&mut list, &grants)),
            [(FindingKind::UnusedGrant, "key_value_stores".to_owned())]
        );
    }

    #[test]
    fn baseline_wasi_is_listed_but_not_flagged_and_files_need_a_filesystem_import() {
        let mut list = imports(&[
            "wasi:cli/environment@0.2.0",
            "wasi:clocks/wall-clock@0.2.0",
            "wasi:random/random@0.2.0",
            "wasi:io/streams@0.2.0",
        ]);
        assert!(list.iter().all(|i| i.class == ImportClass::Baseline));
        let grants = Grants {
            files: vec!["static/**".into()],
            environment: [("MODE".to_owned(), "x".to_owned())].into(),
            ..Grants::default()
        };
        assert_eq!(
            kinds(&compare(&mut list, &grants)),
            [(FindingKind::UnusedGrant, "files".to_owned())]
        );
        list.push(classify("wasi:filesystem/preopens@0.2.0"));
        assert!(compare(&mut list, &grants).is_empty());
    }

    #[test]
    fn carrel_and_spin_interfaces_need_their_grants_and_udp_is_never_granted() {
        let mut list = imports(&[
            "fermyon:spin/key-value@2.0.0",
            "spin:variables/variables@3.0.0",
            "carrel:eds/ingest@0.1.0",
            "carrel:eds/keyed-hash@0.1.0",
            "carrel:eds/log@0.1.0",
            "wasi:sockets/udp@0.2.0",
            "fermyon:spin/llm@2.0.0",
        ]);
        let findings = compare(&mut list, &Grants::default());
        let expected = [
            (FindingKind::ImportWithoutGrant, Some(Capability::KeyValue)),
            (FindingKind::ImportWithoutGrant, Some(Capability::Variables)),
            (FindingKind::ImportWithoutGrant, Some(Capability::Ingest)),
            (FindingKind::ImportWithoutGrant, Some(Capability::KeyedHash)),
            (FindingKind::ImportWithoutGrant, Some(Capability::Dataset)),
            (FindingKind::NeverGrantedImport, None),
            (FindingKind::UnknownImport, None),
        ];
        let got: Vec<_> = findings.iter().map(|f| (f.kind, f.capability)).collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn sqlite_imports_need_sqlite_databases_and_a_grant_without_them_is_excess() {
        let mut list = imports(&["spin:sqlite/sqlite@3.1.0", "fermyon:spin/sqlite@2.0.0"]);
        let findings = compare(&mut list, &Grants::default());
        assert_eq!(
            findings
                .iter()
                .map(|f| (f.kind, f.capability))
                .collect::<Vec<_>>(),
            [(FindingKind::ImportWithoutGrant, Some(Capability::Sqlite)); 2]
        );
        assert!(findings[0].message.contains("sqlite_databases"));
        let grants = Grants {
            sqlite_databases: vec!["default".into()],
            ..Grants::default()
        };
        assert!(compare(&mut list, &grants).is_empty());
        let mut none = imports(&["wasi:cli/environment@0.2.0"]);
        assert_eq!(
            kinds(&compare(&mut none, &grants)),
            [(FindingKind::UnusedGrant, "sqlite_databases".to_owned())]
        );
    }

    #[test]
    fn redis_mqtt_and_postgres_imports_need_allowed_outbound_hosts() {
        let names = [
            "fermyon:spin/redis@2.0.0",
            "spin:redis/redis@3.0.0",
            "fermyon:spin/mqtt@2.0.0",
            "spin:mqtt/mqtt@3.0.0",
            "fermyon:spin/postgres@2.0.0",
            "spin:postgres/postgres@4.2.0",
        ];
        let mut list = imports(&names);
        list.extend(imports(&["fermyon:spin/rdbms-types@2.0.0"]));
        assert_eq!(list[6].class, ImportClass::Types);
        let findings = compare(&mut list, &Grants::default());
        assert_eq!(
            findings
                .iter()
                .map(|f| (f.kind, f.capability))
                .collect::<Vec<_>>(),
            [(
                FindingKind::ImportWithoutGrant,
                Some(Capability::OutboundHttp)
            ); 6]
        );
        assert!(findings[0].message.contains("allowed_outbound_hosts"));
        let grants = Grants {
            allowed_outbound_hosts: vec!["redis://127.0.0.1".into()],
            ..Grants::default()
        };
        assert!(compare(&mut list, &grants).is_empty());
    }

    #[test]
    fn keyed_hash_domains_without_the_import_are_excess() {
        let mut list = imports(&["carrel:eds/types@0.1.0"]);
        let grants = Grants {
            keyed_hash_domains: vec!["patient".into()],
            ..Grants::default()
        };
        let findings = compare(&mut list, &grants);
        assert_eq!(
            kinds(&findings),
            [(
                FindingKind::UnusedGrant,
                "tool.carrel.keyed_hash_domains".to_owned()
            )]
        );
        assert!(findings[0].message.contains("[\"patient\"]"));
    }
}
