//! Where a warehouse lives: a local directory, or a prefix in an
//! S3-compatible object store (`s3://bucket/prefix`).
//!
//! Owns parsing the `--data-dir` value, building the object store for a
//! location from the usual `AWS_*` environment, the plain-HTTP rule, the
//! hook that lets deltalake open `s3://` tables through that same store, and
//! turning store failures into one-line messages that name the URL and never
//! a secret. It must not read or write tables: that is the warehouse's job.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use deltalake::logstore::{
    default_logstore, logstore_factories, object_store_factories, LogStore, LogStoreFactory,
    ObjectStoreFactory, ObjectStoreRef, StorageConfig,
};
use deltalake::{DeltaResult, DeltaTableError};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey, S3ConditionalPut};
use object_store::local::LocalFileSystem;
use object_store::path::Path as StorePath;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, RetryConfig};
use url::Url;

use super::CatalogError;

/// Set to `true` to allow plain HTTP to an S3 endpoint that is not on
/// loopback (the same variable object_store reads).
pub const ALLOW_HTTP_VARIABLE: &str = "AWS_ALLOW_HTTP";

/// A warehouse's place: a directory, or a bucket and prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Local(PathBuf),
    /// `s3://bucket/prefix/`, always with the trailing slash.
    S3(Url),
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Local(path) => write!(f, "{}", path.display()),
            Location::S3(url) => f.write_str(url.as_str().trim_end_matches('/')),
        }
    }
}

