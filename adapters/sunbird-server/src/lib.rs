//! The reference course service behind `headway serve`: Sunbird's update, read and list
//! endpoints over HTTP with the real server's semantics (see `service.rs`), token
//! checks, and fault injection for tests (fail the next N requests, close the connection after
//! applying, delay, refuse a chosen content with 400). Its own crate, so that an app linking
//! the Sunbird client (`headway-sunbird`) compiles neither axum nor a second SQLite stack.

mod error;
mod http;
mod service;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::Serialize;

pub use error::{Error, Result};
pub use service::{BatchStatus, CourseService, Lag, Reply, UnknownBatches};

/// How to start a [`ReferenceServer`].
///
/// ```
/// let config = headway_sunbird_server::ServerConfig::new("127.0.0.1:0")
///     .api_key("gateway-key")
///     .token("token-of-asha", "asha");
/// let shown = format!("{config:?}"); // Debug never shows a secret
/// assert!(!shown.contains("gateway-key") && !shown.contains("token-of-asha"));
/// ```
#[derive(Clone)]
pub struct ServerConfig {
    seed: Option<Seed>,
    addr: String,
    db: Option<PathBuf>,
    api_key: Option<String>,
    tokens: Vec<(String, String)>,
    lag: Lag,
    unknown_batches: UnknownBatches,
    request_timeout: Duration,
}

/// How long a client has to send a request's head, and then again its body, by default (see
/// [`ServerConfig::request_timeout`]).
///
/// ```
/// assert_eq!(headway_sunbird_server::DEFAULT_REQUEST_TIMEOUT.as_secs(), 10);
/// ```
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Shows where the server listens and what it holds, never the API key or the tokens.
impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("addr", &self.addr)
            .field("db", &self.db)
            .field("seeded", &self.seed.is_some())
            .field("api_key", &self.api_key.as_ref().map(|_| ".."))
            .field("tokens", &self.tokens.len())
            .field("lag", &self.lag)
            .field("unknown_batches", &self.unknown_batches)
            .field("request_timeout", &self.request_timeout)
            .finish()
    }
}

impl ServerConfig {
    /// A server on `addr` (`127.0.0.1:0` picks a free port), in memory, with no API key and
    /// no registered token: then any user token (or none) is accepted and the request's user
    /// ids are trusted.
    pub fn new(addr: impl Into<String>) -> ServerConfig {
        ServerConfig {
            seed: None,
            addr: addr.into(),
            db: None,
            api_key: None,
            tokens: Vec::new(),
            lag: Lag::default(),
            unknown_batches: UnknownBatches::Ongoing,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
        }
    }

    /// How long a client has to send a request's head (counted from the connection being
    /// accepted, or from the previous answer on a kept-alive connection), and then again its
    /// whole body. A head that does not arrive in time closes the connection; a body that does
    /// not is answered 408 and the connection closed. Default [`DEFAULT_REQUEST_TIMEOUT`]
    /// (10 s); at least 1 ms.
    ///
    /// ```
    /// use std::time::Duration;
    /// let config = headway_sunbird_server::ServerConfig::new("127.0.0.1:0")
    ///     .request_timeout(Duration::from_millis(500));
    /// assert!(format!("{config:?}").contains("500ms"));
    /// ```
    pub fn request_timeout(mut self, timeout: Duration) -> ServerConfig {
        self.request_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// Keeps the service's data in this SQLite file.
    pub fn db(mut self, path: impl Into<PathBuf>) -> ServerConfig {
        self.db = Some(path.into());
        self
    }

    /// Requires `Authorization: Bearer <key>`.
    pub fn api_key(mut self, key: impl Into<String>) -> ServerConfig {
        self.api_key = Some(key.into());
        self
    }

    /// Registers a user token: once any token is registered, only registered tokens are
    /// accepted, and a token decides the user.
    pub fn token(mut self, token: impl Into<String>, user: impl Into<String>) -> ServerConfig {
        self.tokens.push((token.into(), user.into()));
        self
    }

    /// What updates for batches the service never heard of get. Default
    /// [`UnknownBatches::Ongoing`].
    pub fn unknown_batches(mut self, policy: UnknownBatches) -> ServerConfig {
        self.unknown_batches = policy;
        self
    }

    /// Courses, batches, enrolments and tokens to set up before serving.
    pub fn seed(mut self, seed: Seed) -> ServerConfig {
        for (token, user) in &seed.tokens {
            self.tokens.push((token.clone(), user.clone()));
        }
        self.seed = Some(seed);
        self
    }

    /// How far the enrollment list lags behind updates.
    pub fn lag(mut self, lag: Lag) -> ServerConfig {
        self.lag = lag;
        self
    }
}

/// What a service starts with (`headway serve --seed FILE`): courses with their leaf nodes,
/// batches, enrolments and user tokens.
///
/// ```
/// let seed = headway_sunbird_server::Seed::from_json(r#"{
///   "courses": [{"courseId": "do_course", "name": "Fractions", "leafNodes": ["do_1", "do_2"]}],
///   "batches": [{"batchId": "0130", "courseId": "do_course", "status": 1}],
///   "enrolments": [{"userId": "asha", "courseId": "do_course", "batchId": "0130"}],
///   "tokens": {"token-of-asha": "asha"}
/// }"#)?;
/// assert_eq!(seed.courses.len(), 1);
/// assert!(!format!("{seed:?}").contains("token-of-asha")); // Debug never shows a token
/// # Ok::<(), headway_sunbird_server::Error>(())
/// ```
#[derive(Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Seed {
    /// Courses and their leaf nodes.
    pub courses: Vec<SeedCourse>,
    /// Batches: 0 upcoming, 1 ongoing, 2 closed.
    pub batches: Vec<SeedBatch>,
    /// Which learner is enrolled in which course batch.
    pub enrolments: Vec<SeedEnrolment>,
    /// User tokens and the learner each stands for (then only these tokens pass).
    pub tokens: std::collections::BTreeMap<String, String>,
}

