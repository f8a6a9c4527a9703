//! Which backend hosts agent identity is used with. Like Codex, which refuses anything but the
//! production and staging ChatGPT environments unless overridden, Tally registers and signs only
//! with those hosts and with the hosts listed in `[agent_identity] allowed_hosts` (a Tally
//! collector, say); elsewhere requests stay on bearer and the log says so once.

/// Production and staging ChatGPT and their auth API: always supported.
pub const BUILTIN_HOSTS: [&str; 5] = [
    "chatgpt.com",
    "chat.openai.com",
    "chatgpt-staging.com",
    "auth.openai.com",
    "auth.api.openai.org",
];

/// The lowercase host of an `http(s)` URL (IPv6 without brackets); `None` otherwise.
pub fn host_of(url: &str) -> Option<String> {
    let url = reqwest::Url::parse(url).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    let host = url.host_str()?;
    Some(normalize(host))
}

fn normalize(host: &str) -> String {
    host.trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

/// Whether `host` is a built-in host or matches an entry of `allowed`: an exact host (`collector.
/// example.com`, `127.0.0.1`, `::1`) or `*.example.com` for any subdomain (not the apex).
pub fn host_allowed(host: &str, allowed: &[String]) -> bool {
    let host = normalize(host);
    if host.is_empty() {
        return false;
    }
    let matches = |pattern: &str| {
        let pattern = normalize(pattern);
        match pattern.strip_prefix("*.") {
            Some(suffix) if !suffix.is_empty() => host
                .strip_suffix(suffix)
                .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
            _ => host == pattern,
        }
    };
    BUILTIN_HOSTS.iter().any(|h| matches(h)) || allowed.iter().any(|p| matches(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn production_and_staging_hosts_are_supported_without_config() {
        for url in [
            "https://chatgpt.com/backend-api/api/accounts",
            "https://CHATGPT.com./backend-api",
            "https://chatgpt-staging.com/backend-api/api/accounts",
            "https://auth.openai.com/api/accounts",
        ] {
            let host = host_of(url).unwrap_or_default();
            assert!(host_allowed(&host, &[]), "{url}");
        }
    }

    #[test]
    fn other_hosts_need_allowed_hosts() {
        let loopback = host_of("http://127.0.0.1:8787/api/accounts").unwrap_or_default();
        assert_eq!(loopback, "127.0.0.1");
        assert!(!host_allowed(&loopback, &[]));
        assert!(host_allowed(&loopback, &allowed(&["127.0.0.1"])));
        let v6 = host_of("http://[::1]:8787/api/accounts").unwrap_or_default();
        assert!(host_allowed(&v6, &allowed(&["::1"])));
        assert!(host_allowed(&v6, &allowed(&["[::1]"])));
        assert!(!host_allowed("chatgpt.com.evil.test", &[]));
        assert!(!host_allowed("evilchatgpt.com", &[]));
    }

    #[test]
    fn wildcards_match_subdomains_only() {
        let list = allowed(&["*.corp.example"]);
        assert!(host_allowed("collector.corp.example", &list));
        assert!(host_allowed("a.b.corp.example", &list));
        assert!(!host_allowed("corp.example", &list));
        assert!(!host_allowed("evilcorp.example", &list));
        assert!(!host_allowed("anything", &allowed(&["*."])));
    }

    #[test]
    fn non_http_urls_have_no_host() {
        assert_eq!(host_of("file:///etc/passwd"), None);
        assert_eq!(host_of("not a url"), None);
    }
}
