//! A synthetic lane camera, for tests, the demo and benchmarks: vehicles
//! carrying Moldovan, Ukrainian and EU plates drive through a lane seen from
//! a camera above it, with perspective (plates grow as they approach),
//! motion blur, sensor noise and a changing light level; the frames are
//! encoded to H.264 MP4 by GStreamer (`x264enc`, `mp4mux`).
//!
//! The geometry is a pinhole camera over a flat road: a plate `z` metres
//! ahead has its centre at `y = (LINE_Y + 0.6) · LINE_Z / z − 0.6` (in
//! fractions of the frame height) and its width in pixels is
//! `PLATE_WIDTH_AT_LINE · width · LINE_Z / z`. So a plate crosses the
//! counting line `y = LINE_Y` exactly when it is `LINE_Z` metres ahead.
//! Vehicles normally approach (top to bottom, front plate); some drive the
//! other way in the next lane, partly in view (bottom to top, rear plate),
//! which a camera whose line counts passages `from_side = "top"` reports
//! with the opposite direction.
//!
//! [`Scene::random`] draws a scene, [`render_mp4`] writes a time range of it
//! ([`render_jpegs`]: as JPEG images) and returns the ground truth: each vehicle's plate, when its plate crosses
//! the line and from which side.

mod draw;
mod encode;

use std::path::Path;

use ab_glyph::FontVec;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub use draw::{Canvas, render_plate};
pub use encode::{RenderError, encode_jpegs, encode_mp4};

use crate::scenario::{PlateRegistry, TruePlate};

/// The font plates are drawn with (Debian package fonts-dejavu-core, which setup installs).
pub const FONT_PATH: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf";
/// Where the counting line is, as a fraction of the frame height (a horizontal line).
pub const LINE_Y: f32 = 0.6;
/// Distance of the counting line from the camera, metres.
const LINE_Z: f32 = 12.0;
/// Plate width at the line, as a fraction of the frame width.
const PLATE_WIDTH_AT_LINE: f32 = 0.2;
/// The light at night, as a share of the day's.
const NIGHT_GAIN: f32 = 0.2;

/// One vehicle of a scene.
#[derive(Clone, Debug)]
pub struct Vehicle {
    /// As printed (`"ABC 123"`).
    pub plate_text: String,
    /// `plate_norm` of the text.
    pub plate_norm: String,
    /// Country of registration (ISO 3166 alpha-2).
    pub country: &'static str,
    /// When its plate's centre crosses the line, seconds from the start of the scene.
    pub crosses_at_s: f64,
    /// Towards the camera (top to bottom, front plate) or away from it.
    pub approaching: bool,
    /// Metres per second.
    pub speed_mps: f32,
    /// Sideways offset of the plate from the lane's centre, metres.
    pub offset_m: f32,
    pub colour: [u8; 3],
}

/// A lane scene: its frame size and rate, its length and its vehicles.
#[derive(Clone, Debug)]
pub struct Scene {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub duration_s: f64,
    pub vehicles: Vec<Vehicle>,
    /// Sensor noise, in grey levels (σ).
    pub noise: f32,
    /// Exposure time, seconds: how far a plate moves while the shutter is open.
    pub shutter_s: f32,
    pub seed: u64,
    /// See [`Conditions`].
    pub night: bool,
    pub weather: Weather,
    pub dirty_plates: bool,
    pub passer_by: bool,
}

/// What a test can check a read against: one vehicle that crosses the line.
#[derive(Clone, Debug, PartialEq)]
pub struct VehicleTruth {
    pub plate_text: String,
    pub plate_norm: String,
    pub country: &'static str,
    /// When its plate crosses the line, milliseconds from the start of the clip file.
    pub crosses_at_ms: i64,
    /// Whether it crosses from the top (approaching the camera).
    pub from_top: bool,
}

const COLOURS: &[[u8; 3]] = &[
    [200, 200, 205],
    [30, 30, 35],
    [150, 20, 25],
    [25, 60, 130],
    [235, 235, 235],
    [110, 110, 115],
    [40, 90, 50],
    [170, 140, 90],
];

