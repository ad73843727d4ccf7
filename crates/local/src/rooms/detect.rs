//! Rooms from a grayscale plan: binarise (Otsu; light-on-dark sheets inverted), estimate
//! the wall thickness from ink run lengths, keep walls with a morphological opening sized
//! from that thickness (hairlines, text, furniture and door swings go), drop small
//! leftovers, bridge door gaps, then take the free-space regions that walls enclose.
//!
//! Door gaps are bridged between facing wall ends, not by a directional closing: a free
//! run along a row (or column) that is bounded by wall on both sides and at most
//! `gap_factor` wall thicknesses long is a gap candidate, and consecutive rows whose
//! candidates start and end at the same places form a band. A doorway's band is as thick
//! as the wall; the space between two parallel walls (a corridor, a closet) forms a band as
//! long as the corridor, and is left open. So the gap length can be generous without
//! closing corridors, and it is derived from the wall thickness, never absolute.

use image::{GrayImage, Luma};
use imageproc::contours::{BorderType, find_contours};
use imageproc::distance_transform::Norm;
use imageproc::geometry::approximate_polygon_dp;
use imageproc::morphology::open;
use imageproc::point::Point;
use imageproc::region_labelling::{Connectivity, connected_components};

/// Tunables of the detector, all relative to the estimated wall thickness `t`.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectParams {
    /// Gaps up to `gap_factor * t` long are bridged (a 0.9 m door in a 0.15 m wall is 6t;
    /// wide openings and double doors reach 12-16t).
    pub gap_factor: f64,
    /// Regions smaller than `min_room_factor * t^2` are not rooms (shafts, wall notches).
    pub min_room_factor: f64,
    /// Douglas-Peucker tolerance of the outlines, in working pixels.
    pub simplify_epsilon: f64,
}

impl Default for DetectParams {
    fn default() -> Self {
        Self {
            gap_factor: 16.0,
            min_room_factor: 4.0,
            simplify_epsilon: 1.0,
        }
    }
}

/// One room at working resolution.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectedRoom {
    /// Outline through the centres of the room's boundary pixels.
    pub polygon: Vec<[f64; 2]>,
    /// Free pixels in the room.
    pub area: u64,
    /// `[x0, y0, x1, y1]`, inclusive.
    pub bbox: [u32; 4],
    pub confidence: f32,
}

/// What the detector found, at working resolution.
#[derive(Debug, Clone)]
pub struct Detection {
    pub width: u32,
    pub height: u32,
    /// Estimated wall thickness, pixels.
    pub wall_thickness: u32,
    /// Longest bridged gap, pixels.
    pub gap_len: u32,
    /// Per pixel: 0 outside every room, `i + 1` inside `rooms[i]`.
    pub room_map: Vec<u32>,
    pub rooms: Vec<DetectedRoom>,
}

/// Detects rooms on a grayscale plan.
pub fn detect(gray: &GrayImage, params: &DetectParams) -> Detection {
    let (w, h) = gray.dimensions();
    let empty = |t: u32| Detection {
        width: w,
        height: h,
        wall_thickness: t,
        gap_len: 0,
        room_map: vec![0; (w as usize) * (h as usize)],
        rooms: Vec::new(),
    };
    if w < 8 || h < 8 {
        return empty(0);
    }
    let ink = binarise(gray);
    let Some(t) = wall_thickness(&ink, w, h) else {
        return empty(0);
    };
    let walls = wall_mask(&ink, w, h, t);
    drop(ink);
    let gap_len = (params.gap_factor * f64::from(t)).round().max(2.0) as u32;
    let mut bridged = walls.clone();
    bridge_gaps(&walls, &mut bridged, w, h, t, gap_len);
    drop(walls);
    let min_area = (params.min_room_factor * f64::from(t) * f64::from(t)).max(16.0) as u64;
    let (room_map, rooms) = rooms_of(&bridged, w, h, min_area, params.simplify_epsilon);
    Detection {
        width: w,
        height: h,
        wall_thickness: t,
        gap_len,
        room_map,
        rooms,
    }
}

