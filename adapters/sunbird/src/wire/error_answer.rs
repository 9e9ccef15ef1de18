//! Sunbird's error envelope: `params.err` and `params.errmsg`.

use serde::Deserialize;

use super::lenient::Lenient;

/// An error answer: only `params.err` and `params.errmsg` are read.
#[derive(Deserialize)]
struct ErrorEnvelope {
    #[serde(default)]
    params: Lenient<ErrorParams>,
}

#[derive(Deserialize)]
struct ErrorParams {
    #[serde(default)]
    err: Lenient<String>,
    #[serde(default)]
    errmsg: Lenient<String>,
}

/// `params.err: params.errmsg` from an error envelope.
pub fn error_reason(body: &[u8]) -> Option<String> {
    let envelope: Lenient<ErrorEnvelope> = serde_json::from_slice(body).ok()?;
    let params = envelope.0?.params.0?;
    let err = params.err.0.as_deref().unwrap_or("");
    let msg = params.errmsg.0.as_deref().unwrap_or("");
    match (err.is_empty(), msg.is_empty()) {
        (true, true) => None,
        (false, true) => Some(err.to_string()),
        (true, false) => Some(msg.to_string()),
        (false, false) => Some(format!("{err}: {msg}")),
    }
}
