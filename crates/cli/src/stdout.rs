//! What commands print on stdout, written in one go. Rust ignores SIGPIPE, so `println!` panics
//! once nobody reads stdout any more (`tally report | head -1`, a supervisor that closed the
//! pipe); these writes do not.

use std::io::{self, Write};

/// Prints a server's ready lines (where it listens, where the numbers are). A failed write is
/// ignored: losing the reader of stdout must not stop a server.
pub fn print_banner(text: &str) {
    let _ = write_stdout(text);
}

/// Prints a one-shot command's output. A reader that stopped early is not an error (the command
/// ends quietly, as Unix tools do); any other failure to write is.
pub fn print_output(text: &str) -> io::Result<()> {
    match write_stdout(text) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

fn write_stdout(text: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()
}
