//! Configuration: defaults, then an optional TOML file, then `TESSERA_*` environment variables,
//! then command-line flags. Every value is checked at start-up, and a bad one stops it with a
//! message naming the key.

use std::net::SocketAddr;
use std::path::Path;
use std::str::FromStr;

use serde::Deserialize;
use url::Url;

#[derive(Clone, Debug)]
pub struct Settings {
    /// `sqlite://PATH` or `postgres://...`.
    pub database_url: String,
    pub listen: SocketAddr,
    /// The authorization server's issuer identifier (RFC 8414), without a trailing slash.
    pub issuer_url: Url,
    pub oauth: OAuthSettings,
    pub accounts: AccountSettings,
    pub http: HttpSettings,
    pub limits: LimitSettings,
    /// Apply pending migrations when `serve` starts.
    pub migrate_on_start: bool,
    pub resources: ResourceSettings,
    pub data_plane: DataPlaneSettings,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Provisioner {
    /// No data plane: databases stay pending.
    None,
    /// One `redis-server` per database on this host.
    Redis,
}

#[derive(Clone, Debug)]
pub struct DataPlaneSettings {
    pub provisioner: Provisioner,
    /// The `redis-server` binary.
    pub redis_server: std::path::PathBuf,
    /// The address each Redis binds to, which is also the endpoint given to clients.
    pub redis_bind: std::net::IpAddr,
    pub redis_ports: (u16, u16),
    pub redis_data_dir: std::path::PathBuf,
    pub redis_maxmemory: String,
    /// This host's agent id: an agent adopts the databases it provisioned under the same id.
    pub agent_id: String,
}

#[derive(Clone, Debug)]
pub struct ResourceSettings {
    /// Regions a database may be created in.
    pub regions: Vec<String>,
    /// The host clients reach caches on; each cache is `<cache id>.<cache_host>`.
    pub cache_host: String,
}

#[derive(Clone, Debug)]
pub struct OAuthSettings {
    pub code_ttl: i64,
    pub access_token_ttl: i64,
    pub refresh_token_ttl: i64,
    /// Require PKCE from confidential clients too (OAuth 2.1); public clients always need it.
    pub require_pkce: bool,
}

#[derive(Clone, Debug)]
pub struct AccountSettings {
    pub session_ttl: i64,
    /// Failed logins for one account within `login_window` before further attempts get 429.
    pub login_failures_per_account: i64,
    /// Failed logins from one client address within `login_window` before further attempts get 429.
    pub login_failures_per_address: i64,
    pub login_window: i64,
    /// Whether the session cookie carries `Secure` (derived from an https issuer).
    pub secure_cookies: bool,
}

#[derive(Clone, Debug)]
pub struct HttpSettings {
    pub request_timeout_secs: u64,
    pub max_body_bytes: usize,
    /// Take the client address from the last `X-Forwarded-For` hop (only behind a trusted proxy).
    pub trust_forwarded_for: bool,
    /// A client must send its request line and headers within this many seconds, or the
    /// connection is closed (against clients that trickle bytes to hold connections open).
    pub header_read_timeout_secs: u64,
    /// Largest request line plus headers; larger requests get 431.
    pub max_header_bytes: usize,
}

/// Per-client abuse limits, kept in each process's memory (see [`crate::limits`]).
#[derive(Clone, Debug)]
pub struct LimitSettings {
    /// Failed client authentications per client id within `client_auth_window` before further
    /// attempts get 429 without their secret being checked.
    pub client_auth_failures: u32,
    pub client_auth_window: i64,
    /// Token requests per authenticated client per minute (a bucket that holds one minute's worth).
    pub token_requests_per_minute: u32,
    /// Authorization requests per client per minute.
    pub authorize_requests_per_minute: u32,
}

#[derive(Debug, thiserror::Error)]
#[error("configuration error: {key}: {problem}")]
pub struct ConfigError {
    pub key: String,
    pub problem: String,
}

impl ConfigError {
    fn new(key: &str, problem: impl Into<String>) -> Self {
        ConfigError { key: key.to_owned(), problem: problem.into() }
    }
}

/// The keys of the TOML file; each also has a `TESSERA_<KEY>` environment variable.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    database_url: Option<String>,
    listen: Option<String>,
    issuer_url: Option<String>,
    code_ttl: Option<i64>,
    access_token_ttl: Option<i64>,
    refresh_token_ttl: Option<i64>,
    require_pkce: Option<bool>,
    session_ttl: Option<i64>,
    login_failures_per_account: Option<i64>,
    login_failures_per_address: Option<i64>,
    login_window: Option<i64>,
    request_timeout: Option<u64>,
    max_body_bytes: Option<usize>,
    trust_forwarded_for: Option<bool>,
    header_read_timeout: Option<u64>,
    max_header_bytes: Option<usize>,
    client_auth_failures: Option<i64>,
    client_auth_window: Option<i64>,
    token_requests_per_minute: Option<i64>,
    authorize_requests_per_minute: Option<i64>,
    migrate_on_start: Option<bool>,
    regions: Option<String>,
    cache_host: Option<String>,
    provisioner: Option<String>,
    redis_server: Option<String>,
    redis_bind: Option<String>,
    redis_ports: Option<String>,
    redis_data_dir: Option<String>,
    redis_maxmemory: Option<String>,
    agent_id: Option<String>,
}

