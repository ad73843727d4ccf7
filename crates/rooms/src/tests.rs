//! The detector on rendered plans: a synthetic two-room plan and a real r2v annotation.

use super::eval::{greedy_match, iou_matrix, score_plan};
use super::r2v::{RenderOptions, parse, render};
use super::*;

const R2V_PLAN: &str = include_str!("../../../fixtures/floorplans/r2v-00_02.txt");

const TWO_ROOMS: &str = "0\t0\t200\t0\twall\n\
    200\t0\t200\t100\twall\n\
    200\t100\t0\t100\twall\n\
    0\t100\t0\t0\twall\n\
    100\t0\t100\t100\twall\n\
    100\t30\t100\t70\tdoor\n\
    0\t40\t0\t70\tdoor\n\
    40\t45\t60\t55\tbedroom\n\
    140\t45\t160\t55\tkitchen\n\
    150\t20\t170\t30\ttoilet\n";

fn png(image: &GrayImage) -> Vec<u8> {
    let mut out = Vec::new();
    image::DynamicImage::ImageLuma8(image.clone())
        .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .expect("encodes");
    out
}

#[test]
fn two_rooms_with_door_gaps_are_found_with_their_outlines() {
    let rendered = render(
        &parse(TWO_ROOMS).expect("parses"),
        &RenderOptions::default(),
    )
    .expect("renders");
    let opts = RoomOptions {
        pixels_per_metre: Some(40.0),
        ..RoomOptions::default()
    };
    let result = detect_rooms(&png(&rendered.image), MediaType::Png, &opts).expect("detects");
    assert_eq!(result.kind, docpipe_core::DocumentKind::Blueprint);
    assert_eq!(result.image.width, rendered.image.width());
    assert_eq!(result.rooms.len(), 2, "{result:#?}");
    let (w, h) = (
        f64::from(result.image.width),
        f64::from(result.image.height),
    );
    for (room, id) in result.rooms.iter().zip(["room_1", "room_2"]) {
        assert_eq!(room.id, id);
        assert!(room.polygon.len() >= 4, "{room:?}");
        // Sure enough to pass review, though less than a room all of drawn walls: part
        // of each outline is a doorway the detector closed.
        assert!(room.confidence > 0.8 && room.confidence < 0.95, "{room:?}");
        for (p, n) in room.polygon.iter().zip(&room.polygon_normalised) {
            assert!((p[0] / w - n[0]).abs() < 1e-5 && (p[1] / h - n[1]).abs() < 1e-5);
        }
        // Each room is 100x100 units at 2 px/unit, less a 14 px wall: about 186 px square.
        assert!(
            (room.area_px - 186.0 * 186.0).abs() < 186.0 * 8.0,
            "{}",
            room.area_px
        );
        let m2 = room.area_m2.expect("scale given");
        assert!((m2 - room.area_px / 1600.0).abs() < 0.01);
    }
    // Left room first (reading order), and its outline lies in the left half.
    assert!(result.rooms[0].polygon.iter().all(|p| p[0] < w / 2.0));
}

/// A real floor (r2v 00_02): all ten rooms, among them a closet whose doorway spans the
/// corridor's whole width and a washing room whose door meets a wall junction.
#[test]
fn a_real_r2v_plan_is_matched_to_its_ground_truth() {
    assert_all_found("r2v-00_02", R2V_PLAN, 10, 0.95);
}

/// A room and a balcony whose wall to the room is all door: the doorway spans the
/// balcony's whole depth, so its gap is no band between wall ends but the balcony's own
/// width; the swing drawn from the hinge at the balcony's end (through the balcony and off
/// the sheet, its leaf along the balcony's wall) closes it.
const ALL_DOOR: &str = "60\t0\t260\t0\twall\n\
    260\t0\t260\t100\twall\n\
    260\t100\t60\t100\twall\n\
    60\t0\t60\t100\twall\n\
    0\t20\t60\t20\twall\n\
    0\t80\t60\t80\twall\n\
    0\t20\t0\t80\twall\n\
    60\t24\t60\t76\tdoor\n\
    15\t45\t45\t55\tbalcony\n\
    130\t45\t190\t55\tbedroom\n";

