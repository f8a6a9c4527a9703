//! The JSON file earlier versions kept a SQLite collector's agent registrations in
//! (`<database>.identities.json`, beside the database). At start it is imported into the
//! database once, then renamed `<file>.imported` so it is never read again. A crash between the
//! two imports it again at the next start, which changes nothing: what is kept stays as it is.

use std::path::Path;

use serde::Deserialize;

use crate::agent_identity::parse_ssh_ed25519;
use crate::identity_backend::StoredRuntime;
use crate::store::sqlite_identities::SqliteIdentities;

#[derive(Deserialize)]
struct LegacyRegistry {
    runtimes: Vec<StoredRuntime>,
}

/// Imports the file at `path` into `into`, if there is one, and says how many runtimes it held;
/// `Err` names the file and what is wrong with it (then nothing is imported or renamed).
pub fn import_legacy_file(path: &Path, into: &SqliteIdentities) -> Result<usize, String> {
    let Some(runtimes) = read(path)? else {
        return Ok(0);
    };
    let count = runtimes.len();
    into.import(runtimes)?;
    let imported = path.with_extension("json.imported");
    std::fs::rename(path, &imported).map_err(|e| format!("{}: {e}", path.display()))?;
    tracing::info!(
        runtimes = count,
        from = %path.display(),
        renamed = %imported.display(),
        "agent registrations imported into the collector database"
    );
    Ok(count)
}

/// The runtimes in the file (`None`: no file). Every key must parse.
fn read(path: &Path) -> Result<Option<Vec<StoredRuntime>>, String> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let stored: LegacyRegistry =
        serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    if let Some(bad) = stored
        .runtimes
        .iter()
        .find(|r| parse_ssh_ed25519(&r.public_key).is_none())
    {
        return Err(format!(
            "{}: runtime {} has an invalid key",
            path.display(),
            bad.agent_runtime_id
        ));
    }
    Ok(Some(stored.runtimes))
}