/// How hard a scene is: which way vehicles drive, how fast, how close
/// together, by day or by night. [`Conditions::default`] is the scene the
/// project's tests have always used: most vehicles approach, one in eight
/// drives away in the next lane, 3.5–5.5 m/s, at least 2.4 s apart, by day.
#[derive(Clone, Debug)]
pub struct Conditions {
    /// Share of vehicles driving away from the camera in the next lane, partly in view.
    pub departing_next_lane: f64,
    /// Share of vehicles driving away in the camera's own lane (rear plate,
    /// shrinking as it goes). Vehicles of one lane do not overtake, so a
    /// scene mixing directions in one lane would drive them through each
    /// other: use 0 or 1.
    pub departing_same_lane: f64,
    /// Speeds, metres per second (1.5: crawling in a queue; 16.7: 60 km/h).
    pub speed_mps: (f32, f32),
    /// Least time between two vehicles at the line, seconds.
    pub min_gap_s: f64,
    /// Night: a fifth of the light, an infrared camera's grey, and the
    /// glare of approaching vehicles' headlights beside their plates.
    pub night: bool,
    /// Rain or snow falling between the camera and the lane.
    pub weather: Weather,
    /// Plates with road dirt on them: a few grey-brown smudges over the text.
    pub dirty_plates: bool,
    /// Someone walking across the lane every few seconds, passing in front
    /// of the plates for a moment.
    pub passer_by: bool,
}

/// What falls between the camera and the lane.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Weather {
    #[default]
    Clear,
    /// Short bright streaks, slanted, new in every frame.
    Rain,
    /// Small bright flakes, new in every frame.
    Snow,
}

impl Default for Conditions {
    fn default() -> Self {
        Conditions {
            departing_next_lane: 0.12,
            departing_same_lane: 0.0,
            speed_mps: (3.5, 5.5),
            min_gap_s: 2.4,
            night: false,
            weather: Weather::Clear,
            dirty_plates: false,
            passer_by: false,
        }
    }
}

impl Scene {
    /// `vehicles` vehicles over `duration_s` seconds, spaced evenly with some
    /// jitter (at least 2.4 s apart at the line), mostly approaching; plates
    /// are Moldovan, Ukrainian or from the EU (Romania, Poland, Germany,
    /// Bulgaria, Lithuania), each different.
    pub fn random(width: u32, height: u32, fps: u32, duration_s: f64, vehicles: usize, seed: u64) -> Scene {
        Scene::random_with(width, height, fps, duration_s, vehicles, seed, &Conditions::default())
    }

