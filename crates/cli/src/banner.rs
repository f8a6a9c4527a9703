//! The lines a long-running command prints when it is ready (where it listens, where the
//! numbers are).

use std::io::Write;

/// Prints `text` (one or more lines) to stdout in one write. A stdout nobody reads any more (a
/// supervisor that closed the pipe, `| head -1`) must not stop a server, so a failed write is
/// ignored: `println!` would panic on it and take the process down.
pub fn print_banner(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}
