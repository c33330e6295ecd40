//! `allowed_outbound_hosts` as Spin reads it, end to end through the real `carrel up`:
//! TCP through `wasi:sockets` to what a `*://` entry allows (a CIDR range, a port range,
//! a `{{ variable }}` template), and nothing else; Spin's Redis and MQTT interfaces of
//! both SDK generations against the machine's Redis (127.0.0.1:6379) and Mosquitto
//! (127.0.0.1:1883), each test under its own key prefix or topic; Spin's PostgreSQL
//! interfaces (2.0.0, 3.0.0, 4.0.0 and 4.2.0) against the machine's PostgreSQL
//! (127.0.0.1:5432), each test in a database of its own.

mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use support::TestApp;

const MANIFEST: &str = r#"spin_manifest_version = 2

[application]
name = "outbound"

[variables]
tcp_ports = { default = "1" }

[[trigger.http]]
route = "/p5/..."
component = "p5"

[component.p5]
source = "spin5_probe.wasm"
allowed_outbound_hosts = ["*://127.0.0.0/24:{{ tcp_ports }}"]
"#;

/// A listener on loopback that answers `pong` to each connection, in a thread.
fn pong_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut request = Vec::new();
            let _ = stream.read_to_end(&mut request);
            let _ = stream.write_all(if request == b"ping" {
                b"pong"
            } else {
                b"what?"
            });
        }
    });
    port
}

#[test]
fn tcp_reaches_what_a_templated_cidr_entry_allows_and_nothing_else() {
    let (granted, other) = (pong_server(), pong_server());
    let app = TestApp::new(MANIFEST, support::PROBES);
    let ports = format!("{granted}-{granted}");
    let carrel =
        support::Carrel::start(&app.manifest(), &[], &[("SPIN_VARIABLE_TCP_PORTS", &ports)]);
    assert_eq!(
        carrel.get(&format!("/p5/x?op=tcp&addr=127.0.0.1:{granted}")),
        (200, "pong".into())
    );
    for denied in [
        format!("127.0.0.1:{other}"),
        // Loopback, but outside the /24.
        format!("127.0.1.1:{granted}"),
    ] {
        let (status, body) = carrel.get(&format!("/p5/x?op=tcp&addr={denied}"));
        assert_eq!(status, 502, "{denied}: {body}");
        assert!(body.starts_with("PermissionDenied"), "{denied}: {body}");
    }
}

#[test]
fn an_entry_naming_a_variable_nobody_declared_stops_the_app() {
    let app = TestApp::new(
        &MANIFEST.replace("{{ tcp_ports }}", "{{ tcp_port }}"),
        support::PROBES,
    );
    let stderr = app.start_fails();
    assert!(stderr.contains("tcp_port"), "{stderr}");
    assert!(stderr.contains("allowed_outbound_hosts"), "{stderr}");
}

const SERVICES_MANIFEST: &str = r#"spin_manifest_version = 2

[application]
name = "services"

[[trigger.http]]
route = "/p5/..."
component = "p5"

[[trigger.http]]
route = "/p7/..."
component = "p7"

[component.p5]
source = "spin5_probe.wasm"
allowed_outbound_hosts = ["redis://127.0.0.1:6379", "mqtt://127.0.0.1", "postgres://127.0.0.1"]

[component.p7]
source = "spin7_probe.wasm"
allowed_outbound_hosts = ["redis://127.0.0.1:6379", "mqtt://127.0.0.1", "postgres://127.0.0.1"]
"#;

/// A key prefix or topic no other test run uses.
fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("carrel-test-{}-{nanos}-{name}", std::process::id())
}

