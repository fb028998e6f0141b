//! Rasterising one frame of a synthetic lane: the background, plates (text
//! drawn with DejaVu Sans Bold through `ab_glyph`), vehicle bodies, motion
//! blur along the direction of travel, a light level and sensor noise.

use ab_glyph::{Font, FontVec, PxScale, ScaleFont};

/// An RGB image, 3 bytes a pixel, rows top to bottom.
#[derive(Clone, Debug)]
pub struct Canvas {
    pub width: u32,
    pub height: u32,
    pub rgb: Vec<u8>,
}

impl Canvas {
    pub fn new(width: u32, height: u32, colour: [u8; 3]) -> Self {
        let mut rgb = Vec::with_capacity(width as usize * height as usize * 3);
        for _ in 0..width as usize * height as usize {
            rgb.extend_from_slice(&colour);
        }
        Canvas { width, height, rgb }
    }

    fn index(&self, x: u32, y: u32) -> usize {
        (y as usize * self.width as usize + x as usize) * 3
    }

    /// Fills the part of the rectangle `[x0, x1) × [y0, y1)` (pixels, may be
    /// fractional or off the canvas) that lies on the canvas.
    pub fn fill_rect(&mut self, x0: f32, y0: f32, x1: f32, y1: f32, colour: [u8; 3]) {
        let (w, h) = (self.width as f32, self.height as f32);
        let (xa, xb) = (x0.max(0.0).round() as u32, x1.min(w).round() as u32);
        let (ya, yb) = (y0.max(0.0).round() as u32, y1.min(h).round() as u32);
        for y in ya..yb {
            for x in xa..xb {
                let i = self.index(x, y);
                self.rgb[i..i + 3].copy_from_slice(&colour);
            }
        }
    }

    /// Draws `texture` scaled into the rectangle at (x, y) of size (w, h), bilinear.
    pub fn draw_scaled(&mut self, texture: &Canvas, x: f32, y: f32, w: f32, h: f32) {
        self.draw_slanted(texture, x, y, w, h, 0.0);
    }

    /// [`Canvas::draw_scaled`] with the rectangle's columns shifted down by
    /// `slant` pixels per pixel right of its middle (a plate seen from the
    /// side and above: its lines slope).
    pub fn draw_slanted(&mut self, texture: &Canvas, x: f32, y: f32, w: f32, h: f32, slant: f32) {
        if w < 1.0 || h < 1.0 {
            return;
        }
        let (cw, ch) = (self.width as i64, self.height as i64);
        let xa = (x.floor() as i64).clamp(0, cw);
        let xb = ((x + w).ceil() as i64).clamp(0, cw);
        let rise = slant.abs() * w / 2.0;
        let ya = ((y - rise).floor() as i64).clamp(0, ch);
        let yb = ((y + h + rise).ceil() as i64).clamp(0, ch);
        let (sx, sy) = (texture.width as f32 / w, texture.height as f32 / h);
        let (tw, th) = (texture.width as i64, texture.height as i64);
        for py in ya..yb {
            for px in xa..xb {
                let shift = slant * (px as f32 + 0.5 - x - w / 2.0);
                let v = (py as f32 + 0.5 - y - shift) * sy - 0.5;
                if v < -0.5 || v > th as f32 - 0.5 {
                    continue;
                }
                let v0 = (v.floor() as i64).clamp(0, th - 1);
                let v1 = (v0 + 1).min(th - 1);
                let fv = (v - v0 as f32).clamp(0.0, 1.0);
                let u = (px as f32 + 0.5 - x) * sx - 0.5;
                if u < -0.5 || u > tw as f32 - 0.5 {
                    continue;
                }
                let u0 = (u.floor() as i64).clamp(0, tw - 1);
                let u1 = (u0 + 1).min(tw - 1);
                let fu = (u - u0 as f32).clamp(0.0, 1.0);
                let t = |uu: i64, vv: i64, k: usize| texture.rgb[((vv * tw + uu) * 3) as usize + k] as f32;
                let i = self.index(px as u32, py as u32);
                for k in 0..3 {
                    let top = t(u0, v0, k) * (1.0 - fu) + t(u1, v0, k) * fu;
                    let bottom = t(u0, v1, k) * (1.0 - fu) + t(u1, v1, k) * fu;
                    self.rgb[i + k] = (top * (1.0 - fv) + bottom * fv).round() as u8;
                }
            }
        }
    }

