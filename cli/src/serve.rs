//! `headway serve`: the reference course service on a local address.

use std::path::Path;

use clap::Args;
use headway_sunbird::{Lag, ReferenceServer, ServerConfig, UnknownBatches};

#[derive(Args)]
pub struct ServeArgs {
    /// Where to listen, e.g. 127.0.0.1:9000 (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:9000")]
    addr: String,
    /// Require `Authorization: Bearer <key>`.
    #[arg(long)]
    api_key: Option<String>,
    /// Register a user token as TOKEN=USER (repeatable); then only registered tokens pass.
    #[arg(long = "token", value_name = "TOKEN=USER")]
    tokens: Vec<String>,
    /// Answer BATCH_NOT_EXISTS for batches never set up (default: take them as ongoing).
    #[arg(long)]
    strict_batches: bool,
    /// Completions reach the enrollment list's course progress after this many ms.
    #[arg(long, default_value_t = 2_000)]
    progress_lag_ms: i64,
    /// The enrollment list is cached per learner this many ms.
    #[arg(long, default_value_t = 60_000)]
    list_cache_ms: i64,
}

pub fn run(db: Option<&Path>, args: ServeArgs) -> anyhow::Result<()> {
    let mut config = ServerConfig::new(&args.addr).lag(Lag {
        progress_ms: args.progress_lag_ms,
        list_cache_ms: args.list_cache_ms,
    });
    if let Some(db) = db {
        config = config.db(db);
    }
    if let Some(key) = args.api_key {
        config = config.api_key(key);
    }
    if args.strict_batches {
        config = config.unknown_batches(UnknownBatches::Missing);
    }
    for pair in args.tokens {
        let (token, user) = pair
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--token wants TOKEN=USER, got {pair:?}"))?;
        config = config.token(token, user);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let server = ReferenceServer::start(config).await?;
        println!(
            "headway reference course service listening on {}",
            server.url()
        );
        tokio::signal::ctrl_c().await?;
        server.shutdown().await;
        Ok(())
    })
}
