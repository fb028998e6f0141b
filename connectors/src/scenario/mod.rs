//! Simulated traffic at the Moldova–Ukraine road crossings: plate reads as the
//! cameras of both posts of every crossing would emit them, with the ground
//! truth an analyst scores the standing views against.
//!
//! Entry point: [`generate`] with a [`ScenarioConfig`]; it returns a
//! [`Scenario`] whose `reads` feed the engine (via
//! [`borderflow_types::reads_to_batch`]) and whose `passages`, `anomalies`
//! and `watchlist` are the truth, also as Arrow batches for Parquet. The same
//! configuration (seed included) always gives byte-identical output: all
//! randomness comes from one `ChaCha8Rng` seeded with [`ScenarioConfig::seed`],
//! never from the clock.
//!
//! # What is simulated
//!
//! **Time.** Days are local days at the border (Europe/Chisinau and
//! Europe/Kyiv share EET, UTC+2, and EEST, UTC+3, in summer under the EU
//! rule); day `d` runs from local midnight of `start + d`. Every time in the
//! output is UTC milliseconds, so with the default start (2026-11-27, winter)
//! the first day is 2026-11-26 22:00 UTC to 2026-11-27 22:00 UTC.
//! [`local_hour`] converts back.
//!
//! **Passages.** A crossing from Moldova to Ukraine is four camera reads, in
//! this order (Ukraine to Moldova is the mirror image):
//!
//! | stage | post | `direction` | `point` | time |
//! |---|---|---|---|---|
//! | `exit_arrival` | MD post | exit | arrival | the vehicle reaches the MD control zone |
//! | `exit_departure` | MD post | exit | departure | + dwell (control, queue) |
//! | `entry_arrival` | UA post | entry | arrival | + bridge transit |
//! | `entry_departure` | UA post | entry | departure | + dwell at the UA post |
//!
//! - Dwell in a control zone is log-normal, median about 20 minutes (16 at
//!   night, 25 at the peaks), clipped to 3–90 minutes, drawn separately for
//!   each post.
//! - Bridge transit is the crossing's `transit_minutes` × 0.8–1.3, and 5 % of
//!   vehicles queue on the bridge for up to one more `transit_minutes`.
//! - A vehicle keeps one lane per post (uniform among the post's `lanes`,
//!   numbered from 1); each read's `camera_id` is
//!   [`borderflow_types::crossings::camera_id`]`(post, direction, point, lane)`
//!   and its `country` is the post's country.
//!
//! **Volume.** In each direction of each crossing, `vehicles_per_day ×
//! traffic_scale` vehicles a day on average, as a Poisson process whose rate
//! follows [`HOURLY_SHAPE`]: quiet from midnight to 05:00, a morning peak at
//! 09–10 and a longer afternoon peak at 15–17 (local time). At scale 1 the
//! four crossings make about 6,100 passages and 24,000 reads a day. A passage
//! that starts late in the evening finishes after midnight, in the next day.
//!
//! **Vehicles and plates.** 45 % of new vehicles are registered in Moldova
//! (84 % standard 2015 `ABC 123`, 12 % the older district format `OC AB 123`,
//! a few diplomatic `C 123 456` and temporary `H 1234`), 40 % in Ukraine
//! (`BH 1234 AB` with real region prefixes, weighted towards the oblast next
//! to the crossing: Chernivtsi `CE`/`IE` at Mamalyha, Vinnytsia `AB`/`KB` at
//! Mohyliv-Podilskyi, Odesa `BH`/`HH` in the south; a few transit and
//! diplomatic), 15 % in the EU (RO 7 %, PL 3 %, BG 2 %, DE 2 %, LT 1 %).
//! Every plate fits a format of its country in
//! [`borderflow_types::plate_grammar`], and no two vehicles share a plate
//! unless a plate is planted as cloned. Lithuanian plates (`ABC 123`) have
//! the same shape as Moldovan ones, so their reads get `plate_country = MD`:
//! the grammar cannot tell them apart. About a third of the crossings are
//! return trips: a vehicle that went abroad comes back after a stay of hours
//! to weeks (35 % within 8 hours), usually through the same crossing, about
//! one return in ten through another (never faster than 50 km/h
//! straight-line from where it was last seen). Vehicles already abroad when
//! the scenario starts come back too, so the first day has return trips.
//!
//! **Reads.** `plate_text` is printed as on the plate (`ABC 123`; 15 % of
//! reads without spaces, as some recognisers print them), `plate_norm` is
//! [`borderflow_types::plate_norm`] of it, `plate_country` the grammar's
//! country preferring the camera's country (null if no format fits, which a
//! misread can cause). Clean reads have confidence 0.80–0.99 (mostly high)
//! and 3–20 frames; misreads 0.55–0.85 and 3–10 frames. The plate box lies
//! in a 1280×720 frame; `crop_uri` is null. `read_id` is a ULID whose time
//! part is `captured_at`. `reads` are sorted by `captured_at`, then `read_id`.
//!
//! # Noise ([`ReadNoise`])
//!
//! Each read of an ordinary passage is independently *missed* (no read
//! emitted) with `miss_rate` (default 1 %); a read that is emitted has one
//! *wrong character* with `wrong_char_rate` (default 2 %): usually a visually
//! confusable one (O↔0, D→0, I↔1, B↔8, S↔5, Z↔2, G↔6), otherwise any other
//! letter or digit. Ground truth records both per stage
//! ([`Passage::outcomes`]). Planted passages are exempt from noise.
//!
//! # Anomalies
//!
//! Each day, a handful of anomalies are planted (at least one of each kind),
//! on extra vehicles added to the ordinary traffic, and recorded in
//! [`Scenario::anomalies`] with the true plate, the posts, the evidence
//! `read_ids` (all present in `reads`) and a description:
//!
//! - `cloned_plate` (1–2 a day): two vehicles carry one plate. One is read
//!   at one crossing and, minutes later, the other at a different crossing,
//!   so far away that the plate would have travelled at 300–900 km/h. The
//!   evidence is those two reads. (With a single crossing configured, the
//!   second vehicle is read at the neighbour's post seconds after the first
//!   left the other one.)
//! - `watchlisted` (2–3 a day): a vehicle whose plate is on the
//!   [`Scenario::watchlist`] (valid at the time) crosses; evidence: its four
//!   reads. The watchlist also holds decoy plates that never appear and one
//!   entry that expired before its plate crosses (not an anomaly: a view must
//!   honour `valid_from`/`valid_to`).
//! - `entry_without_exit` (1–2 a day): a vehicle is read arriving and leaving
//!   the entry post, but no camera of the neighbour's post ever saw it leave
//!   (`not_seen` in the passage). Evidence: the two entry reads.
//! - `long_dwell` (1–2 a day): 4–8 hours in one post's control zone (ordinary
//!   dwells never exceed 90 minutes). Evidence: that post's arrival and
//!   departure reads.
//! - `misread` (1–2 a day): the read at the entry post's arrival differs by
//!   two or three characters from the plate read at the exit post's departure
//!   (pre-arrival data disagrees with the arrival read); the entry departure
//!   read is correct again. Evidence: the departure and the arrival read.
//! - `frequent_crosser` (1 a day): a local vehicle makes 7–9 crossings (back
//!   and forth through one crossing) within a day. Evidence: all its reads.
//!
//! Ordinary traffic and noise can produce some of these by chance. Those
//! are recorded too, with `planted = false`: `entry_without_exit` when noise
//! missed both exit reads of a passage but not its entry reads, `misread`
//! when noise corrupted the exit departure and the entry arrival reads in
//! different places, `frequent_crosser` when return trips add up to more than
//! six crossings of one plate in 24 hours. Ordinary traffic never produces a
//! `cloned_plate`, `watchlisted` or `long_dwell`.
//!
//! # Ground truth as Arrow
//!
//! [`Scenario::passages_batch`] has one row per passage: `passage_id`,
//! `vehicle_id`, the true `plate` (normalised) and its `plate_country` of
//! registration, `crossing`, `from_post`/`to_post`, `from_country`/
//! `to_country`, `exit_lane`/`entry_lane`, the scheduled `exit_arrival_at`,
//! `exit_departure_at`, `entry_arrival_at`, `entry_departure_at`, the read id
//! emitted at each of those stages (null if none), `read_ids` (all of them),
//! the stages whose read was `missed`, `misread` or `not_seen`, and
//! `planted` (the anomaly kind, if the passage was planted).
//! [`Scenario::anomalies_batch`] has `anomaly_id`, `kind`, `planted`,
//! `plate`, `post_ids`, `read_ids` (the evidence), `passage_ids`,
//! `first_seen_at`, `last_seen_at` and `description`.
//! [`Scenario::watchlist_batch`] has `plate`, `reason`, `severity` (1 low,
//! 2 medium, 3 high), `severity_label`, `valid_from` and `valid_to` (an entry
//! applies to reads captured in `[valid_from, valid_to)`). Times are
//! Timestamp(ms, UTC).