/// Ink pixels (true) by Otsu's threshold; a sheet that is mostly "ink" is light-on-dark
/// (a classic cyanotype blueprint) and is inverted.
fn binarise(gray: &GrayImage) -> Vec<bool> {
    let level = imageproc::contrast::otsu_level(gray);
    let mut ink: Vec<bool> = gray.as_raw().iter().map(|&v| v <= level).collect();
    let dark = ink.iter().filter(|&&b| b).count();
    if dark * 2 > ink.len() {
        ink.iter_mut().for_each(|b| *b = !*b);
    }
    ink
}

/// The most common thickness of ink strokes at least 3 px thick: for each ink pixel, the
/// shorter of its horizontal and vertical runs. Walls dominate a plan's ink; hairlines
/// (1-2 px) are ignored unless nothing else is drawn.
fn wall_thickness(ink: &[bool], w: u32, h: u32) -> Option<u32> {
    const CAP: usize = 128;
    let (wu, hu) = (w as usize, h as usize);
    let mut hrun = vec![0u16; wu * hu];
    for y in 0..hu {
        let row = y * wu;
        let mut x = 0;
        while x < wu {
            if !ink[row + x] {
                x += 1;
                continue;
            }
            let s = x;
            while x < wu && ink[row + x] {
                x += 1;
            }
            let len = (x - s).min(u16::MAX as usize) as u16;
            hrun[row + s..row + x].fill(len);
        }
    }
    let mut hist = [0u64; CAP + 1];
    for x in 0..wu {
        let mut y = 0;
        while y < hu {
            if !ink[y * wu + x] {
                y += 1;
                continue;
            }
            let s = y;
            while y < hu && ink[y * wu + x] {
                y += 1;
            }
            let vlen = y - s;
            for yy in s..y {
                let m = (hrun[yy * wu + x] as usize).min(vlen).min(CAP);
                hist[m] += 1;
            }
        }
    }
    let smooth = |v: usize| hist[v - 1] + 2 * hist[v] + hist.get(v + 1).copied().unwrap_or(0);
    let best = |from: usize| {
        (from..CAP)
            .filter(|&v| hist[v] > 0)
            .max_by_key(|&v| (smooth(v), std::cmp::Reverse(v)))
    };
    let total: u64 = hist.iter().sum();
    if total == 0 {
        return None;
    }
    best(3).or_else(|| best(1)).map(|v| v as u32)
}

/// Thick strokes only: an opening with a square a little under the wall thickness, then
/// components too small to be walls removed.
fn wall_mask(ink: &[bool], w: u32, h: u32, t: u32) -> Vec<bool> {
    let k = if t < 3 {
        0
    } else {
        ((f64::from(t) * 0.3).round() as u32).clamp(1, 60) as u8
    };
    let img = GrayImage::from_fn(w, h, |x, y| {
        Luma([if ink[(y as usize) * (w as usize) + x as usize] {
            255
        } else {
            0
        }])
    });
    let opened = if k == 0 {
        img
    } else {
        open(&img, Norm::LInf, k)
    };
    let labels = connected_components(&opened, Connectivity::Eight, Luma([0u8]));
    let n = labels.pixels().map(|p| p.0[0]).max().unwrap_or(0) as usize;
    let mut boxes = vec![[u32::MAX, u32::MAX, 0u32, 0u32]; n + 1];
    for (x, y, p) in labels.enumerate_pixels() {
        let b = &mut boxes[p.0[0] as usize];
        b[0] = b[0].min(x);
        b[1] = b[1].min(y);
        b[2] = b[2].max(x);
        b[3] = b[3].max(y);
    }
    let min_extent = 4 * t;
    let keep: Vec<bool> = boxes
        .iter()
        .map(|b| b[2] >= b[0] && (b[2] - b[0] + 1).max(b[3] - b[1] + 1) >= min_extent)
        .collect();
    labels
        .pixels()
        .map(|p| {
            let l = p.0[0] as usize;
            l != 0 && keep[l]
        })
        .collect()
}

