//! A small S3-compatible store on loopback, over a local directory, for
//! trying the cluster on one machine and for the tests.
//!
//! Owns serving the S3 protocol (through `s3s-fs`) with one access key, and
//! making conditional writes atomic. It is not a production store: it has no
//! TLS, one key and no durability beyond the directory it writes.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnectionBuilder;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;

use super::ClusterError;

/// A running store; it stops when dropped.
#[derive(Debug)]
pub struct LocalS3 {
    address: SocketAddr,
    root: PathBuf,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for LocalS3 {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl LocalS3 {
    /// Serves `root` (one directory per bucket) on `bind`, which may have
    /// port 0, accepting only requests signed with this key pair.
    pub async fn start(
        root: &Path,
        bind: SocketAddr,
        access_key: &str,
        secret_key: &str,
    ) -> Result<Self, ClusterError> {
        let io = |what: &str, source| ClusterError::Io {
            what: format!("{what} {}", root.display()),
            source,
        };
        std::fs::create_dir_all(root).map_err(|e| io("creating", e))?;
        let filesystem = s3s_fs::FileSystem::new(root).map_err(|e| ClusterError::Store {
            reason: format!("{e:?}"),
        })?;
        let mut builder = S3ServiceBuilder::new(filesystem);
        builder.set_auth(SimpleAuth::from_single(access_key, secret_key));
        let service = builder.build();
        let listener = tokio::net::TcpListener::bind(bind)
            .await
            .map_err(|source| ClusterError::Io {
                what: format!("binding {bind}"),
                source,
            })?;
        let address = listener.local_addr().map_err(|e| io("serving", e))?;
        // s3s-fs checks `If-None-Match: *` and then writes, so two writers
        // could both pass the check. Writes take turns; reads do not wait.
        let writes = Arc::new(tokio::sync::Mutex::new(()));
        let server = tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                let (service, writes) = (service.clone(), writes.clone());
                let handler = hyper::service::service_fn(
                    move |request: axum::http::Request<hyper::body::Incoming>| {
                        let (service, writes) = (service.clone(), writes.clone());
                        async move {
                            let reads = [axum::http::Method::GET, axum::http::Method::HEAD];
                            let _turn = if reads.contains(request.method()) {
                                None
                            } else {
                                Some(writes.lock().await)
                            };
                            service.call(request.map(s3s::Body::from)).await
                        }
                    },
                );
                tokio::spawn(async move {
                    let _ = ConnectionBuilder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(socket), handler)
                        .await;
                });
            }
        });
        Ok(Self {
            address,
            root: root.to_path_buf(),
            server,
        })
    }

    /// The endpoint to give clients, `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Creates a bucket (a directory under the root) if it is not there.
    pub fn create_bucket(&self, name: &str) -> Result<(), ClusterError> {
        let dir = self.root.join(name);
        std::fs::create_dir_all(&dir).map_err(|source| ClusterError::Io {
            what: format!("creating bucket {}", dir.display()),
            source,
        })
    }
}
