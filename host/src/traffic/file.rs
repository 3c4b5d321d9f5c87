//! Capture files: opening one to read (with a BPF filter) and writing one, in libpcap's
//! nanosecond format.

use std::path::{Path, PathBuf};

use pcap::{
    Activated, Capture, Dead, Linktype, Offline, Packet, PacketHeader, Precision, Savefile,
};
use thiserror::Error;

use super::link::{Link, UnsupportedLink};
use super::Timestamp;

/// Why a capture file could not be used.
#[derive(Debug, Error)]
pub enum FileError {
    /// libpcap takes paths as C strings.
    #[error("{0}: capture file names must be UTF-8")]
    Path(PathBuf),
    /// Missing, unreadable, or not a pcap file.
    #[error("cannot open {path} as a capture: {reason}")]
    Open {
        /// The file.
        path: PathBuf,
        /// libpcap's words.
        reason: String,
    },
    /// A link layer Verity does not read.
    #[error("{path}: {link}")]
    Link {
        /// The file.
        path: PathBuf,
        /// Which.
        link: UnsupportedLink,
    },
    /// A filter that does not compile.
    #[error(transparent)]
    Filter(#[from] FilterError),
    /// Writing failed.
    #[error("cannot write {path}: {reason}")]
    Write {
        /// The file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
}

/// A BPF filter that does not compile.
#[derive(Debug, Error)]
#[error("filter {filter:?} does not compile: {reason}")]
pub struct FilterError {
    /// The filter.
    pub filter: String,
    /// libpcap's words.
    pub reason: String,
}

/// Applies `filter` (BPF, tcpdump's syntax), if given, to `capture`.
pub fn apply_filter<T: Activated + ?Sized>(
    capture: &mut Capture<T>,
    filter: Option<&str>,
) -> Result<(), FilterError> {
    let Some(filter) = filter else {
        return Ok(());
    };
    capture.filter(filter, true).map_err(|error| FilterError {
        filter: filter.to_owned(),
        reason: reason(&error),
    })
}

/// libpcap's message without the crate's prefix.
pub fn reason(error: &pcap::Error) -> String {
    match error {
        pcap::Error::PcapError(message) => message.clone(),
        other => other.to_string(),
    }
}

fn utf8(path: &Path) -> Result<&str, FileError> {
    path.to_str()
        .ok_or_else(|| FileError::Path(path.to_path_buf()))
}

/// Opens `path` for reading with nanosecond timestamps, applying `filter` (BPF syntax,
/// `tcpdump`'s) if given.
pub fn open(path: &Path, filter: Option<&str>) -> Result<(Capture<Offline>, Link), FileError> {
    let name = utf8(path)?;
    let mut capture =
        Capture::from_file_with_precision(name, Precision::Nano).map_err(|error| {
            FileError::Open {
                path: path.to_path_buf(),
                reason: reason(&error),
            }
        })?;
    let link = Link::from_linktype(capture.get_datalink()).map_err(|link| FileError::Link {
        path: path.to_path_buf(),
        link,
    })?;
    apply_filter(&mut capture, filter)?;
    Ok((capture, link))
}

/// A packet's capture time, in nanoseconds (for a capture opened with nanosecond precision).
pub fn timestamp(header: &PacketHeader) -> Timestamp {
    let seconds = u64::try_from(header.ts.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(header.ts.tv_usec).unwrap_or(0);
    Timestamp(seconds.saturating_mul(1_000_000_000).saturating_add(nanos))
}

/// A capture file being written: Ethernet frames, nanosecond timestamps.
pub struct Writer {
    path: PathBuf,
    savefile: Savefile,
    // The dumper was opened from it; it lives as long.
    _dead: Capture<Dead>,
    bytes: u64,
    packets: u64,
}

/// The file header's size.
const FILE_HEADER: u64 = 24;
/// Each packet record's header's size.
const RECORD_HEADER: u64 = 16;

impl Writer {
    /// Creates (or truncates) `path`.
    pub fn create(path: &Path) -> Result<Self, FileError> {
        let write_error = |error: pcap::Error| FileError::Write {
            path: path.to_path_buf(),
            reason: reason(&error),
        };
        let name = utf8(path)?;
        let dead = Capture::dead_with_precision(Linktype::ETHERNET, Precision::Nano)
            .map_err(write_error)?;
        let savefile = dead.savefile(name).map_err(write_error)?;
        Ok(Self {
            path: path.to_path_buf(),
            savefile,
            _dead: dead,
            bytes: FILE_HEADER,
            packets: 0,
        })
    }

    /// Appends one Ethernet frame captured `at`.
    pub fn write(&mut self, at: Timestamp, frame: &[u8]) {
        let len = u32::try_from(frame.len()).unwrap_or(u32::MAX);
        let header = PacketHeader {
            ts: libc::timeval {
                tv_sec: (at.0 / 1_000_000_000) as libc::time_t,
                tv_usec: (at.0 % 1_000_000_000) as libc::suseconds_t,
            },
            caplen: len,
            len,
        };
        self.savefile.write(&Packet::new(&header, frame));
        self.bytes += RECORD_HEADER + frame.len() as u64;
        self.packets += 1;
    }

    /// Pushes what is buffered to the file.
    pub fn flush(&mut self) -> Result<(), FileError> {
        self.savefile.flush().map_err(|error| FileError::Write {
            path: self.path.clone(),
            reason: reason(&error),
        })
    }

    /// Bytes in the file once flushed.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Packets written.
    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// Where it writes.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;
    use crate::testing;
    use crate::traffic::synth;

    fn scratch(name: &str) -> testing::Scratch {
        testing::scratch(&format!("file-{name}"))
    }

    fn written(path: &Path, n: u64) -> Vec<u8> {
        let from: SocketAddr = "127.0.0.1:40000".parse().expect("an address");
        let to: SocketAddr = "127.0.0.1:7382".parse().expect("an address");
        let mut writer = Writer::create(path).expect("created");
        for i in 0..n {
            writer.write(
                Timestamp(1_767_225_600_123_456_789 + i),
                &synth::udp(from, to, &[i as u8; 160]),
            );
        }
        writer.flush().expect("flushed");
        assert_eq!(
            writer.bytes(),
            std::fs::metadata(path).expect("written").len()
        );
        std::fs::read(path).expect("readable")
    }

    #[test]
    fn written_files_read_back_with_nanosecond_timestamps() {
        let dir = scratch("round-trip");
        let path = dir.join("a.pcap");
        written(&path, 3);
        let (mut capture, link) = open(&path, Some("udp dst port 7382")).expect("opens");
        assert_eq!(link, Link::Ethernet);
        let mut stamps = Vec::new();
        while let Ok(packet) = capture.next_packet() {
            stamps.push(timestamp(packet.header).0);
        }
        assert_eq!(
            stamps,
            vec![
                1_767_225_600_123_456_789,
                1_767_225_600_123_456_790,
                1_767_225_600_123_456_791
            ]
        );
        let (mut filtered, _) = open(&path, Some("udp port 9")).expect("opens");
        assert!(matches!(
            filtered.next_packet(),
            Err(pcap::Error::NoMorePackets)
        ));
    }

    fn refused(path: &Path, filter: Option<&str>) -> String {
        match open(path, filter) {
            Ok(_) => panic!("{} opened", path.display()),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn broken_files_give_clear_errors() {
        let dir = scratch("broken");
        let path = dir.join("a.pcap");
        let bytes = written(&path, 3);

        // Cut inside the last packet: the first two read, then libpcap says so.
        let cut = dir.join("cut.pcap");
        std::fs::write(&cut, &bytes[..bytes.len() - 20]).expect("written");
        let (mut capture, _) = open(&cut, None).expect("opens");
        assert!(capture.next_packet().is_ok());
        assert!(capture.next_packet().is_ok());
        let error = reason(&capture.next_packet().expect_err("truncated"));
        assert!(error.contains("truncated"), "{error}");

        // Cut inside the file header.
        std::fs::write(&cut, &bytes[..10]).expect("written");
        let error = refused(&cut, None);
        assert!(
            error.contains("cannot open") && error.contains("cut.pcap"),
            "{error}"
        );

        // Not a capture at all.
        std::fs::write(&cut, b"these are not the packets you are looking for").expect("written");
        let error = refused(&cut, None);
        assert!(error.contains("cannot open"), "{error}");

        // A link type Verity does not read (USB, 189).
        let mut usb = bytes.clone();
        usb[20..24].copy_from_slice(&189u32.to_le_bytes());
        std::fs::write(&cut, &usb).expect("written");
        let error = refused(&cut, None);
        assert!(
            error.contains("link type 189") && error.contains("not supported"),
            "{error}"
        );

        let error = refused(&path, Some("udp prot 1"));
        assert!(error.contains("does not compile"), "{error}");

        let missing = refused(&dir.join("missing.pcap"), None);
        assert!(missing.contains("missing.pcap"), "{missing}");
    }
}
