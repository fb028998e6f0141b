//! Traffic: when vehicles arrive, which vehicle it is (a new one or one
//! coming back), how long they stay in a control zone, how long the bridge
//! takes, and local time at the border.

use borderflow_types::CrossingInfo;
use borderflow_types::crossings::PostInfo;
use chrono::{Datelike, NaiveDate};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::{Builder, NOISE, plates};

pub const MINUTE_MS: i64 = 60_000;
pub const HOUR_MS: i64 = 60 * MINUTE_MS;
pub const DAY_MS: i64 = 24 * HOUR_MS;

/// Relative traffic per local hour (00–23): quiet at night, a morning peak
/// around 09–10 and a longer afternoon peak around 16–17.
pub const HOURLY_SHAPE: [f64; 24] = [
    0.30, 0.22, 0.18, 0.17, 0.22, 0.40, // 00–05
    0.75, 1.20, 1.60, 1.75, 1.65, 1.45, // 06–11
    1.35, 1.35, 1.45, 1.65, 1.75, 1.60, // 12–17
    1.30, 1.00, 0.80, 0.62, 0.48, 0.38, // 18–23
];

fn last_sunday(year: i32, month: u32) -> NaiveDate {
    let first_of_next = if month == 12 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)
    }
    .expect("valid calendar date");
    let last = first_of_next.pred_opt().expect("valid calendar date");
    last - chrono::Days::new(u64::from(last.weekday().num_days_from_sunday()))
}

/// Offset of border time (Europe/Chisinau, Europe/Kyiv: EET, EEST in summer)
/// from UTC at instant `utc_ms`, in hours. Summer time runs from 01:00 UTC on
/// the last Sunday of March to 01:00 UTC on the last Sunday of October (EU rule).
pub fn utc_offset_hours(utc_ms: i64) -> i64 {
    thread_local! {
        /// The last year asked about and its summer time, in UTC ms: the
        /// generator asks thousands of times about the same year.
        static SUMMER: std::cell::Cell<(i32, i64, i64)> = const { std::cell::Cell::new((i32::MIN, 0, 0)) };
    }
    let Some(at) = chrono::DateTime::from_timestamp_millis(utc_ms) else {
        return 2;
    };
    let year = at.year();
    let (cached_year, mut start, mut end) = SUMMER.get();
    if cached_year != year {
        let switch = |month| {
            last_sunday(year, month)
                .and_hms_opt(1, 0, 0)
                .expect("valid time")
                .and_utc()
                .timestamp_millis()
        };
        (start, end) = (switch(3), switch(10));
        SUMMER.set((year, start, end));
    }
    if (start..end).contains(&utc_ms) { 3 } else { 2 }
}

/// UTC milliseconds of local midnight at the border on `date`.
pub fn local_day_start_ms(date: NaiveDate) -> i64 {
    let naive_ms = date
        .and_hms_opt(0, 0, 0)
        .expect("midnight exists")
        .and_utc()
        .timestamp_millis();
    naive_ms - utc_offset_hours(naive_ms - 2 * HOUR_MS) * HOUR_MS
}

/// Local hour (0–23) at the border at instant `utc_ms`.
pub fn local_hour(utc_ms: i64) -> u32 {
    let local = utc_ms + utc_offset_hours(utc_ms) * HOUR_MS;
    (local.div_euclid(HOUR_MS).rem_euclid(24)) as u32
}

/// A standard normal sample (Box–Muller).
pub fn standard_normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Poisson arrival times over one local day: for each hour, exponential
/// gaps at that hour's rate (`per_day` vehicles spread by [`HOURLY_SHAPE`]).
pub fn arrival_times(rng: &mut ChaCha8Rng, day_start_ms: i64, per_day: f64, out: &mut Vec<i64>) {
    if per_day <= 0.0 || !per_day.is_finite() {
        return;
    }
    let total: f64 = HOURLY_SHAPE.iter().sum();
    for (hour, weight) in HOURLY_SHAPE.iter().enumerate() {
        let per_ms = per_day * weight / total / HOUR_MS as f64;
        let hour_start = day_start_ms + hour as i64 * HOUR_MS;
        let mut t = 0.0f64;
        loop {
            let u: f64 = 1.0 - rng.random::<f64>();
            t += -u.ln() / per_ms;
            if t >= HOUR_MS as f64 {
                break;
            }
            out.push(hour_start + t as i64);
        }
    }
}