/// Shows the courses, batches and enrolments, and for the tokens only the learners they stand
/// for, never a token.
impl std::fmt::Debug for Seed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Seed")
            .field("courses", &self.courses)
            .field("batches", &self.batches)
            .field("enrolments", &self.enrolments)
            .field("tokens_for", &self.tokens.values().collect::<Vec<_>>())
            .finish()
    }
}

/// A course of a [`Seed`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedCourse {
    /// The course id.
    pub course_id: String,
    /// Its name (default: the id).
    #[serde(default)]
    pub name: Option<String>,
    /// The contents that count towards completion.
    #[serde(default)]
    pub leaf_nodes: Vec<String>,
}

/// A batch of a [`Seed`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedBatch {
    /// The batch id.
    pub batch_id: String,
    /// Its course.
    pub course_id: String,
    /// 0 upcoming, 1 ongoing (the default), 2 closed.
    #[serde(default = "ongoing")]
    pub status: u8,
}

fn ongoing() -> u8 {
    1
}

/// An enrolment of a [`Seed`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedEnrolment {
    /// The learner.
    pub user_id: String,
    /// The course.
    pub course_id: String,
    /// The batch.
    pub batch_id: String,
}

impl Seed {
    /// Parses a seed file's JSON, refusing unknown fields and batch statuses outside 0..=2.
    pub fn from_json(text: &str) -> Result<Seed> {
        let seed: Seed = serde_json::from_str(text).map_err(|e| Error::InvalidConfig {
            reason: format!("the seed does not parse: {e}"),
        })?;
        if let Some(batch) = seed.batches.iter().find(|b| b.status > 2) {
            return Err(Error::InvalidConfig {
                reason: format!(
                    "batch {:?} has status {}: 0 upcoming, 1 ongoing or 2 closed",
                    batch.batch_id, batch.status
                ),
            });
        }
        Ok(seed)
    }

    fn apply(&self, service: &CourseService) -> Result<()> {
        for course in &self.courses {
            let name = course.name.as_deref().unwrap_or(&course.course_id);
            service.put_course(&course.course_id, name, &course.leaf_nodes)?;
        }
        for batch in &self.batches {
            let status = match batch.status {
                0 => BatchStatus::Upcoming,
                1 => BatchStatus::Ongoing,
                _ => BatchStatus::Closed,
            };
            service.put_batch(&batch.batch_id, &batch.course_id, status)?;
        }
        let now = headway::Timestamp::now().as_millis();
        for enrolment in &self.enrolments {
            service.enrol(
                &enrolment.user_id,
                &enrolment.course_id,
                &enrolment.batch_id,
                now,
            )?;
        }
        Ok(())
    }
}

/// Faults injected into the next requests.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Faults {
    /// The next this many API requests fail with `fail_status` (default 503) before anything
    /// is applied.
    pub fail_next: u32,
    /// The status of the failed requests.
    pub fail_status: u16,
    /// The next this many updates are applied, then the connection is closed without an
    /// answer.
    pub close_after_apply: u32,
    /// Every API request waits this long first.
    pub delay_ms: u64,
    /// An update holding any of these content ids is refused whole with 400, as Sunbird does
    /// for an item it cannot validate.
    pub poison_contents: HashSet<String>,
}

/// Requests the service answered, per endpoint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// Update requests (each bulk PATCH counts once).
    pub update_requests: u64,
    /// Content items received in update requests.
    pub update_items: u64,
    /// Read requests.
    pub read_requests: u64,
    /// Enrollment-list requests.
    pub list_requests: u64,
    /// Requests failed on purpose by [`Faults::fail_next`] (counted in none of the above).
    pub failed_requests: u64,
}

