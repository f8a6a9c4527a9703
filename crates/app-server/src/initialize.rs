//! The `initialize` handshake: validating the client and building its session and response.

use crate::connection::SessionInfo;
use tally_core::{ClientIdentity, Config};
use tally_protocol::types::{InitializeParams, InitializeResponse};
use tally_protocol::{ClientResponsePayload, JsonRpcErrorBody, CODEX_PROTOCOL_VERSION};

/// `clientInfo.name` becomes an HTTP header value (`originator`), so it must be one.
pub(crate) fn validate_client_name(name: &str) -> Result<(), JsonRpcErrorBody> {
    let valid = !name.is_empty()
        && name.len() <= 256
        && name
            .bytes()
            .all(|b| b == b'\t' || (0x20..0x7f).contains(&b));
    if valid {
        Ok(())
    } else {
        Err(JsonRpcErrorBody::invalid_request(format!(
            "Invalid clientInfo.name: {name:?} is not a valid HTTP header value"
        )))
    }
}

/// The session a client negotiates and the `initialize` result it gets.
pub(crate) fn initialize_response(
    config: &Config,
    params: &InitializeParams,
) -> (SessionInfo, ClientResponsePayload) {
    let info = &params.client_info;
    let caps = params.capabilities.clone().unwrap_or_default();
    let user_agent = format!(
        "{name}/{CODEX_PROTOCOL_VERSION} ({os}; {arch}) tally/{tally} ({name}; {version})",
        name = info.name,
        os = os_description(),
        arch = std::env::consts::ARCH,
        tally = tally_core::TALLY_VERSION,
        version = info.version,
    );
    let session = SessionInfo {
        client: ClientIdentity {
            originator: info.name.clone(),
            user_agent: user_agent.clone(),
            experimental_api: caps.experimental_api,
        },
        experimental_api: caps.experimental_api,
        opt_out_notifications: caps
            .opt_out_notification_methods
            .unwrap_or_default()
            .into_iter()
            .collect(),
    };
    let response = InitializeResponse {
        user_agent,
        codex_home: absolute(&config.home),
        platform_family: if cfg!(windows) { "windows" } else { "unix" }.to_string(),
        platform_os: std::env::consts::OS.to_string(),
    };
    (session, ClientResponsePayload::Initialize(response))
}

fn absolute(path: &std::path::Path) -> String {
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string()
}

/// "Debian 12" style: the OS name and version from /etc/os-release, else the OS family.
fn os_description() -> String {
    let text = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .map(|v| v.trim_matches('"').to_string())
    };
    match (field("NAME="), field("VERSION_ID=")) {
        (Some(n), Some(v)) => format!("{n} {v}"),
        (Some(n), None) => n,
        _ => std::env::consts::OS.to_string(),
    }
}