mod anomalies;
mod capture;
mod chance_anomalies;
mod ground_truth;
pub mod scoring;
mod plates;
mod time_order;
mod traffic;

use arrow::array::RecordBatch;
use borderflow_types::{CROSSINGS, CrossingInfo, PlateRead, ScenarioSourceConfig, reads_to_batch};
use chrono::NaiveDate;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub use capture::{FRAME_HEIGHT, FRAME_WIDTH};
pub use ground_truth::{
    Anomaly, AnomalyKind, Passage, ReadOutcome, Stage, WatchlistEntry, anomaly_schema,
    passage_schema, watchlist_schema,
};
pub use plates::{PlateRegistry, REGISTRATION_MIX, TruePlate};
pub use traffic::{HOURLY_SHAPE, local_day_start_ms, local_hour, utc_offset_hours};

use capture::new_ulid;
use time_order::sort_by_time;
use traffic::Schedule;

/// Per-read noise of ordinary passages.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ReadNoise {
    /// Probability that a camera misses a vehicle (no read emitted). Default 0.01.
    pub miss_rate: f64,
    /// Probability that an emitted read has one wrong character. Default 0.02.
    pub wrong_char_rate: f64,
}

impl Default for ReadNoise {
    fn default() -> Self {
        ReadNoise {
            miss_rate: 0.01,
            wrong_char_rate: 0.02,
        }
    }
}

