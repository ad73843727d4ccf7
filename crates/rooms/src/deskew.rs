//! A sheet scanned a little askew is turned straight before its rooms are read, and what
//! was found is turned back: the doorway and region rules read walls along rows and
//! columns, and a wall a degree or two off the axis breaks their straight runs.
//!
//! The skew is the angle that lines up the most ink edges: edge pixels projected across
//! the rows (and the columns) of a grid turned by the angle pile up into the sharpest
//! profile when the grid runs along the walls. Angles up to [`MAX_SKEW_DEGREES`] either way
//! are tried, a tenth of a degree apart.

use image::{GrayImage, Luma};

/// The largest skew looked for, degrees either way.
pub const MAX_SKEW_DEGREES: f64 = 5.0;

/// Skews smaller than this are left alone (a thousand pixels drift under two).
const MIN_SKEW_DEGREES: f64 = 0.1;

/// The most edge pixels the angle is estimated from (a sample across the sheet).
const MAX_SAMPLES: usize = 60_000;

/// The sheet's skew in degrees (the angle to turn it by, clockwise in image coordinates,
/// to straighten it), or `None` when it is straight or shows no edges to tell.
pub fn skew(ink: &[bool], w: usize, h: usize) -> Option<f64> {
    let mut points: Vec<(f64, f64)> = Vec::new();
    for y in 1..h.saturating_sub(1) {
        for x in 1..w.saturating_sub(1) {
            let i = y * w + x;
            if ink[i] && !(ink[i - 1] && ink[i + 1] && ink[i - w] && ink[i + w]) {
                points.push((x as f64, y as f64));
            }
        }
    }
    if points.len() < 100 {
        return None;
    }
    let step = points.len().div_ceil(MAX_SAMPLES);
    let points: Vec<(f64, f64)> = points.into_iter().step_by(step).collect();
    let span = (w + h) as f64;
    let bins = (2.0 * span) as usize + 2;
    let mut hist = vec![0u32; bins];
    let mut score = |theta: f64| {
        let (s, c) = theta.sin_cos();
        let mut total = 0.0;
        for axis in 0..2 {
            hist.iter_mut().for_each(|v| *v = 0);
            for &(x, y) in &points {
                let u = if axis == 0 {
                    x * c + y * s
                } else {
                    y * c - x * s
                };
                let b = (u + span).round() as usize;
                if let Some(v) = hist.get_mut(b) {
                    *v += 1;
                }
            }
            total += hist
                .iter()
                .map(|&v| f64::from(v) * f64::from(v))
                .sum::<f64>();
        }
        total
    };
    let steps = (MAX_SKEW_DEGREES * 10.0) as i32;
    let (mut best, mut best_score) = (0.0f64, f64::MIN);
    for k in -steps..=steps {
        let deg = f64::from(k) / 10.0;
        let sc = score(deg.to_radians());
        // Ties go to the smaller turn.
        if sc > best_score * (1.0 + 1e-9) || (sc >= best_score && deg.abs() < best.abs()) {
            best = deg;
            best_score = sc;
        }
    }
    // Edges run along `best`; turning by its opposite lays them along the axes.
    (best.abs() >= MIN_SKEW_DEGREES).then_some(-best)
}

/// How a sheet was turned: a point `(x, y)` of the original is at `forward(x, y)` on the
/// turned canvas, which is `width x height` (padded so no corner is lost).
#[derive(Debug, Clone, Copy)]
pub struct Turn {
    cos: f64,
    sin: f64,
    /// Centre of the original and of the turned canvas.
    c0: (f64, f64),
    c1: (f64, f64),
    pub width: u32,
    pub height: u32,
}

impl Turn {
    /// A turn by `degrees` of a `w x h` sheet, onto a canvas big enough for all of it.
    pub fn new(w: u32, h: u32, degrees: f64) -> Self {
        let (sin, cos) = degrees.to_radians().sin_cos();
        let (wf, hf) = (f64::from(w), f64::from(h));
        let width = (wf * cos.abs() + hf * sin.abs()).ceil() as u32 + 2;
        let height = (wf * sin.abs() + hf * cos.abs()).ceil() as u32 + 2;
        Self {
            cos,
            sin,
            c0: (wf / 2.0, hf / 2.0),
            c1: (f64::from(width) / 2.0, f64::from(height) / 2.0),
            width,
            height,
        }
    }

