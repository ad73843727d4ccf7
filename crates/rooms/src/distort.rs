//! What a scan does to a clean drawing, to measure the detector on it: a slight rotation,
//! sensor noise and specks, and JPEG compression, applied to a rendered plan and (where
//! the geometry changes) to its ground-truth room map alike. Deterministic: the same seed
//! gives the same pixels.

use image::{GrayImage, Luma};

use crate::r2v::Rendered;

/// How a rendered plan is degraded. The default changes nothing.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Distortion {
    /// Turn the sheet by this many degrees (clockwise), about its centre.
    pub rotate_degrees: f64,
    /// Standard deviation of Gaussian noise added to every pixel, in gray levels.
    pub noise_sigma: f64,
    /// Fraction of pixels replaced by a black or white speck.
    pub specks: f64,
    /// Encode and decode as JPEG at this quality (1-100).
    pub jpeg_quality: Option<u8>,
    pub seed: u64,
}

impl Distortion {
    pub fn is_identity(&self) -> bool {
        self.rotate_degrees == 0.0
            && self.noise_sigma <= 0.0
            && self.specks <= 0.0
            && self.jpeg_quality.is_none()
    }
}

/// A named way of drawing and degrading the r2v plans for evaluation: the resolution
/// (pixels per annotation unit) and what a scan does.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    pub name: &'static str,
    pub scale: f64,
    pub distortion: Distortion,
}

/// The variants `docpipe eval` and `docpipe floorplan eval` know, by name.
pub fn variants() -> Vec<Variant> {
    let d = Distortion::default;
    vec![
        Variant {
            name: "clean",
            scale: 2.0,
            distortion: d(),
        },
        Variant {
            name: "low-res",
            scale: 1.25,
            distortion: d(),
        },
        Variant {
            name: "high-res",
            scale: 3.0,
            distortion: d(),
        },
        Variant {
            name: "noisy",
            scale: 2.0,
            distortion: Distortion {
                noise_sigma: 30.0,
                specks: 0.005,
                ..d()
            },
        },
        Variant {
            name: "rotated",
            scale: 2.0,
            distortion: Distortion {
                rotate_degrees: 2.0,
                ..d()
            },
        },
        Variant {
            name: "jpeg",
            scale: 2.0,
            distortion: Distortion {
                jpeg_quality: Some(25),
                ..d()
            },
        },
        Variant {
            name: "scan",
            scale: 2.0,
            distortion: Distortion {
                rotate_degrees: -1.0,
                noise_sigma: 15.0,
                specks: 0.001,
                jpeg_quality: Some(50),
                ..d()
            },
        },
    ]
}

/// The variant called `name`.
pub fn variant(name: &str) -> Option<Variant> {
    variants().into_iter().find(|v| v.name == name)
}

/// A small deterministic generator (splitmix64): no dependency, same stream everywhere.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x9e37_79b9_7f4a_7c15)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u = self.unit().max(1e-12);
        let v = self.unit();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

/// Applies `d` to a rendered plan: rotation first (image bilinear on white paper, room map
/// nearest), then noise and specks, then JPEG.
pub fn distort(mut r: Rendered, d: &Distortion) -> Result<Rendered, String> {
    if d.rotate_degrees != 0.0 {
        let (image, map) = rotate(&r.image, &r.room_map, d.rotate_degrees);
        r.image = image;
        r.room_map = map;
    }
    let mut rng = Rng::new(d.seed);
    if d.noise_sigma > 0.0 || d.specks > 0.0 {
        for p in r.image.pixels_mut() {
            let mut v = f64::from(p.0[0]);
            if d.noise_sigma > 0.0 {
                v += d.noise_sigma * rng.normal();
            }
            if d.specks > 0.0 && rng.unit() < d.specks {
                v = if rng.unit() < 0.5 { 0.0 } else { 255.0 };
            }
            p.0[0] = v.round().clamp(0.0, 255.0) as u8;
        }
    }
    if let Some(q) = d.jpeg_quality {
        r.image = jpeg_round_trip(&r.image, q.clamp(1, 100))?;
    }
    Ok(r)
}

/// A plan image as PNG bytes, or as JPEG at `jpeg_quality`.
pub fn encode(image: &GrayImage, jpeg_quality: Option<u8>) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    match jpeg_quality {
        Some(q) => image.write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(
            &mut bytes,
            q.clamp(1, 100),
        )),
        None => image.write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        ),
    }
    .map_err(|e| format!("encoding the image: {e}"))?;
    Ok(bytes)
}

