//! Progress of a build, reported to whoever shows it: the writer counts,
//! the caller renders (the CLI draws progress bars on a terminal; a
//! service may log or export it). Default: nobody listens.

/// A phase of a build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Reading, routing and writing records into shards (counted in
    /// records).
    Write,
    /// Uploading the shards' files (counted in bytes).
    Upload,
}

impl Phase {
    /// `write`, `upload`.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Write => "write",
            Phase::Upload => "upload",
        }
    }

    /// Whether the phase counts bytes (else records).
    pub fn counts_bytes(self) -> bool {
        self == Phase::Upload
    }
}

/// Receives the progress of a build. Called from the writer's threads.
pub trait Progress: Send + Sync + std::fmt::Debug {
    /// `phase` starts; `total` units, when known.
    fn start(&self, phase: Phase, total: Option<u64>);
    /// `n` more units of `phase` are done.
    fn advance(&self, phase: Phase, n: u64);
    /// `phase` is over.
    fn finish(&self, phase: Phase);
}
