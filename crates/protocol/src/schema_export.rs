//! Writes Tally's own JSON Schema of the protocol (`tally schema --out DIR`).

use crate::client_request::client_method_schemas;
use crate::{ServerNotification, ServerRequest};
use std::path::Path;

/// Writes one file per client method (params and response) plus the notification and server-request tables.
pub fn write_schemas(dir: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    let mut write = |name: String, schema: &schemars::Schema| -> std::io::Result<()> {
        let path = dir.join(name);
        let text = serde_json::to_string_pretty(schema).map_err(std::io::Error::other)?;
        std::fs::write(&path, text + "\n")?;
        written.push(path);
        Ok(())
    };
    for (method, params, response) in client_method_schemas() {
        let stem = method.replace('/', "_");
        write(format!("{stem}.params.json"), &params)?;
        write(format!("{stem}.response.json"), &response)?;
    }
    write(
        "ServerNotification.json".into(),
        &schemars::schema_for!(ServerNotification),
    )?;
    write(
        "ServerRequest.json".into(),
        &schemars::schema_for!(ServerRequest),
    )?;
    Ok(written)
}
