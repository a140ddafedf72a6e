//! The blob store: uploaded files (documents, styleguide assets) by key, behind `object_store`
//! so a deployment can swap the local directory for an S3-compatible bucket. Locally every
//! write is fsynced before it is acknowledged (an acknowledged upload survives a crash).

use std::sync::Arc;

use bytes::Bytes;
use canopy_core::Error;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

#[derive(Clone, Debug)]
pub struct Blobs {
    inner: Arc<dyn ObjectStore>,
}

impl Blobs {
    /// Blobs in the directory `root` (created if missing).
    pub fn local(root: &std::path::Path) -> Result<Blobs, Error> {
        std::fs::create_dir_all(root).map_err(|e| {
            Error::internal(format!("cannot create blob dir {}: {e}", root.display()))
        })?;
        let fs = object_store::local::LocalFileSystem::new_with_prefix(root)
            .map_err(blob_error)?
            .with_fsync(true)
            .with_automatic_cleanup(true);
        Ok(Blobs {
            inner: Arc::new(fs),
        })
    }

    /// Blobs held in memory (tests, throwaway servers).
    pub fn memory() -> Blobs {
        Blobs {
            inner: Arc::new(object_store::memory::InMemory::new()),
        }
    }

    pub async fn put(&self, key: &str, bytes: Bytes) -> Result<(), Error> {
        self.inner
            .put(&path(key)?, PutPayload::from_bytes(bytes))
            .await
            .map_err(blob_error)?;
        Ok(())
    }

    /// The blob's bytes, or `None` when it does not exist.
    pub async fn get(&self, key: &str) -> Result<Option<Bytes>, Error> {
        match self.inner.get(&path(key)?).await {
            Ok(r) => r.bytes().await.map(Some).map_err(blob_error),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(blob_error(e)),
        }
    }

    /// Removes a blob; a missing one is not an error.
    pub async fn delete(&self, key: &str) -> Result<(), Error> {
        match self.inner.delete(&path(key)?).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(blob_error(e)),
        }
    }
}

fn path(key: &str) -> Result<Path, Error> {
    Path::parse(key).map_err(|e| Error::internal(format!("bad blob key {key:?}: {e}")))
}

fn blob_error(e: object_store::Error) -> Error {
    Error::internal(format!("blob store: {e}"))
}
