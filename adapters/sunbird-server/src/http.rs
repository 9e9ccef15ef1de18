//! The HTTP face of the reference service: the accept loop (with a deadline on every
//! request's head and body), routes, the gateway's token checks, fault injection, and the admin
//! endpoints tests use to set the scene.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use headway::Timestamp;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::service::{self, BatchStatus, Lag, Reply};
use crate::{Faults, Shared};

type App = Arc<Shared>;

/// Accepts connections until `stopped` fires, then waits for the requests in flight. Each
/// connection is served on its own task by hyper's HTTP/1 with `header_read_timeout`: a client
/// that does not send a whole request head within `timeout` (half a request line, say) has its
/// connection closed, so stalled clients cannot hold the service (issue 17). The body's own
/// deadline is [`body_in_time`]'s.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    timeout: Duration,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(timeout);
    let connections = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let accepted = tokio::select! {
            _ = &mut stopped => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) => {
                // Out of file descriptors, say: wait a little rather than spin.
                tracing::warn!(%error, "cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let service = hyper_util::service::TowerToHyperService::new(router.clone());
        let connection = connections.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection ended");
            }
        });
    }
    drop(listener);
    connections.shutdown().await;
}

/// Reads a request's whole body within `timeout` of its head, then hands the request on: a
/// client that sends a head and stalls in its body is answered 408 and its connection closed.
/// Bodies are capped at 2 MiB, axum's default for the handlers' `Bytes`: a larger announced
/// length is answered 413 before anything is read, a chunked body that grows past it 400.
async fn body_in_time(State(timeout): State<Duration>, request: Request, next: Next) -> Response {
    const BODY_CAP: usize = 2 * 1024 * 1024;
    let announced = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|length| length > BODY_CAP as u64) {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            [(axum::http::header::CONNECTION, "close")],
            Json(json!({"error": "the request body is over 2 MiB"})),
        )
            .into_response();
    }
    let (parts, body) = request.into_parts();
    match tokio::time::timeout(timeout, axum::body::to_bytes(body, BODY_CAP)).await {
        Ok(Ok(bytes)) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Ok(Err(error)) => (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": format!("the request body cannot be read: {error}")})),
        )
            .into_response(),
        Err(_) => (
            StatusCode::REQUEST_TIMEOUT,
            [(axum::http::header::CONNECTION, "close")],
            Json(json!({"error": format!("the request body did not arrive within {timeout:?}")})),
        )
            .into_response(),
    }
}

pub(crate) fn router(shared: App, body_timeout: Duration) -> Router {
    let admin = Router::new()
        .route("/admin/course", post(admin_course))
        .route("/admin/batch", post(admin_batch))
        .route("/admin/enrol", post(admin_enrol))
        .route("/admin/token", post(admin_token))
        .route("/admin/faults", post(admin_faults))
        .route("/admin/lag", post(admin_lag))
        .route("/admin/stats", get(admin_stats))
        .route("/admin/states/{user}", get(admin_states))
        .route_layer(middleware::from_fn_with_state(shared.clone(), require_key));
    Router::new()
        .route("/api/course/v1/content/state/update", patch(update))
        .route("/v1/content/state/update", patch(update))
        .route("/v1/user/content/state", patch(update))
        .route("/api/course/v1/content/state/read", post(read))
        .route("/v1/content/state/read", post(read))
        .route("/api/course/v1/user/enrollment/list/{user}", get(list))
        .route("/v1/user/courses/list/{user}", get(list))
        .route("/api/course/v1/enrol", post(enrol))
        .merge(admin)
        .layer(middleware::from_fn_with_state(body_timeout, body_in_time))
        .layer(middleware::from_fn(log_request))
        .with_state(shared)
}

/// One line per request at `info`: method, path (never the query or a header, so no token or
/// key), status and time. `headway serve -v` shows them.
async fn log_request(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    tracing::info!(
        "{method} {path} {} {} ms",
        response.status().as_u16(),
        started.elapsed().as_millis()
    );
    response
}

/// `/admin/*` asks for the API key too, when the service has one.
async fn require_key(
    State(app): State<App>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Response {
    if let Some(key) = &app.api_key {
        let given = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if given != format!("Bearer {key}") {
            return (
                StatusCode::UNAUTHORIZED,
                Json(json!({"error": "the admin endpoints need Authorization: Bearer <api key>"})),
            )
                .into_response();
        }
    }
    next.run(request).await
}

fn now() -> i64 {
    Timestamp::now().as_millis()
}

fn reply(r: Reply) -> Response {
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(r.body)).into_response()
}

