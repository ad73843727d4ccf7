//! Checks of a blueprint's rooms: at least one room, valid outlines, no two rooms on the
//! same floor space, some room named by a label, no room out of all proportion to the
//! rest, and each room's confidence (which the detector lowers for rooms closed by
//! doorways it inferred rather than by drawn walls). A failed check or a low-confidence
//! room sends the job to `needs_review` with the reasons.

use tracing::info;

use super::super::{Stage, VerifyInput, VerifyOutput, elapsed_ms, write_json};
use crate::error::StageError;
use crate::ids::ObjectKey;
use crate::job::DocumentKind;
use crate::ports::{JobPatch, Ports};
use crate::result::{Check, Room, RoomsResult, result_kind};

/// Two rooms whose outlines share more than this fraction of the smaller one overlap.
const MAX_OVERLAP: f64 = 0.02;

/// A room more than this many times the median room's area is doubtful: most likely
/// several rooms run together through a doorway left open (or the space around the
/// building).
const MAX_AREA_RATIO: f64 = 12.0;

/// Whether an extraction is a blueprint's rooms rather than an invoice.
pub(super) fn is_rooms_result(extraction: &serde_json::Value) -> bool {
    result_kind(extraction) == Some(DocumentKind::Blueprint)
}

/// The verify stage for a blueprint: checks the rooms and stores the checked result at
/// `results/{job}/verified.json`.
pub(super) async fn verify_rooms(
    ports: &Ports,
    input: VerifyInput,
    extraction: serde_json::Value,
    start: chrono::DateTime<chrono::Utc>,
) -> Result<VerifyOutput, StageError> {
    let mut result: RoomsResult = serde_json::from_value(extraction).map_err(|e| {
        StageError::internal(format!("object {} is not valid: {e}", input.extraction.key))
    })?;
    apply_room_checks(&mut result, ports.settings.review_confidence_threshold);
    let key = ObjectKey::for_job("results", &input.job_id, "verified.json");
    write_json(ports, &key, &result).await?;
    ports
        .jobs
        .update(
            &input.job_id,
            JobPatch {
                stage_ms: Some((Stage::Verify, elapsed_ms(ports, start))),
                ..JobPatch::default()
            },
            ports.clock.now(),
        )
        .await?;
    info!(job_id = %input.job_id, correlation_id = input.correlation_id.as_deref().unwrap_or_default(), stage = "verify",
          rooms = result.rooms.len(), needs_review = result.needs_review, "room checks done");
    Ok(VerifyOutput {
        key,
        needs_review: result.needs_review,
        review_reasons: result.review_reasons,
    })
}

/// Runs every room check, replacing `checks`, `needs_review` and `review_reasons`.
pub fn apply_room_checks(result: &mut RoomsResult, confidence_threshold: f32) {
    let checks = run_room_checks(result);
    let mut reasons: Vec<String> = checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| format!("{}: {}", c.name, c.detail))
        .collect();
    for room in &result.rooms {
        if room.confidence < confidence_threshold {
            reasons.push(format!(
                "low_confidence: {} at {:.2} is under {:.2}",
                room.id, room.confidence, confidence_threshold
            ));
        }
    }
    result.checks = checks;
    result.needs_review = !reasons.is_empty();
    result.review_reasons = reasons;
}

/// The room checks, in a fixed order: `rooms_found`, `room_polygons_valid`,
/// `rooms_disjoint`, `rooms_labelled`, `room_sizes_plausible`.
pub fn run_room_checks(r: &RoomsResult) -> Vec<Check> {
    let mut checks = Vec::new();
    let n = r.rooms.len();
    checks.push(Check {
        name: "rooms_found".into(),
        passed: n > 0,
        detail: if n > 0 {
            format!("{n} room(s)")
        } else {
            "no enclosed room was found".into()
        },
    });
    let invalid: Vec<&str> = r
        .rooms
        .iter()
        .filter(|room| !polygon_valid(room, r.image.width, r.image.height))
        .map(|room| room.id.as_str())
        .collect();
    checks.push(Check {
        name: "room_polygons_valid".into(),
        passed: invalid.is_empty(),
        detail: if invalid.is_empty() {
            "every outline has 3+ points inside the image and a positive area".into()
        } else {
            format!("invalid outline: {}", invalid.join(", "))
        },
    });
    let mut overlapping = Vec::new();
    for (i, a) in r.rooms.iter().enumerate() {
        for b in &r.rooms[i + 1..] {
            let f = overlap_fraction(&a.polygon, &b.polygon);
            if f > MAX_OVERLAP {
                overlapping.push(format!("{} and {} ({:.0}%)", a.id, b.id, f * 100.0));
            }
        }
    }
    checks.push(Check {
        name: "rooms_disjoint".into(),
        passed: overlapping.is_empty(),
        detail: if overlapping.is_empty() {
            "no two rooms share floor space".into()
        } else {
            format!("overlapping: {}", overlapping.join(", "))
        },
    });
    let labelled = r.rooms.iter().filter(|room| room.label.is_some()).count();
    checks.push(Check {
        name: "rooms_labelled".into(),
        passed: n == 0 || labelled > 0,
        detail: if n == 0 || labelled > 0 {
            format!("{labelled} of {n} room(s) labelled")
        } else {
            "no room carries a label: nothing written on the plan names them".into()
        },
    });
    let oversized = oversized_rooms(&r.rooms);
    checks.push(Check {
        name: "room_sizes_plausible".into(),
        passed: oversized.is_empty(),
        detail: if oversized.is_empty() {
            format!("no room over {MAX_AREA_RATIO} times the median room")
        } else {
            format!("much larger than the rest: {}", oversized.join(", "))
        },
    });
    checks
}