/// Bridges door gaps in both directions; see the module doc.
fn bridge_gaps(walls: &[bool], out: &mut [bool], w: u32, h: u32, t: u32, gap_len: u32) {
    let (wu, hu) = (w as usize, h as usize);
    let max_band = (f64::from(t) * 1.5).ceil() as usize + 2;
    let tol = (t as usize / 3).max(1);
    // Rows: horizontal runs, gaps in horizontal walls.
    let fills = bands(hu, wu, gap_len as usize, max_band, tol, |line, i| {
        walls[line * wu + i]
    });
    for (line, a, b) in fills {
        out[line * wu + a..line * wu + b].fill(true);
    }
    // Columns: vertical runs, gaps in vertical walls.
    let fills = bands(wu, hu, gap_len as usize, max_band, tol, |line, i| {
        walls[i * wu + line]
    });
    for (line, a, b) in fills {
        for i in a..b {
            out[i * wu + line] = true;
        }
    }
}

/// Runs to fill, as `(line, start, end)` with `end` exclusive, for `lines` lines of
/// `len` pixels where `wall(line, i)` tells a wall pixel.
fn bands(
    lines: usize,
    len: usize,
    gap_len: usize,
    max_band: usize,
    tol: usize,
    wall: impl Fn(usize, usize) -> bool,
) -> Vec<(usize, usize, usize)> {
    struct Band {
        a: usize,
        b: usize,
        runs: Vec<(usize, usize, usize)>,
        last: usize,
    }
    let near = |p: usize, q: usize| p.abs_diff(q) <= tol;
    let mut open: Vec<Band> = Vec::new();
    let mut accepted = Vec::new();
    // How far wall extends across the lines at position `i`, from line `mid` both ways.
    let across = |mid: usize, i: usize| {
        let up = (0..=mid).rev().take_while(|&l| wall(l, i)).count();
        let down = (mid + 1..lines).take_while(|&l| wall(l, i)).count();
        up + down
    };
    let close = |band: Band, accepted: &mut Vec<(usize, usize, usize)>| {
        let height = band.runs.len();
        if height > max_band {
            return;
        }
        // A doorway has a wall end at one jamb at least: wall that is no thicker across
        // than the band. Where both jambs are long perpendicular walls, the band is where
        // two doorways' spans happen to overlap across a room, not a gap in a wall.
        let (line, a, b) = band.runs[height / 2];
        let slack = height + 2 * tol + 2;
        let end_a = a > 0 && across(line, a - 1) <= slack;
        let end_b = b < len && across(line, b) <= slack;
        if end_a || end_b {
            accepted.extend(band.runs);
        }
    };
    for line in 0..lines {
        let mut runs = Vec::new();
        let mut i = 0;
        while i < len && !wall(line, i) {
            i += 1;
        }
        // Now at a wall pixel (or the end): free runs between wall pixels.
        while i < len {
            while i < len && wall(line, i) {
                i += 1;
            }
            let s = i;
            while i < len && !wall(line, i) {
                i += 1;
            }
            if i < len && i > s && i - s <= gap_len {
                runs.push((s, i));
            }
        }
        let mut next: Vec<Band> = Vec::with_capacity(runs.len());
        for (a, b) in runs {
            let found = open
                .iter()
                .position(|g| g.last + 1 == line && near(g.a, a) && near(g.b, b));
            match found {
                Some(j) => {
                    let mut g = open.swap_remove(j);
                    g.a = a;
                    g.b = b;
                    g.last = line;
                    // Past max_band + 1 rows the band is rejected anyway: stop collecting.
                    if g.runs.len() <= max_band {
                        g.runs.push((line, a, b));
                    }
                    next.push(g);
                }
                None => next.push(Band {
                    a,
                    b,
                    runs: vec![(line, a, b)],
                    last: line,
                }),
            }
        }
        for g in open.drain(..) {
            close(g, &mut accepted);
        }
        open = next;
    }
    for g in open.drain(..) {
        close(g, &mut accepted);
    }
    accepted
}