/// The gateway: the API key (when configured) and the user token. `Ok(None)` means no token is
/// registered, so the request's user ids are trusted.
fn authorize(app: &Shared, headers: &HeaderMap) -> Result<Option<String>, ()> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    if let Some(key) = &app.api_key {
        if header("authorization") != format!("Bearer {key}") {
            return Err(());
        }
    }
    let token = header("x-authenticated-user-token").trim();
    let tokens = app.tokens();
    if tokens.is_empty() {
        return Ok(None);
    }
    match tokens.get(token) {
        Some((user, false)) => Ok(Some(user.clone())),
        _ => Err(()),
    }
}

/// Delay, then the injected failure if one is due.
async fn faults_before(app: &Shared) -> Option<Response> {
    let (delay, fail) = {
        let mut faults = app.faults();
        let fail = (faults.fail_next > 0).then(|| {
            faults.fail_next -= 1;
            faults.fail_status
        });
        (faults.delay_ms, fail)
    };
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let status = fail?;
    app.stats().failed_requests += 1;
    let mut r = service::server_error("api.fault", now());
    r.status = status;
    Some(reply(r))
}

/// Parses a JSON body the way the real server does: anything else is a 400.
fn json_body(api: &str, body: &Bytes) -> Result<Value, Box<Response>> {
    serde_json::from_slice(body).map_err(|_| {
        Box::new(reply(service::client_error(
            api,
            now(),
            "INVALID_REQUESTED_DATA",
            "Invalid request body.",
        )))
    })
}

/// What every API request meets first: the injected faults, then the gateway (a refused
/// token is Sunbird's 401 for `api`). `Ok` holds the caller's user when a token decides it.
async fn admit(
    app: &Shared,
    headers: &HeaderMap,
    api: &str,
) -> Result<Option<String>, Box<Response>> {
    if let Some(failed) = faults_before(app).await {
        return Err(Box::new(failed));
    }
    authorize(app, headers).map_err(|()| Box::new(reply(service::unauthorized(api, now()))))
}

/// [`admit`], then the JSON body.
async fn admit_json(
    app: &Shared,
    headers: &HeaderMap,
    api: &str,
    body: &Bytes,
) -> Result<(Option<String>, Value), Box<Response>> {
    let caller = admit(app, headers, api).await?;
    Ok((caller, json_body(api, body)?))
}

async fn update(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    let (caller, body) = match admit_json(&app, &headers, "api.content.state.update", &body).await {
        Ok(admitted) => admitted,
        Err(response) => return *response,
    };
    let contents = body.pointer("/request/contents").and_then(Value::as_array);
    {
        let mut stats = app.stats();
        stats.update_requests += 1;
        stats.update_items += contents.map_or(0, Vec::len) as u64;
    }
    let poisoned = {
        let faults = app.faults();
        contents.is_some_and(|items| {
            items.iter().any(|item| {
                item.get("contentId")
                    .and_then(Value::as_str)
                    .is_some_and(|id| faults.poison_contents.contains(id))
            })
        })
    };
    if poisoned {
        return reply(service::client_error(
            "api.content.state.update",
            now(),
            "DATE_FORMAT_ERRROR",
            "Date format error.",
        ));
    }
    let answer = app.service.update(caller.as_deref(), &body, now());
    let close = {
        let mut faults = app.faults();
        let due = faults.close_after_apply > 0;
        if due {
            faults.close_after_apply -= 1;
        }
        due
    };
    if close {
        // Applied, then the connection dies before the answer: the body stream fails, so
        // hyper aborts the connection.
        let failing = futures_util::stream::once(async {
            Err::<Bytes, std::io::Error>(std::io::Error::other("connection closed after applying"))
        });
        return (StatusCode::OK, Body::from_stream(failing)).into_response();
    }
    reply(answer)
}

async fn read(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    let (caller, body) = match admit_json(&app, &headers, "api.content.state.read", &body).await {
        Ok(admitted) => admitted,
        Err(response) => return *response,
    };
    app.stats().read_requests += 1;
    reply(app.service.read(caller.as_deref(), &body, now()))
}