#[test]
fn redis_commands_of_both_sdk_generations_reach_the_real_server() {
    let app = TestApp::new(SERVICES_MANIFEST, support::PROBES);
    let carrel = app.start(&[]);
    let redis = redis::Client::open("redis://127.0.0.1:6379").unwrap();
    for sdk in ["p5", "p7"] {
        let prefix = unique(sdk);
        // The probe publishes on `<prefix>:channel`: a subscriber of our own hears it, so
        // the commands went to Redis and not somewhere that only answers like it.
        let mut listener = redis.get_connection().unwrap();
        let mut pubsub = listener.as_pubsub();
        pubsub.subscribe(format!("{prefix}:channel")).unwrap();
        pubsub
            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let (status, body) = carrel.get(&format!(
            "/{sdk}/x?op=redis&addr=redis://127.0.0.1:6379&prefix={prefix}"
        ));
        assert_eq!(status, 200, "{sdk}: {body}");
        let report: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(report["get"], "value", "{sdk}: {body}");
        assert_eq!(report["missing"], true, "{sdk}: {body}");
        assert_eq!(report["incr"], 2, "{sdk}: {body}");
        assert_eq!(report["sadd"], 2, "{sdk}: {body}");
        assert_eq!(report["srem"], 1, "{sdk}: {body}");
        assert_eq!(
            report["smembers"],
            serde_json::json!(["b"]),
            "{sdk}: {body}"
        );
        assert_eq!(report["execute-set"], serde_json::json!(["status OK"]));
        // APPEND of the integer 7 to "x": the new length.
        assert_eq!(report["execute-append"], serde_json::json!(["int 2"]));
        assert!(
            report["incr-non-integer"]
                .as_str()
                .unwrap()
                .contains("TypeError"),
            "{sdk}: {body}"
        );
        assert_eq!(report["del"], 4, "{sdk}: {body}");
        let message = pubsub.get_message().unwrap();
        assert_eq!(message.get_payload_bytes(), b"hello");
    }
}

