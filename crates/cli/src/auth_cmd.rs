//! `tally login --api-key`, `tally login status`, `tally logout`: thin calls into `AuthManager`.

use anyhow::Context;
use std::io::Read;
use std::path::Path;
use tally_auth::{AuthConfig, AuthManager, AuthMode};

use crate::stdout::print_output;

fn manager(home: &Path) -> anyhow::Result<std::sync::Arc<AuthManager>> {
    AuthManager::load(AuthConfig::from_env(home)).context("reading credentials")
}

/// Saves `key` (or, for `-`, the key read from stdin) in `auth.json`.
pub fn login_api_key(home: &Path, key: &str) -> anyhow::Result<()> {
    let key = if key == "-" {
        let mut text = String::new();
        std::io::stdin()
            .take(64 * 1024)
            .read_to_string(&mut text)
            .context("reading the API key from stdin")?;
        text
    } else {
        key.to_owned()
    };
    std::fs::create_dir_all(home).with_context(|| format!("creating home {}", home.display()))?;
    manager(home)?.login_api_key(&key)?;
    print_output(&format!(
        "Logged in with an API key (saved in {}).\n",
        tally_auth::auth_json::auth_file(home).display()
    ))?;
    Ok(())
}

/// Prints how Tally is authenticated, without the secret.
pub fn status(home: &Path) -> anyhow::Result<()> {
    let status = manager(home)?.status();
    let line = match status.mode {
        None => "Not logged in".to_owned(),
        Some(AuthMode::ApiKey) if status.from_env => {
            "Logged in with an API key (from OPENAI_API_KEY)".to_owned()
        }
        Some(AuthMode::ApiKey) => "Logged in with an API key".to_owned(),
        Some(AuthMode::Chatgpt) | Some(AuthMode::ChatgptAuthTokens) => format!(
            "Logged in with ChatGPT{}{}",
            status.email.map(|e| format!(" as {e}")).unwrap_or_default(),
            status
                .plan_type
                .map(|p| format!(" (plan: {p})"))
                .unwrap_or_default(),
        ),
    };
    print_output(&format!("{line}\n"))?;
    Ok(())
}

/// Removes `auth.json`.
pub fn logout(home: &Path) -> anyhow::Result<()> {
    let m = manager(home)?;
    let mut text = if m.logout()? {
        "Logged out.\n"
    } else {
        "Not logged in.\n"
    }
    .to_owned();
    if m.status().from_env {
        text.push_str("OPENAI_API_KEY is still set in the environment and is used when present.\n");
    }
    print_output(&text)?;
    Ok(())
}
