//! `serve` and `token create`: the HTTP server's start-up and its tokens.

use std::path::PathBuf;

use anyhow::Result;
use osservatorio::auth::{self, Role};
use osservatorio::config::Config;
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
        let (token, record) = auth::new_token("session", Role::Researcher);
        access = access.with_token(record);
        session_token = Some(token);
    }
    let warehouse = open(&config).await?;
    let limits = ServerLimits {
        body_bytes: server::DEFAULT_BODY_LIMIT,
        request_timeout: config.limits.timeout + std::time::Duration::from_secs(10),
    };
    let listen = config.listen;
    let observatory = std::sync::Arc::new(Observatory::open(warehouse, config).await?);
    let _watcher = observatory.watch(REFRESH_INTERVAL);
    let listener = server::bind(listen).await?;
    let address = listener.local_addr()?;
    eprintln!("serving the observatory at http://{address}/");
    if let Some(token) = session_token {
        eprintln!(
            "no tokens are configured, so this session has its own researcher token:\n    {token}\n\
             e.g. curl -H 'Authorization: Bearer {token}' --data 'SELECT count(*) FROM workers' http://{address}/api/sql"
        );
    }
    let state = AppState::new(observatory, access, limits);
    server::serve(listener, state, server::shutdown_signal()).await?;
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