#[test]
fn a_redis_key_value_store_serves_both_sdk_generations_under_its_prefix() {
    let manifest = SERVICES_MANIFEST.replace(
        "allowed_outbound_hosts = [",
        "key_value_stores = [\"cache\"]\nallowed_outbound_hosts = [",
    );
    let app = TestApp::new(&manifest, support::PROBES);
    let prefix = format!("{}:", unique("kv"));
    let rc = app.path().join("runtime-config.toml");
    let config = |url: &str| {
        format!(
            "[key_value_store.cache]\ntype = \"redis\"\nurl = \"{url}\"\nprefix = \"{prefix}\"\n"
        )
    };
    // A store the host cannot reach stops the start, naming the label.
    std::fs::write(&rc, config("redis://127.0.0.1:1")).unwrap();
    let stderr = app.start_fails_with(&["--runtime-config-file", rc.to_str().unwrap()]);
    assert!(
        stderr.contains("`cache`") && stderr.contains("cannot connect"),
        "{stderr}"
    );

    std::fs::write(&rc, config("redis://127.0.0.1:6379")).unwrap();
    let carrel = app.start(&["--runtime-config-file", rc.to_str().unwrap()]);
    assert_eq!(
        carrel.post("/p7/x?op=kv-set&store=cache&key=visits", "3"),
        (200, "ok".into())
    );
    assert_eq!(
        carrel.get("/p5/x?op=kv-get&store=cache&key=visits"),
        (200, "3".into())
    );
    assert_eq!(
        carrel.get("/p5/x?op=kv-keys&store=cache"),
        (200, r#"["visits"]"#.into())
    );
    let mut redis = redis::Client::open("redis://127.0.0.1:6379")
        .unwrap()
        .get_connection()
        .unwrap();
    let stored: Option<String> = redis::cmd("GET")
        .arg(format!("{prefix}visits"))
        .query(&mut redis)
        .unwrap();
    assert_eq!(stored.as_deref(), Some("3"));
    assert_eq!(
        carrel.get("/p7/x?op=kv-delete&store=cache&key=visits"),
        (200, "ok".into())
    );
    assert_eq!(
        carrel.get("/p7/x?op=kv-exists&store=cache&key=visits"),
        (200, "false".into())
    );
}

#[test]
fn redis_and_mqtt_addresses_outside_allowed_outbound_hosts_are_refused_as_spin_refuses_them() {
    let app = TestApp::new(SERVICES_MANIFEST, support::PROBES);
    let carrel = app.start(&[]);
    for sdk in ["p5", "p7"] {
        for addr in [
            // Another port, another host, another scheme than the entries grant.
            "redis://127.0.0.1:6380",
            "redis://127.0.0.2:6379",
            "http://127.0.0.1:6379",
        ] {
            let (status, body) = carrel.get(&format!("/{sdk}/x?op=redis&addr={addr}&prefix=never"));
            assert_eq!(status, 502, "{sdk} {addr}: {body}");
            assert!(body.contains("InvalidAddress"), "{sdk} {addr}: {body}");
        }
        // MQTT refuses as Spin does: connection-failed, naming the address.
        let (status, body) = carrel.post(
            &format!("/{sdk}/x?op=mqtt&addr=mqtt://127.0.0.1:1884&topic=never"),
            "x",
        );
        assert_eq!(status, 502, "{sdk}: {body}");
        assert!(
            body.contains("ConnectionFailed")
                && body.contains("address mqtt://127.0.0.1:1884 is not permitted"),
            "{sdk}: {body}"
        );
    }
}

#[test]
fn mqtt_messages_of_both_sdk_generations_reach_a_subscriber_at_each_qos() {
    use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
    let app = TestApp::new(SERVICES_MANIFEST, support::PROBES);
    let carrel = app.start(&[]);
    let topic = unique("mqtt");
    let (client, mut connection) = Client::new(
        MqttOptions::new(unique("subscriber"), "127.0.0.1", 1883),
        16,
    );
    client.subscribe(&topic, QoS::ExactlyOnce).unwrap();
    let mut next = move || loop {
        match connection.recv_timeout(std::time::Duration::from_secs(10)) {
            Ok(Ok(Event::Incoming(packet))) => return packet,
            Ok(Ok(Event::Outgoing(_))) => continue,
            other => panic!("MQTT subscriber: {other:?}"),
        }
    };
    while !matches!(next(), Packet::SubAck(_)) {}
    for sdk in ["p5", "p7"] {
        for qos in ["0", "1", "2"] {
            let payload = format!("{sdk} at qos {qos}");
            let (status, body) = carrel.post(
                &format!("/{sdk}/x?op=mqtt&addr=mqtt://127.0.0.1:1883&topic={topic}&qos={qos}"),
                payload.clone(),
            );
            assert_eq!((status, body.as_str()), (200, "published"), "{payload}");
            let received = loop {
                if let Packet::Publish(p) = next() {
                    break p;
                }
            };
            assert_eq!(received.topic, topic);
            assert_eq!(received.payload.as_ref(), payload.as_bytes());
        }
    }
}

/// A database of its own for one test on the machine's PostgreSQL, dropped at the end.
struct TestDatabase {
    name: String,
    runtime: tokio::runtime::Runtime,
}

impl TestDatabase {
    fn create() -> Self {
        let name = unique("pg").replace('-', "_");
        let db = TestDatabase {
            name,
            runtime: tokio::runtime::Runtime::new().unwrap(),
        };
        db.run("postgres", &format!("CREATE DATABASE {}", db.name));
        db
    }

    fn address(&self) -> String {
        format!("postgres://postgres@127.0.0.1:5432/{}", self.name)
    }

    /// Runs `sql` in `database`; returns the first column of each row, as text.
    fn run(&self, database: &str, sql: &str) -> Vec<String> {
        self.runtime.block_on(async {
            let (client, connection) = tokio_postgres::connect(
                &format!("host=127.0.0.1 user=postgres dbname={database}"),
                tokio_postgres::NoTls,
            )
            .await
            .unwrap();
            tokio::spawn(connection);
            let rows = client.simple_query(sql).await.unwrap();
            rows.iter()
                .filter_map(|m| match m {
                    tokio_postgres::SimpleQueryMessage::Row(r) => {
                        Some(r.get(0).unwrap_or("NULL").to_owned())
                    }
                    _ => None,
                })
                .collect()
        })
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        self.run(
            "postgres",
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

fn pg_report(carrel: &support::Carrel, path: &str) -> serde_json::Value {
    let (status, body) = carrel.get(path);
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

fn assert_contains_all(text: &str, parts: &[&str]) {
    for part in parts {
        assert!(text.contains(part), "missing {part:?} in {text}");
    }
}

#[test]
fn postgres_values_of_every_interface_version_reach_the_real_server_and_come_back() {
    let db = TestDatabase::create();
    let app = TestApp::new(SERVICES_MANIFEST, support::PROBES);
    let carrel = app.start(&[]);
    let addr = db.address();

    let v2 = pg_report(&carrel, &format!("/p5/x?op=pg&ver=2&addr={addr}"));
    assert_eq!(v2["inserted"], 1);
    assert_contains_all(
        &v2.to_string(),
        &[
            "Int32(1)",
            r#"Str(\"Ada\")"#,
            // An unsigned parameter goes as the next wider signed type.
            "Int64(4000000000)",
            "Boolean(true)",
            "Floating64(0.25)",
            "Binary([0, 1, 2])",
            "DbNull",
            // 2.0.0 has no dates: the column reads as unsupported, of another type.
            "Unsupported",
            "born DbDataType::Other",
            "QueryFailed",
            "no_such_table",
        ],
    );

    let v3 = pg_report(&carrel, &format!("/p5/x?op=pg&ver=3&addr={addr}"));
    assert_eq!(v3["inserted"], 1);
    assert_contains_all(
        &v3.to_string(),
        &[
            "Date((1815, 12, 10))",
            "Datetime((2026, 12, 7, 4, 30, 5, 0))",
            "Time((12, 0, 1, 500000))",
            "Boolean(false)",
            "uid DbDataType::Other",
            "Unsupported",
            "no_such_table",
        ],
    );

    for path in [
        format!("/p5/x?op=pg&ver=4&addr={addr}"),
        format!("/p7/x?op=pg&addr={addr}"),
    ] {
        let v4 = pg_report(&carrel, &path);
        assert_eq!(v4["inserted"], 1, "{path}");
        assert_contains_all(
            &v4.to_string(),
            &[
                r#"Decimal(\"12.50\")"#,
                r#"ArrayStr([Some(\"a\"), None])"#,
                "RangeInt32((Some((1, RangeBoundKind::Inclusive)), Some((5, RangeBoundKind::Exclusive))))",
                r#"Uuid(\"67e55044-10b1-426f-9247-bb680e5fe0c8\")"#,
                "micros: 1500000, days: 2, months: 3",
                "ArrayInt64([Some(1099511627776), None])",
                "Jsonb([123",
                r#"spot DbDataType::Other(\"point\")"#,
                "Unsupported([",
                // The server's structured error: undefined_table.
                "42P01",
            ],
        );
    }
    // What the guests wrote is in the database, as PostgreSQL sees it.
    assert_eq!(db.run(&db.name, "SELECT name FROM t2"), ["Ada"]);
    assert_eq!(db.run(&db.name, "SELECT big::text FROM t2"), ["4000000000"]);
    assert_eq!(
        db.run(&db.name, "SELECT born::text FROM t3"),
        ["1815-12-10"]
    );
    for table in ["t4", "t7"] {
        assert_eq!(
            db.run(
                &db.name,
                &format!("SELECT concat_ws(' ', score, span, wait, doc, tags) FROM {table}")
            ),
            [r#"12.50 [1,5) 3 mons 2 days 00:00:01.5 {"k": [1, 2]} {a,NULL}"#],
            "{table}"
        );
    }
}

#[test]
fn postgres_addresses_outside_allowed_outbound_hosts_fail_to_connect() {
    let app = TestApp::new(SERVICES_MANIFEST, support::PROBES);
    let carrel = app.start(&[]);
    for addr in [
        // Another port than the entry's default.
        "postgres://postgres@127.0.0.1:5433/postgres",
        // An allowed name, but the driver would dial `hostaddr`.
        "host=127.0.0.1 hostaddr=10.0.0.1 user=postgres",
        // A Unix socket is never a network grant.
        "host=/var/run/postgresql user=postgres",
    ] {
        for path in [
            format!("/p5/x?op=pg&ver=4&addr={addr}"),
            format!("/p7/x?op=pg&addr={addr}"),
        ] {
            let path = path.replace(' ', "%20");
            let (status, body) = carrel.get(&path);
            assert_eq!(status, 502, "{addr}: {body}");
            assert!(body.contains("ConnectionFailed"), "{addr}: {body}");
            assert!(
                body.contains("is not permitted") || body.contains("Unix"),
                "{addr}: {body}"
            );
        }
    }
}
