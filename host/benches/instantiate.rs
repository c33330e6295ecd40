//! Instantiation time of the hello components as `carrel up` instantiates them: a fresh
//! store with its WASI context and grants, then the component instance, from the pooling
//! allocator. Run with `cargo bench -p carrel --bench instantiate`.

use carrel_warehouse::app::{App, AppOptions};
use std::time::{Duration, Instant};
use wasmtime_wasi_http::handler::HandlerState;

const ITERATIONS: usize = 5_000;

fn manifest(wasm: &str) -> String {
    format!(
        "spin_manifest_version = 2\n[application]\nname = \"bench\"\n[[trigger.http]]\nroute = \"/...\"\ncomponent = \"hello\"\n[component.hello]\nsource = \"{wasm}\"\n"
    )
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    for (name, wasm) in [
        (
            "spin-sdk 5 hello (WASIp2)",
            test_programs_artifacts::SPIN5_HELLO,
        ),
        (
            "spin-sdk 7 hello (WASIp3)",
            test_programs_artifacts::SPIN7_HELLO,
        ),
    ] {
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("spin.toml"), manifest(wasm))?;
        let app = App::load(&AppOptions::new(dir.path().join("spin.toml")))?;
        let handler = app.runtime.components["hello"].handler.state();
        let mut times = runtime.block_on(async {
            let mut times = Vec::with_capacity(ITERATIONS);
            for _ in 0..ITERATIONS {
                let start = Instant::now();
                let instance = handler.instantiate().await.map_err(anyhow::Error::from)?;
                times.push(start.elapsed());
                drop(instance);
            }
            anyhow::Ok(times)
        })?;
        times.sort();
        let mean = times.iter().sum::<Duration>() / times.len() as u32;
        println!(
            "{name}: instantiation mean {:.1} µs, p50 {:.1} µs, p99 {:.1} µs over {ITERATIONS}",
            mean.as_secs_f64() * 1e6,
            percentile(&times, 0.5).as_secs_f64() * 1e6,
            percentile(&times, 0.99).as_secs_f64() * 1e6,
        );
    }
    Ok(())
}