/// What to simulate.
#[derive(Clone, Debug, PartialEq)]
pub struct ScenarioConfig {
    /// Seeds every random choice; the same config gives identical output. Default 1.
    pub seed: u64,
    /// First simulated local day at the border. Default 2026-11-27.
    pub start: NaiveDate,
    /// Number of days. Default 1.
    pub days: u32,
    /// Multiplies every crossing's `vehicles_per_day`. Default 1.0.
    pub traffic_scale: f64,
    /// The crossings to simulate. Default: all of [`CROSSINGS`].
    pub crossings: Vec<&'static CrossingInfo>,
    pub noise: ReadNoise,
}

impl Default for ScenarioConfig {
    fn default() -> Self {
        ScenarioConfig {
            seed: 1,
            start: NaiveDate::from_ymd_opt(2026, 11, 27).expect("valid date"),
            days: 1,
            traffic_scale: 1.0,
            crossings: CROSSINGS.iter().collect(),
            noise: ReadNoise::default(),
        }
    }
}

impl From<&ScenarioSourceConfig> for ScenarioConfig {
    /// A post configuration's `[scenario]` section: all crossings, default noise.
    fn from(source: &ScenarioSourceConfig) -> Self {
        ScenarioConfig {
            seed: source.seed,
            start: source.start,
            days: source.days,
            traffic_scale: source.traffic_scale,
            ..ScenarioConfig::default()
        }
    }
}

/// A generated scenario: the reads the cameras emit, and the truth behind them.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    /// Every read of every camera, sorted by `captured_at_ms`, then `read_id`.
    pub reads: Vec<PlateRead>,
    /// Every vehicle crossing, sorted by `exit_arrival_ms`, then `passage_id`.
    pub passages: Vec<Passage>,
    /// Planted and chance anomalies, sorted by `first_seen_ms`, then `anomaly_id`.
    pub anomalies: Vec<Anomaly>,
    /// The watchlist, sorted by plate.
    pub watchlist: Vec<WatchlistEntry>,
}

