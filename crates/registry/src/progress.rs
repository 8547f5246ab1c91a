//! Docker's JSON progress messages (what `docker pull`/`push` render), as the engine streams
//! them to the client.

use serde_json::{json, Value};

/// Where a pull or push reports its progress. Called from the worker threads.
pub type Sink<'a> = &'a (dyn Fn(Value) + Sync);

/// The short id Docker shows for a blob: 12 hex digits.
pub fn short(d: &berth_image::Digest) -> String {
    d.hex().chars().take(12).collect()
}

/// A status line, with the id it concerns if any.
pub fn status(id: Option<&str>, status: &str) -> Value {
    match id {
        Some(id) => json!({ "status": status, "progressDetail": {}, "id": id }),
        None => json!({ "status": status }),
    }
}

/// A progress bar update.
pub fn bytes(id: &str, status: &str, current: u64, total: u64) -> Value {
    json!({ "status": status, "progressDetail": { "current": current, "total": total }, "id": id })
}

/// The error line that ends a stream which has already started.
pub fn error(message: &str) -> Value {
    json!({ "errorDetail": { "message": message }, "error": message })
}
