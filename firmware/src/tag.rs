//! The host's name for one request, echoed in its response.

use std::fmt;

/// Names one verification request; the card copies it into the response unchanged.
///
/// A tag is opaque to the card. The host chooses it (the driver uses a sequence number) and
/// uses it to match responses to requests and to detect lost or duplicated responses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tag(u64);

impl Tag {
    /// Wraps a host-chosen value.
    pub const fn new(value: u64) -> Self {
        Self(value)
    }

    /// The value as it travels in a record.
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}