impl Scenario {
    /// The reads of one post's cameras, in time order.
    pub fn reads_for_post<'a>(
        &'a self,
        post_id: &'a str,
    ) -> impl Iterator<Item = &'a PlateRead> + 'a {
        self.reads.iter().filter(move |r| r.post_id == post_id)
    }

    /// All reads as one batch with the plate read schema.
    pub fn reads_batch(&self) -> RecordBatch {
        reads_to_batch(&self.reads)
    }

    /// Ground truth passages ([`passage_schema`]).
    pub fn passages_batch(&self) -> RecordBatch {
        ground_truth::passages_batch(&self.passages)
    }

    /// Ground truth anomalies ([`anomaly_schema`]).
    pub fn anomalies_batch(&self) -> RecordBatch {
        ground_truth::anomalies_batch(&self.anomalies)
    }

    /// The watchlist ([`watchlist_schema`]).
    pub fn watchlist_batch(&self) -> RecordBatch {
        ground_truth::watchlist_batch(&self.watchlist)
    }
}

/// Generates the scenario `config` describes. Deterministic in `config`.
pub fn generate(config: &ScenarioConfig) -> Scenario {
    let mut builder = Builder::new(config);
    builder.ordinary_traffic();
    builder.plant_anomalies();
    builder.detect_chance_anomalies();
    builder.finish()
}

/// One physical vehicle.
struct Vehicle {
    id: String,
    plate: TruePlate,
}

/// How a stage's read is produced.
#[derive(Clone, Copy, Debug, PartialEq)]
enum StagePlan {
    /// Random noise per [`ReadNoise`].
    Noise,
    /// Read correctly.
    Clean,
    /// The vehicle does not pass this camera.
    NotSeen,
    /// Read with this many wrong characters.
    Wrong(usize),
}

const NOISE: [StagePlan; 4] = [StagePlan::Noise; 4];
const CLEAN: [StagePlan; 4] = [StagePlan::Clean; 4];

struct Builder<'c> {
    config: &'c ScenarioConfig,
    miss_rate: f64,
    wrong_char_rate: f64,
    rng: ChaCha8Rng,
    plates: PlateRegistry,
    vehicles: Vec<Vehicle>,
    passages: Vec<Passage>,
    /// Index into `reads` of each passage's read per stage.
    passage_reads: Vec<[Option<usize>; 4]>,
    reads: Vec<PlateRead>,
    anomalies: Vec<Anomaly>,
    watchlist: Vec<WatchlistEntry>,
}

/// Whether 32 uniform random `bits` fall below probability `p`.
fn chance(bits: u32, p: f64) -> bool {
    f64::from(bits) < p * 4_294_967_296.0
}

fn rate(r: f64) -> f64 {
    if r.is_finite() {
        r.clamp(0.0, 1.0)
    } else {
        0.0
    }
}

impl<'c> Builder<'c> {
    fn new(config: &'c ScenarioConfig) -> Self {
        Builder {
            config,
            miss_rate: rate(config.noise.miss_rate),
            wrong_char_rate: rate(config.noise.wrong_char_rate),
            rng: ChaCha8Rng::seed_from_u64(config.seed),
            plates: PlateRegistry::default(),
            vehicles: Vec::new(),
            passages: Vec::new(),
            passage_reads: Vec::new(),
            reads: Vec::new(),
            anomalies: Vec::new(),
            watchlist: Vec::new(),
        }
    }

    fn day_start_ms(&self, day: u32) -> i64 {
        let date = self.config.start + chrono::Days::new(u64::from(day));
        local_day_start_ms(date)
    }

    fn scale(&self) -> f64 {
        let s = self.config.traffic_scale;
        if s.is_finite() && s > 0.0 { s } else { 0.0 }
    }

    fn new_vehicle(&mut self, country: &'static str, crossing: &str) -> usize {
        let plate = self.plates.fresh(&mut self.rng, country, crossing);
        self.add_vehicle(plate)
    }

