//! `--ws-auth` and its companion flags, shared by `tally app-server` and `tally serve`.

use std::path::PathBuf;
use std::time::Duration;
use tally_app_server::transport::ws_auth::{WsAuth, DEFAULT_MAX_CLOCK_SKEW};

/// How WebSocket upgrades are authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum WsAuthMode {
    /// `Authorization: Bearer <token>` must equal a shared token.
    CapabilityToken,
    /// `Authorization: Bearer <JWT>` signed with HS256 under a shared secret.
    SignedBearerToken,
}

/// WebSocket auth flags (Codex's names); required for non-loopback listeners.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct WsAuthArgs {
    /// WebSocket auth mode; required for non-loopback listeners.
    #[arg(long, value_enum)]
    pub ws_auth: Option<WsAuthMode>,
    /// File holding the capability token (capability-token).
    #[arg(long, value_name = "PATH")]
    pub ws_token_file: Option<PathBuf>,
    /// Hex SHA-256 of the capability token, instead of the token file (capability-token).
    #[arg(long, value_name = "HEX")]
    pub ws_token_sha256: Option<String>,
    /// File holding the HMAC secret for signed JWT bearer tokens (signed-bearer-token).
    #[arg(long, value_name = "PATH")]
    pub ws_shared_secret_file: Option<PathBuf>,
    /// Expected `iss` of signed JWT bearer tokens.
    #[arg(long)]
    pub ws_issuer: Option<String>,
    /// Expected `aud` of signed JWT bearer tokens.
    #[arg(long)]
    pub ws_audience: Option<String>,
    /// Clock skew tolerated on `exp`/`nbf` of signed JWT bearer tokens (default 30).
    #[arg(long, value_name = "SECONDS")]
    pub ws_max_clock_skew_seconds: Option<u64>,
}

impl WsAuthArgs {
    /// The configured auth, or an error naming the missing or conflicting flag.
    pub fn resolve(&self) -> Result<Option<WsAuth>, String> {
        let jwt_only = self.ws_shared_secret_file.is_some()
            || self.ws_issuer.is_some()
            || self.ws_audience.is_some()
            || self.ws_max_clock_skew_seconds.is_some();
        let token_only = self.ws_token_file.is_some() || self.ws_token_sha256.is_some();
        match self.ws_auth {
            None if jwt_only || token_only => Err(
                "--ws-token-file, --ws-shared-secret-file and friends need --ws-auth MODE".into(),
            ),
            None => Ok(None),
            Some(WsAuthMode::CapabilityToken) => {
                if jwt_only {
                    return Err("--ws-auth capability-token takes --ws-token-file PATH or --ws-token-sha256 HEX, not the signed-bearer-token flags".into());
                }
                match (&self.ws_token_file, &self.ws_token_sha256) {
                    (Some(path), None) => WsAuth::capability_token_file(path).map(Some),
                    (None, Some(hex)) => WsAuth::capability_token_sha256(hex).map(Some),
                    (Some(_), Some(_)) => {
                        Err("give --ws-token-file or --ws-token-sha256, not both".into())
                    }
                    (None, None) => Err(
                        "--ws-auth capability-token needs --ws-token-file PATH (or --ws-token-sha256 HEX)"
                            .into(),
                    ),
                }
            }
            Some(WsAuthMode::SignedBearerToken) => {
                if token_only {
                    return Err("--ws-auth signed-bearer-token takes --ws-shared-secret-file PATH, not a token".into());
                }
                let path = self
                    .ws_shared_secret_file
                    .as_ref()
                    .ok_or("--ws-auth signed-bearer-token needs --ws-shared-secret-file PATH")?;
                let skew = self
                    .ws_max_clock_skew_seconds
                    .map(Duration::from_secs)
                    .unwrap_or(DEFAULT_MAX_CLOCK_SKEW);
                WsAuth::signed_bearer_file(
                    path,
                    self.ws_issuer.clone(),
                    self.ws_audience.clone(),
                    skew,
                )
                .map(Some)
            }
        }
    }
}
