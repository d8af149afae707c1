//! Read-only views of images as containerd holds them on the node, for the image SBOM: a
//! running container's root holds its own writes and volumes, so one pod could add or hide
//! packages for every pod of its image. containerd's snapshotter makes a view (a read-only
//! snapshot) of the committed layers a container was made from; it is mounted read-only
//! under the state directory, read, then unmounted and removed. No registry is asked.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use containerd_client::services::v1::snapshots::{RemoveSnapshotRequest, ViewSnapshotRequest};
use containerd_client::tonic::Request;
use containerd_client::with_namespace;
use coordinator::flow::{ImageView, ImageViews, ViewError};
use coordinator::model::ImageLayers;
use nix::mount::{MntFlags, MsFlags};

/// Why a view could not be made (the cause of a [`ViewError`]).
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("containerd at {}", socket.display())]
    Connect {
        socket: PathBuf,
        #[source]
        source: containerd_client::tonic::transport::Error,
    },
    #[error("containerd's snapshots service refused the view")]
    View(#[source] Box<containerd_client::tonic::Status>),
    #[error("creating the mount point {}", path.display())]
    MountPoint {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the view came as {0} mounts; one was expected")]
    Mounts(usize),
    #[error("the view is a {0:?} mount, which is not supported")]
    Type(String),
    #[error("mounting the view at {}", path.display())]
    Mount {
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
}

/// Prefix of the views' snapshot keys and mount points.
const PREFIX: &str = "sniffer-view";

/// Views through containerd's snapshots service.
pub struct ContainerdViews {
    socket: PathBuf,
    /// Where views are mounted.
    dir: PathBuf,
    runtime: tokio::runtime::Handle,
    next: AtomicU64,
}

impl ContainerdViews {
    /// Views made through containerd at `socket`, mounted under `dir`. Mounts left there
    /// by an earlier life of the daemon are unmounted now.
    pub fn new(socket: &Path, dir: &Path, runtime: tokio::runtime::Handle) -> Self {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                let _ = nix::mount::umount2(&e.path(), MntFlags::MNT_DETACH);
                let _ = std::fs::remove_dir(e.path());
            }
        }
        ContainerdViews { socket: socket.to_path_buf(), dir: dir.to_path_buf(), runtime, next: AtomicU64::new(0) }
    }

    async fn client(&self) -> Result<containerd_client::Client, Failure> {
        let channel = containerd_client::connect(&self.socket)
            .await
            .map_err(|source| Failure::Connect { socket: self.socket.clone(), source })?;
        Ok(containerd_client::Client::from(channel))
    }
}

/// A mounted view; dropping it unmounts it and removes its snapshot.
struct Mounted {
    path: PathBuf,
    mounted: bool,
    key: String,
    layers: ImageLayers,
    views: ContainerdRef,
}

/// What a view needs to remove itself.
#[derive(Clone)]
struct ContainerdRef {
    socket: PathBuf,
    runtime: tokio::runtime::Handle,
}

impl ImageView for Mounted {
    fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if let Err(e) = nix::mount::umount2(&self.path, MntFlags::MNT_DETACH)
            && self.mounted
        {
            tracing::warn!(path = %self.path.display(), error = %e, "unmounting an image view");
        }
        let _ = std::fs::remove_dir(&self.path);
        let (socket, key, layers) = (self.views.socket.clone(), self.key.clone(), self.layers.clone());
        let removed = self.views.runtime.block_on(async move {
            let channel = containerd_client::connect(&socket).await.map_err(|e| e.to_string())?;
            let client = containerd_client::Client::from(channel);
            let req = RemoveSnapshotRequest { snapshotter: layers.snapshotter.clone(), key };
            client.snapshots().remove(with_namespace!(req, layers.namespace.as_str())).await.map_err(|e| e.to_string())
        });
        if let Err(e) = removed {
            tracing::warn!(key = %self.key, error = %e, "removing an image view's snapshot");
        }
    }
}

impl ContainerdViews {
    /// [`ImageViews::open`], with its own error.
    fn mount(&self, layers: &ImageLayers) -> Result<Box<dyn ImageView>, Failure> {
        let key = format!("{PREFIX}-{}-{}", std::process::id(), self.next.fetch_add(1, Ordering::Relaxed));
        let req = ViewSnapshotRequest {
            snapshotter: layers.snapshotter.clone(),
            key: key.clone(),
            parent: layers.parent.clone(),
            labels: Default::default(),
        };
        let mounts = self.runtime.block_on(async {
            let client = self.client().await?;
            client
                .snapshots()
                .view(with_namespace!(req, layers.namespace.as_str()))
                .await
                .map(|r| r.into_inner().mounts)
                .map_err(|e| Failure::View(Box::new(e)))
        })?;
        let path = self.dir.join(&key);
        let mut view = Mounted {
            path: path.clone(),
            mounted: false,
            key,
            layers: layers.clone(),
            views: ContainerdRef { socket: self.socket.clone(), runtime: self.runtime.clone() },
        };
        std::fs::create_dir_all(&path).map_err(|source| Failure::MountPoint { path: path.clone(), source })?;
        let [m] = mounts.as_slice() else {
            return Err(Failure::Mounts(mounts.len()));
        };
        let options: Vec<&str> =
            m.options.iter().map(String::as_str).filter(|o| !matches!(*o, "ro" | "rw" | "bind" | "rbind")).collect();
        let mounted = match m.r#type.as_str() {
            "bind" | "rbind" => {
                nix::mount::mount(Some(m.source.as_str()), &path, None::<&str>, MsFlags::MS_BIND, None::<&str>)
                    .and_then(|()| {
                        nix::mount::mount(
                            None::<&str>,
                            &path,
                            None::<&str>,
                            MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY,
                            None::<&str>,
                        )
                    })
            }
            "overlay" => nix::mount::mount(
                Some("overlay"),
                &path,
                Some("overlay"),
                MsFlags::MS_RDONLY,
                Some(options.join(",").as_str()),
            ),
            other => return Err(Failure::Type(other.to_string())),
        };
        mounted.map_err(|source| Failure::Mount { path: path.clone(), source })?;
        view.mounted = true;
        Ok(Box::new(view))
    }
}

impl ImageViews for ContainerdViews {
    /// Blocking (it waits on containerd): call it off the async runtime.
    fn open(&self, layers: &ImageLayers) -> Result<Box<dyn ImageView>, ViewError> {
        self.mount(layers).map_err(|e| ViewError { parent: layers.parent.clone(), source: e.into() })
    }
}