    fn add_vehicle(&mut self, plate: TruePlate) -> usize {
        let id = format!("veh-{:06}", self.vehicles.len() + 1);
        self.vehicles.push(Vehicle { id, plate });
        self.vehicles.len() - 1
    }

    /// Records a passage and emits its reads; returns the passage index.
    fn add_passage(
        &mut self,
        vehicle: usize,
        crossing: &'static CrossingInfo,
        md_to_ua: bool,
        s: Schedule,
        plan: [StagePlan; 4],
        planted: Option<AnomalyKind>,
    ) -> usize {
        let (from, to) = if md_to_ua {
            (&crossing.md, &crossing.ua)
        } else {
            (&crossing.ua, &crossing.md)
        };
        let times = [
            s.exit_arrival_ms,
            s.exit_departure_ms,
            s.entry_arrival_ms,
            s.entry_departure_ms,
        ];
        let passage_id = new_ulid(&mut self.rng, s.exit_arrival_ms);
        let mut read_ids: [Option<String>; 4] = Default::default();
        let mut read_index = [None; 4];
        let mut outcomes = [ReadOutcome::Read; 4];
        for stage in Stage::ALL {
            let i = stage.index();
            let wrong = match plan[i] {
                StagePlan::NotSeen => {
                    outcomes[i] = ReadOutcome::NotSeen;
                    continue;
                }
                StagePlan::Noise => {
                    // One random word decides both: low half missed, high half misread.
                    let word = self.rng.next_u64();
                    if chance(word as u32, self.miss_rate) {
                        outcomes[i] = ReadOutcome::Missed;
                        continue;
                    }
                    usize::from(chance((word >> 32) as u32, self.wrong_char_rate))
                }
                StagePlan::Clean => 0,
                StagePlan::Wrong(n) => n,
            };
            let (post, lane) = match stage.direction() {
                borderflow_types::Direction::Exit => (from, s.exit_lane),
                borderflow_types::Direction::Entry => (to, s.entry_lane),
            };
            let read = capture::plate_read(
                &mut self.rng,
                post,
                stage,
                lane,
                times[i],
                &self.vehicles[vehicle].plate,
                wrong,
            );
            if read.plate_norm != self.vehicles[vehicle].plate.norm {
                outcomes[i] = ReadOutcome::Misread;
            }
            read_ids[i] = Some(read.read_id.clone());
            read_index[i] = Some(self.reads.len());
            self.reads.push(read);
        }
        let v = &self.vehicles[vehicle];
        self.passages.push(Passage {
            passage_id,
            vehicle_id: v.id.clone(),
            plate: v.plate.norm.clone(),
            plate_country: v.plate.country.to_string(),
            crossing: crossing.id.to_string(),
            from_post: from.id.to_string(),
            to_post: to.id.to_string(),
            from_country: from.country.to_string(),
            to_country: to.country.to_string(),
            exit_lane: s.exit_lane,
            entry_lane: s.entry_lane,
            exit_arrival_ms: s.exit_arrival_ms,
            exit_departure_ms: s.exit_departure_ms,
            entry_arrival_ms: s.entry_arrival_ms,
            entry_departure_ms: s.entry_departure_ms,
            read_ids,
            outcomes,
            planted,
        });
        self.passage_reads.push(read_index);
        self.passages.len() - 1
    }

    fn finish(mut self) -> Scenario {
        sort_by_time(
            &mut self.reads,
            |r| r.captured_at_ms,
            |a, b| a.read_id.cmp(&b.read_id),
        );
        sort_by_time(
            &mut self.passages,
            |p| p.exit_arrival_ms,
            |a, b| a.passage_id.cmp(&b.passage_id),
        );
        self.anomalies.sort_by(|a, b| {
            a.first_seen_ms
                .cmp(&b.first_seen_ms)
                .then_with(|| a.anomaly_id.cmp(&b.anomaly_id))
        });
        self.watchlist.sort_by(|a, b| {
            a.plate
                .cmp(&b.plate)
                .then_with(|| a.valid_from_ms.cmp(&b.valid_from_ms))
        });
        Scenario {
            reads: self.reads,
            passages: self.passages,
            anomalies: self.anomalies,
            watchlist: self.watchlist,
        }
    }
}