/// Encodes and decodes as JPEG.
pub fn jpeg_round_trip(image: &GrayImage, quality: u8) -> Result<GrayImage, String> {
    let mut bytes = Vec::new();
    let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, quality);
    image
        .write_with_encoder(encoder)
        .map_err(|e| format!("encoding JPEG: {e}"))?;
    image::load_from_memory_with_format(&bytes, image::ImageFormat::Jpeg)
        .map(|i| i.to_luma8())
        .map_err(|e| format!("decoding JPEG: {e}"))
}

/// Turns an image and its label map by `degrees` clockwise about the centre, same size.
fn rotate(image: &GrayImage, map: &[u32], degrees: f64) -> (GrayImage, Vec<u32>) {
    let (w, h) = image.dimensions();
    let (cx, cy) = (f64::from(w) / 2.0, f64::from(h) / 2.0);
    let (s, c) = degrees.to_radians().sin_cos();
    let mut out = GrayImage::from_pixel(w, h, Luma([255]));
    let mut out_map = vec![0u32; map.len()];
    let at = |x: i64, y: i64| -> f64 {
        if x < 0 || y < 0 || x >= i64::from(w) || y >= i64::from(h) {
            255.0
        } else {
            f64::from(image.get_pixel(x as u32, y as u32).0[0])
        }
    };
    for y in 0..h {
        for x in 0..w {
            // The source of each output pixel: the inverse rotation of its centre.
            let (dx, dy) = (f64::from(x) + 0.5 - cx, f64::from(y) + 0.5 - cy);
            let sx = c * dx + s * dy + cx - 0.5;
            let sy = -s * dx + c * dy + cy - 0.5;
            let (x0, y0) = (sx.floor(), sy.floor());
            let (fx, fy) = (sx - x0, sy - y0);
            let (xi, yi) = (x0 as i64, y0 as i64);
            let v = at(xi, yi) * (1.0 - fx) * (1.0 - fy)
                + at(xi + 1, yi) * fx * (1.0 - fy)
                + at(xi, yi + 1) * (1.0 - fx) * fy
                + at(xi + 1, yi + 1) * fx * fy;
            out.put_pixel(x, y, Luma([v.round().clamp(0.0, 255.0) as u8]));
            let (nx, ny) = (sx.round() as i64, sy.round() as i64);
            if nx >= 0 && ny >= 0 && nx < i64::from(w) && ny < i64::from(h) {
                out_map[(y as usize) * (w as usize) + x as usize] =
                    map[(ny as usize) * (w as usize) + nx as usize];
            }
        }
    }
    (out, out_map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::r2v::{RenderOptions, parse, render};

    const BOX: &str = "0\t0\t200\t0\twall\n200\t0\t200\t100\twall\n200\t100\t0\t100\twall\n\
        0\t100\t0\t0\twall\n90\t45\t110\t55\tbedroom\n";

    fn rendered() -> Rendered {
        render(&parse(BOX).expect("parses"), &RenderOptions::default()).expect("renders")
    }

    #[test]
    fn the_same_seed_gives_the_same_pixels() {
        let d = Distortion {
            noise_sigma: 20.0,
            specks: 0.01,
            jpeg_quality: Some(40),
            rotate_degrees: 1.5,
            seed: 7,
        };
        let a = distort(rendered(), &d).expect("distorts");
        let b = distort(rendered(), &d).expect("distorts");
        assert_eq!(a.image, b.image);
        let c = distort(rendered(), &Distortion { seed: 8, ..d }).expect("distorts");
        assert_ne!(a.image, c.image);
    }

    #[test]
    fn rotation_turns_the_ground_truth_with_the_drawing() {
        let clean = rendered();
        let turned = distort(
            clean.clone(),
            &Distortion {
                rotate_degrees: 2.0,
                ..Distortion::default()
            },
        )
        .expect("distorts");
        let area = |m: &[u32]| m.iter().filter(|&&v| v == 1).count() as f64;
        // The room keeps its area (within the resampling's edge pixels) but not its pixels.
        assert!(
            (area(&turned.room_map) - area(&clean.room_map)).abs() < area(&clean.room_map) * 0.02
        );
        assert_ne!(turned.room_map, clean.room_map);
        // The top wall, turned clockwise about the centre, is lower on the right.
        let (w, _) = turned.image.dimensions();
        let dark_row = |x: u32| {
            (0..60)
                .find(|&y| turned.image.get_pixel(x, y).0[0] < 128)
                .unwrap_or(0)
        };
        assert!(dark_row(w - 60) > dark_row(60));
    }

    #[test]
    fn every_named_variant_is_found_by_its_name() {
        for v in variants() {
            assert_eq!(variant(v.name), Some(v.clone()));
        }
        assert!(variant("sepia").is_none());
    }
}