/// The plan's ground-truth rooms are `rooms`, all found, with at least `iou` on average.
fn assert_all_found(name: &str, plan: &str, rooms: usize, iou: f64) {
    let score = score_plan(name, plan).expect("scores");
    assert_eq!(score.truth_rooms, rooms, "{score:?}");
    assert_eq!(score.detected_rooms, rooms, "{score:?}");
    assert_eq!(score.matched, rooms, "{score:?}");
    assert!(score.mean_iou > iou, "{score:?}");
}

#[test]
fn a_wall_that_is_all_door_is_closed_where_its_swing_is_drawn() {
    assert_all_found("all-door", ALL_DOOR, 2, 0.95);
}

/// A corridor with a shallow closet at its end, the wall between them all door: the door
/// is wider than the closet is deep, so it opens into the corridor, its leaf along the
/// corridor's wall. The doorway is far from either end of the band the corridor and closet
/// make together, and is closed where its swing is drawn all the same.
const CLOSET_OFF_CORRIDOR: &str = "0\t0\t50\t0\twall\n\
    50\t0\t50\t180\twall\n\
    50\t180\t0\t180\twall\n\
    0\t180\t0\t0\twall\n\
    0\t150\t50\t150\twall\n\
    3\t150\t47\t150\tdoor\n\
    10\t60\t40\t70\tcorridor\n\
    10\t160\t40\t170\tcloset\n";

#[test]
fn a_closet_whose_door_spans_it_is_told_from_the_corridor() {
    assert_all_found("closet", CLOSET_OFF_CORRIDOR, 2, 0.9);
}

/// A closed region with nothing written in it (a shaft) is not a room; with
/// `labelled_only` off it is.
#[test]
fn regions_without_writing_are_not_rooms() {
    let plan = "0\t0\t200\t0\twall\n\
        200\t0\t200\t100\twall\n\
        200\t100\t0\t100\twall\n\
        0\t100\t0\t0\twall\n\
        100\t0\t100\t100\twall\n\
        40\t45\t70\t55\tbedroom\n";
    let rendered =
        render(&parse(plan).expect("parses"), &RenderOptions::default()).expect("renders");
    assert_eq!(rendered.room_labels.len(), 1);
    let labelled = detect::detect(&rendered.image, &DetectParams::default());
    assert_eq!(labelled.rooms.len(), 1);
    assert!(labelled.rooms[0].bbox[2] < rendered.image.width() / 2);
    let all = detect::detect(
        &rendered.image,
        &DetectParams {
            labelled_only: false,
            ..DetectParams::default()
        },
    );
    assert_eq!(all.rooms.len(), 2);
}

/// A hall with no writing in it, only a fixture's outline that its door's swing crosses
/// nearly along it: the two close strokes on each row there are no line of text, since the
/// swing is a recognised door's, so the hall is no room.
#[test]
fn a_door_swing_crossing_a_fixture_is_no_writing() {
    let plan = "0\t0\t200\t0\twall\n\
        200\t0\t200\t100\twall\n\
        200\t100\t0\t100\twall\n\
        0\t100\t0\t0\twall\n\
        100\t0\t100\t100\twall\n\
        110\t0\t160\t0\tdoor\n\
        120\t6\t155\t40\tentrance\n\
        40\t45\t70\t55\tbedroom\n";
    let rendered =
        render(&parse(plan).expect("parses"), &RenderOptions::default()).expect("renders");
    assert_eq!(rendered.room_labels.len(), 1);
    let found = detect::detect(&rendered.image, &DetectParams::default());
    assert_eq!(found.rooms.len(), 1, "{:?}", found.rooms);
    assert!(found.rooms[0].bbox[2] < rendered.image.width() / 2);
}

