//! Scores the detector's walls on MLSTRUCT-FP sheets: real drawings whose `fp.json` gives
//! each floor's wall rectangles in metres and the image scale (pixels per metre; pixel =
//! coordinate x scale, y negated). Walls are scored as pixels (IoU of the detector's wall
//! mask against the rectangles drawn at the detector's working resolution); rooms are
//! counted, since the data set has no room truth.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::RoomOptions;
use crate::decode::{decode_gray, downscale};
use crate::detect::detect;

#[derive(Debug, Deserialize)]
struct FpJson {
    #[serde(default)]
    rect: BTreeMap<String, Rect>,
    #[serde(default)]
    floor: BTreeMap<String, Floor>,
}

#[derive(Debug, Deserialize)]
struct Rect {
    #[serde(rename = "floorID")]
    floor_id: i64,
    x: Vec<f64>,
    y: Vec<f64>,
}

#[derive(Debug, Deserialize)]
struct Floor {
    image: String,
    scale: f64,
}

/// One sheet's score.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SheetScore {
    pub image: String,
    /// Pixels per metre of the sheet (from `fp.json`; the detector is not told).
    pub pixels_per_metre: f64,
    pub rooms: usize,
    /// IoU of the detected wall pixels and the annotated wall rectangles.
    pub wall_iou: f64,
    /// Decoding and detection, milliseconds.
    pub ms: u64,
}

/// The figures over a folder of sheets.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SheetsReport {
    pub sheets: usize,
    /// Sheets on which at least one room was found.
    pub with_rooms: usize,
    pub mean_wall_iou: f64,
    pub max_ms: u64,
    pub details: Vec<SheetScore>,
}

/// Whether `dir` holds an MLSTRUCT-FP `fp.json`.
pub fn is_mlstruct_dir(dir: &Path) -> bool {
    dir.join("fp.json").is_file()
}

/// Scores every sheet `dir/fp.json` names; with `overlays`, also writes `<image>.png`
/// there: the working image in gray, detected rooms tinted, annotated walls the detector
/// missed in red, detected walls that are not annotated in blue, both in black.
pub fn evaluate_mlstruct_dir(
    dir: &Path,
    opts: &RoomOptions,
    overlays: Option<&Path>,
) -> Result<SheetsReport, String> {
    let text = std::fs::read_to_string(dir.join("fp.json")).map_err(|e| format!("fp.json: {e}"))?;
    let fp: FpJson = serde_json::from_str(&text).map_err(|e| format!("fp.json: {e}"))?;
    // Floors drawn on the same sheet share its walls.
    let mut sheets: BTreeMap<String, (f64, Vec<&Rect>)> = BTreeMap::new();
    for (id, floor) in &fp.floor {
        let entry = sheets
            .entry(floor.image.clone())
            .or_insert((floor.scale, Vec::new()));
        entry.1.extend(
            fp.rect
                .values()
                .filter(|r| id.parse::<i64>().is_ok_and(|i| i == r.floor_id)),
        );
    }
    let mut details = Vec::new();
    for (image, (scale, rects)) in sheets {
        // Only a plain file name inside the folder.
        if image.contains('/') || image.contains('\\') || image.starts_with('.') {
            continue;
        }
        let Ok(bytes) = std::fs::read(dir.join(&image)) else {
            continue;
        };
        let (score, overlay) =
            score_sheet(&image, &bytes, scale, &rects, opts, overlays.is_some())?;
        if let (Some(out), Some(png)) = (overlays, overlay) {
            std::fs::write(out.join(format!("{image}.png")), png)
                .map_err(|e| format!("writing the overlay of {image}: {e}"))?;
        }
        details.push(score);
    }
    let n = details.len();
    Ok(SheetsReport {
        sheets: n,
        with_rooms: details.iter().filter(|d| d.rooms > 0).count(),
        mean_wall_iou: if n == 0 {
            0.0
        } else {
            details.iter().map(|d| d.wall_iou).sum::<f64>() / n as f64
        },
        max_ms: details.iter().map(|d| d.ms).max().unwrap_or(0),
        details,
    })
}

