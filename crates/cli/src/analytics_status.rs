//! `tally analytics status`: what the last running pipeline reported, plus what the spool holds now.

use anyhow::Context;
use serde_json::{json, Value};
use std::fmt::Write;
use std::path::Path;
use tally_analytics::delivery::{read_spool_stats, spool_dir_for_home, SpoolStats};
use tally_analytics::status::read_status;
use tally_app_server::analytics_setup::status_path;

/// Prints the status as a table or JSON.
pub fn print(home: &Path, as_json: bool) -> anyhow::Result<()> {
    let spool_dir = spool_dir_for_home(home);
    let spool =
        read_spool_stats(&spool_dir).with_context(|| format!("reading {}", spool_dir.display()))?;
    let status_file = status_path(home);
    let last =
        read_status(&status_file).with_context(|| format!("reading {}", status_file.display()))?;
    let text = if as_json {
        let report = json!({"spool": spool, "last_status": last});
        serde_json::to_string_pretty(&report)? + "\n"
    } else {
        table(&spool, last.as_ref())?
    };
    crate::stdout::print_output(&text)?;
    Ok(())
}

/// The status as the lines `tally analytics status` prints.
fn table(spool: &SpoolStats, last: Option<&Value>) -> Result<String, std::fmt::Error> {
    let mut out = String::new();
    writeln!(
        out,
        "spool        {} bytes in {} segments: {} batches, {} events waiting",
        spool.bytes, spool.segments, spool.batches, spool.events
    )?;
    let Some(s) = last else {
        writeln!(
            out,
            "no status snapshot yet (analytics never ran with this home)"
        )?;
        return Ok(out);
    };
    let n = |v: &Value| v.as_u64().unwrap_or(0);
    let d = &s["delivery"];
    let c = &s["client"];
    writeln!(
        out,
        "snapshot     pid {} at {} ms",
        n(&s["pid"]),
        s["updated_at_ms"]
    )?;
    writeln!(out, "queue depth  {}", n(&d["queue_depth"]))?;
    writeln!(
        out,
        "sent         {} events in {} batches",
        n(&d["sent_events"]),
        n(&d["sent_batches"])
    )?;
    writeln!(out, "retried      {}", n(&d["retried"]))?;
    writeln!(
        out,
        "dropped      {} (delivery) {} (fact queue full)",
        d["dropped"],
        n(&c["dropped_queue_full"])
    )?;
    writeln!(
        out,
        "facts        {} accepted, {} ignored",
        n(&c["accepted"]),
        n(&c["ignored"])
    )?;
    writeln!(
        out,
        "reducer      missing context {} evicted {}",
        s["reducer"]["missing_context"], s["reducer"]["evicted"]
    )?;
    if d["auth_error"].as_bool() == Some(true) {
        writeln!(
            out,
            "auth         the collector refused our credentials (401/403); batches are kept"
        )?;
    }
    Ok(out)
}
