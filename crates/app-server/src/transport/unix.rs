//! The Unix-socket transport: WebSocket framing over a Unix stream socket (PROTOCOL.md 1.2).
//! Clients perform a normal HTTP upgrade over the socket; everything after that is the
//! WebSocket transport's connection code. The socket is created mode 0600, a stale file left
//! by a dead server is replaced, and a live one is reported as "already in use".

use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use tokio::net::UnixListener;

/// Where `unix://` (no path) listens, relative to the Tally home.
pub const DEFAULT_SOCKET_RELATIVE_PATH: &str = "app-server-control/app-server-control.sock";

/// The default control socket under `home`.
pub fn default_socket_path(home: &Path) -> PathBuf {
    home.join(DEFAULT_SOCKET_RELATIVE_PATH)
}

/// A bound control socket; dropping it removes the socket file (if it is still ours).
#[derive(Debug)]
pub struct ControlSocket {
    listener: Option<UnixListener>,
    path: PathBuf,
    /// Device and inode of the file we created, so a later server's socket is never removed.
    identity: Option<(u64, u64)>,
}

impl ControlSocket {
    /// Binds `path`: creates its directory, replaces a stale socket, refuses a live one, and
    /// restricts the socket to its owner (0600).
    pub fn bind(path: &Path) -> io::Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_socket() => {
                if std::os::unix::net::UnixStream::connect(path).is_ok() {
                    return Err(io::Error::new(
                        io::ErrorKind::AddrInUse,
                        format!(
                            "{} is already in use: another app-server answers on it",
                            path.display()
                        ),
                    ));
                }
                tracing::info!(path = %path.display(), "removing stale control socket");
                std::fs::remove_file(path)?;
            }
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} exists and is not a socket", path.display()),
                ))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let listener = UnixListener::bind(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        let identity = std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()));
        Ok(Self {
            listener: Some(listener),
            path: path.to_path_buf(),
            identity,
        })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The listener, to serve on; the file stays until this value is dropped.
    pub(crate) fn take_listener(&mut self) -> Option<UnixListener> {
        self.listener.take()
    }
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        let ours = std::fs::symlink_metadata(&self.path)
            .ok()
            .is_some_and(|m| Some((m.dev(), m.ino())) == self.identity);
        if ours {
            if let Err(e) = std::fs::remove_file(&self.path) {
                tracing::debug!(path = %self.path.display(), error = %e, "cannot remove control socket");
            }
        }
    }
}

#[cfg(test)]
#[path = "unix_tests.rs"]
mod tests;
