//! How Parlor is configured: flags, each with an environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Clone, Debug, clap::Parser)]
#[command(
    name = "parlor",
    about = "Parlor: live chat for support teams",
    version
)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "PARLOR_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,

    /// Folder for the SQLite database (`parlor.db`), created if missing.
    #[arg(long, env = "PARLOR_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,

    /// A database URL instead of the file in `--data-dir`: PostgreSQL
    /// (`postgres://user:password@host/db`) or SQLite (`sqlite:///var/lib/parlor.db`).
    #[arg(long, env = "PARLOR_DATABASE_URL")]
    pub database_url: Option<String>,

    /// NATS (`nats://host:4222`), joining the Parlor nodes that share one PostgreSQL
    /// database: what one node's sockets hear, the others' hear too.
    #[arg(long, env = "PARLOR_NATS_URL")]
    pub nats_url: Option<String>,

    /// Folder with the built widget and console (`widget/`, `console/`), as Trunk made them.
    #[arg(long, env = "PARLOR_WEB_DIR", default_value = "dist")]
    pub web_dir: PathBuf,

    /// A request header with the visitor's location, set by a reverse proxy in front of
    /// Parlor (e.g. `CF-IPCountry`), shown on screen pops.
    #[arg(long, env = "PARLOR_GEO_HEADER")]
    pub geo_header: Option<String>,

    /// Email of the admin account created on first start.
    #[arg(long, env = "PARLOR_ADMIN_EMAIL", default_value = "admin@parlor.local")]
    pub admin_email: String,

    /// Password of that admin account; a random one is made and printed when unset.
    #[arg(long, env = "PARLOR_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,

    /// Mark the session cookie `Secure` (set when Parlor is served over HTTPS).
    #[arg(long, env = "PARLOR_SECURE_COOKIES")]
    pub secure_cookies: bool,

    /// The address people reach Parlor at, such as `https://chat.example.com`. Requests
    /// for any other host are refused (DNS rebinding); over HTTPS the session cookie is
    /// `__Host-` prefixed and `Secure`, and browsers are told to keep to HTTPS (HSTS).
    /// Without it, a Parlor listening on a loopback address answers only to loopback
    /// host names.
    #[arg(long, env = "PARLOR_PUBLIC_URL", value_parser = public_url)]
    pub public_url: Option<PublicUrl>,

    /// Clients ping this often (seconds); a socket silent for twice as long is closed.
    #[arg(long, env = "PARLOR_HEARTBEAT_SECS", default_value_t = parlor_protocol::HEARTBEAT_SECS,
          value_parser = clap::value_parser!(u32).range(1..=3600))]
    pub heartbeat_secs: u32,

    /// Chat messages per second from one visitor (bursts of ten seconds' worth are
    /// allowed).
    #[arg(long, env = "PARLOR_MESSAGES_PER_VISITOR_PER_SEC", default_value_t = 2)]
    pub messages_per_visitor_per_sec: u32,

    /// Chat messages per second from one IP address, all its visitors together
    /// (bursts of four seconds' worth are allowed).
    #[arg(long, env = "PARLOR_MESSAGES_PER_IP_PER_SEC", default_value_t = 50)]
    pub messages_per_ip_per_sec: u32,

    /// New chats per minute from one IP address (as a burst, then spread out).
    #[arg(long, env = "PARLOR_CHATS_PER_IP_PER_MINUTE", default_value_t = 30)]
    pub chats_per_ip_per_minute: u32,

    /// Frames of any kind one widget's socket may send a second (bursts of 6 s worth);
    /// a socket that keeps sending past it is closed.
    #[arg(long, env = "PARLOR_FRAMES_PER_VISITOR_PER_SEC", default_value_t = 10)]
    pub frames_per_visitor_per_sec: u32,

    /// Frames of any kind one console's socket may send a second (bursts of 3 s worth).
    #[arg(long, env = "PARLOR_FRAMES_PER_AGENT_PER_SEC", default_value_t = 40)]
    pub frames_per_agent_per_sec: u32,

    /// The most messages of customers and agents one chat case keeps; past it a send is
    /// refused with a clear error (ending the chat always works).
    #[arg(long, env = "PARLOR_MAX_MESSAGES_PER_CASE", default_value_t = crate::store::CASE_MESSAGES,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_messages_per_case: u32,

    /// Open connections one address may hold (sockets and HTTP together); 0 for no
    /// limit. Not counted with `--client-ip-header`: behind a proxy every connection
    /// comes from the proxy.
    #[arg(long, env = "PARLOR_CONNECTIONS_PER_IP", default_value_t = 200)]
    pub connections_per_ip: u32,

    /// How long (seconds) a client has to send a request's headers before its
    /// connection is closed (slow clients hold sockets otherwise).
    #[arg(long, env = "PARLOR_HEADER_TIMEOUT_SECS", default_value_t = 10)]
    pub header_timeout_secs: u64,

    /// Open connections in all; more are closed at once. Keep it under the process's
    /// open-file limit (`ulimit -n`).
    #[arg(long, env = "PARLOR_MAX_CONNECTIONS", default_value_t = 15_000)]
    pub max_connections: u32,

    /// A request header with the visitor's IP address, set by a reverse proxy in front
    /// of Parlor (e.g. `X-Real-IP`); otherwise the connection's address counts.
    #[arg(long, env = "PARLOR_CLIENT_IP_HEADER")]
    pub client_ip_header: Option<String>,

    /// How many of your own proxies append to that header: the client's address is
    /// taken this many entries from its right (what the client wrote is on the left).
    #[arg(long, env = "PARLOR_TRUSTED_PROXIES", default_value_t = 1)]
    pub trusted_proxies: u32,

    /// On SIGTERM or Ctrl-C: how long (seconds) open sockets get to finish and close
    /// before Parlor exits anyway.
    #[arg(long, env = "PARLOR_SHUTDOWN_SECS", default_value_t = 10)]
    pub shutdown_secs: u64,
}