    /// Box blur of `length` pixels along the vertical, inside the rectangle
    /// (clipped to the canvas): motion blur of something moving up or down.
    pub fn blur_vertical(&mut self, x0: f32, y0: f32, x1: f32, y1: f32, length: f32) {
        let length = length.round() as i64;
        if length < 2 {
            return;
        }
        let (w, h) = (self.width as i64, self.height as i64);
        let (xa, xb) = ((x0.floor() as i64).clamp(0, w), (x1.ceil() as i64).clamp(0, w));
        let (ya, yb) = ((y0.floor() as i64).clamp(0, h), (y1.ceil() as i64).clamp(0, h));
        if yb - ya < 2 {
            return;
        }
        let half = length / 2;
        let mut column = vec![[0f32; 3]; (yb - ya) as usize];
        for x in xa..xb {
            for y in ya..yb {
                let i = self.index(x as u32, y as u32);
                column[(y - ya) as usize] = [self.rgb[i] as f32, self.rgb[i + 1] as f32, self.rgb[i + 2] as f32];
            }
            for y in ya..yb {
                let (from, to) = ((y - half).max(ya), (y - half + length).min(yb));
                let mut sum = [0f32; 3];
                for yy in from..to {
                    let c = column[(yy - ya) as usize];
                    sum = [sum[0] + c[0], sum[1] + c[1], sum[2] + c[2]];
                }
                let n = (to - from).max(1) as f32;
                let i = self.index(x as u32, y as u32);
                for k in 0..3 {
                    self.rgb[i + k] = (sum[k] / n).round() as u8;
                }
            }
        }
    }

    /// Adds a round glow of `strength` grey levels at its centre, falling
    /// off with the square of the distance to nothing at `radius` pixels.
    pub fn glow(&mut self, cx: f32, cy: f32, radius: f32, strength: f32) {
        if radius < 1.0 {
            return;
        }
        let (w, h) = (self.width as f32, self.height as f32);
        let (xa, xb) = ((cx - radius).max(0.0) as u32, (cx + radius).min(w).max(0.0) as u32);
        let (ya, yb) = ((cy - radius).max(0.0) as u32, (cy + radius).min(h).max(0.0) as u32);
        for y in ya..yb {
            for x in xa..xb {
                let d2 = ((x as f32 + 0.5 - cx).powi(2) + (y as f32 + 0.5 - cy).powi(2)) / (radius * radius);
                if d2 >= 1.0 {
                    continue;
                }
                let add = strength * (1.0 - d2) * (1.0 - d2);
                let i = self.index(x, y);
                for value in &mut self.rgb[i..i + 3] {
                    *value = (*value as f32 + add).min(255.0) as u8;
                }
            }
        }
    }

    /// `count` drops (rain: streaks `length` pixels long, slanted; snow with
    /// `length` 0: flakes of 1–2 pixels), light grey and half transparent,
    /// at places drawn from `seed`.
    pub fn precipitation(&mut self, count: usize, length: f32, seed: u64) {
        let mut next = uniform(seed);
        let (w, h) = (self.width as f32, self.height as f32);
        for _ in 0..count {
            let (x, y) = (next() * w, next() * h);
            let steps = length.max(1.0) as usize;
            let size = if length == 0.0 { 1 + (next() * 2.0) as u32 } else { 1 };
            for k in 0..steps {
                let (px, py) = (x + 0.25 * k as f32, y + k as f32);
                for dy in 0..size {
                    for dx in 0..size {
                        let (qx, qy) = (px as u32 + dx, py as u32 + dy);
                        if qx < self.width && qy < self.height {
                            let i = self.index(qx, qy);
                            for value in &mut self.rgb[i..i + 3] {
                                *value = ((*value as u16 + 220) / 2) as u8;
                            }
                        }
                    }
                }
            }
        }
    }