/// Rooms (with 3 or more on the plan) over [`MAX_AREA_RATIO`] times the median area.
fn oversized_rooms(rooms: &[Room]) -> Vec<String> {
    if rooms.len() < 3 {
        return Vec::new();
    }
    let mut areas: Vec<f64> = rooms.iter().map(|r| r.area_px).collect();
    areas.sort_by(f64::total_cmp);
    let median = areas[areas.len() / 2];
    if !(median.is_finite() && median > 0.0) {
        return Vec::new();
    }
    rooms
        .iter()
        .filter(|r| r.area_px > MAX_AREA_RATIO * median)
        .map(|r| format!("{} ({:.0}x the median)", r.id, r.area_px / median))
        .collect()
}

fn polygon_valid(room: &Room, width: u32, height: u32) -> bool {
    let inside = |p: &[f64; 2], w: f64, h: f64| {
        p[0].is_finite()
            && p[1].is_finite()
            && (0.0..=w).contains(&p[0])
            && (0.0..=h).contains(&p[1])
    };
    room.polygon.len() >= 3
        && room.polygon.len() == room.polygon_normalised.len()
        && room.area_px.is_finite()
        && room.area_px > 0.0
        && room
            .polygon
            .iter()
            .all(|p| inside(p, f64::from(width), f64::from(height)))
        && room.polygon_normalised.iter().all(|p| inside(p, 1.0, 1.0))
}

/// The share of the smaller polygon that lies inside the other, estimated on a grid over
/// the two bounding boxes' intersection (exact enough for a review flag, and cheap).
fn overlap_fraction(a: &[[f64; 2]], b: &[[f64; 2]]) -> f64 {
    const GRID: usize = 48;
    let (Some(ba), Some(bb)) = (bounds(a), bounds(b)) else {
        return 0.0;
    };
    let x0 = ba[0].max(bb[0]);
    let y0 = ba[1].max(bb[1]);
    let x1 = ba[2].min(bb[2]);
    let y1 = ba[3].min(bb[3]);
    if x1 <= x0 || y1 <= y0 {
        return 0.0;
    }
    let cell = ((x1 - x0) / GRID as f64) * ((y1 - y0) / GRID as f64);
    let mut both = 0usize;
    for j in 0..GRID {
        for i in 0..GRID {
            let p = [
                x0 + (i as f64 + 0.5) * (x1 - x0) / GRID as f64,
                y0 + (j as f64 + 0.5) * (y1 - y0) / GRID as f64,
            ];
            if contains(a, p) && contains(b, p) {
                both += 1;
            }
        }
    }
    let smaller = shoelace(a).min(shoelace(b));
    if smaller <= 0.0 {
        return 0.0;
    }
    (both as f64 * cell / smaller).min(1.0)
}

fn bounds(poly: &[[f64; 2]]) -> Option<[f64; 4]> {
    let first = poly.first()?;
    Some(poly.iter().fold(
        [first[0], first[1], first[0], first[1]],
        |[x0, y0, x1, y1], p| [x0.min(p[0]), y0.min(p[1]), x1.max(p[0]), y1.max(p[1])],
    ))
}

/// Even-odd point-in-polygon test.
fn contains(poly: &[[f64; 2]], p: [f64; 2]) -> bool {
    let mut inside = false;
    let mut j = poly.len().wrapping_sub(1);
    for i in 0..poly.len() {
        let (a, b) = (poly[i], poly[j]);
        if (a[1] > p[1]) != (b[1] > p[1]) {
            let x = a[0] + (p[1] - a[1]) * (b[0] - a[0]) / (b[1] - a[1]);
            if p[0] < x {
                inside = !inside;
            }
        }
        j = i;
    }
    inside
}