impl Config {
    /// A configuration for tests and tools: everything default, listening on any port.
    pub fn for_data_dir(data_dir: PathBuf) -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir,
            database_url: None,
            nats_url: None,
            web_dir: PathBuf::from("dist"),
            geo_header: None,
            admin_email: "admin@parlor.local".into(),
            admin_password: None,
            secure_cookies: false,
            public_url: None,
            heartbeat_secs: parlor_protocol::HEARTBEAT_SECS,
            shutdown_secs: 10,
            messages_per_visitor_per_sec: 2,
            messages_per_ip_per_sec: 50,
            chats_per_ip_per_minute: 30,
            frames_per_visitor_per_sec: 10,
            frames_per_agent_per_sec: 40,
            max_messages_per_case: crate::store::CASE_MESSAGES,
            connections_per_ip: 200,
            header_timeout_secs: 10,
            max_connections: 15_000,
            client_ip_header: None,
            trusted_proxies: 1,
        }
    }
}

/// Where Parlor is reached: its scheme and its host (with the port, if any).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicUrl {
    pub https: bool,
    pub host: String,
}

fn public_url(value: &str) -> Result<PublicUrl, String> {
    let (https, rest) = if let Some(rest) = value.strip_prefix("https://") {
        (true, rest)
    } else if let Some(rest) = value.strip_prefix("http://") {
        (false, rest)
    } else {
        return Err("the public URL starts with https:// (or http://)".into());
    };
    let host = rest.trim_end_matches('/');
    let valid = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    if !valid {
        return Err(format!(
            "{value} is not an origin such as https://chat.example.com"
        ));
    }
    Ok(PublicUrl {
        https,
        host: host.to_ascii_lowercase(),
    })
}

impl Config {
    /// Whether the session cookie must only travel over HTTPS.
    pub fn secure(&self) -> bool {
        self.secure_cookies || self.public_url.as_ref().is_some_and(|u| u.https)
    }

    /// The session cookie's name: `__Host-` prefixed over HTTPS, so that no other
    /// host (a subdomain, a plain-HTTP page) can set or shadow it.
    pub fn session_cookie(&self) -> &'static str {
        if self.secure() {
            "__Host-parlor_session"
        } else {
            "parlor_session"
        }
    }

    /// The host names requests may carry (without the port), or `None` for any.
    pub fn allowed_hosts(&self) -> Option<Vec<String>> {
        if let Some(url) = &self.public_url {
            return Some(vec![without_port(&url.host).to_owned()]);
        }
        self.addr.ip().is_loopback().then(|| {
            ["localhost", "127.0.0.1", "[::1]"]
                .map(str::to_owned)
                .to_vec()
        })
    }
}

/// `chat.example.com` of `chat.example.com:8443`, `[::1]` of `[::1]:8080`.
pub fn without_port(host: &str) -> &str {
    match host.rfind(':') {
        Some(colon) if !host[colon..].contains(']') => &host[..colon],
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_public_url_is_an_origin() {
        assert_eq!(
            public_url("https://Chat.Example.com/"),
            Ok(PublicUrl {
                https: true,
                host: "chat.example.com".into()
            })
        );
        assert!(public_url("chat.example.com").is_err());
        assert!(public_url("https://chat.example.com/path?x").is_err());
        assert!(public_url("https://").is_err());
    }

    #[test]
    fn hosts_are_compared_without_their_port() {
        assert_eq!(without_port("chat.example.com:8443"), "chat.example.com");
        assert_eq!(without_port("[::1]:8080"), "[::1]");
        assert_eq!(without_port("[::1]"), "[::1]");
        assert_eq!(without_port("localhost"), "localhost");
    }

    #[test]
    fn over_https_the_cookie_is_host_prefixed_and_secure() {
        let mut config = Config::for_data_dir("data".into());
        assert_eq!(config.session_cookie(), "parlor_session");
        assert_eq!(
            config.allowed_hosts().map(|h| h.len()),
            Some(3),
            "loopback only"
        );
        config.public_url = public_url("https://chat.example.com").ok();
        assert!(config.secure());
        assert_eq!(config.session_cookie(), "__Host-parlor_session");
        assert_eq!(
            config.allowed_hosts(),
            Some(vec!["chat.example.com".to_owned()])
        );
        config.public_url = None;
        config.addr = "0.0.0.0:8080".parse().expect("address");
        assert_eq!(config.allowed_hosts(), None);
    }
}
