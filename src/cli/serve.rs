//! `serve` and `token create`: the HTTP and Flight SQL servers' start-up,
//! and their tokens.

use std::path::PathBuf;

use anyhow::Result;
use osservatorio::auth::{self, Role};
use osservatorio::config::Config;
use osservatorio::flight::{self, FlightSql};
use osservatorio::observatory::Observatory;
use osservatorio::server::{self, AppState, ServerLimits};

use super::open;

/// How often the server looks for new table versions.
const REFRESH_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);

pub(super) async fn run_serve(config: Config) -> Result<()> {
    let mut access = config.access.clone();
    let mut session_token = None;
    if access.has_no_tokens() {
        server::check_exposure(config.listen, &access)?;
        server::check_exposure(config.flight_listen, &access)?;
        let (token, record) = auth::new_token("session", Role::Researcher);
        access = access.with_token(record);
        session_token = Some(token);
    }
    let warehouse = open(&config).await?;
    let limits = ServerLimits {
        body_bytes: server::DEFAULT_BODY_LIMIT,
        request_timeout: config.limits.timeout + std::time::Duration::from_secs(10),
    };
    let (listen, flight_listen) = (config.listen, config.flight_listen);
    let observatory = std::sync::Arc::new(Observatory::open(warehouse, config).await?);
    let _watcher = observatory.watch(REFRESH_INTERVAL);
    let listener = server::bind(listen).await?;
    let flight_listener = server::bind(flight_listen).await?;
    let address = listener.local_addr()?;
    let flight_address = flight_listener.local_addr()?;
    eprintln!("serving the observatory at http://{address}/");
    eprintln!("serving Arrow Flight SQL at grpc://{flight_address}");
    if let Some(token) = session_token {
        eprintln!(
            "no tokens are configured, so this session has its own researcher token:\n    {token}\n\
             e.g. curl -H 'Authorization: Bearer {token}' --data 'SELECT count(*) FROM workers' http://{address}/api/sql"
        );
    }
    // One signal stops both servers.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        server::shutdown_signal().await;
        let _ = stop.send(true);
    });
    let until_stopped = move || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        }
    };
    let flight = FlightSql::new(observatory.clone(), access.clone());
    let state = AppState::new(observatory, access, limits);
    let (http, flight) = tokio::join!(
        server::serve(listener, state, until_stopped()),
        flight::serve(flight_listener, flight, until_stopped()),
    );
    http?;
    flight?;
    Ok(())
}

pub(super) fn create_token(config: &Config, role: Role, name: &str) -> Result<()> {
    let path = config
        .config_file
        .clone()
        .unwrap_or_else(|| PathBuf::from(osservatorio::config::DEFAULT_CONFIG_FILE));
    let (token, record) = auth::new_token(name, role);
    osservatorio::config::add_token(&path, &record)?;
    eprintln!(
        "created the {} token `{name}`; its hash is in {}. The token is shown only now:",
        role.as_str(),
        path.display()
    );
    println!("{token}");
    Ok(())
}
