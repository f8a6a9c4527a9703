//! Loopback ports for servers the tests start.

/// A loopback port no one listens on now: the one the kernel hands out, released again for the
/// server under test to bind.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}