/// Values given on the command line, which win over everything else.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub config_file: Option<std::path::PathBuf>,
    pub database_url: Option<String>,
    pub listen: Option<String>,
}

pub const DEFAULT_DATABASE_URL: &str = "sqlite://tessera.db";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_REGIONS: &str = "us-east-1,eu-west-1,ap-southeast-1";

impl Settings {
    /// Loads settings from the process environment.
    pub fn load(overrides: &Overrides) -> Result<Settings, ConfigError> {
        Self::load_with(overrides, |key| std::env::var(key).ok())
    }

    /// Loads settings with an explicit environment, so tests need not touch the process's.
    pub fn load_with(overrides: &Overrides, env: impl Fn(&str) -> Option<String>) -> Result<Settings, ConfigError> {
        let file = match &overrides.config_file {
            Some(path) => read_file(path)?,
            None => FileSettings::default(),
        };
        let layer = Layer { env: &env };
        let data_plane = data_plane(&layer, file.clone())?;

        let database_url = overrides
            .database_url
            .clone()
            .or(layer.string("database_url")?)
            .or(file.database_url)
            .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());
        check_database_url(&database_url)?;

        let listen_text = overrides
            .listen
            .clone()
            .or(layer.string("listen")?)
            .or(file.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen = SocketAddr::from_str(&listen_text).map_err(|_| {
            ConfigError::new("listen", format!("expected an address such as 127.0.0.1:8080, got {listen_text:?}"))
        })?;

        let issuer_text = layer.string("issuer_url")?.or(file.issuer_url);
        let issuer_url = match issuer_text {
            Some(text) => parse_issuer(&text)?,
            None => parse_issuer(&format!("http://{listen}"))?,
        };

        let seconds = |key: &str, file_value: Option<i64>, default: i64| -> Result<i64, ConfigError> {
            let value = layer.parsed::<i64>(key, "a whole number of seconds")?.or(file_value).unwrap_or(default);
            if !(1..=10 * 365 * 24 * 3600).contains(&value) {
                return Err(ConfigError::new(key, format!("must be between 1 second and 10 years, got {value}")));
            }
            Ok(value)
        };
        let count = |key: &str, file_value: Option<i64>, default: i64| -> Result<i64, ConfigError> {
            let value = layer.parsed::<i64>(key, "a whole number")?.or(file_value).unwrap_or(default);
            if !(1..=1_000_000).contains(&value) {
                return Err(ConfigError::new(key, format!("must be between 1 and 1000000, got {value}")));
            }
            Ok(value)
        };

        let oauth = OAuthSettings {
            code_ttl: seconds("code_ttl", file.code_ttl, 60)?,
            access_token_ttl: seconds("access_token_ttl", file.access_token_ttl, 3600)?,
            refresh_token_ttl: seconds("refresh_token_ttl", file.refresh_token_ttl, 30 * 24 * 3600)?,
            require_pkce: layer.boolean("require_pkce")?.or(file.require_pkce).unwrap_or(true),
        };
        let accounts = AccountSettings {
            session_ttl: seconds("session_ttl", file.session_ttl, 7 * 24 * 3600)?,
            login_failures_per_account: count("login_failures_per_account", file.login_failures_per_account, 5)?,
            login_failures_per_address: count("login_failures_per_address", file.login_failures_per_address, 30)?,
            login_window: seconds("login_window", file.login_window, 15 * 60)?,
            secure_cookies: issuer_url.scheme() == "https",
        };
        let request_timeout =
            layer.parsed::<u64>("request_timeout", "a whole number of seconds")?.or(file.request_timeout).unwrap_or(30);
        if !(1..=3600).contains(&request_timeout) {
            return Err(ConfigError::new("request_timeout", "must be between 1 and 3600 seconds"));
        }
        let max_body_bytes = layer
            .parsed::<usize>("max_body_bytes", "a whole number of bytes")?
            .or(file.max_body_bytes)
            .unwrap_or(64 * 1024);
        if !(1024..=16 * 1024 * 1024).contains(&max_body_bytes) {
            return Err(ConfigError::new("max_body_bytes", "must be between 1024 and 16777216"));
        }
        let header_read_timeout = layer
            .parsed::<u64>("header_read_timeout", "a whole number of seconds")?
            .or(file.header_read_timeout)
            .unwrap_or(10);
        if !(1..=300).contains(&header_read_timeout) {
            return Err(ConfigError::new("header_read_timeout", "must be between 1 and 300 seconds"));
        }
        let max_header_bytes = layer
            .parsed::<usize>("max_header_bytes", "a whole number of bytes")?
            .or(file.max_header_bytes)
            .unwrap_or(16 * 1024);
        // hyper's read buffer cannot be smaller than 8 KiB.
        if !(8192..=1024 * 1024).contains(&max_header_bytes) {
            return Err(ConfigError::new("max_header_bytes", "must be between 8192 and 1048576"));
        }
        let http = HttpSettings {
            request_timeout_secs: request_timeout,
            max_body_bytes,
            trust_forwarded_for: layer.boolean("trust_forwarded_for")?.or(file.trust_forwarded_for).unwrap_or(false),
            header_read_timeout_secs: header_read_timeout,
            max_header_bytes,
        };
        let per_minute = |key: &str, file_value: Option<i64>, default: i64| -> Result<u32, ConfigError> {
            let value = count(key, file_value, default)?;
            u32::try_from(value).map_err(|_| ConfigError::new(key, "is too large"))
        };
        let limits = LimitSettings {
            client_auth_failures: per_minute("client_auth_failures", file.client_auth_failures, 20)?,
            client_auth_window: seconds("client_auth_window", file.client_auth_window, 5 * 60)?,
            token_requests_per_minute: per_minute("token_requests_per_minute", file.token_requests_per_minute, 6000)?,
            authorize_requests_per_minute: per_minute(
                "authorize_requests_per_minute",
                file.authorize_requests_per_minute,
                3000,
            )?,
        };
        let migrate_on_start = layer.boolean("migrate_on_start")?.or(file.migrate_on_start).unwrap_or(true);

        let regions_text = layer.string("regions")?.or(file.regions).unwrap_or_else(|| DEFAULT_REGIONS.to_owned());
        let regions: Vec<String> =
            regions_text.split(',').map(|r| r.trim().to_owned()).filter(|r| !r.is_empty()).collect();
        let region_ok =
            |r: &String| r.len() <= 63 && r.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if regions.is_empty() || !regions.iter().all(region_ok) {
            return Err(ConfigError::new(
                "regions",
                format!("expected a comma-separated list such as {DEFAULT_REGIONS}, got {regions_text:?}"),
            ));
        }
        let cache_host =
            layer.string("cache_host")?.or(file.cache_host).unwrap_or_else(|| "cache.localhost".to_owned());
        if cache_host.is_empty()
            || cache_host.len() > 200
            || !cache_host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        {
            return Err(ConfigError::new("cache_host", format!("expected a host name, got {cache_host:?}")));
        }
        let resources = ResourceSettings { regions, cache_host };

        Ok(Settings {
            database_url,
            listen,
            issuer_url,
            oauth,
            accounts,
            http,
            limits,
            migrate_on_start,
            resources,
            data_plane,
        })
    }

