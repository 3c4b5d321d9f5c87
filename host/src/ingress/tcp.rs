//! TCP ingress: length-prefixed frames of transactions in, one reply per frame out, in order
//! (the formats are in [`crate::ingress`]).
//!
//! A client may pipeline: up to [`TcpConfig::pending`] frames per connection wait for
//! their outcome, then the connection's reader stops reading (back-pressure, down to TCP's
//! own window); the pipeline's full queues stop it too. Each connection has a reader thread
//! and a writer thread; at most [`TcpConfig::connections`] are served at once, beyond
//! which a new connection is closed at once. A peer that sends a frame length of 0 or over
//! [`MAX_FRAME`] (garbage), or takes longer than [`TcpConfig::frame_timeout`] to finish a
//! frame it started, or stays silent longer than [`TcpConfig::idle_timeout`], is
//! disconnected and counted (`verity_ingress_disconnects_total{reason}`); others are
//! unaffected.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver};
use tracing::{debug, warn};

use super::{reply, MAX_FRAME};
use crate::pipeline::{Outcome, Pipeline};
use crate::traffic::recorder::Recorder;

/// Bounds of the listener.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpConfig {
    /// Connections served at once.
    pub connections: usize,
    /// Frames per connection waiting for their outcome.
    pub pending: usize,
    /// How long a started frame may take to arrive whole.
    pub frame_timeout: Duration,
    /// How long a connection may stay silent with nothing pending.
    pub idle_timeout: Duration,
}

impl Default for TcpConfig {
    /// 1,024 connections, 4,096 pending each, 2 s per frame, 5 minutes idle.
    fn default() -> Self {
        Self {
            connections: 1024,
            pending: 4096,
            frame_timeout: Duration::from_secs(2),
            idle_timeout: Duration::from_secs(300),
        }
    }
}

/// Why a connection was closed by the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Disconnect {
    Garbage,
    Slow,
    Idle,
}

impl Disconnect {
    fn reason(self) -> &'static str {
        match self {
            Disconnect::Garbage => "garbage",
            Disconnect::Slow => "slow_frame",
            Disconnect::Idle => "idle",
        }
    }
}

/// Serves TCP ingress on `listener` into `pipeline` until the process ends, offering each
/// frame to `recorder`. Returns the address it listens on.
pub fn serve(
    listener: TcpListener,
    pipeline: Arc<Pipeline>,
    config: TcpConfig,
    recorder: Arc<Recorder>,
) -> io::Result<SocketAddr> {
    let addr = listener.local_addr()?;
    let open = Arc::new(AtomicUsize::new(0));
    std::thread::Builder::new()
        .name("ingress-accept".into())
        .spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else {
                    continue;
                };
                if open.fetch_add(1, Ordering::AcqRel) >= config.connections {
                    open.fetch_sub(1, Ordering::AcqRel);
                    metrics::counter!("verity_ingress_disconnects_total", "reason" => "too_many")
                        .increment(1);
                    drop(stream);
                    continue;
                }
                let (pipeline, open) = (Arc::clone(&pipeline), Arc::clone(&open));
                let recorder = Arc::clone(&recorder);
                let spawned = std::thread::Builder::new()
                    .name("ingress-conn".into())
                    .spawn(move || {
                        connection(stream, &pipeline, config, &recorder);
                        open.fetch_sub(1, Ordering::AcqRel);
                    });
                if let Err(error) = spawned {
                    warn!(%error, "cannot serve a connection");
                }
            }
        })?;
    Ok(addr)
}

/// One connection: this thread reads frames, a writer thread answers them in order.
fn connection(stream: TcpStream, pipeline: &Pipeline, config: TcpConfig, recorder: &Recorder) {
    let (Ok(peer), Ok(local)) = (stream.peer_addr(), stream.local_addr()) else {
        return;
    };
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let (pending, outcomes) = bounded::<Receiver<Outcome>>(config.pending);
    let answering = std::thread::Builder::new()
        .name("ingress-reply".into())
        .spawn(move || {
            for outcome in outcomes {
                let Ok(outcome) = outcome.recv() else {
                    return;
                };
                let reply = reply(&outcome);
                let frame = [&(reply.len() as u32).to_le_bytes()[..], &reply].concat();
                if writer.write_all(&frame).is_err() {
                    return;
                }
            }
        });
    let Ok(answering) = answering else {
        return;
    };
    let result = read_frames(stream, pipeline, &pending, config, &|header, body| {
        recorder.tcp_frame(None, peer, local, header, body);
    });
    recorder.tcp_close(peer, local);
    if let Err(disconnect) = result {
        debug!(%peer, reason = disconnect.reason(), "peer disconnected");
        metrics::counter!("verity_ingress_disconnects_total", "reason" => disconnect.reason())
            .increment(1);
    }
    drop(pending);
    let _ = answering.join();
}