    /// Where a point of the original lands on the turned canvas.
    pub fn forward(&self, x: f64, y: f64) -> (f64, f64) {
        let (dx, dy) = (x - self.c0.0, y - self.c0.1);
        (
            self.c1.0 + dx * self.cos - dy * self.sin,
            self.c1.1 + dx * self.sin + dy * self.cos,
        )
    }

    /// Where a point of the turned canvas came from on the original.
    pub fn back(&self, x: f64, y: f64) -> (f64, f64) {
        let (dx, dy) = (x - self.c1.0, y - self.c1.1);
        (
            self.c0.0 + dx * self.cos + dy * self.sin,
            self.c0.1 - dx * self.sin + dy * self.cos,
        )
    }

    /// The sheet turned (each pixel the nearest of the original, so a stroke a pixel wide
    /// keeps its ink rather than being smeared to gray; paper white where nothing was).
    pub fn apply(&self, gray: &GrayImage) -> GrayImage {
        let (w, h) = gray.dimensions();
        GrayImage::from_fn(self.width, self.height, |x, y| {
            let (sx, sy) = self.back(f64::from(x) + 0.5, f64::from(y) + 0.5);
            let (sx, sy) = (sx.floor(), sy.floor());
            if sx < 0.0 || sy < 0.0 || sx >= f64::from(w) || sy >= f64::from(h) {
                Luma([255])
            } else {
                *gray.get_pixel(sx as u32, sy as u32)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A box of 8 px walls drawn turned by `degrees`.
    fn turned_box(degrees: f64) -> (Vec<bool>, usize, usize) {
        let (w, h) = (400usize, 300usize);
        let (s, c) = degrees.to_radians().sin_cos();
        let mut ink = vec![false; w * h];
        for y in 0..h {
            for x in 0..w {
                let (dx, dy) = (x as f64 - 200.0, y as f64 - 150.0);
                let (u, v) = (dx * c + dy * s, -dx * s + dy * c);
                let inside = |a: f64, lo: f64, hi: f64| a >= lo && a <= hi;
                let outer = inside(u, -150.0, 150.0) && inside(v, -100.0, 100.0);
                let inner = inside(u, -142.0, 142.0) && inside(v, -92.0, 92.0);
                ink[y * w + x] = outer && !inner;
            }
        }
        (ink, w, h)
    }

    #[test]
    fn the_skew_of_a_turned_box_is_found_and_a_straight_one_has_none() {
        assert_eq!(skew(&turned_box(0.0).0, 400, 300), None);
        for deg in [2.0, -1.5, 3.3] {
            let (ink, w, h) = turned_box(deg);
            let found = skew(&ink, w, h).expect("a skew");
            // Turning the sheet by the skew straightens it: the angle is the box's own, the
            // sign that of the turn back.
            assert!((found.abs() - deg.abs()).abs() <= 0.15, "{deg}: {found}");
            let turn = Turn::new(w as u32, h as u32, found);
            let straight = turn.apply(&GrayImage::from_fn(w as u32, h as u32, |x, y| {
                Luma([if ink[y as usize * w + x as usize] {
                    0
                } else {
                    255
                }])
            }));
            let ink2: Vec<bool> = straight.as_raw().iter().map(|&v| v < 128).collect();
            let again = skew(&ink2, turn.width as usize, turn.height as usize);
            assert!(again.is_none_or(|a| a.abs() <= 0.2), "{deg}: {again:?}");
        }
    }

    #[test]
    fn a_point_turned_and_turned_back_is_where_it_was() {
        let turn = Turn::new(640, 480, 2.5);
        let (x, y) = turn.forward(100.0, 400.0);
        let (bx, by) = turn.back(x, y);
        assert!((bx - 100.0).abs() < 1e-9 && (by - 400.0).abs() < 1e-9);
    }
}