/// Time in a control zone: log-normal with a median of about 20 minutes
/// (16 at night, 25 at the peaks, as queues build), clipped to 3–90 minutes.
pub fn control_dwell_ms(rng: &mut ChaCha8Rng, arrival_ms: i64) -> i64 {
    let peak = HOURLY_SHAPE.iter().cloned().fold(0.0, f64::max);
    let load = HOURLY_SHAPE[local_hour(arrival_ms) as usize] / peak;
    let median_min = 20.0 * (0.8 + 0.45 * load);
    let minutes = (median_min.ln() + 0.5 * standard_normal(rng))
        .exp()
        .clamp(3.0, 90.0);
    (minutes * MINUTE_MS as f64) as i64
}

/// Departure from one post to arrival at the neighbour's: the crossing's
/// typical transit, 0.8–1.3 times, and now and then a queue on the bridge.
pub fn bridge_transit_ms(rng: &mut ChaCha8Rng, crossing: &CrossingInfo) -> i64 {
    let typical = crossing.transit_minutes.max(1) as f64 * MINUTE_MS as f64;
    let mut transit = typical * rng.random_range(0.8..1.3);
    if rng.random_bool(0.05) {
        transit += typical * rng.random_range(0.0..1.0);
    }
    transit as i64
}

/// Shortest plausible road time between two posts: great-circle distance at
/// 50 km/h (roads wind, and there are towns in between).
pub fn road_time_ms(a: &PostInfo, b: &PostInfo) -> i64 {
    if a.id == b.id {
        return 0;
    }
    (borderflow_types::crossings::distance_km(a, b) / 50.0 * HOUR_MS as f64) as i64
}

/// How long a vehicle stays in the other country before it may come back.
pub fn stay_abroad_ms(rng: &mut ChaCha8Rng) -> i64 {
    let u: f64 = rng.random();
    let hours = if u < 0.35 {
        rng.random_range(1.0..8.0)
    } else if u < 0.80 {
        rng.random_range(8.0..72.0)
    } else {
        rng.random_range(72.0..504.0)
    };
    (hours * HOUR_MS as f64) as i64
}

/// The four camera times and the lanes of one passage.
#[derive(Clone, Copy, Debug)]
pub struct Schedule {
    pub exit_arrival_ms: i64,
    pub exit_departure_ms: i64,
    pub entry_arrival_ms: i64,
    pub entry_departure_ms: i64,
    pub exit_lane: u16,
    pub entry_lane: u16,
}

/// Dwell overrides for planted passages; `None` draws the usual dwell.
#[derive(Clone, Copy, Debug, Default)]
pub struct DwellOverride {
    pub exit_ms: Option<i64>,
    pub entry_ms: Option<i64>,
}

/// Schedules a passage from `from` to `to` that arrives at `from` at `start_ms`.
pub fn schedule(
    rng: &mut ChaCha8Rng,
    crossing: &CrossingInfo,
    from: &PostInfo,
    to: &PostInfo,
    start_ms: i64,
    dwell: DwellOverride,
) -> Schedule {
    let exit_lane = rng.random_range(1..=from.lanes.max(1));
    let entry_lane = rng.random_range(1..=to.lanes.max(1));
    let exit_dwell = match dwell.exit_ms {
        Some(ms) => ms,
        None => control_dwell_ms(rng, start_ms),
    };
    let exit_departure_ms = start_ms + exit_dwell.max(1);
    let entry_arrival_ms = exit_departure_ms + bridge_transit_ms(rng, crossing).max(1);
    let entry_dwell = match dwell.entry_ms {
        Some(ms) => ms,
        None => control_dwell_ms(rng, entry_arrival_ms),
    };
    Schedule {
        exit_arrival_ms: start_ms,
        exit_departure_ms,
        entry_arrival_ms,
        entry_departure_ms: entry_arrival_ms + entry_dwell.max(1),
        exit_lane,
        entry_lane,
    }
}

/// Share of ordinary passages that try to reuse a vehicle already abroad.
const RETURN_SHARE: f64 = 0.45;
/// Share of returning vehicles allowed to come back through another crossing.
const OTHER_CROSSING_SHARE: f64 = 0.05;
/// Vehicles abroad at the start, per crossing and side, as a share of `vehicles_per_day`.
const ABROAD_AT_START: f64 = 0.6;

