//! The host's error type: a reader error, or an unusable host option.

/// Result alias of the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can fail while building or running a [`Host`](crate::Host).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A host option is unusable.
    #[error("invalid host option `{option}`: {reason}")]
    InvalidOption {
        /// The option (`shards`, `token`).
        option: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The reader failed.
    #[error(transparent)]
    Reader(#[from] shardvec::Error),
}

impl Error {
    /// What kind of failure this is (the reader's kinds; a bad option is
    /// invalid input).
    pub fn kind(&self) -> shardvec::ErrorKind {
        match self {
            Error::InvalidOption { .. } => shardvec::ErrorKind::InvalidInput,
            Error::Reader(e) => e.kind(),
        }
    }
}
