use super::*;
use std::os::unix::fs::PermissionsExt;

#[tokio::test]
async fn bind_creates_the_directory_and_a_0600_socket_removed_on_drop() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = default_socket_path(dir.path());
    let socket = ControlSocket::bind(&path).expect("bind");
    let mode = std::fs::metadata(&path)
        .expect("socket")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    drop(socket);
    assert!(!path.exists(), "socket file removed at drop");
}

#[tokio::test]
async fn a_stale_socket_is_replaced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("s.sock");
    // A socket file nobody listens on any more (its listener is gone).
    drop(std::os::unix::net::UnixListener::bind(&path).expect("bind"));
    assert!(path.exists());
    let _socket = ControlSocket::bind(&path).expect("stale socket replaced");
}

#[tokio::test]
async fn a_live_socket_is_already_in_use_naming_the_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("s.sock");
    let _first = ControlSocket::bind(&path).expect("bind");
    let err = ControlSocket::bind(&path).expect_err("in use");
    assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
    let text = err.to_string();
    assert!(text.contains("already in use"), "{text}");
    assert!(text.contains(&path.display().to_string()), "{text}");
}

#[tokio::test]
async fn a_regular_file_is_not_removed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("s.sock");
    std::fs::write(&path, "data").expect("write");
    assert!(ControlSocket::bind(&path).is_err());
    assert_eq!(std::fs::read_to_string(&path).expect("kept"), "data");
}