/// A vehicle waiting on one side of the border to cross back.
struct Abroad {
    /// `None`: abroad since before the scenario; created when first picked.
    vehicle: Option<usize>,
    ready_ms: i64,
    post: &'static PostInfo,
}

impl Builder<'_> {
    /// Ordinary traffic: Poisson arrivals per crossing, direction and hour,
    /// processed in time order so that vehicles abroad can come back.
    pub(super) fn ordinary_traffic(&mut self) {
        let crossings = self.config.crossings.clone();
        let scale = self.scale();
        // (exit arrival, crossing index, MD→UA?)
        let mut arrivals: Vec<(i64, usize, bool)> = Vec::new();
        let mut times = Vec::new();
        for day in 0..self.config.days {
            let day_start = self.day_start_ms(day);
            for (ci, crossing) in crossings.iter().enumerate() {
                for md_to_ua in [true, false] {
                    times.clear();
                    let per_day = f64::from(crossing.vehicles_per_day) * scale;
                    arrival_times(&mut self.rng, day_start, per_day, &mut times);
                    arrivals.extend(times.iter().map(|&t| (t, ci, md_to_ua)));
                }
            }
        }
        if arrivals.is_empty() {
            return;
        }
        arrivals.sort_unstable();

        // Vehicles on each side of the border (0: in MD, 1: in UA) that may cross back.
        let mut abroad: [Vec<Abroad>; 2] = [Vec::new(), Vec::new()];
        let first_day = self.day_start_ms(0);
        for &crossing in &crossings {
            let n =
                (f64::from(crossing.vehicles_per_day) * scale * ABROAD_AT_START).round() as usize;
            for (side, post) in [(0, &crossing.md), (1, &crossing.ua)] {
                for _ in 0..n {
                    let ready_ms = first_day + self.rng.random_range(-2 * DAY_MS..2 * DAY_MS);
                    abroad[side].push(Abroad {
                        vehicle: None,
                        ready_ms,
                        post,
                    });
                }
            }
        }

        for (at_ms, ci, md_to_ua) in arrivals {
            let crossing = crossings[ci];
            let (from, to, side) = if md_to_ua {
                (&crossing.md, &crossing.ua, 0)
            } else {
                (&crossing.ua, &crossing.md, 1)
            };
            let returning = self.pick_returning(&mut abroad[side], crossing, from, at_ms);
            let vehicle = match returning {
                Some(v) => v,
                None => {
                    let country = plates::registration_country(&mut self.rng);
                    self.new_vehicle(country, crossing.id)
                }
            };
            let s = schedule(
                &mut self.rng,
                crossing,
                from,
                to,
                at_ms,
                DwellOverride::default(),
            );
            self.add_passage(vehicle, crossing, md_to_ua, s, NOISE, None);
            let ready_ms = s.entry_departure_ms + stay_abroad_ms(&mut self.rng);
            abroad[1 - side].push(Abroad {
                vehicle: Some(vehicle),
                ready_ms,
                post: to,
            });
        }
    }

    /// A vehicle on the `from` side that could be back at `from` by `at_ms`,
    /// taken out of `pool`; `None` if this passage is a new vehicle.
    fn pick_returning(
        &mut self,
        pool: &mut Vec<Abroad>,
        crossing: &CrossingInfo,
        from: &'static PostInfo,
        at_ms: i64,
    ) -> Option<usize> {
        if pool.is_empty() || !self.rng.random_bool(RETURN_SHARE) {
            return None;
        }
        for _ in 0..12 {
            let k = self.rng.random_range(0..pool.len());
            let candidate = &pool[k];
            if candidate.ready_ms + road_time_ms(candidate.post, from) > at_ms {
                continue;
            }
            if candidate.post.crossing != crossing.id && !self.rng.random_bool(OTHER_CROSSING_SHARE)
            {
                continue;
            }
            let entry = pool.swap_remove(k);
            return Some(match entry.vehicle {
                Some(v) => v,
                None => {
                    let country = plates::registration_country(&mut self.rng);
                    self.new_vehicle(country, entry.post.crossing)
                }
            });
        }
        None
    }
}