    /// `count` grey-brown smudges over the canvas (road dirt on a plate),
    /// each an ellipse about a sixth of its height, half covering.
    pub fn smudge(&mut self, count: usize, seed: u64) {
        let mut next = uniform(seed);
        let (w, h) = (self.width as f32, self.height as f32);
        for _ in 0..count {
            let (cx, cy) = (next() * w, next() * h);
            let (rx, ry) = (h * (0.1 + 0.15 * next()), h * (0.06 + 0.1 * next()));
            for y in (cy - ry).max(0.0) as u32..((cy + ry).min(h)) as u32 {
                for x in (cx - rx).max(0.0) as u32..((cx + rx).min(w)) as u32 {
                    let d = ((x as f32 - cx) / rx).powi(2) + ((y as f32 - cy) / ry).powi(2);
                    if d < 1.0 {
                        let i = self.index(x, y);
                        for (value, dirt) in self.rgb[i..i + 3].iter_mut().zip([120u16, 105, 85]) {
                            *value = ((*value as u16 + dirt) / 2) as u8;
                        }
                    }
                }
            }
        }
    }

    /// Every pixel to its luminance, as an infrared camera sees.
    pub fn grey(&mut self) {
        for pixel in self.rgb.chunks_exact_mut(3) {
            let y = (0.299 * pixel[0] as f32 + 0.587 * pixel[1] as f32 + 0.114 * pixel[2] as f32).round() as u8;
            pixel.fill(y);
        }
    }

    /// Multiplies every pixel by `gain` and adds noise of about `sigma` levels.
    pub fn light_and_noise(&mut self, gain: f32, sigma: f32, seed: u64) {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        for value in self.rgb.iter_mut() {
            // xorshift64*: cheap, and plenty for sensor noise.
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            let r = state.wrapping_mul(0x2545_F491_4F6C_DD1D);
            // The sum of two uniforms: a triangular distribution with σ ≈ 0.41 × span.
            let (a, b) = ((r >> 40) as f32 / 16_777_216.0, ((r >> 16) & 0xFF_FFFF) as f32 / 16_777_216.0);
            let noise = (a + b - 1.0) * sigma * 2.45;
            *value = (*value as f32 * gain + noise).clamp(0.0, 255.0) as u8;
        }
    }
}

/// Uniform numbers in [0, 1) from `seed`: xorshift64*, cheap, and plenty
/// for drawing raindrops and smudges.
fn uniform(seed: u64) -> impl FnMut() -> f32 {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40) as f32 / 16_777_216.0
    }
}

/// Plate size, metres (the European 520 × 110 mm plate; Moldova and Ukraine use it too).
pub const PLATE_WIDTH_M: f32 = 0.52;
pub const PLATE_HEIGHT_M: f32 = 0.11;

/// The colour of a plate's country strip, and its code.
fn strip(country: &str) -> ([u8; 3], &str) {
    match country {
        "MD" => ([0, 70, 160], "MD"),
        "UA" => ([20, 80, 180], "UA"),
        _ => ([0, 51, 153], country),
    }
}