fn shoelace(poly: &[[f64; 2]]) -> f64 {
    let n = poly.len();
    if n < 3 {
        return 0.0;
    }
    let twice: f64 = (0..n)
        .map(|i| {
            let (a, b) = (poly[i], poly[(i + 1) % n]);
            a[0] * b[1] - b[0] * a[1]
        })
        .sum();
    twice.abs() / 2.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::ImageSize;

    fn room(id: &str, x0: f64, y0: f64, x1: f64, y1: f64, confidence: f32) -> Room {
        let polygon = vec![[x0, y0], [x1, y0], [x1, y1], [x0, y1]];
        Room {
            id: id.into(),
            label: Some("Room".into()),
            polygon_normalised: polygon
                .iter()
                .map(|p| [p[0] / 100.0, p[1] / 100.0])
                .collect(),
            polygon,
            area_px: (x1 - x0) * (y1 - y0),
            area_m2: None,
            confidence,
        }
    }

    fn plan(rooms: Vec<Room>) -> RoomsResult {
        let mut r = RoomsResult::new(ImageSize {
            width: 100,
            height: 100,
        });
        r.rooms = rooms;
        r
    }

    #[test]
    fn two_adjacent_rooms_pass() {
        let mut r = plan(vec![
            room("room_1", 0.0, 0.0, 50.0, 50.0, 0.95),
            room("room_2", 50.0, 0.0, 100.0, 50.0, 0.9),
        ]);
        apply_room_checks(&mut r, 0.8);
        assert!(!r.needs_review, "{:?}", r.review_reasons);
        assert_eq!(r.checks.len(), 5);
        assert!(r.checks.iter().all(|c| c.passed));
    }

    #[test]
    fn no_rooms_overlap_and_low_confidence_need_review() {
        let mut r = plan(Vec::new());
        apply_room_checks(&mut r, 0.8);
        assert!(r.needs_review);
        assert!(r.review_reasons[0].starts_with("rooms_found"));

        let mut r = plan(vec![
            room("room_1", 0.0, 0.0, 60.0, 60.0, 0.95),
            room("room_2", 40.0, 40.0, 100.0, 100.0, 0.95),
        ]);
        apply_room_checks(&mut r, 0.8);
        assert!(
            r.review_reasons
                .iter()
                .any(|m| m.starts_with("rooms_disjoint"))
        );

        let mut r = plan(vec![room("room_1", 0.0, 0.0, 60.0, 60.0, 0.5)]);
        apply_room_checks(&mut r, 0.8);
        assert_eq!(r.review_reasons.len(), 1);
        assert!(r.review_reasons[0].contains("low_confidence: room_1"));

        let mut r = plan(vec![room("room_1", 0.0, 0.0, 160.0, 60.0, 0.9)]);
        apply_room_checks(&mut r, 0.8);
        assert!(r.review_reasons[0].starts_with("room_polygons_valid"));
    }

    #[test]
    fn a_plan_with_no_label_at_all_goes_to_review() {
        let mut rooms = vec![
            room("room_1", 0.0, 0.0, 50.0, 50.0, 0.95),
            room("room_2", 50.0, 0.0, 100.0, 50.0, 0.95),
        ];
        rooms.iter_mut().for_each(|r| r.label = None);
        let mut r = plan(rooms.clone());
        apply_room_checks(&mut r, 0.8);
        assert!(r.needs_review);
        assert!(r.review_reasons[0].starts_with("rooms_labelled: no room"));
        // One label is enough: the others may simply have nothing written in them.
        rooms[0].label = Some("Kitchen".into());
        let mut r = plan(rooms);
        apply_room_checks(&mut r, 0.8);
        assert!(!r.needs_review, "{:?}", r.review_reasons);
    }

    #[test]
    fn a_room_much_larger_than_the_rest_goes_to_review() {
        let mut r = plan(vec![
            room("room_1", 0.0, 0.0, 10.0, 10.0, 0.95),
            room("room_2", 10.0, 0.0, 20.0, 10.0, 0.95),
            room("room_3", 20.0, 0.0, 30.0, 10.0, 0.95),
            room("room_4", 0.0, 10.0, 100.0, 100.0, 0.95),
        ]);
        apply_room_checks(&mut r, 0.8);
        assert_eq!(r.review_reasons.len(), 1, "{:?}", r.review_reasons);
        assert!(
            r.review_reasons[0]
                .starts_with("room_sizes_plausible: much larger than the rest: room_4"),
            "{:?}",
            r.review_reasons
        );
        // Rooms of ordinary sizes pass.
        let mut r = plan(vec![
            room("room_1", 0.0, 0.0, 10.0, 10.0, 0.95),
            room("room_2", 10.0, 0.0, 30.0, 20.0, 0.95),
            room("room_3", 30.0, 0.0, 60.0, 30.0, 0.95),
        ]);
        apply_room_checks(&mut r, 0.8);
        assert!(!r.needs_review, "{:?}", r.review_reasons);
    }
}
