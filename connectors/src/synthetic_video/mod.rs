//! A synthetic lane camera, for tests, the demo and benchmarks: vehicles
//! carrying Moldovan, Ukrainian and EU plates drive through a lane seen from
//! a camera above it, with perspective (plates grow as they approach),
//! motion blur, sensor noise and a changing light level; the frames are
//! encoded to H.264 MP4 by GStreamer (`x264enc`, `mp4mux`).
//!
//! The geometry is a pinhole camera over a flat road ([`CameraMount`]):
//! a plate `z` metres ahead, `d` metres below the camera, has its centre
//! at `y = horizon + focal · d / z` pixels and is `focal · 0.52 / z` pixels
//! wide; the camera is aimed and zoomed so that a car's plate crosses the
//! counting line `y = LINE_Y` (a fraction of the frame height) when it is
//! `line_distance_m` ahead, a fifth of the frame wide. Seen from above a
//! plate looks shorter, seen from the side narrower and slanted. A truck's
//! plate hangs lower or higher than a car's, so it crosses the line nearer
//! or further away and larger or smaller.
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

pub use draw::{Canvas, render_plate, render_square_plate};
pub use encode::{RenderError, encode_jpegs, encode_mp4};

use borderflow_types::plate_grammar::{STACKED, matches};

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
/// Height of a car's plate above the road, metres.
const CAR_PLATE_M: f32 = 0.5;
/// Heights of a truck's plate: low on the bumper, or high (a cab-over
/// truck's, a tractor's, a bus's), metres.
const TRUCK_PLATE_M: [f32; 2] = [0.3, 1.1];

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
    /// A truck (a larger body; its plate hangs low or high) or a car.
    pub truck: bool,
    /// Height of its plate above the road, metres.
    pub plate_height_m: f32,
    /// Its plate's lines, top first, when it carries a square plate (a
    /// trailer's, a motorcycle's); empty: one line.
    pub square_lines: Vec<String>,
}

impl Vehicle {
    /// Its plate's width and height, metres.
    fn plate_size_m(&self) -> (f32, f32) {
        if self.square_lines.is_empty() {
            (draw::PLATE_WIDTH_M, draw::PLATE_HEIGHT_M)
        } else {
            (draw::SQUARE_PLATE_WIDTH_M, draw::SQUARE_PLATE_HEIGHT_M)
        }
    }
}

/// How `norm` is printed on a square plate of two lines of its country
/// ([`STACKED`]), top first: each line's characters in layout order, a
/// space where the layout skips (Ukraine's `BH CE` over `3978`); `None`
/// when the country has no such layout for it.
pub fn square_lines(norm: &str, country: &str) -> Option<Vec<String>> {
    let chars: Vec<char> = norm.chars().collect();
    let layout = STACKED.iter().find(|l| l.country == country && l.lines.len() == 2 && l.format().is_some_and(|f| matches(f, norm)))?;
    Some(
        layout
            .lines
            .iter()
            .map(|line| {
                let mut text = String::new();
                for (k, &at) in line.iter().enumerate() {
                    if k > 0 && at != line[k - 1] + 1 {
                        text.push(' ');
                    }
                    text.push(chars[at]);
                }
                text
            })
            .collect(),
    )
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
    pub camera: CameraMount,
}

/// Where the camera stands. It is aimed and zoomed so that a car's plate
/// at the counting line is seen at the line's height in the frame, a fifth
/// of the frame wide; the mount changes how plates move, shrink and slant
/// on their way there.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CameraMount {
    /// How far above a car's plate the camera is, metres (`None`: the
    /// project's usual camera, about 1.75 m above it in a 16:9 frame, a
    /// pole at the roadside).
    pub above_plate_m: Option<f32>,
    /// How far ahead of the camera the counting line is, metres.
    pub line_distance_m: f32,
    /// The angle between the camera's view and the lane, degrees: 0 looks
    /// straight down the lane; a camera beside the lane sees plates
    /// narrower and their lines slanted.
    pub yaw_deg: f32,
}