fn score_sheet(
    image: &str,
    bytes: &[u8],
    scale: f64,
    rects: &[&Rect],
    opts: &RoomOptions,
    overlay: bool,
) -> Result<(SheetScore, Option<Vec<u8>>), String> {
    let start = Instant::now();
    let gray = decode_gray(bytes, &opts.decode).map_err(|e| format!("{image}: {e}"))?;
    let (work, factor) = downscale(gray, opts.max_working_pixels);
    let detection = detect(&work, &opts.params);
    let ms = start.elapsed().as_millis() as u64;
    let (w, h) = (detection.width as usize, detection.height as usize);
    let mut truth = vec![false; w * h];
    let f = f64::from(factor);
    for r in rects {
        let poly: Vec<[f64; 2]> =
            r.x.iter()
                .zip(&r.y)
                .map(|(x, y)| [x * scale / f, -y * scale / f])
                .collect();
        fill_polygon(&mut truth, w, h, &poly);
    }
    let picture = overlay.then(|| {
        let mut out = image::RgbImage::new(detection.width, detection.height);
        for (i, p) in out.pixels_mut().enumerate() {
            let g = work.as_raw()[i] / 2 + 127;
            let room = detection.room_map[i];
            p.0 = match (truth[i], detection.walls[i]) {
                (true, true) => [0, 0, 0],
                (true, false) => [230, 0, 0],
                (false, true) => [0, 0, 230],
                _ if room > 0 => crate::eval::room_colour(room, 120, 120),
                _ => [g, g, g],
            };
        }
        let mut bytes = Vec::new();
        image::DynamicImage::ImageRgb8(out)
            .write_to(
                &mut std::io::Cursor::new(&mut bytes),
                image::ImageFormat::Png,
            )
            .map(|_| bytes)
            .ok()
    });
    let (mut inter, mut union) = (0u64, 0u64);
    for (&a, &b) in truth.iter().zip(&detection.walls) {
        inter += u64::from(a && b);
        union += u64::from(a || b);
    }
    let score = SheetScore {
        image: image.to_owned(),
        pixels_per_metre: scale,
        rooms: detection.rooms.len(),
        wall_iou: if union == 0 {
            0.0
        } else {
            inter as f64 / union as f64
        },
        ms,
    };
    Ok((score, picture.flatten()))
}

/// Sets the pixels whose centres lie inside a polygon (even-odd, scanline).
fn fill_polygon(mask: &mut [bool], w: usize, h: usize, poly: &[[f64; 2]]) {
    if poly.len() < 3 || poly.iter().any(|p| !p[0].is_finite() || !p[1].is_finite()) {
        return;
    }
    let y0 = poly
        .iter()
        .map(|p| p[1])
        .fold(f64::INFINITY, f64::min)
        .floor()
        .max(0.0) as usize;
    let y1 = (poly
        .iter()
        .map(|p| p[1])
        .fold(f64::NEG_INFINITY, f64::max)
        .ceil()
        .max(0.0) as usize)
        .min(h);
    for y in y0..y1 {
        let cy = y as f64 + 0.5;
        let mut xs: Vec<f64> = Vec::new();
        for i in 0..poly.len() {
            let (a, b) = (poly[i], poly[(i + 1) % poly.len()]);
            if (a[1] > cy) != (b[1] > cy) {
                xs.push(a[0] + (cy - a[1]) * (b[0] - a[0]) / (b[1] - a[1]));
            }
        }
        xs.sort_by(f64::total_cmp);
        for pair in xs.chunks(2) {
            if let [xa, xb] = pair {
                let from = (xa - 0.5).ceil().max(0.0) as usize;
                let to = ((xb - 0.5).floor() + 1.0).clamp(0.0, w as f64) as usize;
                for x in from..to.min(w) {
                    mask[y * w + x] = true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rectangle_fills_its_pixels() {
        let mut m = vec![false; 100];
        fill_polygon(
            &mut m,
            10,
            10,
            &[[2.0, 2.0], [6.0, 2.0], [6.0, 5.0], [2.0, 5.0]],
        );
        assert_eq!(m.iter().filter(|&&b| b).count(), 12);
        assert!(m[2 * 10 + 2] && m[4 * 10 + 5] && !m[5 * 10 + 2]);
    }
}
