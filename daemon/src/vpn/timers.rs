//! A connection's timers: deadlines the task waits on beside the plugin and the core; each
//! goes off once.

use std::time::Duration;

use tokio::time::Instant;

use super::machine::Timer;

const ALL: [Timer; 3] = [Timer::ServiceStart, Timer::Connect, Timer::Activation];

/// The armed timers.
#[derive(Debug, Default)]
pub struct Timers {
    at: [Option<Instant>; 3],
}

fn slot(t: Timer) -> usize {
    match t {
        Timer::ServiceStart => 0,
        Timer::Connect => 1,
        Timer::Activation => 2,
    }
}

impl Timers {
    /// Arms `t` to go off `after` from now (re-arming replaces it).
    pub fn arm(&mut self, t: Timer, after: Duration) {
        self.at[slot(t)] = Some(Instant::now() + after);
    }

    /// Disarms every timer.
    pub fn clear(&mut self) {
        self.at = [None; 3];
    }

    /// The next timer to go off (disarmed as it does); pending forever when none is armed.
    pub async fn next(&mut self) -> Timer {
        let first = ALL
            .into_iter()
            .filter_map(|t| self.at[slot(t)].map(|d| (d, t)))
            .min_by_key(|(d, _)| *d);
        match first {
            Some((d, t)) => {
                tokio::time::sleep_until(d).await;
                self.at[slot(t)] = None;
                t
            }
            None => std::future::pending().await,
        }
    }
}
