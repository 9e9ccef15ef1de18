//! Sunbird's answer envelope (`id`, `ver`, `ts`, `params`, `responseCode`, `result`) and the
//! error answers built from it.

use headway::Timestamp;
use headway_sunbird::wire::format_date;
use serde_json::{json, Value};

use super::Reply;

pub(super) const UPDATE_API: &str = "api.content.state.update";
pub(super) const READ_API: &str = "api.content.state.read";
pub(super) const LIST_API: &str = "api.user.courses.list";

/// The envelope of every answer.
pub(super) fn envelope(
    api: &str,
    now: i64,
    status: u16,
    err: Option<(&str, &str)>,
    result: Value,
) -> Reply {
    let (response_code, params) = match (status, err) {
        (200, _) => (
            "OK",
            json!({"resmsgid": null, "msgid": null, "err": null, "status": "success", "errmsg": null}),
        ),
        (code, Some((err, msg))) => {
            let response_code = match code {
                400 => "CLIENT_ERROR",
                401 => "UNAUTHORIZED",
                _ => "SERVER_ERROR",
            };
            let status_text = if code >= 500 { "SERVER_ERROR" } else { err };
            (
                response_code,
                json!({"resmsgid": null, "msgid": null, "err": err, "status": status_text, "errmsg": msg}),
            )
        }
        (_, None) => (
            "SERVER_ERROR",
            json!({"resmsgid": null, "msgid": null, "err": "INTERNAL_ERROR", "status": "SERVER_ERROR",
                   "errmsg": "Process failed,please try again later."}),
        ),
    };
    let ts = Timestamp::from_millis(now)
        .map(format_date)
        .unwrap_or_default();
    Reply {
        status,
        body: json!({"id": api, "ver": "v1", "ts": ts, "params": params,
                     "responseCode": response_code, "result": result}),
    }
}

/// A 400 with Sunbird's client-error envelope: `err` in `params.err` and `params.status`,
/// `msg` in `params.errmsg`.
pub fn client_error(api: &str, now: i64, err: &str, msg: &str) -> Reply {
    envelope(api, now, 400, Some((err, msg)), json!({}))
}

/// The 401 the gateway answers for a missing or refused token.
pub fn unauthorized(api: &str, now: i64) -> Reply {
    envelope(
        api,
        now,
        401,
        Some(("UNAUTHORIZED_USER", "You are not authorized.")),
        json!({}),
    )
}

/// A 500 with Sunbird's server-error envelope.
pub fn server_error(api: &str, now: i64) -> Reply {
    envelope(api, now, 500, None, json!({}))
}
