//! Scores the room detector on r2v annotations: each plan is rendered, detected, and its
//! detected rooms matched to the ground-truth rooms greedily by IoU (pixel masks).
//! A plan counts as correct when the room counts agree; mean IoU is over ground-truth
//! rooms, an unmatched one scoring 0.

use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use super::detect::{DetectParams, detect};
use super::distort::{Variant, distort, variants};
use super::r2v::{RenderOptions, Rendered, parse, render};

/// One plan's score.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanScore {
    pub file: String,
    pub truth_rooms: usize,
    pub detected_rooms: usize,
    pub matched: usize,
    /// Mean over the plan's ground-truth rooms.
    pub mean_iou: f64,
    pub detect_ms: u64,
}

/// The room-detection figures `docpipe eval` reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoomsReport {
    /// How the plans were drawn and degraded ([`crate::distort::variants`]).
    pub variant: String,
    pub plans: usize,
    /// Ground-truth rooms over all plans (the weight of `mean_iou`).
    pub truth_rooms: usize,
    /// Plans whose detected room count equals the ground truth's.
    pub count_correct: usize,
    /// Mean IoU over all ground-truth rooms of all plans.
    pub mean_iou: f64,
    #[serde(skip)]
    pub details: Vec<PlanScore>,
}

/// Evaluates every `*.txt` annotation in `dir` (sorted by name), drawn cleanly.
pub fn evaluate_r2v_dir(dir: &Path) -> std::io::Result<RoomsReport> {
    evaluate_r2v_variant(dir, &clean())
}

/// The clean variant: the renderer's defaults, no degradation.
pub fn clean() -> Variant {
    variants().into_iter().next().unwrap_or_else(|| Variant {
        name: "clean",
        scale: RenderOptions::default().scale,
        distortion: Default::default(),
    })
}

/// The annotation files of a folder, sorted by name.
pub fn annotation_files(dir: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut files: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    files.sort();
    Ok(files)
}

/// Evaluates every `*.txt` annotation in `dir`, drawn and degraded as `variant` says.
pub fn evaluate_r2v_variant(dir: &Path, variant: &Variant) -> std::io::Result<RoomsReport> {
    let mut details = Vec::new();
    for path in annotation_files(dir)? {
        let text = std::fs::read_to_string(&path)?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let score = score_plan_variant(&name, &text, variant).map_err(std::io::Error::other)?;
        details.push(score);
    }
    Ok(summarise(variant.name, details))
}

/// Totals over plans' scores (mean IoU over all ground-truth rooms).
pub fn summarise(variant: &str, details: Vec<PlanScore>) -> RoomsReport {
    let (mut iou_sum, mut truth_total) = (0.0, 0usize);
    for score in &details {
        iou_sum += score.mean_iou * score.truth_rooms as f64;
        truth_total += score.truth_rooms;
    }
    RoomsReport {
        variant: variant.to_owned(),
        plans: details.len(),
        truth_rooms: truth_total,
        count_correct: details
            .iter()
            .filter(|d| d.truth_rooms == d.detected_rooms)
            .count(),
        mean_iou: if truth_total == 0 {
            0.0
        } else {
            iou_sum / truth_total as f64
        },
        details,
    }
}

/// Renders, detects and scores one annotation.
pub fn score_plan(file: &str, annotation: &str) -> Result<PlanScore, String> {
    score_plan_variant(file, annotation, &clean())
}

/// A plan drawn as `variant` says, the seed taken from its file name so every run
/// degrades it the same way.
pub fn render_variant(file: &str, annotation: &str, variant: &Variant) -> Result<Rendered, String> {
    let plan = parse(annotation).map_err(|e| format!("{file}: {e}"))?;
    let opts = RenderOptions {
        scale: variant.scale,
        ..RenderOptions::default()
    };
    let rendered = render(&plan, &opts).map_err(|e| format!("{file}: {e}"))?;
    let mut d = variant.distortion.clone();
    d.seed ^= file.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    distort(rendered, &d).map_err(|e| format!("{file}: {e}"))
}

/// Renders (as `variant` says), detects and scores one annotation.
pub fn score_plan_variant(
    file: &str,
    annotation: &str,
    variant: &Variant,
) -> Result<PlanScore, String> {
    let rendered = render_variant(file, annotation, variant)?;
    let start = Instant::now();
    let detection = detect(&rendered.image, &DetectParams::default());
    let detect_ms = start.elapsed().as_millis() as u64;
    let truth = rendered.room_labels.len();
    let found = detection.rooms.len();
    let ious = iou_matrix(&rendered.room_map, &detection.room_map, truth, found);
    let matches = greedy_match(&ious, truth, found);
    let iou_sum: f64 = matches.iter().map(|&(_, _, iou)| iou).sum();
    Ok(PlanScore {
        file: file.to_owned(),
        truth_rooms: truth,
        detected_rooms: found,
        matched: matches.len(),
        mean_iou: if truth == 0 {
            if found == 0 { 1.0 } else { 0.0 }
        } else {
            iou_sum / truth as f64
        },
        detect_ms,
    })
}

