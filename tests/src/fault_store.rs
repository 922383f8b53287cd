//! An `object_store` wrapper that makes chosen PUTs fail, before or after
//! the inner store applied them: a lost answer (the store wrote the object,
//! the client saw an error) is the failure a retry cannot tell from a
//! write that never happened. Or that holds chosen PUTs at a [`Gate`]
//! until the test lets them through, to interleave two writers exactly.
//! A refused key is refused whether it is written by one PUT or as a
//! multipart upload.

use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions, Result,
};

/// What a PUT of the chosen key does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutFault {
    /// Fails without writing.
    Refuse,
    /// Writes, then reports an error (the answer was lost).
    ApplyThenFail,
}

/// Where held PUTs wait: the first PUT of the chosen key announces itself
/// and waits until [`Gate::release`]; later ones pass.
#[derive(Debug, Default)]
pub struct Gate {
    arrived: tokio::sync::Notify,
    released: tokio::sync::Notify,
    passed: std::sync::atomic::AtomicBool,
}

impl Gate {
    /// Waits until a PUT is held at the gate.
    pub async fn arrived(&self) {
        self.arrived.notified().await;
    }

    /// Lets the held PUT through.
    pub fn release(&self) {
        self.released.notify_one();
    }
}

/// See the module docs.
#[derive(Debug)]
pub struct FaultStore {
    inner: Arc<dyn ObjectStore>,
    /// PUTs of keys ending with this fail (or wait at the gate).
    suffix: String,
    /// `None`: PUTs pass (after the gate, if any).
    fault: Option<PutFault>,
    gate: Option<Arc<Gate>>,
    /// Also fail GETs of that key (reading it back fails too).
    fail_gets: bool,
    faults: AtomicUsize,
}

impl FaultStore {
    /// Faults every PUT of a key ending with `suffix`.
    pub fn new(inner: Arc<dyn ObjectStore>, suffix: &str, fault: PutFault) -> FaultStore {
        FaultStore {
            inner,
            suffix: suffix.to_string(),
            fault: Some(fault),
            gate: None,
            fail_gets: false,
            faults: AtomicUsize::new(0),
        }
    }

    /// Holds the first PUT of a key ending with `suffix` at `gate`, then
    /// lets it through to `inner` unchanged.
    pub fn gated(inner: Arc<dyn ObjectStore>, suffix: &str, gate: Arc<Gate>) -> FaultStore {
        FaultStore {
            inner,
            suffix: suffix.to_string(),
            fault: None,
            gate: Some(gate),
            fail_gets: false,
            faults: AtomicUsize::new(0),
        }
    }

    /// GETs of the key fail too, once a PUT of it has failed (reading it
    /// back fails; reads before are answered).
    pub fn failing_gets(mut self) -> FaultStore {
        self.fail_gets = true;
        self
    }

    /// Faults injected so far.
    pub fn faults(&self) -> usize {
        self.faults.load(Ordering::SeqCst)
    }

    fn failing_get(&self, location: &Path) -> bool {
        self.fail_gets && self.hit(location) && self.faults() > 0
    }

    fn hit(&self, location: &Path) -> bool {
        location.as_ref().ends_with(&self.suffix)
    }

    fn error(&self, location: &Path) -> object_store::Error {
        self.faults.fetch_add(1, Ordering::SeqCst);
        object_store::Error::Generic {
            store: "FaultStore",
            source: format!("injected fault on {location}").into(),
        }
    }
}

impl std::fmt::Display for FaultStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FaultStore({})", self.inner)
    }
}

#[async_trait::async_trait]
impl ObjectStore for FaultStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        if !self.hit(location) {
            return self.inner.put_opts(location, payload, opts).await;
        }
        if let Some(gate) = &self.gate {
            if !gate.passed.swap(true, Ordering::SeqCst) {
                gate.arrived.notify_one();
                gate.released.notified().await;
            }
        }
        match self.fault {
            None => self.inner.put_opts(location, payload, opts).await,
            Some(PutFault::ApplyThenFail) => {
                self.inner.put_opts(location, payload, opts).await?;
                Err(self.error(location))
            }
            Some(PutFault::Refuse) => Err(self.error(location)),
        }
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        // A refused key is refused as a multipart upload too (large
        // objects: the writer's buffered upload switches to multipart).
        if self.hit(location) && self.fault == Some(PutFault::Refuse) {
            return Err(self.error(location));
        }
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        if self.failing_get(location) {
            return Err(self.error(location));
        }
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        if self.failing_get(location) {
            return Err(self.error(location));
        }
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        self.inner.rename_opts(from, to, options).await
    }
}