    /// The issuer as a string without a trailing slash, as it appears in `iss`.
    pub fn issuer(&self) -> String {
        self.issuer_url.as_str().trim_end_matches('/').to_owned()
    }
}

struct Layer<'a, F: Fn(&str) -> Option<String>> {
    env: &'a F,
}

impl<F: Fn(&str) -> Option<String>> Layer<'_, F> {
    fn env_name(key: &str) -> String {
        format!("TESSERA_{}", key.to_ascii_uppercase())
    }

    fn string(&self, key: &str) -> Result<Option<String>, ConfigError> {
        let name = Self::env_name(key);
        match (self.env)(&name) {
            Some(value) if value.trim().is_empty() => Err(ConfigError::new(&name, "is set but empty")),
            other => Ok(other),
        }
    }

    fn parsed<T: FromStr>(&self, key: &str, expected: &str) -> Result<Option<T>, ConfigError> {
        let name = Self::env_name(key);
        match self.string(key)? {
            None => Ok(None),
            Some(text) => text
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| ConfigError::new(&name, format!("expected {expected}, got {text:?}"))),
        }
    }

    fn boolean(&self, key: &str) -> Result<Option<bool>, ConfigError> {
        let name = Self::env_name(key);
        match self.string(key)?.as_deref().map(str::trim) {
            None => Ok(None),
            Some("true" | "1" | "yes" | "on") => Ok(Some(true)),
            Some("false" | "0" | "no" | "off") => Ok(Some(false)),
            Some(other) => Err(ConfigError::new(&name, format!("expected true or false, got {other:?}"))),
        }
    }
}