/// Free-space regions not touching the image border and at least `min_area` pixels.
fn rooms_of(
    walls: &[bool],
    w: u32,
    h: u32,
    min_area: u64,
    epsilon: f64,
) -> (Vec<u32>, Vec<DetectedRoom>) {
    let wu = w as usize;
    let free = GrayImage::from_fn(w, h, |x, y| {
        Luma([if walls[(y as usize) * wu + x as usize] {
            0
        } else {
            255
        }])
    });
    let labels = connected_components(&free, Connectivity::Four, Luma([0u8]));
    let n = labels.pixels().map(|p| p.0[0]).max().unwrap_or(0) as usize;
    #[derive(Clone)]
    struct Stats {
        area: u64,
        bbox: [u32; 4],
        border: bool,
    }
    let mut stats = vec![
        Stats {
            area: 0,
            bbox: [u32::MAX, u32::MAX, 0, 0],
            border: false,
        };
        n + 1
    ];
    for (x, y, p) in labels.enumerate_pixels() {
        let s = &mut stats[p.0[0] as usize];
        s.area += 1;
        s.bbox = [
            s.bbox[0].min(x),
            s.bbox[1].min(y),
            s.bbox[2].max(x),
            s.bbox[3].max(y),
        ];
        if x == 0 || y == 0 || x + 1 == w || y + 1 == h {
            s.border = true;
        }
    }
    let mut chosen: Vec<(u32, DetectedRoom)> = Vec::new();
    for (label, s) in stats.iter().enumerate().skip(1) {
        if s.border || s.area < min_area {
            continue;
        }
        let Some(polygon) = outline(&labels, label as u32, s.bbox, epsilon) else {
            continue;
        };
        let [x0, y0, x1, y1] = s.bbox;
        let box_area = u64::from(x1 - x0 + 1) * u64::from(y1 - y0 + 1);
        let solidity = s.area as f64 / box_area.max(1) as f64;
        let mut confidence = 0.5 + 0.5 * solidity.clamp(0.0, 1.0);
        if s.area < 3 * min_area {
            confidence *= 0.9;
        }
        chosen.push((
            label as u32,
            DetectedRoom {
                polygon,
                area: s.area,
                bbox: s.bbox,
                confidence: confidence as f32,
            },
        ));
    }
    // Reading order: by top edge in bands of a few wall thicknesses, then left edge.
    chosen.sort_by_key(|(_, r)| (r.bbox[1] / 16, r.bbox[0]));
    let mut index = vec![0u32; n + 1];
    for (i, (label, _)) in chosen.iter().enumerate() {
        index[*label as usize] = i as u32 + 1;
    }
    let room_map = labels.pixels().map(|p| index[p.0[0] as usize]).collect();
    (room_map, chosen.into_iter().map(|(_, r)| r).collect())
}

/// The outer contour of one labelled region, simplified.
fn outline(
    labels: &image::ImageBuffer<Luma<u32>, Vec<u32>>,
    label: u32,
    bbox: [u32; 4],
    epsilon: f64,
) -> Option<Vec<[f64; 2]>> {
    let [x0, y0, x1, y1] = bbox;
    // One pixel of padding so the contour never touches the crop's edge.
    let (cw, ch) = (x1 - x0 + 3, y1 - y0 + 3);
    let crop = GrayImage::from_fn(cw, ch, |x, y| {
        let inside = x >= 1
            && y >= 1
            && x <= cw - 2
            && y <= ch - 2
            && labels.get_pixel(x0 + x - 1, y0 + y - 1).0[0] == label;
        Luma([if inside { 255 } else { 0 }])
    });
    let contours = find_contours::<i32>(&crop);
    let outer = contours
        .into_iter()
        .filter(|c| c.border_type == BorderType::Outer && c.parent.is_none())
        .max_by_key(|c| c.points.len())?;
    let simplified: Vec<Point<i32>> = if outer.points.len() > 3 {
        approximate_polygon_dp(&outer.points, epsilon, true)
    } else {
        outer.points
    };
    let poly: Vec<[f64; 2]> = simplified
        .iter()
        .map(|p| {
            [
                f64::from(p.x) - 1.0 + f64::from(x0),
                f64::from(p.y) - 1.0 + f64::from(y0),
            ]
        })
        .collect();
    (poly.len() >= 3).then_some(poly)
}