    /// [`Scene::random`] under `conditions` (with the default conditions,
    /// the same scene for the same seed).
    pub fn random_with(width: u32, height: u32, fps: u32, duration_s: f64, vehicles: usize, seed: u64, conditions: &Conditions) -> Scene {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut registry = PlateRegistry::default();
        let lead_in = 2.5;
        let gap = conditions.min_gap_s;
        let spacing = ((duration_s - 2.0 * lead_in) / vehicles.max(1) as f64).max(gap);
        let list = (0..vehicles)
            .map(|i| {
                let country: &'static str = match rng.random_range(0..100) {
                    0..45 => "MD",
                    45..85 => "UA",
                    85..91 => "RO",
                    91..95 => "PL",
                    95..98 => "DE",
                    _ => "LT",
                };
                let plate: TruePlate = registry.fresh(&mut rng, country, "otaci-mohyliv-podilskyi");
                let jitter = rng.random_range(-0.15..0.15) * (spacing - gap).min(2.0);
                let next_lane = rng.random_bool(conditions.departing_next_lane);
                let same_lane = !next_lane && conditions.departing_same_lane > 0.0 && rng.random_bool(conditions.departing_same_lane);
                let approaching = !next_lane && !same_lane;
                let (slow, fast) = conditions.speed_mps;
                Vehicle {
                    plate_text: plate.text,
                    plate_norm: plate.norm,
                    country,
                    crosses_at_s: lead_in + spacing * (i as f64 + 0.5) + jitter,
                    approaching,
                    speed_mps: rng.random_range(slow..fast),
                    // Vehicles driving away in the next lane keep to it, so the two never drive through each other.
                    offset_m: if next_lane { rng.random_range(0.55..0.7) } else { rng.random_range(-0.3..0.0) },
                    colour: COLOURS[rng.random_range(0..COLOURS.len())],
                }
            })
            .collect();
        Scene {
            width,
            height,
            fps,
            duration_s,
            vehicles: list,
            noise: 3.0,
            shutter_s: 1.0 / 250.0,
            seed,
            night: conditions.night,
            weather: conditions.weather,
            dirty_plates: conditions.dirty_plates,
            passer_by: conditions.passer_by,
        }
    }

    /// Frames in the scene.
    pub fn frame_count(&self) -> u64 {
        (self.duration_s * self.fps as f64).floor() as u64
    }

    /// Where vehicle `v`'s plate is at time `t` (seconds): x, y, width,
    /// height in pixels, and its speed down the frame in pixels per second;
    /// `None` when it is out of sight.
    fn plate_at(&self, v: &Vehicle, t: f64) -> Option<([f32; 4], f32)> {
        let dt = (t - v.crosses_at_s) as f32;
        let z = if v.approaching { LINE_Z - v.speed_mps * dt } else { LINE_Z + v.speed_mps * dt };
        if !(7.0..=40.0).contains(&z) {
            return None;
        }
        let (w, h) = (self.width as f32, self.height as f32);
        let y_centre = ((LINE_Y + 0.6) * LINE_Z / z - 0.6) * h;
        let plate_w = PLATE_WIDTH_AT_LINE * w * LINE_Z / z;
        let plate_h = plate_w * draw::PLATE_HEIGHT_M / draw::PLATE_WIDTH_M;
        let metre = plate_w / draw::PLATE_WIDTH_M;
        let x_centre = w / 2.0 + v.offset_m * metre;
        if y_centre - plate_h > h + plate_w || y_centre + plate_h < -plate_w {
            return None;
        }
        // dy/dt = (LINE_Y + 0.6) · LINE_Z · h / z² · dz/dt, and dz/dt = ∓speed.
        let dy_dt = (LINE_Y + 0.6) * LINE_Z * h / (z * z) * v.speed_mps;
        Some(([x_centre - plate_w / 2.0, y_centre - plate_h / 2.0, plate_w, plate_h], dy_dt))
    }

    /// The light level at `t`: a slow swell and, every 45 s, a cloud that
    /// takes a third of the light for a few seconds.
    fn gain_at(&self, t: f64) -> f32 {
        let swell = 0.12 * (t * std::f64::consts::TAU / 37.0).sin();
        let phase = (t + self.seed as f64 % 45.0) % 45.0;
        let cloud = if (20.0..26.0).contains(&phase) { 0.33 * ((phase - 20.0) / 6.0 * std::f64::consts::PI).sin() } else { 0.0 };
        (1.0 + swell - cloud) as f32
    }

    /// The vehicles whose plates cross the line between `from_s` and `to_s`,
    /// with times relative to `from_s`.
    pub fn truth(&self, from_s: f64, to_s: f64) -> Vec<VehicleTruth> {
        self.vehicles
            .iter()
            .filter(|v| (from_s..to_s).contains(&v.crosses_at_s))
            .map(|v| VehicleTruth {
                plate_text: v.plate_text.clone(),
                plate_norm: v.plate_norm.clone(),
                country: v.country,
                crosses_at_ms: ((v.crosses_at_s - from_s) * 1000.0).round() as i64,
                from_top: v.approaching,
            })
            .collect()
    }
}

/// Draws a scene's frames, reusing the background and the plate textures.
pub struct SceneRenderer<'a> {
    scene: &'a Scene,
    background: Canvas,
    plates: Vec<Canvas>,
}

