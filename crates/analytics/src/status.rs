//! The status snapshot a running pipeline writes for `tally analytics status`.

use crate::client::ClientStats;
use crate::delivery::DeliveryStats;
use crate::reducer::ReducerStats;
use serde::Serialize;
use std::path::Path;

/// Counters of the whole pipeline at one moment.
#[derive(Debug, Clone, Serialize)]
pub struct AnalyticsStatus {
    pub pid: u32,
    pub updated_at_ms: i64,
    pub client: ClientStats,
    pub reducer: ReducerStats,
    pub delivery: DeliveryStats,
}

/// Writes the snapshot atomically (temp file, then rename), so a reader never sees half of it.
pub fn write_status(path: &Path, status: &AnalyticsStatus) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("json.tmp");
    let text = serde_json::to_vec_pretty(status).map_err(std::io::Error::other)?;
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

/// Reads the last snapshot as JSON, if a pipeline ever wrote one.
pub fn read_status(path: &Path) -> std::io::Result<Option<serde_json::Value>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(std::io::Error::other),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}