/// State shared by the HTTP handlers.
pub(crate) struct Shared {
    pub(crate) service: CourseService,
    pub(crate) api_key: Option<String>,
    pub(crate) tokens: Mutex<HashMap<String, (String, bool)>>,
    pub(crate) faults: Mutex<Faults>,
    pub(crate) stats: Mutex<Stats>,
}

fn guard<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    pub(crate) fn faults(&self) -> MutexGuard<'_, Faults> {
        guard(&self.faults)
    }

    pub(crate) fn stats(&self) -> MutexGuard<'_, Stats> {
        guard(&self.stats)
    }

    pub(crate) fn tokens(&self) -> MutexGuard<'_, HashMap<String, (String, bool)>> {
        guard(&self.tokens)
    }
}

/// A running reference course service on 127.0.0.1.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use headway_sunbird_server::{BatchStatus, ReferenceServer, ServerConfig};
/// let server = ReferenceServer::start(ServerConfig::new("127.0.0.1:0")).await?;
/// server.service().put_course("do_course", "Fractions", &["do_1".into()])?;
/// server.service().put_batch("0130", "do_course", BatchStatus::Ongoing)?;
/// assert!(server.url().starts_with("http://127.0.0.1:"));
/// server.shutdown().await;
/// # Ok(()) }
/// ```
pub struct ReferenceServer {
    url: String,
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for ReferenceServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReferenceServer")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl ReferenceServer {
    /// Binds and starts serving on the current tokio runtime.
    pub async fn start(config: ServerConfig) -> Result<ReferenceServer> {
        let service = CourseService::open(config.db.as_deref())?;
        service.set_lag(config.lag);
        service.set_unknown_batches(config.unknown_batches);
        if let Some(seed) = &config.seed {
            seed.apply(&service)?;
        }
        let tokens = config
            .tokens
            .into_iter()
            .map(|(token, user)| (token, (user, false)))
            .collect();
        let shared = Arc::new(Shared {
            service,
            api_key: config.api_key,
            tokens: Mutex::new(tokens),
            faults: Mutex::new(Faults {
                fail_status: 503,
                ..Faults::default()
            }),
            stats: Mutex::new(Stats::default()),
        });
        let listener = tokio::net::TcpListener::bind(&config.addr)
            .await
            .map_err(|e| Error::Server {
                reason: format!("cannot bind {}: {e}", config.addr),
            })?;
        let addr = listener.local_addr().map_err(|e| Error::Server {
            reason: e.to_string(),
        })?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let router = http::router(shared.clone(), config.request_timeout);
        let task = tokio::spawn(http::serve(
            listener,
            router,
            config.request_timeout,
            stopped,
        ));
        Ok(ReferenceServer {
            url: format!("http://{addr}"),
            addr,
            shared,
            stop: Some(stop),
            task,
        })
    }

    /// The base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The service's data and rules, for setting up courses, batches and enrolments.
    pub fn service(&self) -> &CourseService {
        &self.shared.service
    }

    /// Replaces the injected faults.
    pub fn set_faults(&self, faults: Faults) {
        *self.shared.faults() = faults;
    }

    /// Fails the next `n` API requests with `status`.
    pub fn fail_next(&self, n: u32, status: u16) {
        let mut faults = self.shared.faults();
        faults.fail_next = n;
        faults.fail_status = status;
    }

    /// Applies the next `n` updates, then closes the connection without answering.
    pub fn close_after_apply(&self, n: u32) {
        self.shared.faults().close_after_apply = n;
    }

    /// Refuses with 400 any update that holds this content id.
    pub fn poison_content(&self, content_id: &str) {
        self.shared
            .faults()
            .poison_contents
            .insert(content_id.to_string());
    }

    /// Registers a user token (switching the server to registered tokens only).
    pub fn add_token(&self, token: &str, user: &str) {
        self.shared
            .tokens()
            .insert(token.to_string(), (user.to_string(), false));
    }

    /// Makes a registered token answer 401 from now on.
    pub fn expire_token(&self, token: &str) {
        if let Some(entry) = self.shared.tokens().get_mut(token) {
            entry.1 = true;
        }
    }

    /// Requests answered so far.
    pub fn stats(&self) -> Stats {
        *self.shared.stats()
    }

    /// Stops serving and waits for the server task.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

impl Drop for ReferenceServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seeds_debug_names_the_learners_but_never_a_token() {
        let seed = Seed::from_json(
            r#"{"tokens": {"secret-token-of-asha": "asha", "secret-token-of-ravi": "ravi"}}"#,
        )
        .unwrap();
        let shown = format!("{seed:?}");
        assert!(!shown.contains("secret-token"), "{shown}");
        assert!(shown.contains("asha") && shown.contains("ravi"), "{shown}");
        let config = format!("{:?}", ServerConfig::new("127.0.0.1:0").seed(seed));
        assert!(!config.contains("secret-token"), "{config}");
    }
}