fn data_plane<F: Fn(&str) -> Option<String>>(
    layer: &Layer<'_, F>,
    file: FileSettings,
) -> Result<DataPlaneSettings, ConfigError> {
    let provisioner = match layer.string("provisioner")?.or(file.provisioner).as_deref().map(str::trim) {
        None | Some("none") => Provisioner::None,
        Some("redis") => Provisioner::Redis,
        Some(other) => return Err(ConfigError::new("provisioner", format!("expected none or redis, got {other:?}"))),
    };
    let bind_text = layer.string("redis_bind")?.or(file.redis_bind).unwrap_or_else(|| "127.0.0.1".into());
    let redis_bind = bind_text.trim().parse().map_err(|_| {
        ConfigError::new("redis_bind", format!("expected an IP address such as 127.0.0.1, got {bind_text:?}"))
    })?;
    let ports_text = layer.string("redis_ports")?.or(file.redis_ports).unwrap_or_else(|| "7000-7999".into());
    let redis_ports = ports_text
        .split_once('-')
        .and_then(|(a, b)| Some((a.trim().parse::<u16>().ok()?, b.trim().parse::<u16>().ok()?)))
        .filter(|(a, b)| *a >= 1 && a <= b)
        .ok_or_else(|| {
            ConfigError::new("redis_ports", format!("expected a range such as 7000-7999, got {ports_text:?}"))
        })?;
    let redis_data_dir =
        layer.string("redis_data_dir")?.or(file.redis_data_dir).unwrap_or_else(|| "tessera-data/redis".into()).into();
    let maxmemory = layer.string("redis_maxmemory")?.or(file.redis_maxmemory).unwrap_or_else(|| "64mb".into());
    let lower = maxmemory.trim().to_ascii_lowercase();
    let digits = lower.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &lower[digits.len()..];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || !matches!(unit, "" | "kb" | "mb" | "gb") {
        return Err(ConfigError::new("redis_maxmemory", format!("expected a size such as 64mb, got {maxmemory:?}")));
    }
    let server_text = layer.string("redis_server")?.or(file.redis_server);
    let redis_server = match (&provisioner, server_text) {
        (_, Some(path)) => {
            let path = std::path::PathBuf::from(path);
            if provisioner == Provisioner::Redis && !path.is_file() {
                return Err(ConfigError::new("redis_server", format!("{} does not exist", path.display())));
            }
            path
        }
        (Provisioner::Redis, None) => find_on_path("redis-server").ok_or_else(|| {
            ConfigError::new("redis_server", "redis-server is not on PATH; install it or set TESSERA_REDIS_SERVER")
        })?,
        (Provisioner::None, None) => "redis-server".into(),
    };
    let agent_id = layer
        .string("agent_id")?
        .or(file.agent_id)
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname").ok().map(|h| h.trim().to_owned()).filter(|h| !h.is_empty())
        })
        .unwrap_or_else(|| "agent".into());
    Ok(DataPlaneSettings {
        provisioner,
        redis_server,
        redis_bind,
        redis_ports,
        redis_data_dir,
        redis_maxmemory: lower,
        agent_id,
    })
}

fn find_on_path(binary: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).map(|dir| dir.join(binary)).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .find(|candidate| candidate.is_file())
}

fn read_file(path: &Path) -> Result<FileSettings, ConfigError> {
    let key = format!("--config {}", path.display());
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::new(&key, format!("cannot read: {e}")))?;
    toml::from_str(&text).map_err(|e| ConfigError::new(&key, e.message().to_owned()))
}

fn check_database_url(url: &str) -> Result<(), ConfigError> {
    let supported = ["sqlite:", "postgres://", "postgresql://"];
    if supported.iter().any(|prefix| url.starts_with(prefix)) {
        Ok(())
    } else {
        Err(ConfigError::new("database_url", "must start with sqlite:// or postgres://"))
    }
}

