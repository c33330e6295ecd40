//! `carrel watch`, end to end: a change to a file a component's build watches rebuilds it
//! and restarts serving; a failed build keeps the running server.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};
use support::{TestApp, carrel_command, guests};

/// The build "compiles" by copying the wasm that `choice.txt` names.
const MANIFEST: &str = r#"spin_manifest_version = 2

[application]
name = "watched"

[[trigger.http]]
route = "/..."
component = "web"

[component.web]
source = "app.wasm"

[component.web.build]
command = "cp \"$(cat choice.txt)\" app.wasm"
watch = ["choice.txt"]
"#;

/// A running `carrel watch`, killed with its server when dropped.
struct Watch {
    child: Child,
    serving: Receiver<String>,
}

impl Watch {
    fn start(app: &TestApp) -> Self {
        let mut child = carrel_command()
            .args(["watch", "-f"])
            .arg(app.manifest())
            .args(["--", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn carrel watch");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, serving) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("Serving ") {
                    let _ = tx.send(url.trim().to_owned());
                }
            }
        });
        Self { child, serving }
    }

    /// The URL of the next server to start.
    fn next_server(&self) -> String {
        self.serving
            .recv_timeout(Duration::from_secs(120))
            .expect("carrel watch started a server")
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(40) {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn get(url: &str) -> String {
    reqwest::blocking::get(url).unwrap().text().unwrap()
}

#[test]
fn a_watched_file_change_rebuilds_the_component_and_restarts_serving() {
    let app = TestApp::new(
        MANIFEST,
        &[
            ("spin5.wasm", guests::SPIN5_PROBE),
            ("spin7.wasm", guests::SPIN7_PROBE),
        ],
    );
    std::fs::write(app.path().join("choice.txt"), "spin5.wasm").unwrap();
    let watch = Watch::start(&app);
    let first = watch.next_server();
    assert_eq!(get(&format!("{first}/")), "hello from spin5");

    std::fs::write(app.path().join("choice.txt"), "spin7.wasm").unwrap();
    let second = watch.next_server();
    assert_eq!(get(&format!("{second}/")), "hello from spin7");

    // A build that fails leaves the server running as it was.
    std::fs::write(app.path().join("choice.txt"), "missing.wasm").unwrap();
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(get(&format!("{second}/")), "hello from spin7");
    assert!(watch.serving.try_recv().is_err());
}
