//! The `runtime` block: Tally's version and the machine it runs on, read once.

use crate::events::RuntimeInfo;

/// The runtime block for this process.
pub fn current_runtime() -> RuntimeInfo {
    let text = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    let version = text
        .lines()
        .find_map(|l| l.strip_prefix("VERSION_ID="))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_default();
    RuntimeInfo {
        codex_rs_version: env!("CARGO_PKG_VERSION").to_string(),
        runtime_os: std::env::consts::OS.to_string(),
        runtime_os_version: version,
        runtime_arch: std::env::consts::ARCH.to_string(),
    }
}
