//! What a failed guest call tells the people who see it: whether it ran past its deadline,
//! and a short reason fit for a response body or a run record. Shared by the HTTP worker,
//! the pseudonymiser and the study sandbox.

use std::time::Duration;

/// Whether a guest failed by running past its deadline: an epoch interrupt anywhere in the
/// error chain, or wasmtime's own timeout.
pub fn timed_out(e: &wasmtime::Error) -> bool {
    e.chain()
        .any(|cause| cause.downcast_ref::<wasmtime::Trap>() == Some(&wasmtime::Trap::Interrupt))
        || (e
            .chain()
            .all(|cause| cause.downcast_ref::<wasmtime::Trap>().is_none())
            && e.to_string().contains("guest timed out"))
}

/// A short reason for a failed guest, fit for a response body: the trap if there is one
/// anywhere in the error chain (an epoch interrupt is the request deadline), else the
/// first line of the error.
pub fn failure_reason(e: &wasmtime::Error, deadline: Duration) -> String {
    let trap = e
        .chain()
        .find_map(|cause| cause.downcast_ref::<wasmtime::Trap>());
    let text = match trap {
        _ if timed_out(e) => format!("deadline of {deadline:?} exceeded"),
        Some(wasmtime::Trap::UnreachableCodeReached) => {
            "guest trapped (it panicked or aborted, e.g. out of memory)".to_owned()
        }
        Some(trap) => format!("guest trapped: {trap}"),
        None => e.to_string(),
    };
    text.lines()
        .next()
        .unwrap_or("")
        .chars()
        .take(200)
        .collect()
}