impl<'a> SceneRenderer<'a> {
    /// Loads the font and draws the background and every plate once.
    pub fn new(scene: &'a Scene) -> Result<Self, RenderError> {
        let bytes = std::fs::read(FONT_PATH).map_err(|e| RenderError::Font(format!("{FONT_PATH}: {e} (install the Debian package fonts-dejavu-core)")))?;
        let font = FontVec::try_from_vec(bytes).map_err(|e| RenderError::Font(format!("{FONT_PATH}: {e}")))?;
        // Textures at about the largest size a plate is seen at.
        let texture_h = ((scene.width as f32 * PLATE_WIDTH_AT_LINE * 1.8 * draw::PLATE_HEIGHT_M / draw::PLATE_WIDTH_M) as u32).clamp(24, 160);
        let plates = scene
            .vehicles
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let mut plate = render_plate(&font, &v.plate_text, v.country, texture_h);
                if scene.dirty_plates {
                    plate.smudge(5, scene.seed ^ (i as u64 + 1).wrapping_mul(0x9E37_79B9));
                }
                plate
            })
            .collect();
        Ok(SceneRenderer { scene, background: draw::background(scene.width, scene.height), plates })
    }

    /// The frames between `from_s` and `to_s` (packed RGB), drawn as they are taken.
    pub fn frames_between(&self, from_s: f64, to_s: f64) -> impl Iterator<Item = Vec<u8>> + '_ {
        let scene = self.scene;
        let first = (from_s * scene.fps as f64).round() as u64;
        let last = ((to_s * scene.fps as f64).round() as u64).min(scene.frame_count());
        let mut canvas = Canvas::new(scene.width, scene.height, [0, 0, 0]);
        (first..last).map(move |i| {
            self.frame(i, &mut canvas);
            canvas.rgb.clone()
        })
    }

    /// Frame `index` of the scene into `canvas` (which is resized as needed).
    pub fn frame(&self, index: u64, canvas: &mut Canvas) {
        let scene = self.scene;
        let t = index as f64 / scene.fps as f64;
        canvas.width = scene.width;
        canvas.height = scene.height;
        canvas.rgb.clear();
        canvas.rgb.extend_from_slice(&self.background.rgb);
        let mut visible: Vec<(usize, [f32; 4], f32)> = scene
            .vehicles
            .iter()
            .enumerate()
            .filter_map(|(i, v)| scene.plate_at(v, t).map(|(b, speed)| (i, b, speed)))
            .collect();
        // Far (small) first, so nearer vehicles cover them.
        visible.sort_by(|a, b| a.1[2].total_cmp(&b.1[2]));
        for (i, [x, y, w, h], speed) in visible {
            let v = &scene.vehicles[i];
            draw::draw_vehicle(canvas, &self.plates[i], x, y, w, h, v.colour, v.approaching);
            let blur = speed * scene.shutter_s;
            canvas.blur_vertical(x - w * 1.2, y - w * 0.6, x + w * 2.2, y + h + w * 0.3, blur);
        }
        if scene.passer_by {
            // One walker every 7 s, crossing the frame in 3 s at the line's height.
            let phase = (t % 7.0) / 3.0;
            if phase < 1.0 {
                let (w, h) = (scene.width as f32, scene.height as f32);
                let x = -0.1 * w + phase as f32 * 1.2 * w;
                canvas.fill_rect(x, LINE_Y * h - 0.25 * h, x + 0.05 * w, LINE_Y * h + 0.12 * h, [45, 40, 50]);
            }
        }
        let frame_seed = scene.seed ^ index.wrapping_mul(0x1234_5679);
        match scene.weather {
            Weather::Clear => {}
            Weather::Rain => canvas.precipitation(scene.width as usize / 2, (0.04 * scene.height as f32).max(4.0), frame_seed),
            Weather::Snow => canvas.precipitation(scene.width as usize / 3, 0.0, frame_seed),
        }
        let gain = scene.gain_at(t) * if scene.night { NIGHT_GAIN } else { 1.0 };
        canvas.light_and_noise(gain, scene.noise, frame_seed);
        if scene.night {
            // Headlights stay bright whatever the light: their glare spreads
            // beside the plate after the exposure has darkened the rest.
            for v in scene.vehicles.iter().filter(|v| v.approaching) {
                if let Some(([x, y, w, h], _)) = scene.plate_at(v, t) {
                    let body_w = w * 3.3;
                    let cx = x + w / 2.0;
                    for lamp_x in [cx - body_w / 2.0 + w * 0.35, cx + body_w / 2.0 - w * 0.35] {
                        canvas.glow(lamp_x, y + h * 0.15, w * 0.45, 230.0);
                    }
                }
            }
            canvas.grey();
        }
    }
}

/// Renders the scene's frames between `from_s` and `to_s` as JPEG images
/// (for image folders and MJPEG streams) and returns the vehicles that cross
/// the line in them (times relative to `from_s`).
pub fn render_jpegs(scene: &Scene, from_s: f64, to_s: f64) -> Result<(Vec<Vec<u8>>, Vec<VehicleTruth>), RenderError> {
    let renderer = SceneRenderer::new(scene)?;
    let images = encode_jpegs(scene.width, scene.height, 90, renderer.frames_between(from_s, to_s))?;
    Ok((images, scene.truth(from_s, to_s)))
}

/// Renders the scene between `from_s` and `to_s` to an H.264 MP4 at `path`
/// and returns the vehicles that cross the line in it (times relative to `from_s`).
pub fn render_mp4(scene: &Scene, path: &Path, from_s: f64, to_s: f64) -> Result<Vec<VehicleTruth>, RenderError> {
    let renderer = SceneRenderer::new(scene)?;
    encode_mp4(path, scene.width, scene.height, scene.fps, renderer.frames_between(from_s, to_s))?;
    Ok(scene.truth(from_s, to_s))
}