/// A picture of one plan's score, for looking at failures: the drawing in gray, each
/// detected room in its own colour, ground-truth room pixels that no detected room covers
/// in red, and the ground-truth rooms' edges in blue.
pub fn overlay_png(annotation: &str) -> Result<Vec<u8>, String> {
    overlay_png_variant("plan", annotation, &clean())
}

/// [`overlay_png`] of a plan drawn as `variant` says.
pub fn overlay_png_variant(
    file: &str,
    annotation: &str,
    variant: &Variant,
) -> Result<Vec<u8>, String> {
    let rendered = render_variant(file, annotation, variant)?;
    let detection = detect(&rendered.image, &DetectParams::default());
    let (w, h) = rendered.image.dimensions();
    let mut out = image::RgbImage::new(w, h);
    for (i, (x, y, p)) in rendered.image.enumerate_pixels().enumerate() {
        let g = p.0[0];
        let found = detection.room_map.get(i).copied().unwrap_or(0);
        let truth = rendered.room_map.get(i).copied().unwrap_or(0);
        let c = if found > 0 {
            room_colour(found, 80, 160)
        } else if truth > 0 {
            [255, 0, 0]
        } else {
            [g, g, g]
        };
        let xu = x as usize;
        let edge = truth > 0
            && ((xu + 1 < w as usize && rendered.room_map[i + 1] != truth)
                || (i + (w as usize) < rendered.room_map.len()
                    && rendered.room_map[i + w as usize] != truth));
        let c = if edge { [0, 0, 255] } else { c };
        out.put_pixel(
            x,
            y,
            image::Rgb(if g < 128 && !edge { [0, 0, 0] } else { c }),
        );
    }
    let mut bytes = Vec::new();
    image::DynamicImage::ImageRgb8(out)
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .map_err(|e| e.to_string())?;
    Ok(bytes)
}

/// A colour of its own for room `id`: each channel in `base..base + span`.
pub(crate) fn room_colour(id: u32, base: usize, span: usize) -> [u8; 3] {
    let k = id as usize * 97;
    [37, 71, 13].map(|m| (base + (k * m) % span).min(255) as u8)
}

/// IoU of every (truth, detected) pair, row-major `truth x found`, from two label maps
/// of the same size (0 = no room, `i + 1` = room `i`).
pub fn iou_matrix(truth_map: &[u32], found_map: &[u32], truth: usize, found: usize) -> Vec<f64> {
    let mut inter = vec![0u64; truth * found];
    let mut truth_area = vec![0u64; truth];
    let mut found_area = vec![0u64; found];
    for (&t, &f) in truth_map.iter().zip(found_map) {
        let (t, f) = (t as usize, f as usize);
        if t > 0 && t <= truth {
            truth_area[t - 1] += 1;
        }
        if f > 0 && f <= found {
            found_area[f - 1] += 1;
        }
        if t > 0 && f > 0 && t <= truth && f <= found {
            inter[(t - 1) * found + (f - 1)] += 1;
        }
    }
    let mut out = vec![0.0; truth * found];
    for i in 0..truth {
        for j in 0..found {
            let n = inter[i * found + j];
            let union = truth_area[i] + found_area[j] - n;
            if union > 0 {
                out[i * found + j] = n as f64 / union as f64;
            }
        }
    }
    out
}

/// Greedy one-to-one matching by descending IoU (pairs with IoU 0 never match).
pub fn greedy_match(ious: &[f64], truth: usize, found: usize) -> Vec<(usize, usize, f64)> {
    let mut pairs: Vec<(usize, usize, f64)> = (0..truth)
        .flat_map(|i| (0..found).map(move |j| (i, j)))
        .map(|(i, j)| (i, j, ious[i * found + j]))
        .filter(|p| p.2 > 0.0)
        .collect();
    pairs.sort_by(|a, b| b.2.total_cmp(&a.2));
    let (mut used_t, mut used_f) = (vec![false; truth], vec![false; found]);
    let mut out = Vec::new();
    for (i, j, iou) in pairs {
        if !used_t[i] && !used_f[j] {
            used_t[i] = true;
            used_f[j] = true;
            out.push((i, j, iou));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_matching_is_one_to_one() {
        // truth 0 overlaps found 0 (0.9) and found 1 (0.5); truth 1 overlaps found 0 (0.6).
        let ious = [0.9, 0.5, 0.6, 0.0];
        let m = greedy_match(&ious, 2, 2);
        assert_eq!(m, vec![(0, 0, 0.9)]);
        let truth = [1, 1, 2, 0];
        let found = [1, 1, 1, 0];
        let ious = iou_matrix(&truth, &found, 2, 1);
        assert!((ious[0] - 2.0 / 3.0).abs() < 1e-9);
        assert!((ious[1] - 1.0 / 3.0).abs() < 1e-9);
    }
}
