//! Sending at a capture's own pace, or a multiple of it, and measuring how far off it was.
//!
//! A packet captured `t` after the first is due `t / speed` after the first send. The sender
//! sleeps until shortly before that instant, then spins: a sleep alone wakes tens of
//! microseconds late on Linux, and the pacing error is what a replay is judged on.

use std::time::{Duration, Instant};

use super::Timestamp;

/// How fast to replay.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Speed {
    /// As fast as the sender goes.
    Max,
    /// The capture's pace times this factor (1 = as captured).
    Times(f64),
}

impl std::str::FromStr for Speed {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "max" {
            return Ok(Speed::Max);
        }
        let factor: f64 = s
            .strip_suffix('x')
            .unwrap_or(s)
            .parse()
            .map_err(|_| format!("{s:?} is not a speed: 1x, 2x, 0.5x or max"))?;
        if !(factor.is_finite() && factor > 0.0) {
            return Err(format!("speed {s:?} must be above 0"));
        }
        Ok(Speed::Times(factor))
    }
}

/// How long before a due instant the sender stops sleeping and spins.
const SPIN: Duration = Duration::from_micros(200);

/// Due instants of a capture's packets.
#[derive(Debug)]
pub struct Pacer {
    speed: Speed,
    origin: Option<(Instant, Timestamp)>,
}

impl Pacer {
    /// A pacer at `speed`; the first packet asked about is due at once.
    pub fn new(speed: Speed) -> Self {
        Self {
            speed,
            origin: None,
        }
    }

    /// When the packet captured `at` is due; `None` at full speed. A timestamp before the
    /// first is due at the start.
    pub fn due(&mut self, at: Timestamp) -> Option<Instant> {
        let Speed::Times(factor) = self.speed else {
            return None;
        };
        let (start, first) = *self.origin.get_or_insert_with(|| (Instant::now(), at));
        let offset = at.0.saturating_sub(first.0) as f64 / factor;
        Some(start + Duration::from_nanos(offset as u64))
    }

    /// Waits until `due`: sleeps most of the way, spins the rest.
    pub fn wait(due: Instant) {
        let now = Instant::now();
        if due > now + SPIN {
            std::thread::sleep(due - now - SPIN);
        }
        while Instant::now() < due {
            std::hint::spin_loop();
        }
    }
}

/// How late each paced send was.
#[derive(Clone, Debug, Default)]
pub struct PacingErrors {
    late: Vec<Duration>,
}

impl PacingErrors {
    /// One send, `late` after it was due.
    pub fn record(&mut self, late: Duration) {
        self.late.push(late);
    }

    /// Sends measured.
    pub fn len(&self) -> usize {
        self.late.len()
    }

    /// No send was paced.
    pub fn is_empty(&self) -> bool {
        self.late.is_empty()
    }

    /// The lateness at `per_mille` (500: the median, 990: p99, 1000: the worst).
    pub fn quantile(&mut self, per_mille: usize) -> Option<Duration> {
        if self.late.is_empty() {
            return None;
        }
        self.late.sort_unstable();
        let n = self.late.len();
        Some(self.late[(n * per_mille / 1000).min(n - 1)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speeds_parse_and_nonsense_is_refused() {
        assert_eq!("max".parse(), Ok(Speed::Max));
        assert_eq!("1x".parse(), Ok(Speed::Times(1.0)));
        assert_eq!("2x".parse(), Ok(Speed::Times(2.0)));
        assert_eq!("0.5".parse(), Ok(Speed::Times(0.5)));
        for bad in ["0x", "-1x", "fast", "", "NaNx", "infx"] {
            assert!(bad.parse::<Speed>().is_err(), "{bad}");
        }
    }

    #[test]
    fn packets_are_due_at_their_offset_divided_by_the_speed() {
        let mut pacer = Pacer::new(Speed::Times(2.0));
        let start = pacer.due(Timestamp(1_000_000_000)).expect("paced");
        let later = pacer.due(Timestamp(1_010_000_000)).expect("paced");
        assert_eq!(later - start, Duration::from_millis(5));
        let earlier = pacer.due(Timestamp(999_000_000)).expect("paced");
        assert_eq!(earlier, start, "a timestamp going back is due at once");
        assert_eq!(Pacer::new(Speed::Max).due(Timestamp(5)), None);
    }
}