#[test]
fn outlines_are_in_original_pixels_when_the_sheet_is_downscaled() {
    let rendered = render(
        &parse(TWO_ROOMS).expect("parses"),
        &RenderOptions::default(),
    )
    .expect("renders");
    let full = rooms_in_image(rendered.image.clone(), &RoomOptions::default());
    let small = rooms_in_image(
        rendered.image.clone(),
        &RoomOptions {
            max_working_pixels: 40_000,
            ..RoomOptions::default()
        },
    );
    assert_eq!(full.rooms.len(), 2);
    assert_eq!(small.rooms.len(), 2);
    assert_eq!(small.image, full.image);
    for (a, b) in full.rooms.iter().zip(&small.rooms) {
        let ratio = b.area_px / a.area_px;
        assert!(
            (0.85..1.2).contains(&ratio),
            "{} vs {}",
            a.area_px,
            b.area_px
        );
    }
}

#[test]
fn blank_and_tiny_images_have_no_rooms() {
    let blank = GrayImage::from_pixel(300, 200, image::Luma([255]));
    assert!(
        rooms_in_image(blank, &RoomOptions::default())
            .rooms
            .is_empty()
    );
    let tiny = GrayImage::from_pixel(3, 3, image::Luma([0]));
    assert!(
        rooms_in_image(tiny, &RoomOptions::default())
            .rooms
            .is_empty()
    );
    let err = detect_rooms(b"not an image", MediaType::Png, &RoomOptions::default())
        .expect_err("refused");
    assert_eq!(err.code, docpipe_core::ErrorCode::DocumentUnreadable);
}

#[test]
fn a_light_on_dark_blueprint_is_read_like_a_dark_on_light_one() {
    let rendered = render(
        &parse(TWO_ROOMS).expect("parses"),
        &RenderOptions::default(),
    )
    .expect("renders");
    let mut inverted = rendered.image.clone();
    image::imageops::invert(&mut inverted);
    let result = rooms_in_image(inverted, &RoomOptions::default());
    assert_eq!(result.rooms.len(), 2);
}

#[test]
fn a_jpeg_scan_inside_a_pdf_is_read() {
    let rendered = render(
        &parse(TWO_ROOMS).expect("parses"),
        &RenderOptions::default(),
    )
    .expect("renders");
    let mut jpeg = Vec::new();
    image::DynamicImage::ImageLuma8(rendered.image.clone())
        .write_to(
            &mut std::io::Cursor::new(&mut jpeg),
            image::ImageFormat::Jpeg,
        )
        .expect("encodes");
    let (w, h) = rendered.image.dimensions();
    let mut pdf = format!(
        "%PDF-1.4\n1 0 obj << /Type /XObject /Subtype /Image /Width {w} /Height {h} \
         /ColorSpace /DeviceGray /BitsPerComponent 8 /Filter /DCTDecode /Length {} >>\nstream\n",
        jpeg.len()
    )
    .into_bytes();
    pdf.extend_from_slice(&jpeg);
    pdf.extend_from_slice(b"\nendstream\nendobj\n%%EOF\n");
    let result = detect_rooms(&pdf, MediaType::Pdf, &RoomOptions::default()).expect("detects");
    assert_eq!(result.rooms.len(), 2);
}

#[test]
fn iou_of_identical_maps_is_one() {
    let map = [0, 1, 1, 2, 2, 2];
    let ious = iou_matrix(&map, &map, 2, 2);
    let m = greedy_match(&ious, 2, 2);
    assert_eq!(m.len(), 2);
    assert!(m.iter().all(|p| (p.2 - 1.0).abs() < 1e-12));
}