#[derive(Deserialize)]
struct ListQuery {
    cache: Option<String>,
}

async fn list(
    State(app): State<App>,
    headers: HeaderMap,
    Path(user): Path<String>,
    Query(query): Query<ListQuery>,
) -> Response {
    let caller = match admit(&app, &headers, "api.user.courses.list").await {
        Ok(caller) => caller,
        Err(response) => return *response,
    };
    app.stats().list_requests += 1;
    let bypass = query.cache.as_deref() == Some("false");
    reply(app.service.list(caller.as_deref(), &user, bypass, now()))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EnrolRequest {
    request: EnrolBody,
}

/// One enrolment: the learner, the course and the batch.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EnrolBody {
    course_id: String,
    batch_id: String,
    user_id: String,
}

async fn enrol(
    State(app): State<App>,
    headers: HeaderMap,
    Json(body): Json<EnrolRequest>,
) -> Response {
    let Ok(caller) = authorize(&app, &headers) else {
        return reply(service::unauthorized("api.course.enrol", now()));
    };
    let r = body.request;
    let user = caller.unwrap_or(r.user_id);
    admin_result(app.service.enrol(&user, &r.course_id, &r.batch_id, now()))
}

fn admin_result(result: crate::error::Result<()>) -> Response {
    admin_answer(result.map(|()| json!({"result": "OK"})))
}

/// An admin call's answer: `body` with 200, or a 500 whose `error` says what failed.
fn admin_answer(result: crate::error::Result<Value>) -> Response {
    match result {
        Ok(body) => (StatusCode::OK, Json(body)).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": e.to_string()})),
        )
            .into_response(),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CourseBody {
    course_id: String,
    #[serde(default)]
    name: Option<String>,
    leaf_nodes: Vec<String>,
}

async fn admin_course(State(app): State<App>, Json(body): Json<CourseBody>) -> Response {
    let name = body.name.unwrap_or_else(|| body.course_id.clone());
    admin_result(
        app.service
            .put_course(&body.course_id, &name, &body.leaf_nodes),
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BatchBody {
    batch_id: String,
    #[serde(default)]
    course_id: String,
    /// 0 upcoming, 1 ongoing, 2 closed; absent or null removes the batch.
    status: Option<i64>,
}

async fn admin_batch(State(app): State<App>, Json(body): Json<BatchBody>) -> Response {
    let status = match body.status {
        None => return admin_result(app.service.remove_batch(&body.batch_id)),
        Some(0) => BatchStatus::Upcoming,
        Some(1) => BatchStatus::Ongoing,
        Some(_) => BatchStatus::Closed,
    };
    admin_result(
        app.service
            .put_batch(&body.batch_id, &body.course_id, status),
    )
}

/// `/admin/enrol` takes the enrolment without the API's `request` wrapper.
async fn admin_enrol(State(app): State<App>, Json(body): Json<EnrolBody>) -> Response {
    admin_result(
        app.service
            .enrol(&body.user_id, &body.course_id, &body.batch_id, now()),
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TokenBody {
    token: String,
    user_id: String,
    #[serde(default)]
    expired: bool,
}

async fn admin_token(State(app): State<App>, Json(body): Json<TokenBody>) -> Response {
    app.tokens()
        .insert(body.token, (body.user_id, body.expired));
    admin_result(Ok(()))
}

async fn admin_faults(State(app): State<App>, Json(mut faults): Json<Faults>) -> Response {
    if faults.fail_status == 0 {
        faults.fail_status = 503;
    }
    *app.faults() = faults;
    admin_result(Ok(()))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LagBody {
    progress_ms: i64,
    list_cache_ms: i64,
}

async fn admin_lag(State(app): State<App>, Json(body): Json<LagBody>) -> Response {
    app.service.set_lag(Lag {
        progress_ms: body.progress_ms,
        list_cache_ms: body.list_cache_ms,
    });
    admin_result(Ok(()))
}

async fn admin_stats(State(app): State<App>) -> Response {
    let stats = *app.stats();
    (StatusCode::OK, Json(json!(stats))).into_response()
}

async fn admin_states(State(app): State<App>, Path(user): Path<String>) -> Response {
    admin_answer(app.service.states_of(&user).map(Value::from))
}
