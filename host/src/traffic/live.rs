//! Live capture: an interface opened for reading packets as they pass, with errors that say
//! what to do (the permission it needs, the interfaces there are).

use pcap::{Active, Capture, Device};
use thiserror::Error;

use super::file::{apply_filter, reason, FilterError};
use super::link::{Link, UnsupportedLink};

/// How long a read waits for a packet, so that the reader can look at its stop conditions.
pub const READ_TIMEOUT_MS: i32 = 100;

/// Why an interface could not be captured on.
#[derive(Debug, Error)]
pub enum LiveError {
    /// The process lacks CAP_NET_RAW.
    #[error(
        "capturing on {iface} needs CAP_NET_RAW ({reason}): run as root, or grant it once with \
         `sudo setcap cap_net_raw,cap_net_admin=eip {exe}`"
    )]
    Permission {
        /// The interface.
        iface: String,
        /// libpcap's words.
        reason: String,
        /// This executable, for the `setcap` line.
        exe: String,
    },
    /// No such interface.
    #[error("no interface {iface:?} ({reason}); this machine has: {}", names.join(", "))]
    NoInterface {
        /// The interface asked for.
        iface: String,
        /// libpcap's words.
        reason: String,
        /// The interfaces there are.
        names: Vec<String>,
    },
    /// Any other failure to open.
    #[error("cannot capture on {iface}: {reason}")]
    Open {
        /// The interface.
        iface: String,
        /// libpcap's words.
        reason: String,
    },
    /// A link layer Verity does not read.
    #[error("{iface}: {link}")]
    Link {
        /// The interface.
        iface: String,
        /// Which.
        link: UnsupportedLink,
    },
    /// A filter that does not compile.
    #[error(transparent)]
    Filter(#[from] FilterError),
}

/// Opens `iface` (immediate mode, whole packets, reads that time out after
/// [`READ_TIMEOUT_MS`]) with `filter` (BPF, tcpdump's syntax) if given.
pub fn open(iface: &str, filter: Option<&str>) -> Result<(Capture<Active>, Link), LiveError> {
    let opened = Capture::from_device(iface).and_then(|c| {
        c.immediate_mode(true)
            .snaplen(65_535)
            .timeout(READ_TIMEOUT_MS)
            .open()
    });
    let mut capture = opened.map_err(|error| {
        let reason = reason(&error);
        let lower = reason.to_lowercase();
        let iface = iface.to_owned();
        if lower.contains("permit") || lower.contains("permission") {
            let exe =
                std::env::current_exe().map_or("verity".to_owned(), |p| p.display().to_string());
            LiveError::Permission { iface, reason, exe }
        } else if lower.contains("no such device") || lower.contains("doesn't exist") {
            let names = Device::list()
                .map(|list| list.into_iter().map(|d| d.name).collect())
                .unwrap_or_default();
            LiveError::NoInterface {
                iface,
                reason,
                names,
            }
        } else {
            LiveError::Open { iface, reason }
        }
    })?;
    let link = Link::from_linktype(capture.get_datalink()).map_err(|link| LiveError::Link {
        iface: iface.to_owned(),
        link,
    })?;
    apply_filter(&mut capture, filter)?;
    Ok((capture, link))
}
