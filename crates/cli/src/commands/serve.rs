//! `docpipe serve`: the HTTP API on a local port with the embedded pipeline behind it.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use docpipe_api::{ApiPorts, ApiSettings, AppState, LocalPresigner, Uploads};
use docpipe_local::orchestrator::{EmbeddedOrchestrator, PoolOptions};

use crate::settings::Settings;

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on (port 0 picks a free port); overrides the `bind` setting.
    #[arg(long)]
    pub bind: Option<String>,
}

pub(crate) async fn serve(settings: &Settings, args: ServeArgs) -> Result<ExitCode> {
    let pipeline = super::open_pipeline(settings)?;
    let orchestrator = EmbeddedOrchestrator::start(
        pipeline.clone(),
        PoolOptions {
            workers: settings.workers,
            queue: settings.queue_capacity,
        },
    );
    let bind = args.bind.unwrap_or_else(|| settings.bind.clone());
    let listener = tokio::net::TcpListener::bind(&bind)
        .await
        .with_context(|| format!("binding {bind}"))?;
    let addr = listener.local_addr()?;
    let public_url = settings
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));
    let secret = upload_secret(&settings.home)?;
    let ports = pipeline.ports();
    let store = pipeline.store();
    let state = AppState::new(
        ApiPorts {
            jobs: ports.jobs.clone(),
            objects: ports.objects.clone(),
            keys: Arc::new(store.clone()),
            idempotency: Arc::new(store.clone()),
            orchestrator: Arc::new(orchestrator.clone()),
            fetcher: ports.fetcher.clone(),
            uploads: Uploads::Local(LocalPresigner::new(public_url, secret)),
            clock: ports.clock.clone(),
            executions: Arc::new(store.clone()),
            pages: Arc::new(docpipe_local::page_images::RenderedPages::new(
                ports.objects.clone(),
            )),
        },
        ApiSettings {
            max_document_bytes: settings.max_document_mib * 1024 * 1024,
            default_rate_limit_per_minute: settings.default_rate_limit_per_minute,
            cors_origins: settings.cors_origins.clone(),
            body_timeout: Duration::from_secs(settings.body_timeout_secs),
            review_confidence_threshold: ports.settings.review_confidence_threshold,
            pricing: super::pricing_profile(settings),
            ..ApiSettings::default()
        },
    );
    // What a previous run left behind: journaled executions resume, queued jobs start.
    let recovered = orchestrator.recover().await?;
    // The line a supervisor (or a test) waits for; the port is real even for `:0`.
    println!("docpipe listening on http://{addr}");
    tracing::info!(%addr, recovered, "listening");
    super::http::serve(
        listener,
        docpipe_api::router(state),
        Duration::from_secs(settings.header_timeout_secs),
        shutdown_signal(),
    )
    .await;
    tracing::info!("shutting down: draining executions");
    orchestrator
        .drain(Duration::from_secs(settings.drain_secs))
        .await;
    Ok(ExitCode::SUCCESS)
}

/// The secret that signs upload URLs, kept in the data folder so URLs survive a restart.
fn upload_secret(home: &Path) -> Result<Arc<[u8]>> {
    let path = home.join("upload-signing.key");
    if let Ok(bytes) = std::fs::read(&path)
        && bytes.len() >= 32
    {
        return Ok(Arc::from(bytes));
    }
    let mut key = vec![0u8; 32];
    getrandom::fill(&mut key).map_err(|e| anyhow::anyhow!("no randomness for a key: {e}"))?;
    docpipe_local::private_files::create_dir_all(home)?;
    docpipe_local::private_files::write(&path, &key)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(Arc::from(key))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