impl std::str::FromStr for Location {
    type Err = CatalogError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = |reason: &str| CatalogError::BadLocation {
            location: text.to_string(),
            reason: reason.to_string(),
        };
        let Some((scheme, _)) = text.split_once("://") else {
            return Ok(Location::Local(PathBuf::from(text)));
        };
        match scheme.to_ascii_lowercase().as_str() {
            "s3" | "s3a" => {}
            "file" => {
                let url = Url::parse(text).map_err(|e| bad(&e.to_string()))?;
                let path = url
                    .to_file_path()
                    .map_err(|()| bad("not a local file URL"))?;
                return Ok(Location::Local(path));
            }
            _ => {
                return Err(bad(
                    "the data directory is a local path or s3://bucket/prefix",
                ))
            }
        }
        let mut url = Url::parse(text).map_err(|e| bad(&e.to_string()))?;
        if url.host_str().is_none_or(str::is_empty) {
            return Err(bad("the URL names no bucket"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(bad("the URL must not have a query or a fragment"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad(
                "credentials do not belong in the URL; use AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
            ));
        }
        url.set_scheme("s3").map_err(|()| bad("not an S3 URL"))?;
        if !url.path().ends_with('/') {
            let path = format!("{}/", url.path());
            url.set_path(&path);
        }
        Ok(Location::S3(url))
    }
}

impl From<PathBuf> for Location {
    fn from(path: PathBuf) -> Self {
        Location::Local(path)
    }
}

impl From<&std::path::Path> for Location {
    fn from(path: &std::path::Path) -> Self {
        Location::Local(path.to_path_buf())
    }
}

impl From<&Location> for Location {
    fn from(location: &Location) -> Self {
        location.clone()
    }
}

impl From<&PathBuf> for Location {
    fn from(path: &PathBuf) -> Self {
        Location::Local(path.clone())
    }
}

impl Location {
    /// The location as an absolute URL ending in `/`, under which each
    /// table is `<name>/`.
    pub fn url(&self) -> Result<Url, CatalogError> {
        match self {
            Location::S3(url) => Ok(url.clone()),
            Location::Local(path) => {
                let absolute = std::path::absolute(path).map_err(|source| CatalogError::Io {
                    path: path.display().to_string(),
                    source,
                })?;
                Url::from_directory_path(&absolute).map_err(|()| CatalogError::BadLocation {
                    location: path.display().to_string(),
                    reason: "not an absolute path".into(),
                })
            }
        }
    }

    /// A store whose root is this location: `_delta_log` of table `t` is
    /// `t/_delta_log/` in it.
    pub(crate) fn store(&self) -> Result<Arc<dyn ObjectStore>, CatalogError> {
        match self {
            Location::Local(path) => {
                let store = LocalFileSystem::new_with_prefix(path)
                    .map_err(|e| store_error(&self.to_string(), &e))?;
                Ok(Arc::new(store))
            }
            Location::S3(url) => {
                let bucket = s3_store(url).map_err(|e| named(e, self))?;
                let prefix = url.path().trim_matches('/');
                Ok(if prefix.is_empty() {
                    bucket
                } else {
                    Arc::new(PrefixStore::new(bucket, StorePath::from(prefix)))
                })
            }
        }
    }
}

/// The bucket's store (`s3://bucket`) for any URL in it, built once per
/// bucket from the environment and shared, so that every table and query
/// reuses one connection pool.
///
/// Credentials, region and endpoint come from the usual `AWS_*` variables
/// (`AWS_ENDPOINT_URL` for MinIO, Ceph or Garage). Plain HTTP is allowed only
/// to a loopback endpoint, unless `AWS_ALLOW_HTTP=true`. Commits rely on
/// conditional puts (`If-None-Match: *`).
pub fn s3_store(url: &Url) -> Result<Arc<dyn ObjectStore>, CatalogError> {
    static STORES: OnceLock<Mutex<HashMap<String, Arc<dyn ObjectStore>>>> = OnceLock::new();
    let bucket = url.host_str().unwrap_or_default().to_string();
    let builder = AmazonS3Builder::from_env().with_bucket_name(&bucket);
    let endpoint = builder.get_config_value(&AmazonS3ConfigKey::Endpoint);
    // Keyed by what the environment chose too, so that a process whose
    // settings change (a test, a long-lived notebook kernel) never reuses a
    // store built for other credentials. The key stays in memory.
    let key = [
        AmazonS3ConfigKey::AccessKeyId,
        AmazonS3ConfigKey::SecretAccessKey,
        AmazonS3ConfigKey::Region,
    ]
    .iter()
    .map(|k| builder.get_config_value(k).unwrap_or_default())
    .chain([bucket.clone(), endpoint.clone().unwrap_or_default()])
    .collect::<Vec<_>>()
    .join("\n");
    let mut stores = STORES
        .get_or_init(Default::default)
        .lock()
        .expect("store cache lock");
    if let Some(store) = stores.get(&key) {
        return Ok(store.clone());
    }
    let shown = format!("s3://{bucket}");
    let allow_http = plain_http_allowed(&shown, endpoint.as_deref())?;
    let store = builder
        .with_allow_http(allow_http)
        .with_conditional_put(S3ConditionalPut::ETagMatch)
        // Fail in seconds, not minutes, when the endpoint is down: a
        // researcher is waiting at a prompt.
        .with_retry(RetryConfig {
            max_retries: 3,
            retry_timeout: Duration::from_secs(20),
            ..Default::default()
        })
        .build()
        .map_err(|e| store_error(&shown, &e))?;
    let store: Arc<dyn ObjectStore> = Arc::new(store);
    stores.insert(key, store.clone());
    Ok(store)
}

/// The same error, naming the whole location rather than its bucket.
fn named(error: CatalogError, location: &Location) -> CatalogError {
    match error {
        CatalogError::BadLocation { reason, .. } => CatalogError::BadLocation {
            location: location.to_string(),
            reason,
        },
        CatalogError::Store { reason, .. } => CatalogError::Store {
            location: location.to_string(),
            reason,
        },
        other => other,
    }
}

fn plain_http_allowed(shown: &str, endpoint: Option<&str>) -> Result<bool, CatalogError> {
    let Some(endpoint) = endpoint else {
        return Ok(false);
    };
    let configured = std::env::var(ALLOW_HTTP_VARIABLE)
        .is_ok_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes"));
    let url = Url::parse(endpoint).map_err(|e| CatalogError::BadLocation {
        location: shown.to_string(),
        reason: format!("the endpoint {endpoint} is not a URL: {e}"),
    })?;
    if url.scheme() != "http" {
        return Ok(configured);
    }
    let loopback = match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    };
    if loopback || configured {
        Ok(true)
    } else {
        Err(CatalogError::BadLocation {
            location: shown.to_string(),
            reason: format!(
                "plain HTTP to {endpoint} is allowed only on loopback; use https, or set {ALLOW_HTTP_VARIABLE}=true"
            ),
        })
    }
}

/// One line saying why `location` could not be used, from an object store
/// error whose text may span lines and quote a whole XML body.
pub(crate) fn store_error(location: &str, error: &object_store::Error) -> CatalogError {
    CatalogError::Store {
        location: location.to_string(),
        reason: store_reason(error),
    }
}

fn store_reason(error: &object_store::Error) -> String {
    use object_store::Error as E;
    let text = error.to_string();
    let has = |needle: &str| text.contains(needle);
    if has("NoSuchBucket") {
        return "the bucket does not exist".into();
    }
    if matches!(
        error,
        E::PermissionDenied { .. } | E::Unauthenticated { .. }
    ) || [
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "NotSignedUp",
        "AccessDenied",
        "403 Forbidden",
    ]
    .iter()
    .any(|code| has(code))
    {
        return "the store refused the credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)"
            .into();
    }
    if has("error sending request") || has("Connect") || has("timed out") || has("dns error") {
        return "cannot reach the endpoint (AWS_ENDPOINT_URL, or the AWS default)".into();
    }
    let first_line = text.lines().next().unwrap_or_default();
    first_line.chars().take(200).collect()
}

/// Lets deltalake open `s3://` tables with [`s3_store`], and commit with
/// its default log store, whose commits are conditional puts: two writers
/// can never both write the same version, and the loser retries on top.
pub fn register_s3_tables() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let factory = Arc::new(S3Tables);
        for scheme in ["s3://", "s3a://"] {
            let url = Url::parse(scheme).expect("valid scheme URL");
            object_store_factories().insert(url.clone(), factory.clone());
            logstore_factories().insert(url, factory.clone());
        }
    });
}

