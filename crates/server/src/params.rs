//! Query parameters as Docker parses them: lenient booleans, JSON filters in either of the
//! two shapes clients send.

use std::collections::{BTreeMap, HashMap};

use crate::error::{ApiError, ApiResult};

pub type Query = HashMap<String, String>;

/// Docker's `BoolValue`: anything but "", "0", "no", "false", "none" is true.
pub fn flag(q: &Query, k: &str) -> bool {
    q.get(k).is_some_and(|v| !matches!(v.to_ascii_lowercase().as_str(), "" | "0" | "no" | "false" | "none"))
}

pub fn int(q: &Query, k: &str) -> ApiResult<Option<i64>> {
    match q.get(k).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| ApiError::bad_request(format!("invalid value for {k}: {v:?}"))),
    }
}

/// `filters={"status":["running"]}` or the older `{"status":{"running":true}}`.
pub fn filters(q: &Query) -> ApiResult<BTreeMap<String, Vec<String>>> {
    let Some(raw) = q.get("filters").filter(|s| !s.is_empty()) else { return Ok(BTreeMap::new()) };
    let v: serde_json::Value =
        serde_json::from_str(raw).map_err(|e| ApiError::bad_request(format!("invalid filter: {e}")))?;
    let obj = v.as_object().ok_or_else(|| ApiError::bad_request("invalid filter: not an object"))?;
    let mut out = BTreeMap::new();
    for (k, vals) in obj {
        let list: Vec<String> = match vals {
            serde_json::Value::Array(a) => a.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect(),
            serde_json::Value::Object(m) => m.iter().filter(|(_, b)| b.as_bool() == Some(true)).map(|(s, _)| s.clone()).collect(),
            _ => return Err(ApiError::bad_request(format!("invalid filter: {k}"))),
        };
        out.insert(k.clone(), list);
    }
    Ok(out)
}

pub fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return serde_json::from_slice(b"{}").map_err(|e| ApiError::bad_request(e.to_string()));
    }
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))
}