/// Not a test: writes a picture per plan of `DOCPIPE_R2V_DIR` to `DOCPIPE_DEBUG_OUT`
/// (ink light gray, walls black, closed doorways blue, detected rooms tinted, missed
/// ground-truth floor red), drawn at `DOCPIPE_SCALE` pixels per unit (2 unless set).
/// `cargo test --release -p docpipe-rooms --lib dump_stages -- --ignored`
#[test]
#[ignore]
fn dump_stages() {
    let Ok(dir) = std::env::var("DOCPIPE_R2V_DIR") else {
        return;
    };
    let out = std::env::var("DOCPIPE_DEBUG_OUT").unwrap_or_else(|_| "/tmp/dbg".into());
    std::fs::create_dir_all(&out).expect("out dir");
    // The score table is `docpipe floorplan eval`'s; this adds the masks behind it.
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    files.sort();
    for path in files {
        let text = std::fs::read_to_string(&path).expect("reads");
        let scale = std::env::var("DOCPIPE_SCALE")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(2.0);
        let opts = RenderOptions {
            scale,
            ..RenderOptions::default()
        };
        let rendered = render(&parse(&text).expect("parses"), &opts).expect("renders");
        let params = DetectParams::default();
        let (ink, walls, bridged, marks) = detect::debug_masks(&rendered.image, &params);
        let det = detect::detect(&rendered.image, &params);
        let (w, h) = rendered.image.dimensions();
        let img = image::RgbImage::from_fn(w, h, |x, y| {
            let i = (y as usize) * (w as usize) + x as usize;
            let found = det.room_map[i];
            let truth = rendered.room_map[i];
            image::Rgb(if walls[i] {
                [0, 0, 0]
            } else if bridged[i] {
                [0, 0, 255]
            } else if marks[i] {
                [0, 160, 0]
            } else if ink[i] {
                [150, 150, 150]
            } else if found > 0 {
                super::eval::room_colour(found, 140, 110)
            } else if truth > 0 {
                [255, 60, 60]
            } else {
                [255, 255, 255]
            })
        });
        let n_truth = rendered.room_labels.len();
        let n_found = det.rooms.len();
        let ious = iou_matrix(&rendered.room_map, &det.room_map, n_truth, n_found);
        let bbox = |map: &[u32], k: u32| {
            let mut b = [u32::MAX, u32::MAX, 0, 0];
            for (i, &v) in map.iter().enumerate() {
                if v == k {
                    let (x, y) = ((i % w as usize) as u32, (i / w as usize) as u32);
                    b = [b[0].min(x), b[1].min(y), b[2].max(x), b[3].max(y)];
                }
            }
            b
        };
        println!(
            "== {} t={} truth={n_truth} found={n_found}",
            path.display(),
            det.wall_thickness
        );
        for i in 0..n_truth {
            let best = (0..n_found)
                .max_by(|&a, &b| ious[i * n_found + a].total_cmp(&ious[i * n_found + b]));
            println!(
                "  truth {i} {:?} {:?} best {:?} {:.3}",
                rendered.room_labels[i],
                bbox(&rendered.room_map, i as u32 + 1),
                best,
                best.map(|j| ious[i * n_found + j]).unwrap_or(0.0)
            );
        }
        for j in 0..n_found {
            println!(
                "  found {j} {:?} area {}",
                det.rooms[j].bbox, det.rooms[j].area
            );
        }
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        img.save(format!("{out}/{}.png", &name[..5]))
            .expect("saves");
    }
}

/// A balcony off a room, the wall between them all door: the room's wall runs on straight
/// past the doorway at both ends and stops flush with the balcony's sides, so the doorway
/// is closed there and the balcony is a room of its own.
#[test]
fn a_balcony_whose_wall_is_all_door_is_a_room_of_its_own() {
    let plan = "50\t0\t250\t0\twall\n\
        250\t0\t250\t150\twall\n\
        250\t150\t50\t150\twall\n\
        50\t150\t50\t0\twall\n\
        0\t40\t50\t40\twall\n\
        0\t40\t0\t110\twall\n\
        0\t110\t50\t110\twall\n\
        50\t40\t50\t110\tdoor\n\
        10\t70\t40\t80\tbalcony\n\
        120\t70\t180\t80\tliving_room\n";
    assert_all_found("balcony", plan, 2, 0.9);
}

/// A closet no bigger than a doorway, walled on every side and labelled, is a room: a gap
/// is closed as a doorway only where it opens onto free space on both sides.
#[test]
fn a_closet_as_small_as_a_doorway_is_a_room() {
    let plan = "0\t0\t200\t0\twall\n\
        200\t0\t200\t100\twall\n\
        200\t100\t0\t100\twall\n\
        0\t100\t0\t0\twall\n\
        100\t0\t100\t100\twall\n\
        100\t60\t125\t60\twall\n\
        125\t60\t125\t100\twall\n\
        100\t20\t100\t50\tdoor\n\
        40\t45\t70\t55\tbedroom\n\
        104\t75\t121\t85\tPS\n\
        150\t30\t180\t40\tkitchen\n";
    assert_all_found("shaft", plan, 3, 0.85);
}
