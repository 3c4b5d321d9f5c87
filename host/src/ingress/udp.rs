//! UDP ingress: one transaction per datagram, one reply datagram to its sender (the formats
//! are in [`crate::ingress`]).
//!
//! A receiver thread reads datagrams and submits them; a sender thread returns the replies
//! as their outcomes arrive, in any order (the reply carries the transaction's id, or the
//! reason). UDP has no connection to cut, so the bounds are per datagram and global: an empty
//! or oversize datagram is refused with a reply and counted; beyond
//! [`UdpConfig::pending`] datagrams waiting for their outcome, new ones are dropped unread
//! and counted (`verity_udp_dropped_total{reason}`), as the network would drop them; a reply
//! that finds the sender's queue full is dropped and counted, never waited for — the stages
//! that produce outcomes must not block on one client.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crossbeam_channel::{bounded, Sender, TrySendError};
use tracing::warn;

use super::{reply, MAX_FRAME};
use crate::pipeline::{Outcome, Pipeline};
use crate::traffic::recorder::Recorder;

/// Bounds of the UDP listener.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpConfig {
    /// Datagrams waiting for their outcome, over all senders.
    pub pending: usize,
}

impl Default for UdpConfig {
    /// 65,536 pending.
    fn default() -> Self {
        Self { pending: 65_536 }
    }
}

/// Serves UDP ingress on `socket` into `pipeline` until the process ends, offering each
/// datagram to `recorder`. Returns the address it listens on.
pub fn serve(
    socket: UdpSocket,
    pipeline: Arc<Pipeline>,
    config: UdpConfig,
    recorder: Arc<Recorder>,
) -> io::Result<SocketAddr> {
    let addr = socket.local_addr()?;
    let replier = socket.try_clone()?;
    let (replies, outgoing) = bounded::<(SocketAddr, Outcome)>(config.pending);
    let pending = Arc::new(AtomicUsize::new(0));
    let answered = Arc::clone(&pending);
    std::thread::Builder::new()
        .name("udp-reply".into())
        .spawn(move || {
            for (to, outcome) in outgoing {
                answered.fetch_sub(1, Ordering::AcqRel);
                if let Err(error) = replier.send_to(&reply(&outcome), to) {
                    metrics::counter!("verity_udp_dropped_total", "reason" => "reply_failed")
                        .increment(1);
                    warn!(%error, %to, "a UDP reply was not sent");
                }
            }
        })?;
    std::thread::Builder::new()
        .name("udp-receive".into())
        .spawn(move || receive(&socket, &pipeline, &replies, &pending, config, &recorder))?;
    Ok(addr)
}

/// Reads datagrams until the socket fails.
fn receive(
    socket: &UdpSocket,
    pipeline: &Pipeline,
    replies: &Sender<(SocketAddr, Outcome)>,
    pending: &Arc<AtomicUsize>,
    config: UdpConfig,
    recorder: &Recorder,
) {
    let Ok(local) = socket.local_addr() else {
        return;
    };
    // One byte more than the bound tells an oversize datagram from one that fits.
    let mut buf = vec![0u8; MAX_FRAME + 1];
    loop {
        let (len, from) = match socket.recv_from(&mut buf) {
            Ok(received) => received,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => {
                warn!(%error, "UDP ingress stopped");
                return;
            }
        };
        metrics::counter!("verity_ingress_frames_total", "transport" => "udp").increment(1);
        recorder.udp(None, from, local, &buf[..len]);
        if pending.load(Ordering::Acquire) >= config.pending {
            metrics::counter!("verity_udp_dropped_total", "reason" => "overloaded").increment(1);
            continue;
        }
        pending.fetch_add(1, Ordering::AcqRel);
        let refusal = match len {
            0 => Some(("empty", "a datagram carries one transaction")),
            n if n > MAX_FRAME => Some(("oversize", "a datagram of more than 4096 bytes")),
            _ => None,
        };
        if let Some((name, detail)) = refusal {
            metrics::counter!("verity_ingress_rejected_total", "transport" => "udp", "reason" => name)
                .increment(1);
            let reason = format!("{name}: {detail}");
            send_reply(replies, pending, from, Outcome::Refused { reason });
            continue;
        }
        let (replies, pending) = (replies.clone(), Arc::clone(pending));
        pipeline.submit_with(
            buf[..len].to_vec(),
            Box::new(move |outcome| send_reply(&replies, &pending, from, outcome)),
        );
    }
}

/// Queues a reply without waiting; a full queue drops it (counted).
fn send_reply(
    replies: &Sender<(SocketAddr, Outcome)>,
    pending: &AtomicUsize,
    to: SocketAddr,
    outcome: Outcome,
) {
    if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
        replies.try_send((to, outcome))
    {
        pending.fetch_sub(1, Ordering::AcqRel);
        metrics::counter!("verity_udp_dropped_total", "reason" => "reply_queue_full").increment(1);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::ingress::parse_reply;
    use crate::testing;

    fn ask(client: &UdpSocket, datagram: &[u8]) -> Outcome {
        client.send(datagram).expect("sends");
        let mut buf = [0u8; 2048];
        let n = client.recv(&mut buf).expect("a reply");
        parse_reply(&buf[..n]).expect("a well-formed reply")
    }

    #[test]
    fn each_datagram_gets_a_reply_and_bad_ones_are_refused_with_a_reason() {
        let (pipeline, _dir) = testing::pipeline("udp");
        let socket = UdpSocket::bind("127.0.0.1:0").expect("binds");
        let addr = serve(
            socket,
            Arc::clone(&pipeline),
            UdpConfig { pending: 64 },
            Recorder::unavailable(),
        )
        .expect("serves");
        let client = UdpSocket::bind("127.0.0.1:0").expect("binds");
        client.connect(addr).expect("connects");
        client
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout set");

        let tx = testing::transfer(5, 1, 0, 2, 1, 10);
        let Outcome::Committed { id, failure, .. } = ask(&client, &tx) else {
            panic!("a good transfer is committed");
        };
        assert_eq!(
            id,
            crate::transaction::Transaction::decode(&tx)
                .expect("decodes")
                .id()
        );
        assert_eq!(failure, None);

        let refused = |datagram: &[u8]| match ask(&client, datagram) {
            Outcome::Refused { reason } => reason,
            other => panic!("{other:?}"),
        };
        assert!(refused(&[]).starts_with("empty"));
        assert!(refused(&vec![1u8; MAX_FRAME + 1]).starts_with("oversize"));
        assert!(refused(&[7u8; 99]).starts_with("malformed"));
        assert!(refused(&tx).starts_with("stale_nonce"), "a replay");
        let mut forged = testing::transfer(5, 1, 1, 2, 1, 10);
        forged[120] ^= 4;
        assert!(refused(&forged).starts_with("signature"));

        // Many in flight from one socket: every one is answered.
        for nonce in 1..=40 {
            client
                .send(&testing::transfer(5, 1, nonce, 2, 1, 1))
                .expect("sends");
        }
        let mut buf = [0u8; 2048];
        let committed = (0..40)
            .filter(|_| {
                let n = client.recv(&mut buf).expect("a reply");
                matches!(
                    parse_reply(&buf[..n]),
                    Ok(Outcome::Committed { failure: None, .. })
                )
            })
            .count();
        assert_eq!(committed, 40);
    }
}