/// A plate drawn flat at `height` pixels: white, a thin black rim, the
/// country strip on the left and `text` (as printed, with its spaces) in black.
pub fn render_plate(font: &FontVec, text: &str, country: &str, height: u32) -> Canvas {
    let width = (height as f32 * PLATE_WIDTH_M / PLATE_HEIGHT_M).round() as u32;
    let mut plate = Canvas::new(width, height, [244, 244, 240]);
    let hf = height as f32;
    let rim = (hf / 22.0).max(1.0);
    plate.fill_rect(0.0, 0.0, width as f32, rim, [25, 25, 25]);
    plate.fill_rect(0.0, hf - rim, width as f32, hf, [25, 25, 25]);
    plate.fill_rect(0.0, 0.0, rim, hf, [25, 25, 25]);
    plate.fill_rect(width as f32 - rim, 0.0, width as f32, hf, [25, 25, 25]);
    let (strip_colour, code) = strip(country);
    let strip_w = hf * 0.42;
    plate.fill_rect(rim, rim, rim + strip_w, hf - rim, strip_colour);
    draw_text(&mut plate, font, code, rim + strip_w * 0.12, hf * 0.86, hf * 0.3, [255, 255, 255], strip_w * 0.8);

    // The number, fitted into the rest of the plate.
    let area_x = rim + strip_w + hf * 0.12;
    let area_w = width as f32 - area_x - rim - hf * 0.12;
    let mut size = hf * 0.74;
    let measure = |size: f32| {
        let scaled = font.as_scaled(PxScale::from(size));
        text.chars().map(|c| scaled.h_advance(scaled.glyph_id(c))).sum::<f32>()
    };
    let natural = measure(size);
    if natural > area_w {
        size *= area_w / natural;
    }
    let text_w = measure(size);
    let scaled = font.as_scaled(PxScale::from(size));
    let baseline = hf / 2.0 + (scaled.ascent() + scaled.descent()) / 2.0 - hf * 0.02;
    draw_text(&mut plate, font, text, area_x + (area_w - text_w) / 2.0, baseline, size, [18, 18, 18], area_w);
    plate
}

/// Size of a square plate (trailers, motorcycles, imported cars), metres:
/// the 280 × 200 mm plate Moldova and Ukraine print on two lines.
pub const SQUARE_PLATE_WIDTH_M: f32 = 0.28;
pub const SQUARE_PLATE_HEIGHT_M: f32 = 0.2;

/// A square plate drawn flat at `height` pixels: white, a thin black rim,
/// the country strip on the left the whole height, and `lines` (top
/// first, as printed) in black, one above the other.
pub fn render_square_plate(font: &FontVec, lines: &[&str], country: &str, height: u32) -> Canvas {
    let width = (height as f32 * SQUARE_PLATE_WIDTH_M / SQUARE_PLATE_HEIGHT_M).round() as u32;
    let mut plate = Canvas::new(width, height, [244, 244, 240]);
    let (wf, hf) = (width as f32, height as f32);
    let rim = (hf / 30.0).max(1.0);
    plate.fill_rect(0.0, 0.0, wf, rim, [25, 25, 25]);
    plate.fill_rect(0.0, hf - rim, wf, hf, [25, 25, 25]);
    plate.fill_rect(0.0, 0.0, rim, hf, [25, 25, 25]);
    plate.fill_rect(wf - rim, 0.0, wf, hf, [25, 25, 25]);
    let (strip_colour, code) = strip(country);
    let strip_w = wf * 0.14;
    plate.fill_rect(rim, rim, rim + strip_w, hf - rim, strip_colour);
    draw_text(&mut plate, font, code, rim + strip_w * 0.08, hf * 0.92, strip_w * 0.55, [255, 255, 255], strip_w * 0.9);
    let area_x = rim + strip_w + wf * 0.04;
    let area_w = wf - area_x - rim - wf * 0.04;
    let line_h = (hf - 2.0 * rim) / lines.len().max(1) as f32;
    let measure = |text: &str, size: f32| {
        let scaled = font.as_scaled(PxScale::from(size));
        text.chars().map(|c| scaled.h_advance(scaled.glyph_id(c))).sum::<f32>()
    };
    // One size for all lines, the widest fitted; the lines close together,
    // as square plates print them.
    let mut size = line_h * 0.95;
    let widest = lines.iter().map(|l| measure(l, size)).fold(0.0, f32::max);
    if widest > area_w {
        size *= area_w / widest;
    }
    let scaled = font.as_scaled(PxScale::from(size));
    for (k, line) in lines.iter().enumerate() {
        let baseline = rim + line_h * (k as f32 + 0.5) + (scaled.ascent() + scaled.descent()) / 2.0;
        let text_w = measure(line, size);
        draw_text(&mut plate, font, line, area_x + (area_w - text_w) / 2.0, baseline, size, [18, 18, 18], area_w);
    }
    plate
}

