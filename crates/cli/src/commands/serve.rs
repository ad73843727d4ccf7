//! `docpipe serve`: the HTTP API on a local port with the embedded pipeline behind it.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use docpipe_api::{ApiPorts, ApiSettings, AppState, LocalPresigner, Uploads};
use docpipe_core::webhooks::RetryPolicy;
use docpipe_fetch::{FetchPolicy, HttpFetcher};
use docpipe_local::delivery::DeliveryWorker;
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
            delete_document_when_final: settings.retention.delete_document_when_final,
            ..ApiSettings::default()
        },
    )
    .with_webhooks(Arc::new(store.clone()));
    // Webhook deliveries: beside the pipeline, never in its way.
    let (stop_background, stopped) = tokio::sync::watch::channel(false);
    let delivery = DeliveryWorker::new(
        store.clone(),
        Arc::new(HttpFetcher::new(FetchPolicy {
            allowed_hosts: settings.url_allowed_hosts.clone(),
            ..FetchPolicy::default()
        })),
        ports.clock.clone(),
        RetryPolicy::default(),
    );
    let delivering = tokio::spawn(delivery.run(Duration::from_millis(500), until(stopped.clone())));
    let watching = settings.watch_dir.clone().map(|dir| {
        tokio::spawn(super::watch::watch_beside(
            pipeline.clone(),
            dir,
            until(stopped.clone()),
        ))
    });
    let sweeping = tokio::spawn(sweep_periodically(
        pipeline.clone(),
        settings.retention,
        settings.gc_interval_secs,
        until(stopped.clone()),
    ));
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
    let _ = stop_background.send(true);
    let _ = delivering.await;
    let _ = sweeping.await;
    if let Some(watching) = watching {
        let _ = watching.await;
    }
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

/// The retention sweep every `interval_secs` (never for 0), until `stop`.
async fn sweep_periodically(
    pipeline: docpipe_local::embedded::Embedded,
    retention: docpipe_core::retention::Retention,
    interval_secs: u64,
    stop: impl std::future::Future<Output = ()>,
) {
    if interval_secs == 0 {
        return;
    }
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep(Duration::from_secs(interval_secs)) => {}
        }
        let now = pipeline.ports().clock.now();
        match docpipe_local::retention::sweep(
            pipeline.store(),
            pipeline.objects(),
            &retention,
            now,
            false,
        )
        .await
        {
            Ok(r) => tracing::info!(
                jobs = r.jobs.len(),
                objects = r.object_folders.len(),
                documents = r.documents_dropped.len(),
                "retention sweep"
            ),
            Err(e) => tracing::warn!(error = %e, "retention sweep"),
        }
    }
}

/// Resolves once `stop` turns true (or its sender is gone).
async fn until(mut stop: tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
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