/// Reads frames until the peer closes (`Ok`) or misbehaves (`Err`).
fn read_frames(
    mut stream: TcpStream,
    pipeline: &Pipeline,
    pending: &crossbeam_channel::Sender<Receiver<Outcome>>,
    config: TcpConfig,
    record: &dyn Fn([u8; 4], &[u8]),
) -> Result<(), Disconnect> {
    let mut header = [0u8; 4];
    let mut frame = vec![0u8; MAX_FRAME];
    loop {
        // A frame's first byte may be a long time coming; the rest may not.
        if stream.set_read_timeout(Some(config.idle_timeout)).is_err() {
            return Ok(());
        }
        match stream.read(&mut header[..1]) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) if is_timeout(&e) => return Err(Disconnect::Idle),
            Err(_) => return Ok(()),
        }
        let deadline = Instant::now() + config.frame_timeout;
        read_before(&mut stream, &mut header[1..], deadline)?;
        let len = u32::from_le_bytes(header) as usize;
        if len == 0 || len > MAX_FRAME {
            return Err(Disconnect::Garbage);
        }
        read_before(&mut stream, &mut frame[..len], deadline)?;
        metrics::counter!("verity_ingress_frames_total", "transport" => "tcp").increment(1);
        record(header, &frame[..len]);
        let outcome = pipeline.submit(frame[..len].to_vec());
        if pending.send(outcome).is_err() {
            return Ok(());
        }
    }
}

fn is_timeout(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Fills `buf` before `deadline`, or the peer is too slow.
fn read_before(
    stream: &mut TcpStream,
    buf: &mut [u8],
    deadline: Instant,
) -> Result<(), Disconnect> {
    let mut at = 0;
    while at < buf.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return Err(Disconnect::Slow);
        }
        match stream.read(&mut buf[at..]) {
            Ok(0) => return Err(Disconnect::Garbage),
            Ok(n) => at += n,
            Err(e) if is_timeout(&e) => return Err(Disconnect::Slow),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Err(Disconnect::Garbage),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;
    use crate::transaction::TX_LEN;

    fn transfer(nonce: u64) -> [u8; TX_LEN] {
        testing::transfer(5, 1, nonce, 2, 1, 1)
    }

    fn frame(bytes: &[u8]) -> Vec<u8> {
        [&(bytes.len() as u32).to_le_bytes()[..], bytes].concat()
    }

    fn read_reply(stream: &mut TcpStream) -> Vec<u8> {
        let mut len = [0u8; 4];
        stream.read_exact(&mut len).expect("a reply");
        let mut reply = vec![0u8; u32::from_le_bytes(len) as usize];
        stream.read_exact(&mut reply).expect("a reply");
        reply
    }

    /// The server closed the connection: a read ends (or fails) at once.
    fn closed(stream: &mut TcpStream) -> bool {
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout set");
        matches!(stream.read(&mut [0u8; 1]), Ok(0) | Err(_))
    }

    #[test]
    fn pipelined_frames_are_answered_in_order_and_misbehaving_peers_are_cut_off() {
        let (pipeline, _dir) = testing::pipeline("tcp");
        let listener = TcpListener::bind("127.0.0.1:0").expect("binds");
        let config = TcpConfig {
            connections: 3,
            pending: 16,
            frame_timeout: Duration::from_millis(200),
            idle_timeout: Duration::from_secs(30),
        };
        let addr = serve(
            listener,
            Arc::clone(&pipeline),
            config,
            Recorder::unavailable(),
        )
        .expect("serves");

        // 60 transactions and a malformed frame in one write, pipelined past `pending`.
        let mut good = TcpStream::connect(addr).expect("connects");
        let mut burst: Vec<u8> = (0..60).flat_map(|n| frame(&transfer(n))).collect();
        burst.extend(frame(&[7; 10]));
        good.write_all(&burst).expect("sends");
        for n in 0..60u64 {
            let reply = read_reply(&mut good);
            assert_eq!(
                reply[0],
                0,
                "#{n}: {:?}",
                String::from_utf8_lossy(&reply[1..])
            );
            assert_eq!(reply.len(), 41, "#{n}: applied, no failure");
        }
        let refused = read_reply(&mut good);
        assert_eq!(refused[0], 1);
        assert!(String::from_utf8_lossy(&refused[1..]).starts_with("malformed"));

        // Garbage: an impossible length. Slowloris: half a header, then nothing.
        let mut garbage = TcpStream::connect(addr).expect("connects");
        garbage.write_all(&u32::MAX.to_le_bytes()).expect("sends");
        assert!(closed(&mut garbage), "garbage is cut off");
        let mut slow = TcpStream::connect(addr).expect("connects");
        slow.write_all(&[1, 0]).expect("sends");
        let started = Instant::now();
        assert!(closed(&mut slow), "a slow frame is cut off");
        assert!(started.elapsed() < Duration::from_secs(5));

        // The good client is unaffected.
        good.write_all(&frame(&transfer(60))).expect("sends");
        assert_eq!(read_reply(&mut good)[0], 0);

        // Three connections at most: with two more open, a fourth is closed at once.
        let _second = TcpStream::connect(addr).expect("connects");
        let mut third = TcpStream::connect(addr).expect("connects");
        // Served: the garbage and slow connections gave their places back.
        third.write_all(&frame(&transfer(61))).expect("sends");
        assert_eq!(read_reply(&mut third)[0], 0);
        let mut fourth = TcpStream::connect(addr).expect("connects");
        assert!(closed(&mut fourth), "over the bound");
    }
}