/// Draws `text` with its baseline at `baseline`, starting at `x`, `size` pixels tall.
fn draw_text(canvas: &mut Canvas, font: &FontVec, text: &str, x: f32, baseline: f32, size: f32, colour: [u8; 3], max_w: f32) {
    let scale = PxScale::from(size);
    let scaled = font.as_scaled(scale);
    let mut caret = x;
    for c in text.chars() {
        let id = scaled.glyph_id(c);
        if caret - x + scaled.h_advance(id) > max_w + 1.0 {
            break;
        }
        let glyph = id.with_scale_and_position(scale, ab_glyph::point(caret, baseline));
        caret += scaled.h_advance(id);
        let Some(outlined) = font.outline_glyph(glyph) else { continue };
        let bounds = outlined.px_bounds();
        let (cw, ch) = (canvas.width as i32, canvas.height as i32);
        outlined.draw(|gx, gy, coverage| {
            let (px, py) = (bounds.min.x as i32 + gx as i32, bounds.min.y as i32 + gy as i32);
            if px >= 0 && py >= 0 && px < cw && py < ch {
                let i = canvas.index(px as u32, py as u32);
                for k in 0..3 {
                    let old = canvas.rgb[i + k] as f32;
                    canvas.rgb[i + k] = (old * (1.0 - coverage) + colour[k] as f32 * coverage).round() as u8;
                }
            }
        });
    }
}

/// The empty lane: verge, asphalt with a gradient and lane markings.
pub fn background(width: u32, height: u32) -> Canvas {
    let mut canvas = Canvas::new(width, height, [90, 92, 96]);
    let (w, h) = (width as f32, height as f32);
    for y in 0..height {
        let t = y as f32 / h;
        let asphalt = (78.0 + 30.0 * t) as u8;
        canvas.fill_rect(0.0, y as f32, w, y as f32 + 1.0, [asphalt, asphalt + 2, asphalt + 6]);
        // Lane edges converge towards the top (perspective).
        let half = w * (0.32 + 0.2 * t);
        let edge = (w * 0.01).max(2.0);
        canvas.fill_rect(w / 2.0 - half - edge, y as f32, w / 2.0 - half, y as f32 + 1.0, [215, 215, 205]);
        canvas.fill_rect(w / 2.0 + half, y as f32, w / 2.0 + half + edge, y as f32 + 1.0, [215, 215, 205]);
        // Verge beyond the edges.
        canvas.fill_rect(0.0, y as f32, w / 2.0 - half - edge, y as f32 + 1.0, [70, 96, 60]);
        canvas.fill_rect(w / 2.0 + half + edge, y as f32, w, y as f32 + 1.0, [70, 96, 60]);
    }
    canvas
}

/// Draws a vehicle whose plate occupies (x, y, w, h), its lines sloping
/// by `slant`: body, windscreen, lights (white at the front, red at the
/// back) and the plate. A truck is wider and its cab or box rises higher.
#[allow(clippy::too_many_arguments)]
pub fn draw_vehicle(canvas: &mut Canvas, plate: &Canvas, [x, y, w, h]: [f32; 4], slant: f32, body: [u8; 3], front: bool, truck: bool) {
    let body_w = w * if truck { 4.4 } else { 3.3 };
    let cx = x + w / 2.0;
    let (left, right) = (cx - body_w / 2.0, cx + body_w / 2.0);
    let top = y - w * if truck { 1.6 } else { 0.55 };
    let bottom = y + h + w * 0.22;
    canvas.fill_rect(left, top, right, bottom, body);
    let dark = body.map(|c| (c as f32 * 0.55) as u8);
    canvas.fill_rect(left + w * 0.25, top, right - w * 0.25, top + w * 0.22, [40, 48, 58]);
    canvas.fill_rect(left, bottom - w * 0.1, right, bottom, dark);
    let light = if front { [235, 235, 220] } else { [190, 30, 30] };
    canvas.fill_rect(left + w * 0.1, y - h * 0.2, left + w * 0.6, y + h * 0.5, light);
    canvas.fill_rect(right - w * 0.6, y - h * 0.2, right - w * 0.1, y + h * 0.5, light);
    canvas.draw_slanted(plate, x, y, w, h, slant);
}
