//! Capture ingress: transactions taken off a network interface (a mirrored port) straight
//! into the pipeline, without a second process.
//!
//! The same extraction as `verity capture` (UDP datagrams to servers, reassembled TCP
//! frames; replies and other traffic skipped and counted in
//! `verity_pcap_skipped_total{reason}`). Nobody waits for the outcome: the client that sent
//! the transaction got its answer from the server it sent it to. Outcomes are counted in
//! `verity_capture_outcomes_total{outcome}`; captured transactions are recorded like any
//! other ingress.

use std::sync::Arc;

use tracing::{info, warn};

use crate::pipeline::{Outcome, Pipeline};
use crate::traffic::extract::Extractor;
use crate::traffic::live::{self, LiveError};
use crate::traffic::reassembly::Limits;
use crate::traffic::recorder::Recorder;
use crate::traffic::Transport;

/// Captures on `iface` (through `filter`, if any) into `pipeline` until the process ends.
pub fn serve(
    iface: &str,
    filter: Option<&str>,
    pipeline: Arc<Pipeline>,
    recorder: Arc<Recorder>,
) -> Result<(), LiveError> {
    let (mut capture, link) = live::open(iface, filter)?;
    let name = iface.to_owned();
    let spawned = std::thread::Builder::new()
        .name("capture-ingress".into())
        .spawn(move || {
            let mut extractor = Extractor::new(link, Limits::default());
            let mut batch = Vec::new();
            loop {
                match capture.next_packet() {
                    Ok(Some(packet)) => extractor.captured(&packet, &mut batch),
                    Ok(None) => continue,
                    Err(error) => {
                        metrics::counter!("verity_capture_failures_total").increment(1);
                        warn!(iface = name, %error, "capture ingress stopped");
                        return;
                    }
                }
                for tx in batch.drain(..) {
                    metrics::counter!("verity_ingress_frames_total", "transport" => "capture")
                        .increment(1);
                    match tx.transport {
                        Transport::Udp => recorder.udp(Some(tx.at), tx.from, tx.to, &tx.bytes),
                        Transport::Tcp => recorder.tcp_frame(
                            Some(tx.at),
                            tx.from,
                            tx.to,
                            (tx.bytes.len() as u32).to_le_bytes(),
                            &tx.bytes,
                        ),
                    }
                    pipeline.submit_with(
                        tx.bytes,
                        Box::new(|outcome| {
                            let outcome = match outcome {
                                Outcome::Committed { .. } => "committed",
                                Outcome::Refused { .. } => "refused",
                            };
                            metrics::counter!("verity_capture_outcomes_total", "outcome" => outcome)
                                .increment(1);
                        }),
                    );
                }
            }
        });
    if let Err(error) = spawned {
        return Err(LiveError::Open {
            iface: iface.to_owned(),
            reason: format!("cannot start the capture thread: {error}"),
        });
    }
    info!(iface, filter, ?link, "capture ingress");
    Ok(())
}
