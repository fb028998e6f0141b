//! The timely runtime: how many workers, in how many processes.
//!
//! One process runs N workers (`--workers`, default: the machine's cores).
//! Work that belongs to a camera stays on the worker that owns the camera
//! ([`Runtime::owner_of`]); reads are exchanged between workers by key when a
//! dataflow joins or groups them.

use std::hash::{Hash, Hasher};

/// How the engine runs timely workers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Runtime {
    workers: usize,
}

impl Default for Runtime {
    /// As many workers as the machine has cores.
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        Runtime { workers: cores }
    }
}

impl Runtime {
    /// A runtime with `workers` workers in this process (at least one).
    pub fn with_workers(workers: usize) -> Self {
        Runtime { workers: workers.max(1) }
    }

    pub fn workers(&self) -> usize {
        self.workers
    }

    /// The timely configuration for this runtime.
    pub fn timely_config(&self) -> timely::Config {
        timely::Config::process(self.workers)
    }

    /// The worker (of `peers`) that owns a camera: every frame and read of the
    /// camera is handled there. Stable across runs and processes.
    pub fn owner_of(camera_id: &str, peers: usize) -> usize {
        // FNV-1a: std's default hasher is randomly seeded per process, and
        // ownership must agree across processes and restarts.
        struct Fnv(u64);
        impl Hasher for Fnv {
            fn finish(&self) -> u64 {
                self.0
            }
            fn write(&mut self, bytes: &[u8]) {
                for b in bytes {
                    self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
                }
            }
        }
        let mut hasher = Fnv(0xcbf2_9ce4_8422_2325);
        camera_id.hash(&mut hasher);
        (hasher.finish() % peers.max(1) as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cameras_spread_over_workers_and_stay_put() {
        let owners: Vec<usize> =
            (1..=40).map(|i| Runtime::owner_of(&format!("otaci-exit-arrival-{i}"), 4)).collect();
        for w in 0..4 {
            assert!(owners.contains(&w), "worker {w} owns no camera: {owners:?}");
        }
        assert_eq!(owners[7], Runtime::owner_of("otaci-exit-arrival-8", 4));
    }
}