impl Default for CameraMount {
    fn default() -> Self {
        CameraMount { above_plate_m: None, line_distance_m: LINE_Z, yaw_deg: 0.0 }
    }
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
    /// Share of trucks among the vehicles (plates at 0.3 or 1.1 m instead
    /// of a car's 0.5 m).
    pub trucks: f64,
    /// Where the camera stands.
    pub camera: CameraMount,
    /// Exposure time, seconds (a slow shutter blurs moving plates).
    pub shutter_s: f32,
    /// Share of vehicles carrying a square plate of two lines (where
    /// their country prints their registration so).
    pub square_plates: f64,
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
            trucks: 0.0,
            camera: CameraMount::default(),
            shutter_s: 1.0 / 250.0,
            square_plates: 0.0,
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
                let speed_mps = rng.random_range(slow..fast);
                let offset_m = if next_lane { rng.random_range(0.55..0.7) } else { rng.random_range(-0.3..0.0) };
                let colour = COLOURS[rng.random_range(0..COLOURS.len())];
                // Drawn only when trucks are asked for, so the default scenes
                // stay as they were; a truck drives in the camera's lane (one
                // in the next lane, its plate high and near, leaves the frame).
                let truck = conditions.trucks > 0.0 && rng.random_bool(conditions.trucks) && !next_lane;
                let plate_height_m = if truck { TRUCK_PLATE_M[rng.random_range(0..2)] } else { CAR_PLATE_M };
                let square = conditions.square_plates > 0.0 && rng.random_bool(conditions.square_plates);
                let square_lines = if square { square_lines(&plate.norm, country).unwrap_or_default() } else { Vec::new() };
                Vehicle {
                    plate_text: plate.text,
                    plate_norm: plate.norm,
                    country,
                    crosses_at_s: lead_in + spacing * (i as f64 + 0.5) + jitter,
                    approaching,
                    speed_mps,
                    // Vehicles driving away in the next lane keep to it, so the two never drive through each other.
                    offset_m,
                    colour,
                    truck,
                    plate_height_m,
                    square_lines,
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
            shutter_s: conditions.shutter_s,
            seed,
            night: conditions.night,
            weather: conditions.weather,
            dirty_plates: conditions.dirty_plates,
            passer_by: conditions.passer_by,
            camera: conditions.camera,
        }
    }

    /// Frames in the scene.
    pub fn frame_count(&self) -> u64 {
        (self.duration_s * self.fps as f64).floor() as u64
    }

    /// The camera's focal length in pixels, and where the horizon would be
    /// (pixels from the frame's top; negative: above it): a car's plate at
    /// the line is `PLATE_WIDTH_AT_LINE` of the frame wide at `LINE_Y`.
    fn optics(&self) -> (f32, f32, f32) {
        let (w, h) = (self.width as f32, self.height as f32);
        let line_z = self.camera.line_distance_m;
        let focal = PLATE_WIDTH_AT_LINE * w * line_z / draw::PLATE_WIDTH_M;
        // The usual camera: a plate `z` metres ahead is at (LINE_Y + 0.6) · LINE_Z / z − 0.6 frame heights.
        let above = self.camera.above_plate_m.unwrap_or((LINE_Y + 0.6) * LINE_Z * h / (PLATE_WIDTH_AT_LINE * w * LINE_Z / draw::PLATE_WIDTH_M));
        let horizon = LINE_Y * h - focal * above / line_z;
        (focal, horizon, above)
    }

    /// How far ahead vehicle `v`'s plate is when it crosses the line, metres.
    fn line_z(&self, v: &Vehicle) -> f32 {
        let (focal, horizon, above) = self.optics();
        let drop = above + CAR_PLATE_M - v.plate_height_m;
        focal * drop / (LINE_Y * self.height as f32 - horizon)
    }

    /// Where vehicle `v`'s plate is at time `t` (seconds): x, y, width,
    /// height in pixels, its speed down the frame in pixels per second and
    /// the slant of its lines (pixels down per pixel right); `None` when it
    /// is out of sight.
    fn plate_at(&self, v: &Vehicle, t: f64) -> Option<([f32; 4], f32, f32)> {
        let dt = (t - v.crosses_at_s) as f32;
        let line_z = self.line_z(v);
        let z = if v.approaching { line_z - v.speed_mps * dt } else { line_z + v.speed_mps * dt };
        if !(2.0..=80.0).contains(&z) {
            return None;
        }
        let (w, h) = (self.width as f32, self.height as f32);
        let (focal, horizon, above) = self.optics();
        let drop = above + CAR_PLATE_M - v.plate_height_m;
        let y_centre = horizon + focal * drop / z;
        let yaw = self.camera.yaw_deg.to_radians();
        let (width_m, height_m) = v.plate_size_m();
        let plate_w = focal * width_m / z * yaw.cos();
        // Seen from above, a plate (upright) looks shorter by the cosine of the angle it is seen at.
        let plate_h = focal * height_m / z * (drop / z).atan().cos();
        let metre = focal / z;
        let x_centre = w / 2.0 + v.offset_m * metre;
        if y_centre - plate_h > h + plate_w || y_centre + plate_h < -plate_w {
            return None;
        }
        // dy/dt = focal · drop / z² · dz/dt, and dz/dt = ∓speed.
        let dy_dt = focal * drop / (z * z) * v.speed_mps;
        // Seen from above and from the side, a plate's lines slant.
        let slant = drop / z * yaw.sin();
        Some(([x_centre - plate_w / 2.0, y_centre - plate_h / 2.0, plate_w, plate_h], dy_dt, slant))
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
                let mut plate = if v.square_lines.is_empty() {
                    render_plate(&font, &v.plate_text, v.country, texture_h)
                } else {
                    let lines: Vec<&str> = v.square_lines.iter().map(String::as_str).collect();
                    render_square_plate(&font, &lines, v.country, texture_h * 2)
                };
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
        let mut visible: Vec<(usize, [f32; 4], f32, f32)> = scene
            .vehicles
            .iter()
            .enumerate()
            .filter_map(|(i, v)| scene.plate_at(v, t).map(|(b, speed, slant)| (i, b, speed, slant)))
            .collect();
        // Far (small) first, so nearer vehicles cover them.
        visible.sort_by(|a, b| a.1[2].total_cmp(&b.1[2]));
        for (i, [x, y, w, h], speed, slant) in visible {
            let v = &scene.vehicles[i];
            draw::draw_vehicle(canvas, &self.plates[i], [x, y, w, h], slant, v.colour, v.approaching, v.truck);
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
                if let Some(([x, y, w, h], _, _)) = scene.plate_at(v, t) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn square_plates_print_their_lines_in_the_layouts_order() {
        assert_eq!(square_lines("AB7107OO", "UA"), Some(vec!["AB OO".to_string(), "7107".to_string()]));
        assert_eq!(square_lines("ABC123", "MD"), Some(vec!["ABC".to_string(), "123".to_string()]));
        assert_eq!(square_lines("B123XYZ", "DE"), None);
    }

    #[test]
    fn a_truck_s_high_plate_crosses_the_line_nearer_and_larger() {
        let mut scene = Scene::random_with(640, 360, 10, 20.0, 2, 1, &Conditions::default());
        scene.vehicles[1].plate_height_m = TRUCK_PLATE_M[1];
        let (car, truck) = (&scene.vehicles[0], &scene.vehicles[1]);
        assert!((scene.line_z(car) - LINE_Z).abs() < 1e-3);
        assert!(scene.line_z(truck) < scene.line_z(car));
        // At the moment each crosses, its plate's centre is on the line.
        for v in [car, truck] {
            let ([_, y, _, h], _, slant) = scene.plate_at(v, v.crosses_at_s).expect("in view at the line");
            assert!((y + h / 2.0 - LINE_Y * 360.0).abs() < 0.5, "{y} {h}");
            assert_eq!(slant, 0.0);
        }
        let width = |v: &Vehicle| scene.plate_at(v, v.crosses_at_s).expect("in view").0[2];
        assert!(width(truck) > 1.3 * width(car));
    }
}