struct S3Tables;

impl ObjectStoreFactory for S3Tables {
    fn parse_url_opts(
        &self,
        url: &Url,
        _config: &StorageConfig,
    ) -> DeltaResult<(ObjectStoreRef, StorePath)> {
        let store = s3_store(url).map_err(|e| DeltaTableError::Generic(e.to_string()))?;
        let path = StorePath::from_url_path(url.path())?;
        Ok((store, path))
    }
}

impl LogStoreFactory for S3Tables {
    fn with_options(
        &self,
        prefixed_store: ObjectStoreRef,
        root_store: ObjectStoreRef,
        location: &Url,
        options: &StorageConfig,
    ) -> DeltaResult<Arc<dyn LogStore>> {
        Ok(default_logstore(
            prefixed_store,
            root_store,
            location,
            options,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_paths_and_s3_urls() {
        assert_eq!(
            "data".parse::<Location>().unwrap(),
            Location::Local(PathBuf::from("data"))
        );
        let Location::S3(url) = "s3://bucket/obs/wh".parse::<Location>().unwrap() else {
            panic!("not S3")
        };
        assert_eq!(url.as_str(), "s3://bucket/obs/wh/");
        assert_eq!(
            "s3://bucket".parse::<Location>().unwrap().to_string(),
            "s3://bucket"
        );
        for bad in ["gs://b/p", "s3:///p", "s3://k:s@b/p", "s3://b/p?x=1"] {
            let error = bad.parse::<Location>().unwrap_err().to_string();
            assert!(error.starts_with(bad), "{error}");
            assert!(!error.contains('\n'));
        }
    }

    #[test]
    fn plain_http_only_on_loopback() {
        assert!(plain_http_allowed("s3://b", Some("http://127.0.0.1:9000")).unwrap());
        assert!(plain_http_allowed("s3://b", Some("http://localhost:9000")).unwrap());
        assert!(!plain_http_allowed("s3://b", Some("https://minio.example.org")).unwrap());
        if std::env::var_os(ALLOW_HTTP_VARIABLE).is_none() {
            let error = plain_http_allowed("s3://b", Some("http://minio.example.org"))
                .unwrap_err()
                .to_string();
            assert!(error.contains("only on loopback"), "{error}");
        }
    }
}