fn parse_issuer(text: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(text).map_err(|e| ConfigError::new("issuer_url", format!("not a URL ({e}): {text:?}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(ConfigError::new("issuer_url", "must be an http or https URL with a host"));
    }
    // RFC 8414 §2: the issuer has no query or fragment.
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ConfigError::new("issuer_url", "must not have a query or fragment"));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(env: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let env: HashMap<String, String> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::load_with(&Overrides::default(), |k| env.get(k).cloned())
    }

    #[test]
    fn no_configuration_gives_the_embedded_defaults() {
        let settings = load(&[]).expect("defaults load");
        assert_eq!(settings.database_url, "sqlite://tessera.db");
        assert_eq!(settings.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(settings.issuer(), "http://127.0.0.1:8080");
        assert_eq!(settings.oauth.code_ttl, 60);
        assert_eq!(settings.oauth.access_token_ttl, 3600);
        assert_eq!(settings.oauth.refresh_token_ttl, 30 * 24 * 3600);
        assert!(settings.oauth.require_pkce);
        assert!(!settings.accounts.secure_cookies);
        assert_eq!(settings.limits.client_auth_failures, 20);
        assert_eq!(settings.limits.client_auth_window, 300);
        assert_eq!(settings.limits.token_requests_per_minute, 6000);
        assert_eq!(settings.limits.authorize_requests_per_minute, 3000);
        assert_eq!(settings.http.header_read_timeout_secs, 10);
        assert_eq!(settings.http.max_header_bytes, 16384);
    }

    #[test]
    fn environment_overrides_and_issuer_follows_listen() {
        let settings = load(&[("TESSERA_LISTEN", "0.0.0.0:9000"), ("TESSERA_CODE_TTL", "30")]).expect("loads");
        assert_eq!(settings.issuer(), "http://0.0.0.0:9000");
        assert_eq!(settings.oauth.code_ttl, 30);
        let settings = load(&[("TESSERA_ISSUER_URL", "https://auth.example.com/")]).expect("loads");
        assert_eq!(settings.issuer(), "https://auth.example.com");
        assert!(settings.accounts.secure_cookies);
    }

    #[test]
    fn a_bad_value_names_its_key() {
        let cases = [
            ("TESSERA_CODE_TTL", "soon", "TESSERA_CODE_TTL"),
            ("TESSERA_ACCESS_TOKEN_TTL", "0", "access_token_ttl"),
            ("TESSERA_REFRESH_TOKEN_TTL", "-5", "refresh_token_ttl"),
            ("TESSERA_LISTEN", "localhost", "listen"),
            ("TESSERA_ISSUER_URL", "ftp://x", "issuer_url"),
            ("TESSERA_DATABASE_URL", "mysql://x", "database_url"),
            ("TESSERA_REQUIRE_PKCE", "maybe", "TESSERA_REQUIRE_PKCE"),
            ("TESSERA_CLIENT_AUTH_FAILURES", "0", "client_auth_failures"),
            ("TESSERA_TOKEN_REQUESTS_PER_MINUTE", "lots", "TESSERA_TOKEN_REQUESTS_PER_MINUTE"),
            ("TESSERA_AUTHORIZE_REQUESTS_PER_MINUTE", "2000000", "authorize_requests_per_minute"),
            ("TESSERA_HEADER_READ_TIMEOUT", "0", "header_read_timeout"),
            ("TESSERA_MAX_HEADER_BYTES", "1024", "max_header_bytes"),
        ];
        for (key, value, named) in cases {
            let error = load(&[(key, value)]).expect_err(key);
            assert!(error.to_string().contains(named), "{key}={value}: {error}");
        }
    }

    #[test]
    fn a_config_file_is_read_and_unknown_keys_are_refused() {
        let dir = std::env::temp_dir().join(format!("tessera-config-{}", crate::credentials::random_token()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("tessera.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:7070\"\ncode_ttl = 45\n").expect("write");
        let overrides = Overrides { config_file: Some(path.clone()), ..Overrides::default() };
        let settings = Settings::load_with(&overrides, |_| None).expect("loads");
        assert_eq!(settings.listen.port(), 7070);
        assert_eq!(settings.oauth.code_ttl, 45);
        let from_env = Settings::load_with(&overrides, |k| (k == "TESSERA_CODE_TTL").then(|| "90".into()));
        assert_eq!(from_env.expect("loads").oauth.code_ttl, 90);
        std::fs::write(&path, "listne = \"x\"\n").expect("write");
        let error = Settings::load_with(&overrides, |_| None).expect_err("unknown key");
        assert!(error.to_string().contains("listne"), "{error}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
