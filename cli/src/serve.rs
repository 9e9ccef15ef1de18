//! `headway serve`: the reference course service on a local address, optionally seeded with
//! courses, batches, enrolments and tokens from a JSON file.

use std::path::{Path, PathBuf};

use clap::Args;
use headway_sunbird_server::{Lag, ReferenceServer, Seed, ServerConfig, UnknownBatches};

use crate::Failure;

#[derive(Args)]
pub struct ServeArgs {
    /// Where to listen, e.g. 127.0.0.1:9000 (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:9000")]
    addr: String,
    /// Require `Authorization: Bearer <key>` on every endpoint, `/admin/*` included.
    #[arg(long, env = "HEADWAY_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Register a user token as TOKEN=USER (repeatable; in the environment, comma-separated);
    /// then only registered tokens pass.
    #[arg(
        long = "token",
        value_name = "TOKEN=USER",
        env = "HEADWAY_TOKENS",
        hide_env_values = true,
        value_delimiter = ','
    )]
    tokens: Vec<String>,
    /// Courses, batches, enrolments and tokens to start with (JSON; see the README).
    #[arg(long, value_name = "FILE")]
    seed: Option<PathBuf>,
    /// Answer BATCH_NOT_EXISTS for batches never set up (default: take them as ongoing).
    #[arg(long)]
    strict_batches: bool,
    /// Completions reach the enrollment list's course progress after this many ms.
    #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(i64).range(0..))]
    progress_lag_ms: i64,
    /// The enrollment list is cached per learner this many ms.
    #[arg(long, default_value_t = 60_000, value_parser = clap::value_parser!(i64).range(0..))]
    list_cache_ms: i64,
    /// A client has this many ms to send a request's head, then again its body (a stalled one
    /// is closed, or answered 408).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    request_timeout_ms: u64,
}

pub fn run(db: Option<&Path>, args: ServeArgs) -> Result<(), Failure> {
    // Every flag is checked before anything starts: a refused one exits 2.
    // `IP:PORT`, or a host name and port (`localhost:9000`), resolved here: an IPv4 address
    // first, as the clients of a test service expect.
    let resolved = std::net::ToSocketAddrs::to_socket_addrs(args.addr.as_str())
        .ok()
        .and_then(|addrs| {
            let addrs: Vec<std::net::SocketAddr> = addrs.collect();
            addrs
                .iter()
                .find(|a| a.is_ipv4())
                .or_else(|| addrs.first())
                .copied()
        })
        .ok_or_else(|| {
            Failure::Input(format!(
                "--addr {:?} is not an address to listen on (for example 127.0.0.1:9000 or \
                 localhost:9000)",
                args.addr
            ))
        })?;
    let mut config = ServerConfig::new(resolved.to_string())
        .lag(Lag {
            progress_ms: args.progress_lag_ms,
            list_cache_ms: args.list_cache_ms,
        })
        .request_timeout(std::time::Duration::from_millis(args.request_timeout_ms));
    if let Some(db) = db {
        if let Some(parent) = db
            .parent()
            .filter(|p| !p.as_os_str().is_empty() && !p.exists())
        {
            return Err(Failure::Input(format!(
                "cannot keep the service's data at {}: the directory {} does not exist",
                db.display(),
                parent.display()
            )));
        }
        config = config.db(db);
    }
    if let Some(key) = args.api_key {
        if key.is_empty() {
            return Err(Failure::Input("--api-key is empty".into()));
        }
        config = config.api_key(key);
    }
    if args.strict_batches {
        config = config.unknown_batches(UnknownBatches::Missing);
    }
    for pair in args.tokens {
        match pair.split_once('=') {
            Some((token, user)) if !token.is_empty() && !user.is_empty() => {
                config = config.token(token, user);
            }
            _ => {
                return Err(Failure::Input(
                    "--token wants TOKEN=USER (for example --token t-asha=asha)".into(),
                ))
            }
        }
    }
    if let Some(file) = &args.seed {
        let text = std::fs::read_to_string(file).map_err(|e| {
            Failure::Input(format!("--seed {}: cannot read it: {e}", file.display()))
        })?;
        let seed = Seed::from_json(&text)
            .map_err(|e| Failure::Input(format!("--seed {}: {e}", file.display())))?;
        config = config.seed(seed);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let server = ReferenceServer::start(config).await.map_err(|e| match e {
            headway_sunbird_server::Error::Server { reason } => Failure::Input(reason),
            other => Failure::Other(other.into()),
        })?;
        say!(
            "headway reference course service listening on {}",
            server.url()
        )?;
        tokio::signal::ctrl_c().await?;
        server.shutdown().await;
        Ok(())
    })
}
