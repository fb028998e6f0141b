//! The clock a camera's frames and recording are stamped with.

use std::sync::atomic::{AtomicI64, Ordering};

use super::now_ms;

/// A camera's event clock for one attempt at its stream: event time =
/// base + stream timestamp. A recording's base is its start; a live
/// stream's is set by the first timestamp seen (by the frames or by the
/// recording, whichever is first) to the wall clock then.
pub(crate) struct EventClock {
    base_ms: AtomicI64,
}

impl EventClock {
    const UNSET: i64 = i64::MIN;

    pub(crate) fn live() -> EventClock {
        EventClock { base_ms: AtomicI64::new(Self::UNSET) }
    }

    /// Event time (ms since the epoch) of stream timestamp `pts_ms`.
    pub(crate) fn event_ms(&self, pts_ms: i64) -> i64 {
        let base = self.base_ms.load(Ordering::Acquire);
        if base != Self::UNSET {
            return base + pts_ms;
        }
        let candidate = now_ms() - pts_ms;
        match self.base_ms.compare_exchange(Self::UNSET, candidate, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => candidate + pts_ms,
            Err(base) => base + pts_ms,
        }
    }
}

impl From<i64> for EventClock {
    /// A clock whose stream time 0 is `start_ms`.
    fn from(start_ms: i64) -> EventClock {
        EventClock { base_ms: AtomicI64::new(start_ms) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recordings_clock_starts_at_its_start_and_a_live_one_at_its_first_timestamp() {
        let recording = EventClock::from(1_000_000);
        assert_eq!((recording.event_ms(0), recording.event_ms(2_500)), (1_000_000, 1_002_500));
        let live = EventClock::live();
        let before = now_ms();
        let first = live.event_ms(40_000);
        assert!((before..=now_ms()).contains(&first), "{first}");
        // Later timestamps keep the base the first one set, whoever asks.
        assert_eq!(live.event_ms(41_000), first + 1_000);
    }
}
