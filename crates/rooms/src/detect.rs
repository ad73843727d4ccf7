//! Rooms from a grayscale plan: binarise (Otsu; light-on-dark sheets inverted), estimate
//! the wall thickness from ink run lengths, keep walls with a morphological opening sized
//! from that thickness (hairlines, text, furniture and door swings go), drop small
//! leftovers, close slits between wall pieces and doorways, then take the free-space
//! regions that walls enclose and that have writing in them.
//!
//! A doorway is closed where its door symbol is drawn, since a gap with no door is an
//! opening that makes two spaces one room. Candidate gaps are bands: a free run along a row
//! (or column) bounded by wall on both sides and at most `gap_factor` wall thicknesses
//! long, over consecutive rows that start and end at the same places (as the band's first
//! row does). A doorway's band is as thick as the wall; the space between two parallel
//! walls (a corridor, a closet) forms a band as long as the corridor, and is left open. A
//! band is a door when a quarter-circle swing centred on one jamb, of about the gap's
//! length, and its leaf are drawn (or two half swings: a double door). Doors whose gap is
//! no band are found from their leaf: a straight thin stroke with a swing from one end
//! that reaches a wall, drawn as a lone curve (not a patch of writing any curve would
//! meet); where two leaves explain one swing, the better-fitting one is the door. A wall
//! that is all door (the doorway as wide as the room beyond it, so the gap merges with
//! the room into a band as long as the room) is closed where a swing spanning the band is
//! drawn from a line across it, checked strictly and not already some other door's swing.
//! Where the swing would lie off the sheet (and what is on the sheet of it is drawn), and
//! on plans drawn with no door symbols at all, a band is a doorway when one of its jambs
//! is a wall end.
//!
//! A closed region is a room only when something is written in it (rows crossing text cut
//! short strokes close together; a recognised door's swing is no writing): shafts, voids
//! and notches between walls carry no label. Everything is relative to the wall
//! thickness, never absolute.

use image::{GrayImage, Luma};
use imageproc::contours::{BorderType, find_contours};
use imageproc::distance_transform::Norm;
use imageproc::geometry::approximate_polygon_dp;
use imageproc::morphology::{close, dilate, open};
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
    /// Only regions with a label in them are rooms: some small mark of ink drawn free of
    /// the walls (a word, a number, a fixture). Closed regions with nothing written in
    /// them are shafts, voids and notches between walls. Sheets with no such marks at all
    /// (walls only) keep every region.
    pub labelled_only: bool,
    /// Gaps between two facing wall ends up to `door_factor * t` are doorways even where
    /// no door symbol is drawn.
    pub door_factor: f64,
}

impl Default for DetectParams {
    fn default() -> Self {
        Self {
            gap_factor: 40.0,
            min_room_factor: 1.0,
            simplify_epsilon: 1.0,
            labelled_only: true,
            door_factor: 8.0,
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
    /// Per pixel: whether it is wall (before doorways are closed).
    pub walls: Vec<bool>,
    pub rooms: Vec<DetectedRoom>,
}

/// Detects rooms on a grayscale plan; a sheet scanned askew is read turned straight
/// ([`crate::deskew`]) and what is found turned back onto it.
pub fn detect(gray: &GrayImage, params: &DetectParams) -> Detection {
    let (w, h) = gray.dimensions();
    if w >= 8 && h >= 8 {
        let ink = binarise(gray);
        if let Some(degrees) = crate::deskew::skew(&ink, w as usize, h as usize) {
            return detect_turned(gray, params, degrees);
        }
    }
    let edges = sheet_edges(gray.width(), gray.height(), |x, y| Some((x, y)));
    detect_straight(gray, params, &edges)
}

/// The sheet's four edges as lines of pixels on the image the detector reads, each pixel
/// once, in order along the edge; `to_image` maps a point of the sheet onto that image
/// (`None` off it).
fn sheet_edges(
    w: u32,
    h: u32,
    to_image: impl Fn(f64, f64) -> Option<(f64, f64)>,
) -> Vec<Vec<(u32, u32)>> {
    let (wf, hf) = (f64::from(w), f64::from(h));
    let line = |from: (f64, f64), to: (f64, f64), len: f64| {
        let steps = (2.0 * len).ceil() as usize;
        let mut out: Vec<(u32, u32)> = Vec::with_capacity(steps + 1);
        for k in 0..=steps {
            let f = k as f64 / steps.max(1) as f64;
            let (x, y) = (from.0 + f * (to.0 - from.0), from.1 + f * (to.1 - from.1));
            let Some((ix, iy)) = to_image(x, y).filter(|&(ix, iy)| ix >= 0.0 && iy >= 0.0) else {
                continue;
            };
            let p = (ix.floor() as u32, iy.floor() as u32);
            if out.last() != Some(&p) {
                out.push(p);
            }
        }
        out
    };
    vec![
        line((0.5, 0.5), (wf - 0.5, 0.5), wf),
        line((0.5, hf - 0.5), (wf - 0.5, hf - 0.5), wf),
        line((0.5, 0.5), (0.5, hf - 0.5), hf),
        line((wf - 0.5, 0.5), (wf - 0.5, hf - 0.5), hf),
    ]
}

/// A building cut off by the sheet's edge (a plan drawn to the edge, or turned so a corner
/// falls off it) has the rooms along that edge open onto it. Where walls run into an edge,
/// the edge between two of them (up to `span` apart) is closed like a wall: the walls
/// beyond the sheet would close it, and the paper outside a building never lies between
/// two of its walls along the edge but at its ends.
fn close_sheet_edge(bridged: &mut [bool], w: u32, edges: &[Vec<(u32, u32)>], span: usize) {
    let idx = |&(x, y): &(u32, u32)| (y as usize) * (w as usize) + x as usize;
    let mut closed = Vec::new();
    for edge in edges {
        let mut last_wall: Option<usize> = None;
        for (k, p) in edge.iter().enumerate() {
            if !bridged.get(idx(p)).copied().unwrap_or(false) {
                continue;
            }
            if let Some(j) = last_wall.filter(|&j| k - j > 1 && k - j <= span) {
                closed.extend(edge[j + 1..k].iter().map(idx));
            }
            last_wall = Some(k);
        }
    }
    for i in closed {
        if let Some(b) = bridged.get_mut(i) {
            *b = true;
        }
    }
}

/// [`detect_straight`] on the sheet turned by `degrees`, its masks and rooms mapped back.
fn detect_turned(gray: &GrayImage, params: &DetectParams, degrees: f64) -> Detection {
    let (w, h) = gray.dimensions();
    let turn = crate::deskew::Turn::new(w, h, degrees);
    let edges = sheet_edges(w, h, |x, y| {
        let (fx, fy) = turn.forward(x, y);
        (fx < f64::from(turn.width) && fy < f64::from(turn.height)).then_some((fx, fy))
    });
    let d = detect_straight(&turn.apply(gray), params, &edges);
    let (tw, th) = (d.width as usize, d.height as usize);
    let (wu, hu) = (w as usize, h as usize);
    let mut room_map = vec![0u32; wu * hu];
    let mut walls = vec![false; wu * hu];
    for y in 0..hu {
        for x in 0..wu {
            let (fx, fy) = turn.forward(x as f64 + 0.5, y as f64 + 0.5);
            let (fx, fy) = (fx.floor(), fy.floor());
            if fx < 0.0 || fy < 0.0 || fx >= tw as f64 || fy >= th as f64 {
                continue;
            }
            let j = (fy as usize) * tw + fx as usize;
            room_map[y * wu + x] = d.room_map[j];
            walls[y * wu + x] = d.walls[j];
        }
    }
    // Areas and boxes on the sheet as given; a room too thin to survive the turn back
    // is dropped and the rest renumbered.
    let n = d.rooms.len();
    let mut area = vec![0u64; n + 1];
    let mut bbox = vec![[u32::MAX, u32::MAX, 0u32, 0u32]; n + 1];
    for (i, &r) in room_map.iter().enumerate() {
        let (x, y) = ((i % wu) as u32, (i / wu) as u32);
        let r = r as usize;
        area[r] += 1;
        let b = &mut bbox[r];
        *b = [b[0].min(x), b[1].min(y), b[2].max(x), b[3].max(y)];
    }
    let mut renumber = vec![0u32; n + 1];
    let mut rooms = Vec::new();
    for (k, room) in d.rooms.into_iter().enumerate() {
        if area[k + 1] == 0 {
            continue;
        }
        let polygon = room
            .polygon
            .iter()
            .map(|&[x, y]| {
                let (bx, by) = turn.back(x + 0.5, y + 0.5);
                [
                    (bx - 0.5).clamp(0.0, f64::from(w - 1)),
                    (by - 0.5).clamp(0.0, f64::from(h - 1)),
                ]
            })
            .collect();
        rooms.push(DetectedRoom {
            polygon,
            area: area[k + 1],
            bbox: bbox[k + 1],
            confidence: room.confidence,
        });
        renumber[k + 1] = rooms.len() as u32;
    }
    room_map.iter_mut().for_each(|r| *r = renumber[*r as usize]);
    Detection {
        width: w,
        height: h,
        wall_thickness: d.wall_thickness,
        gap_len: d.gap_len,
        room_map,
        walls,
        rooms,
    }
}

/// Detects rooms on a grayscale plan drawn along the image's axes.
fn detect_straight(
    gray: &GrayImage,
    params: &DetectParams,
    edges: &[Vec<(u32, u32)>],
) -> Detection {
    let (w, h) = gray.dimensions();
    let empty = |t: u32| Detection {
        width: w,
        height: h,
        wall_thickness: t,
        gap_len: 0,
        room_map: vec![0; (w as usize) * (h as usize)],
        walls: vec![false; (w as usize) * (h as usize)],
        rooms: Vec::new(),
    };
    if w < 8 || h < 8 {
        return empty(0);
    }
    let Some((ink, t, walls)) = ink_and_walls(gray) else {
        return empty(0);
    };
    let gap_len = (params.gap_factor * f64::from(t)).round().max(2.0) as u32;
    let mut bridged = walls.clone();
    let (swings, arcs) = bridge_gaps(
        &walls,
        &ink,
        &mut bridged,
        w,
        h,
        t,
        gap_len,
        params.door_factor,
    );
    close_sheet_edge(&mut bridged, w, edges, gap_len as usize);
    close_envelope(&mut bridged, w, h, t);
    seal_slits(&mut bridged, w, h, t);
    let marks = if params.labelled_only {
        Some(marks(&ink, &walls, (&swings, &arcs), w, h, t)).filter(|m| m.iter().any(|&b| b))
    } else {
        None
    };
    if let Some(m) = &marks {
        split_at_symbols(&mut bridged, &ink, &walls, m, w, h, t);
    }
    drop(ink);
    // A region with writing in it is a room however small; on a sheet with no writing at
    // all, a region is a room when it is as large as a small room: a side of some ten wall
    // thicknesses (about 1.5 m for a 15 cm wall).
    let factor = if marks.is_some() || !params.labelled_only {
        params.min_room_factor
    } else {
        params.min_room_factor.max(UNLABELLED_ROOM_FACTOR)
    };
    let min_area = (factor * f64::from(t) * f64::from(t)).max(16.0) as u64;
    let (room_map, rooms) = rooms_of(
        &bridged,
        &walls,
        marks.as_deref(),
        (w, h),
        min_area,
        t,
        params.simplify_epsilon,
    );
    Detection {
        width: w,
        height: h,
        wall_thickness: t,
        gap_len,
        room_map,
        walls,
        rooms,
    }
}

/// The detector's intermediate masks (ink, walls, walls with doorways closed), for
/// looking at why a plan gave the rooms it gave.
#[doc(hidden)]
pub fn debug_masks(
    gray: &GrayImage,
    params: &DetectParams,
) -> (Vec<bool>, Vec<bool>, Vec<bool>, Vec<bool>) {
    let (w, h) = gray.dimensions();
    let Some((ink, t, walls)) = ink_and_walls(gray) else {
        let none = vec![false; (w as usize) * (h as usize)];
        return (none.clone(), none.clone(), none.clone(), none);
    };
    let gap_len = (params.gap_factor * f64::from(t)).round().max(2.0) as u32;
    let mut bridged = walls.clone();
    let (swings, arcs) = bridge_gaps(
        &walls,
        &ink,
        &mut bridged,
        w,
        h,
        t,
        gap_len,
        params.door_factor,
    );
    let edges = sheet_edges(w, h, |x, y| Some((x, y)));
    close_sheet_edge(&mut bridged, w, &edges, gap_len as usize);
    close_envelope(&mut bridged, w, h, t);
    seal_slits(&mut bridged, w, h, t);
    let m = marks(&ink, &walls, (&swings, &arcs), w, h, t);
    split_at_symbols(&mut bridged, &ink, &walls, &m, w, h, t);
    (ink, walls, bridged, m)
}

/// A building's outer walls are closed: no room opens onto the outside, so a gap in an
/// outer wall (an entrance, a window, a door wider than any the other rules take, whose
/// swing lies off the sheet or is not drawn) is closed whatever symbol it has. Such a gap
/// is a band as thick as a wall (a wall line broken between two wall pieces on it, its
/// jambs cut square), however long, that opens both ways and faces the outside on one
/// side. The outside is the free space that reaches the sheet's edge with every such gap
/// closed, so a room that leaks out through its entrance is not taken for the outside
/// and its inner doorways are left to the other rules.
fn close_envelope(out: &mut [bool], w: u32, h: u32, t: u32) {
    let (wu, hu) = (w as usize, h as usize);
    let max_band = (f64::from(t) * 1.5).ceil() as usize + 2;
    let min_band = (t as usize / 2).max(2);
    let tol = (t as usize / 3).max(1);
    // Jambs cut square: a diagonal wall's edge gives bands that shift line by line.
    let straight = (t as usize / 6).max(2);
    let mut gaps: Vec<(Axis, Band)> = Vec::new();
    for axis in Axis::both(wu, hu) {
        let (lines, len) = axis.dims();
        let wall = |l: usize, i: usize| out[axis.idx(l, i)];
        gaps.extend(
            bands(lines, len, len, min_band, tol, wall)
                .into_iter()
                .filter(|g| {
                    g.runs.len() <= max_band
                        && square_jambs(g, straight)
                        && opens_both_ways(g, axis, wall)
                })
                .map(|g| (axis, g)),
        );
    }
    let mut sealed = out.to_vec();
    fill_bands(&mut sealed, &gaps);
    let outside = sheet_outside(&sealed, w, h);
    let faces_outside = |axis: Axis, g: &Band| {
        let share = |line: usize, a: usize, b: usize| {
            let n = b.saturating_sub(a).max(1);
            (a..b).filter(|&i| outside[axis.idx(line, i)]).count() * 2 >= n
        };
        let (l0, a0, b0) = g.runs[0];
        let (l1, a1, b1) = g.runs[g.runs.len() - 1];
        share(l0 - 1, a0, b0) || share(l1 + 1, a1, b1)
    };
    gaps.retain(|(axis, g)| faces_outside(*axis, g));
    fill_bands(out, &gaps);
}

/// Whether a band's free runs start and end within `slack` pixels of each other on every
/// line: jambs cut square across a wall, not the slanting edge of a diagonal wall.
fn square_jambs(g: &Band, slack: usize) -> bool {
    let spread = |f: fn(&(usize, usize, usize)) -> usize| {
        let lo = g.runs.iter().map(f).min().unwrap_or(0);
        let hi = g.runs.iter().map(f).max().unwrap_or(0);
        hi - lo <= slack
    };
    spread(|r| r.1) && spread(|r| r.2)
}

/// Free pixels (4-connected) of the space that reaches the sheet's edge.
fn sheet_outside(blocked: &[bool], w: u32, h: u32) -> Vec<bool> {
    let wu = w as usize;
    let free = GrayImage::from_fn(w, h, |x, y| {
        Luma([u8::from(!blocked[(y as usize) * wu + x as usize]) * 255])
    });
    let labels = connected_components(&free, Connectivity::Four, Luma([0u8]));
    let n = labels.as_raw().iter().copied().max().unwrap_or(0) as usize;
    let mut at_edge = vec![false; n + 1];
    for (x, y, p) in labels.enumerate_pixels() {
        if x == 0 || y == 0 || x + 1 == w || y + 1 == h {
            at_edge[p.0[0] as usize] = true;
        }
    }
    labels
        .into_raw()
        .into_iter()
        .map(|l| l != 0 && at_edge[l as usize])
        .collect()
}

/// Slits of a pixel or two left between a closed doorway and the wall beside it (where a
/// doorway's band stops a pixel short of a wall end cut back by the opening) are closed,
/// as slits between wall pieces are: no opening a person walks through is that narrow.
fn seal_slits(bridged: &mut [bool], w: u32, h: u32, t: u32) {
    let wu = w as usize;
    let img = GrayImage::from_fn(w, h, |x, y| {
        Luma([u8::from(bridged[(y as usize) * wu + x as usize]) * 255])
    });
    let r = (t / 8).clamp(1, 30) as u8;
    for (b, p) in bridged.iter_mut().zip(close(&img, Norm::LInf, r).as_raw()) {
        *b |= *p != 0;
    }
}

/// Spaces that still run together where a doorway was left open are parted along the
/// door symbols drawn in it. With every thin stroke but writing (door leaves and swings,
/// fixtures) taken as a barrier too, a door's leaf and swing close its doorway; a region
/// that then falls into several parts with writing in them (or into a part with writing
/// and one reaching the sheet's edge: a room open to the outside through its entrance)
/// holds several spaces. Its pixels go to the nearest such part (steps through the
/// region, strokes included), and a line of wall is drawn where two parts meet.
fn split_at_symbols(
    bridged: &mut [bool],
    ink: &[bool],
    walls: &[bool],
    marks: &[bool],
    w: u32,
    h: u32,
    t: u32,
) {
    let (wu, hu) = (w as usize, h as usize);
    let free_mask = |f: &dyn Fn(usize) -> bool| {
        GrayImage::from_fn(w, h, |x, y| {
            Luma([if f((y as usize) * wu + x as usize) {
                255
            } else {
                0
            }])
        })
    };
    let region = connected_components(
        &free_mask(&|i| !bridged[i]),
        Connectivity::Four,
        Luma([0u8]),
    );
    // Strokes thickened a pixel, so a swing broken by a pixel or two still closes.
    let strokes = dilate(
        &free_mask(&|i| ink[i] && !walls[i] && !marks[i]),
        Norm::LInf,
        1,
    );
    let parts = connected_components(
        &free_mask(&|i| !bridged[i] && strokes.as_raw()[i] == 0),
        Connectivity::Four,
        Luma([0u8]),
    );
    let n = parts.as_raw().iter().copied().max().unwrap_or(0) as usize;
    #[derive(Clone, Default)]
    struct Part {
        area: u64,
        marks: u32,
        border: bool,
        walled: u32,
        edge: u32,
        region: u32,
    }
    let mut info = vec![Part::default(); n + 1];
    for (i, &p) in parts.as_raw().iter().enumerate() {
        if p == 0 {
            continue;
        }
        let (x, y) = (i % wu, i / wu);
        let part = &mut info[p as usize];
        part.area += 1;
        part.region = region.as_raw()[i];
        part.border |= x == 0 || y == 0 || x + 1 == wu || y + 1 == hu;
        let around = [
            (x > 0).then(|| i - 1),
            (x + 1 < wu).then(|| i + 1),
            (y > 0).then(|| i - wu),
            (y + 1 < hu).then(|| i + wu),
        ];
        let mut edge = false;
        let mut walled = false;
        for j in around.into_iter().flatten() {
            edge |= parts.as_raw()[j] != p;
            walled |= bridged[j];
        }
        part.edge += u32::from(edge);
        part.walled += u32::from(walled);
    }
    for (p, m) in marks_by_region(marks, parts.as_raw(), n, w, h, t)
        .into_iter()
        .enumerate()
    {
        info[p].marks = m;
    }
    // A part holding a space: writing in it, the size of a small room, bounded mostly by
    // wall (not the inside of a fixture, nor the quarter circle a door's swing cuts off a
    // room, both bounded mostly by strokes); or the outside.
    let tt = u64::from(t) * u64::from(t);
    let seed = |p: &Part| {
        p.border || (p.marks >= writing_needed(t) && p.area >= 4 * tt && p.walled * 2 >= p.edge)
    };
    let regions = region.as_raw().iter().copied().max().unwrap_or(0) as usize;
    let mut seeds_in = vec![0u32; regions + 1];
    let mut outside_in = vec![false; regions + 1];
    for p in info.iter().skip(1) {
        if seed(p) {
            if p.border {
                // All parts reaching the edge are one outside.
                if !outside_in[p.region as usize] {
                    outside_in[p.region as usize] = true;
                    seeds_in[p.region as usize] += 1;
                }
            } else {
                seeds_in[p.region as usize] += 1;
            }
        }
    }
    // Owner of each pixel: the seed part it is nearest (outside parts share one id).
    let mut owner = vec![0u32; wu * hu];
    let mut queue = std::collections::VecDeque::new();
    for (i, &p) in parts.as_raw().iter().enumerate() {
        if p == 0 {
            continue;
        }
        let part = &info[p as usize];
        if seeds_in[part.region as usize] >= 2 && seed(part) {
            owner[i] = if part.border { u32::MAX } else { p };
            queue.push_back(i);
        }
    }
    if queue.is_empty() {
        return;
    }
    while let Some(i) = queue.pop_front() {
        let (x, y) = (i % wu, i / wu);
        let around = [
            (x > 0).then(|| i - 1),
            (x + 1 < wu).then(|| i + 1),
            (y > 0).then(|| i - wu),
            (y + 1 < hu).then(|| i + wu),
        ];
        for j in around.into_iter().flatten() {
            if owner[j] == 0 && !bridged[j] {
                owner[j] = owner[i];
                queue.push_back(j);
            }
        }
    }
    let mut cut = Vec::new();
    for (i, &o) in owner.iter().enumerate() {
        if o == 0 {
            continue;
        }
        let (x, y) = (i % wu, i / wu);
        let other = |j: usize| owner[j] != 0 && owner[j] != o;
        if (x + 1 < wu && other(i + 1)) || (y + 1 < hu && other(i + wu)) {
            cut.push(i);
        }
    }
    for i in cut {
        bridged[i] = true;
    }
}

/// The writing in each of `n` regions (`region` per pixel, 0 none): a label names one room,
/// so each word (marks within half a wall thickness of each other, less than a wall apart) counts, all of it, for
/// the region that holds most of it, even where a stroke or a closed doorway cuts it.
fn marks_by_region(marks: &[bool], region: &[u32], n: usize, w: u32, h: u32, t: u32) -> Vec<u32> {
    let wu = w as usize;
    let r = (t / 4).clamp(1, 255) as u8;
    let words = dilate(
        &GrayImage::from_fn(w, h, |x, y| {
            Luma([u8::from(marks[(y as usize) * wu + x as usize]) * 255])
        }),
        Norm::LInf,
        r,
    );
    let words = connected_components(&words, Connectivity::Eight, Luma([0u8]));
    let mut per: std::collections::HashMap<(u32, u32), u32> = std::collections::HashMap::new();
    let mut total: std::collections::HashMap<u32, u32> = std::collections::HashMap::new();
    for (i, (&m, &reg)) in marks.iter().zip(region).enumerate() {
        if !m {
            continue;
        }
        let word = words.as_raw()[i];
        *total.entry(word).or_default() += 1;
        if reg != 0 {
            *per.entry((word, reg)).or_default() += 1;
        }
    }
    let mut best: std::collections::HashMap<u32, (u32, u32)> = std::collections::HashMap::new();
    for (&(word, reg), &count) in &per {
        let e = best.entry(word).or_insert((reg, 0));
        if count > e.1 || (count == e.1 && reg < e.0) {
            *e = (reg, count);
        }
    }
    let mut out = vec![0u32; n + 1];
    for (word, (reg, _)) in best {
        if let Some(slot) = out.get_mut(reg as usize) {
            *slot += total.get(&word).copied().unwrap_or(0);
        }
    }
    out
}

/// Unlabelled regions (on a sheet with no writing) smaller than this many `t^2` are no
/// rooms.
const UNLABELLED_ROOM_FACTOR: f64 = 64.0;

/// The ink, the wall thickness and the walls. A sheet whose walls are drawn as outline
/// pairs has the paper between them filled first ([`crate::outline`]), and its walls read
/// from that.
fn ink_and_walls(gray: &GrayImage) -> Option<(Vec<bool>, u32, Vec<bool>)> {
    let (w, h) = gray.dimensions();
    let mut ink = binarise(gray);
    let solid = wall_thickness(&ink, w, h).map(|t| (t, wall_mask(&ink, w, h, t, false)));
    let solid_count = solid
        .as_ref()
        .map_or(0, |(_, walls)| walls.iter().filter(|&&b| b).count());
    match crate::outline::fill_outlines(&ink, w as usize, h as usize, solid_count) {
        Some(fill) => {
            ink.iter_mut().zip(&fill).for_each(|(i, &f)| *i |= f);
            let t = wall_thickness(&ink, w, h)?;
            let walls = wall_mask(&ink, w, h, t, true);
            Some((ink, t, walls))
        }
        None => solid.map(|(t, walls)| (ink, t, walls)),
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
    let (w, h) = gray.dimensions();
    despeckle(&mut ink, w, h);
    ink
}

/// Specks of at most this many pixels are scanner noise: no stroke of a drawing (a letter,
/// a dot) is that small at a working resolution where walls are several pixels thick.
const SPECK: usize = 3;

/// Removes specks: ink blots of a few pixels alone on paper (a piece of a broken stroke,
/// with more ink within two pixels, stays), and pinholes of a few pixels of paper in ink.
fn despeckle(ink: &mut [bool], w: u32, h: u32) {
    let (wu, hu) = (w as usize, h as usize);
    for value in [true, false] {
        let img = GrayImage::from_fn(w, h, |x, y| {
            Luma([u8::from(ink[(y as usize) * (w as usize) + x as usize] == value) * 255])
        });
        let conn = if value {
            Connectivity::Eight
        } else {
            Connectivity::Four
        };
        let labels = connected_components(&img, conn, Luma([0u8]));
        let n = labels.as_raw().iter().copied().max().unwrap_or(0) as usize;
        let mut size = vec![0usize; n + 1];
        for &l in labels.as_raw() {
            size[l as usize] += 1;
        }
        let raw = labels.as_raw();
        // Whether pixel `i` of component `l` has ink of another component within 2 px.
        let near_other = |i: usize, l: u32| {
            let (x, y) = (i % wu, i / wu);
            (y.saturating_sub(2)..(y + 3).min(hu)).any(|yy| {
                (x.saturating_sub(2)..(x + 3).min(wu)).any(|xx| {
                    let o = raw[yy * wu + xx];
                    o != 0 && o != l
                })
            })
        };
        let mut keep = vec![false; n + 1];
        if value {
            for (i, &l) in raw.iter().enumerate() {
                if l != 0 && size[l as usize] <= SPECK && !keep[l as usize] {
                    keep[l as usize] = near_other(i, l);
                }
            }
        }
        for (p, &l) in ink.iter_mut().zip(raw) {
            if l != 0 && size[l as usize] <= SPECK && !keep[l as usize] {
                *p = !value;
            }
        }
    }
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

/// Thick strokes only: an opening with a square or a disk a little under the wall
/// thickness (a wall at any angle keeps its width), then
/// components too small to be walls removed, then slits of a pixel or two between wall
/// pieces closed.
fn wall_mask(ink: &[bool], w: u32, h: u32, t: u32, any_angle: bool) -> Vec<bool> {
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
    // A square keeps the square ends and corners of walls drawn along the axes; on sheets
    // drawn in outlines (thin walls, often at an angle) a disk also keeps walls drawn at
    // an angle, which no square of their width fits in.
    let opened = if k == 0 {
        img
    } else if !any_angle {
        open(&img, Norm::LInf, k)
    } else {
        let mut square = open(&img, Norm::LInf, k);
        let disk = open(&img, Norm::L2, k);
        for (s, d) in square.iter_mut().zip(disk.iter()) {
            *s = (*s).max(*d);
        }
        square
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
    // A wall is at least as long as it is thick: a stub of wall between two doorways is
    // kept, a blob smaller than a wall's cross-section is not.
    let min_extent = t;
    let keep: Vec<bool> = boxes
        .iter()
        .map(|b| b[2] >= b[0] && (b[2] - b[0] + 1).max(b[3] - b[1] + 1) >= min_extent)
        .collect();
    // Slits of a pixel or two between wall pieces (where a doorway cut across a junction
    // left only a sliver of the other wall) are closed.
    let kept = GrayImage::from_fn(w, h, |x, y| {
        let l = labels.get_pixel(x, y).0[0] as usize;
        Luma([if l != 0 && keep[l] { 255 } else { 0 }])
    });
    let r = (t / 8).clamp(1, 30) as u8;
    close(&kept, Norm::LInf, r)
        .pixels()
        .map(|p| p.0[0] != 0)
        .collect()
}

/// Which way a pass runs: along rows (a line is a row `y`, positions on it are `x`) or
/// along columns (a line is a column `x`, positions are `y`). Gaps, leaves and swings are
/// found in line coordinates and mapped back through this, so each rule is written once.
#[derive(Debug, Clone, Copy)]
struct Axis {
    rows: bool,
    w: usize,
    h: usize,
}

impl Axis {
    /// Rows, then columns, of a `w` x `h` image.
    fn both(w: usize, h: usize) -> [Self; 2] {
        [Self { rows: true, w, h }, Self { rows: false, w, h }]
    }

    /// How many lines there are, and how long each is.
    fn dims(self) -> (usize, usize) {
        if self.rows {
            (self.h, self.w)
        } else {
            (self.w, self.h)
        }
    }

    /// The image index of position `i` on line `line`.
    fn idx(self, line: usize, i: usize) -> usize {
        if self.rows {
            line * self.w + i
        } else {
            i * self.w + line
        }
    }

    /// The image coordinates `(x, y)` of position `i` on line `line`.
    fn xy(self, line: f64, i: f64) -> (f64, f64) {
        if self.rows { (i, line) } else { (line, i) }
    }
}

/// A candidate door gap: consecutive lines (rows, or columns) whose free runs between wall
/// pixels start and end at about the same places.
#[derive(Debug, Clone)]
struct Band {
    /// First and last line, inclusive.
    line0: usize,
    line1: usize,
    /// The middle line's free run, `b` exclusive.
    a: usize,
    b: usize,
    runs: Vec<(usize, usize, usize)>,
}

/// Closes door gaps in both directions (see the module doc); returns the swings of the
/// doors recognised by their symbol, `[x, y, radius]`.
#[allow(clippy::too_many_arguments)]
fn bridge_gaps(
    walls: &[bool],
    ink: &[bool],
    out: &mut [bool],
    w: u32,
    h: u32,
    t: u32,
    gap_len: u32,
    door_factor: f64,
) -> (Vec<[f64; 3]>, Vec<usize>) {
    let (wu, hu) = (w as usize, h as usize);
    let max_band = (f64::from(t) * 1.5).ceil() as usize + 2;
    let min_band = (t as usize / 2).max(2);
    let tol = (t as usize / 3).max(1);
    // Thin strokes (ink the opening removed), and all ink, thickened a little so that a
    // sample a pixel or two off the drawn curve still hits it.
    let r = (f64::from(t) / 4.0).round().clamp(2.0, 12.0) as u8;
    let mask = |f: &dyn Fn(usize) -> bool| {
        GrayImage::from_fn(w, h, |x, y| {
            Luma([if f((y as usize) * wu + x as usize) {
                255
            } else {
                0
            }])
        })
    };
    let thin = dilate(&mask(&|i| ink[i] && !walls[i]), Norm::LInf, r);
    let any = dilate(&mask(&|i| ink[i]), Norm::LInf, r);
    // The same within a pixel or two, for checks that must not be met by chance in a
    // room full of fixtures and writing.
    let thin_tight = dilate(&mask(&|i| ink[i] && !walls[i]), Norm::LInf, 2);
    let any_tight = dilate(&mask(&|i| ink[i]), Norm::LInf, 2);
    // Paper (no ink) at a point, and how far off a curve its sides are looked at.
    let paper = |x: f64, y: f64| {
        let (x, y) = (x.round(), y.round());
        (x >= 0.0 && y >= 0.0 && x < f64::from(w) && y < f64::from(h))
            .then(|| !ink[(y as usize) * wu + x as usize])
    };
    let beside = (f64::from(t) / 4.0).max(2.0);
    let at = |img: &GrayImage, axis: Axis, l: f64, i: f64| {
        let (x, y) = axis.xy(l, i);
        let (x, y) = (x.round(), y.round());
        (x >= 0.0 && y >= 0.0 && x < f64::from(w) && y < f64::from(h))
            .then(|| img.get_pixel(x as u32, y as u32).0[0] != 0)
    };
    let tf = f64::from(t);
    let door_max = door_factor * tf;
    let thin_raw: Vec<bool> = ink.iter().zip(walls).map(|(&i, &w)| i && !w).collect();
    let near_wall = dilate(&mask(&|i| walls[i]), Norm::LInf, (t / 2 + 2).min(255) as u8);
    // Every recognised swing, `[x, y, radius]`: a drawn swing is one door.
    let swings: std::cell::RefCell<Vec<[f64; 3]>> = std::cell::RefCell::new(Vec::new());
    leaf_doors(
        &thin_raw,
        &thin,
        &any,
        &near_wall,
        out,
        w,
        h,
        t,
        gap_len,
        &any_tight,
        &paper,
        &mut swings.borrow_mut(),
    );
    let candidates = |axis: Axis, current: &[bool]| {
        let (lines, len) = axis.dims();
        bands(lines, len, gap_len as usize, min_band, tol, |l, i| {
            current[axis.idx(l, i)]
        })
    };
    // Whether a door symbol is drawn at a gap (`strict`: a wall that is all door), on the
    // given masks; each swing found is passed to `record` as `(x, y, radius)`.
    let symbol = |g: &Band,
                  axis: Axis,
                  (thin, any): (&GrayImage, &GrayImage),
                  strict: bool,
                  record: &dyn Fn(f64, f64, f64)| {
        let paper_on_line = |l: f64, i: f64| {
            let (x, y) = axis.xy(l, i);
            paper(x, y)
        };
        let check = if strict {
            Check::all_door(&paper_on_line, beside)
        } else {
            Check::ordinary(&paper_on_line, beside)
        };
        door_symbol(
            g,
            tf,
            |l, i| at(thin, axis, l, i),
            |l, i| at(any, axis, l, i),
            check,
            &|l, i, r| {
                let (x, y) = axis.xy(l, i);
                record(x, y, r);
            },
        )
    };
    // Doors that meet at a junction leave one merged gap; closing the door recognised first
    // splits the rest into gaps of their own, so a few passes find them. A gap whose
    // symbol would lie off the sheet (an entrance at the drawing's edge) cannot be checked
    // and is judged by its jambs instead.
    for _ in 0..3 {
        let current: &[bool] = out;
        let judge = |g: &Band, axis: Axis| {
            let record = |x: f64, y: f64, r: f64| swings.borrow_mut().push([x, y, r]);
            match symbol(g, axis, (&thin, &any), false, &record) {
                Some(true) => true,
                Some(false) => {
                    let (lines, len) = axis.dims();
                    let (ea, eb) = jamb_ends(g, lines, len, tol, |l, i| current[axis.idx(l, i)]);
                    ea && eb && ((g.b - g.a) as f64) <= door_max
                }
                None => {
                    let (lines, len) = axis.dims();
                    jamb_rule(g, lines, len, tol, |l, i| current[axis.idx(l, i)])
                }
            }
        };
        // Bands as long as a room (the space between two parallel walls) are no doorways.
        let mut doors: Vec<(Axis, Band)> = Vec::new();
        for axis in Axis::both(wu, hu) {
            for g in candidates(axis, current) {
                if g.runs.len() <= max_band
                    && opens_both_ways(&g, axis, |l, i| current[axis.idx(l, i)])
                    && judge(&g, axis)
                {
                    doors.push((axis, g));
                }
            }
        }
        if doors.is_empty() {
            break;
        }
        fill_bands(out, &doors);
    }
    // Doors found from their swing alone, once the gaps between wall ends are judged: a
    // doorway closed before then would end the lines of the space beside another gap in
    // line with that gap's jambs, merging the two into one band too thick to be a door.
    let mut arc_swings = Vec::new();
    let arcs = arc_doors(ink, walls, out, w, h, t, gap_len, &mut arc_swings);
    // Except where a wall that is all door crosses it: there a door's swing spanning the
    // band is drawn from a line across it, one not already recognised as another door's.
    let mut known = swings.into_inner();
    let new_swing = |x: f64, y: f64, r: f64| {
        !known
            .iter()
            .chain(&arc_swings)
            .any(|s| (s[0] - x).hypot(s[1] - y) <= tf && (s[2] - r).abs() <= tf)
    };
    let late: std::cell::RefCell<Vec<[f64; 3]>> = std::cell::RefCell::new(Vec::new());
    let current: &[bool] = out;
    let mut doors: Vec<(Axis, Band)> = Vec::new();
    for axis in Axis::both(wu, hu) {
        for g in candidates(axis, current) {
            if g.runs.len() <= max_band {
                continue;
            }
            let across = doors_across(&g, t, |sub| {
                let fresh = std::cell::Cell::new(true);
                let record = |x: f64, y: f64, r: f64| {
                    fresh.set(fresh.get() && new_swing(x, y, r));
                    late.borrow_mut().push([x, y, r]);
                };
                (symbol(sub, axis, (&thin_tight, &any_tight), true, &record) == Some(true))
                    .then(|| fresh.get())
            });
            doors.extend(across.into_iter().map(|b| (axis, b)));
        }
    }
    fill_bands(out, &doors);
    known.extend(late.into_inner());
    // A wall that is all door, the space beyond it as wide as the door: the band runs on
    // through that space, and the doorway is the band's last wall thickness of lines, where
    // the walls on both sides run on straight past it and stop flush with its edge.
    // It opens onto a space within the walls, not onto the sheet's outside (a niche in an
    // outer wall).
    let current: &[bool] = out;
    let outside = {
        let free = mask(&|i| !current[i]);
        let labels = connected_components(&free, Connectivity::Four, Luma([0u8]));
        let n = labels.as_raw().iter().copied().max().unwrap_or(0) as usize;
        let mut at_edge = vec![false; n + 1];
        for (x, y, p) in labels.enumerate_pixels() {
            if x == 0 || y == 0 || x + 1 == w || y + 1 == h {
                at_edge[p.0[0] as usize] = true;
            }
        }
        let raw = labels.into_raw();
        raw.into_iter()
            .map(|l| l != 0 && at_edge[l as usize])
            .collect::<Vec<bool>>()
    };
    let mut doors: Vec<(Axis, Band)> = Vec::new();
    for axis in Axis::both(wu, hu) {
        let (lines, len) = axis.dims();
        for g in candidates(axis, current) {
            if g.runs.len() <= max_band {
                continue;
            }
            doors.extend(
                flush_edges(
                    &g,
                    t as usize,
                    (lines, len),
                    |l, i| current[axis.idx(l, i)],
                    |l, i| outside[axis.idx(l, i)],
                )
                .into_iter()
                .map(|b| (axis, b)),
            );
        }
    }
    fill_bands(out, &doors);
    (known, arcs)
}

/// Whether a gap leads somewhere on both sides: the lines just before and just after the
/// band are mostly free along its run. A gap in a wall joins two spaces; a closet no
/// bigger than a doorway, walled on every side, is a room of its own.
fn opens_both_ways(g: &Band, axis: Axis, wall: impl Fn(usize, usize) -> bool) -> bool {
    let (lines, _) = axis.dims();
    let free_share = |line: usize, a: usize, b: usize| {
        let n = b.saturating_sub(a).max(1);
        (a..b).filter(|&i| !wall(line, i)).count() * 2 >= n
    };
    let (l0, a0, b0) = g.runs[0];
    let (l1, a1, b1) = g.runs[g.runs.len() - 1];
    l0 > 0 && l1 + 1 < lines && free_share(l0 - 1, a0, b0) && free_share(l1 + 1, a1, b1)
}

/// The edges of a band (longer than a wall is thick) where the walls at both of its ends run
/// on straight past its last `t` lines and stop flush with it, and beyond which lies a space
/// within the walls (not the sheet's outside): a wall that is all door.
fn flush_edges(
    g: &Band,
    t: usize,
    (lines, len): (usize, usize),
    wall: impl Fn(usize, usize) -> bool,
    sheet_outside: impl Fn(usize, usize) -> bool,
) -> Vec<Band> {
    let n = g.runs.len();
    let mut out = Vec::new();
    if n <= t || t < 2 {
        return out;
    }
    for last in [true, false] {
        let strip: Vec<(usize, usize, usize)> = if last {
            g.runs[n - t..].to_vec()
        } else {
            g.runs[..t].to_vec()
        };
        let edge = if last { strip[t - 1] } else { strip[0] };
        let outside = if last {
            edge.0.checked_add(1).filter(|&l| l < lines)
        } else {
            edge.0.checked_sub(1)
        };
        let Some(outside) = outside else { continue };
        let (_, ea, eb) = edge;
        if ea == 0 || eb >= len {
            continue;
        }
        let flush = !wall(outside, ea - 1)
            && !wall(outside, eb)
            && !sheet_outside(outside, ea.midpoint(eb));
        let walled = strip.iter().all(|&(l, a, b)| {
            a >= t && b + t <= len && (1..=t).all(|k| wall(l, a - k) && wall(l, b + k - 1))
        });
        if flush && walled {
            let (_, a, b) = strip[t / 2];
            out.push(Band {
                line0: strip[0].0,
                line1: strip[t - 1].0,
                a,
                b,
                runs: strip,
            });
        }
    }
    out
}

/// Doorways across a band as long as a room: lines from which a door's symbol is drawn
/// (hinge on the line, swing reaching the band's far side), at the band's end (the wall
/// that closes the room's end is all door) or anywhere along it (a closet off a corridor
/// as wide as the closet's door). Each group of such lines is one door, and the wall
/// thickness of lines centred on it is closed.
fn doors_across(g: &Band, t: u32, is_door: impl Fn(&Band) -> Option<bool>) -> Vec<Band> {
    let step = 1;
    let half = t as usize / 2;
    let n = g.runs.len();
    // A door as wide as a closet (two or three wall thicknesses) cannot be told from the
    // writing that fills such a closet.
    if g.b.saturating_sub(g.a) < 3 * t as usize {
        return Vec::new();
    }
    let (mut hits, mut known): (Vec<usize>, Vec<usize>) = (Vec::new(), Vec::new());
    for k in 0..n {
        let (line, a, b) = g.runs[k];
        let sub = Band {
            line0: line,
            line1: line,
            a,
            b,
            runs: vec![(line, a, b)],
        };
        match is_door(&sub) {
            Some(true) => hits.push(k),
            Some(false) => known.push(k),
            None => {}
        }
    }
    let mut out = Vec::new();
    let mut i = 0;
    while i < hits.len() {
        let mut j = i;
        while j + 1 < hits.len() && hits[j + 1] - hits[j] <= step {
            j += 1;
        }
        // A swing already recognised as another door's, seen from a line or two off.
        let (first, last) = (hits[i].saturating_sub(step), hits[j] + step);
        if known.iter().any(|&k| (first..=last).contains(&k)) {
            i = j + 1;
            continue;
        }
        let mid = (hits[i] + hits[j]) / 2;
        let lo = mid.saturating_sub(half);
        let hi = (mid + half).min(g.runs.len() - 1);
        let runs = g.runs[lo..=hi].to_vec();
        let (line0, line1) = (runs[0].0, runs[runs.len() - 1].0);
        let (_, a, b) = g.runs[mid];
        out.push(Band {
            line0,
            line1,
            a,
            b,
            runs,
        });
        i = j + 1;
    }
    out
}

/// Doors found from their leaves: a straight thin stroke (a row or column run of thin
/// ink) with a quarter-circle swing centred on one of its ends, of its length as radius,
/// reaching round to the wall. The doorway is closed along the wall line through that end
/// (the hinge), a wall thickness wide, from the hinge to where the swing meets the wall.
/// This finds doors whose gap is not a band between wall ends, e.g. a wall that is all
/// door, as long as the room beside it.
#[allow(clippy::too_many_arguments)]
fn leaf_doors(
    thin_raw: &[bool],
    thin: &GrayImage,
    any: &GrayImage,
    near_wall: &GrayImage,
    out: &mut [bool],
    w: u32,
    h: u32,
    t: u32,
    gap_len: u32,
    tight: &GrayImage,
    paper: &dyn Fn(f64, f64) -> Option<bool>,
    swings: &mut Vec<[f64; 3]>,
) -> usize {
    let beside = (f64::from(t) / 4.0).max(2.0);
    let (wu, hu) = (w as usize, h as usize);
    let tf = f64::from(t);
    let min_leaf = (t as usize).max(8);
    let at = |img: &GrayImage, x: f64, y: f64| {
        let (x, y) = (x.round(), y.round());
        (x >= 0.0 && y >= 0.0 && x < f64::from(w) && y < f64::from(h))
            .then(|| img.get_pixel(x as u32, y as u32).0[0] != 0)
    };
    // (axis, line, hinge, dir, side, radius, fit)
    type Leaf = (Axis, f64, f64, f64, f64, f64, f64);
    let mut found: Vec<Leaf> = Vec::new();
    let [rows, cols] = Axis::both(wu, hu);
    for axis in [cols, rows] {
        // Leaves run along `i` on line `line`.
        let (lines, len) = axis.dims();
        let idx = |line: usize, i: usize| axis.idx(line, i);
        let xy = |line: f64, i: f64| axis.xy(line, i);
        for line in 0..lines {
            let mut i = 0;
            while i < len {
                if !thin_raw[idx(line, i)] {
                    i += 1;
                    continue;
                }
                let s = i;
                while i < len && thin_raw[idx(line, i)] {
                    i += 1;
                }
                let run = i - s;
                if run < min_leaf || run > gap_len as usize {
                    continue;
                }
                // The stroke's caps: the hinge is a pixel in from the run's end.
                let radius = run as f64 - 2.0;
                let lf = line as f64;
                for (hinge, dir) in [(s as f64 + 1.0, 1.0), ((i - 1) as f64 - 1.0, -1.0)] {
                    // The hinge is on a wall, and so is the swing's far end.
                    let (hx, hy) = xy(lf, hinge);
                    if at(near_wall, hx, hy) != Some(true) {
                        continue;
                    }
                    for side in [-1.0, 1.0] {
                        let (ex, ey) = xy(lf + side * radius, hinge);
                        if at(near_wall, ex, ey) != Some(true) {
                            continue;
                        }
                        let on = |l: f64, i: f64, img: &GrayImage| {
                            let (x, y) = xy(l, i);
                            at(img, x, y)
                        };
                        let on_paper = |l: f64, i: f64| {
                            let (x, y) = xy(l, i);
                            paper(x, y)
                        };
                        let ok = swing(
                            lf,
                            hinge,
                            dir,
                            side,
                            radius,
                            &|l, i| on(l, i, thin),
                            &|l, i| on(l, i, any),
                            Check {
                                paper: &on_paper,
                                beside,
                                on_thin: 0.5,
                                lone: true,
                                full: false,
                            },
                        );
                        if ok == Some(true) {
                            let fit =
                                arc_fit(lf, hinge, dir, side, radius, &|l, i| on(l, i, tight));
                            found.push((axis, lf, hinge, dir, side, radius, fit));
                        }
                    }
                }
            }
        }
    }
    // The doorway is closed on the lines parallel to the wall, near the hinge, whose free
    // run through the middle of the door's span is bounded by wall at both ends a little
    // beyond the span: the lines through the wall's thickness (the hinge found from the
    // leaf can be off by half a wall, where the leaf's end merges into a jamb).
    let max_band = (tf * 1.5).ceil() as usize + 2;
    let mut runs: Vec<(usize, usize, usize, Axis)> = Vec::new();
    // One drawn swing is one door: where two leaves (a leaf and a fixture's edge, or the
    // two sides of one stroke) explain the same swing, the one whose swing fits the
    // drawing best is the door.
    found.sort_by(|p, q| q.6.total_cmp(&p.6));
    let mut fills: Vec<(Axis, f64, f64, f64, f64)> = Vec::new();
    for &(axis, lf, hinge, _, side, radius, _) in &found {
        let (x, y) = axis.xy(lf, hinge);
        let taken = swings
            .iter()
            .any(|s| (s[0] - x).hypot(s[1] - y) <= tf && (s[2] - radius).abs() <= tf);
        if !taken {
            swings.push([x, y, radius]);
            fills.push((axis, lf, hinge, side, radius));
        }
    }
    for &(axis, lf, hinge, side, radius) in &fills {
        let (lines, len) = axis.dims();
        let idx = |line: usize, i: usize| axis.idx(line, i);
        let (s0, s1) = if side > 0.0 {
            (lf, lf + radius)
        } else {
            (lf - radius, lf)
        };
        let lo = (s0 - tf).max(0.0) as usize;
        let hi = ((s1 + tf).max(0.0) as usize).min(lines.saturating_sub(1));
        let mid = (((s0 + s1) / 2.0).max(0.0) as usize).min(lines.saturating_sub(1));
        let from = (hinge - tf).max(0.0) as usize;
        let to = ((hinge + tf).max(0.0) as usize).min(len.saturating_sub(1));
        let mut bounded: Vec<(usize, usize, usize)> = Vec::new();
        for i in from..=to {
            if out[idx(mid, i)] {
                continue;
            }
            let mut a = mid;
            while a > lo && !out[idx(a - 1, i)] {
                a -= 1;
            }
            let mut b = mid;
            while b < hi && !out[idx(b + 1, i)] {
                b += 1;
            }
            let closed_a = a > 0 && out[idx(a - 1, i)];
            let closed_b = b + 1 < lines && out[idx(b + 1, i)];
            if closed_a && closed_b {
                bounded.push((i, a, b + 1));
            }
        }
        if bounded.len() > max_band {
            bounded.retain(|r| (r.0 as f64 - hinge).abs() <= tf / 2.0 + 1.0);
        }
        runs.extend(bounded.into_iter().map(|(i, a, b)| (i, a, b, axis)));
    }
    for (i, a, b, axis) in runs {
        for line in a..b {
            out[axis.idx(line, i)] = true;
        }
    }
    fills.len()
}

/// Doors found from their swing alone: a piece of thin stroke that is a quarter circle
/// (a circle fitted to it within a pixel or two, spanning about a right angle), centred on
/// a wall, of a door's radius. Of the two radii that bound the quarter, one is the leaf
/// (drawn, or lying along a wall) and the other the doorway (paper); the doorway is closed
/// from the hinge to the far jamb, a wall thickness wide. This closes doors whatever lies
/// round them: a wall that is all door between two perpendicular walls (a closet's front)
/// leaves no gap between wall ends to find, only its swing. Straight runs longer than a
/// wall is thick (the leaf, when drawn free of walls) are left out of the fit.
#[allow(clippy::too_many_arguments)]
fn arc_doors(
    ink: &[bool],
    walls: &[bool],
    out: &mut [bool],
    w: u32,
    h: u32,
    t: u32,
    gap_len: u32,
    swings: &mut Vec<[f64; 3]>,
) -> Vec<usize> {
    let (wu, hu) = (w as usize, h as usize);
    let tf = f64::from(t);
    let mut arcs = Vec::new();
    let thin: Vec<bool> = ink.iter().zip(walls).map(|(&i, &w)| i && !w).collect();
    // Straight stretches: row or column runs of thin ink longer than the wall is thick
    // (and than a third of a door), which an arc of a door's radius only has near its ends.
    let long = (t as usize).max(8);
    let mut straight = vec![false; wu * hu];
    for axis in Axis::both(wu, hu) {
        let (lines, len) = axis.dims();
        for line in 0..lines {
            let mut i = 0;
            while i < len {
                if !thin[axis.idx(line, i)] {
                    i += 1;
                    continue;
                }
                let s = i;
                while i < len && thin[axis.idx(line, i)] {
                    i += 1;
                }
                if i - s > long {
                    (s..i).for_each(|k| straight[axis.idx(line, k)] = true);
                }
            }
        }
    }
    // Pieces of curve: thin ink but the straight stretches, a pixel's break bridged.
    let curve = |i: usize| thin[i] && !straight[i];
    let grown = dilate(
        &GrayImage::from_fn(w, h, |x, y| {
            Luma([u8::from(curve((y as usize) * wu + x as usize)) * 255])
        }),
        Norm::LInf,
        1,
    );
    let labels = connected_components(&grown, Connectivity::Eight, Luma([0u8]));
    let n = labels.as_raw().iter().copied().max().unwrap_or(0) as usize;
    let mut pieces: Vec<Vec<(f64, f64)>> = vec![Vec::new(); n + 1];
    for (i, &l) in labels.as_raw().iter().enumerate() {
        if l != 0 && curve(i) {
            pieces[l as usize].push(((i % wu) as f64 + 0.5, (i / wu) as f64 + 0.5));
        }
    }
    let wall_near = |x: f64, y: f64, reach: f64| {
        let (x0, x1) = (
            (x - reach).max(0.0) as usize,
            ((x + reach).max(0.0) as usize).min(wu - 1),
        );
        let (y0, y1) = (
            (y - reach).max(0.0) as usize,
            ((y + reach).max(0.0) as usize).min(hu - 1),
        );
        (y0..=y1).any(|yy| (x0..=x1).any(|xx| walls[yy * wu + xx]))
    };
    let ink_at = |x: f64, y: f64, reach: f64| {
        let inside = x >= 0.0 && y >= 0.0 && x < f64::from(w) && y < f64::from(h);
        inside.then(|| {
            let (x0, x1) = (
                (x - reach).max(0.0) as usize,
                ((x + reach).max(0.0) as usize).min(wu - 1),
            );
            let (y0, y1) = (
                (y - reach).max(0.0) as usize,
                ((y + reach).max(0.0) as usize).min(hu - 1),
            );
            (y0..=y1).any(|yy| (x0..=x1).any(|xx| ink[yy * wu + xx]))
        })
    };
    let r_min = 2.0 * tf;
    let r_max = f64::from(gap_len);
    let mut closings: Vec<((f64, f64), (f64, f64))> = Vec::new();
    for points in pieces.iter().filter(|p| p.len() as f64 >= r_min) {
        let Some((cx, cy, r, rms, points)) = fit_arc(points) else {
            continue;
        };
        let points = &points;
        if !(r_min..=r_max).contains(&r) || rms > 1.0 {
            continue;
        }
        // How much of the circle the piece covers: a quarter, less what walls hide.
        let mut angles: Vec<f64> = points
            .iter()
            .map(|&(x, y)| (y - cy).atan2(x - cx))
            .collect();
        angles.sort_by(f64::total_cmp);
        let mut gap = (angles[0] + std::f64::consts::TAU) - angles[angles.len() - 1];
        let mut start = angles[0];
        for pair in angles.windows(2) {
            if pair[1] - pair[0] > gap {
                gap = pair[1] - pair[0];
                start = pair[1];
            }
        }
        let span = std::f64::consts::TAU - gap;
        if !(1.0..=1.75).contains(&span) {
            continue;
        }
        // The arc should be drawn along its length, not be dots of writing that happen to
        // lie on a circle: nearly every two pixels of its length have ink.
        let bins = ((r * span / 2.0).ceil() as usize).max(1);
        let mut filled = vec![false; bins];
        for &a in &angles {
            let k = ((a - start).rem_euclid(std::f64::consts::TAU) * r / 2.0) as usize;
            if let Some(b) = filled.get_mut(k) {
                *b = true;
            }
        }
        if filled.iter().filter(|&&b| b).count() * 5 < bins * 4 {
            continue;
        }
        if !wall_near(cx, cy, tf) {
            continue;
        }
        let q = std::f64::consts::FRAC_PI_4;
        // Walls run along the sheet's axes (a skewed sheet is turned straight first): a
        // quarter within a few degrees of them is taken as lying along them, and only such
        // a quarter is a door here.
        let mut mid = start + span / 2.0;
        let snapped = mid.rem_euclid(2.0 * q) - q;
        if snapped.abs() > 0.2 {
            continue;
        }
        mid -= snapped;
        // The two radii bounding the quarter: inked (the leaf) or paper (the doorway).
        let share = |a: f64, reach: f64| {
            let (dx, dy) = (a.cos(), a.sin());
            let (mut inside, mut hits) = (0usize, 0usize);
            let mut s = tf;
            while s <= r - tf {
                if let Some(hit) = ink_at(cx + dx * s, cy + dy * s, reach) {
                    inside += 1;
                    hits += usize::from(hit);
                }
                s += 1.0;
            }
            (inside > 0).then(|| hits as f64 / inside as f64)
        };
        // The leaf is looked for within a couple of pixels (the fitted centre may sit on
        // a wall's edge rather than on the line the leaf lies along); the doorway must be
        // paper on the line itself.
        let (Some(l1), Some(l2), Some(p1), Some(p2)) = (
            share(mid - q, 2.0),
            share(mid + q, 2.0),
            share(mid - q, 0.0),
            share(mid + q, 0.0),
        ) else {
            continue;
        };
        let door = match (l1 >= 0.7, l2 >= 0.7, p1 <= 0.2, p2 <= 0.2) {
            (true, _, _, true) => mid + q,
            (_, true, true, _) => mid - q,
            _ => continue,
        };
        let far = (cx + r * door.cos(), cy + r * door.sin());
        if !wall_near(far.0, far.1, tf) {
            continue;
        }
        arcs.extend(points.iter().map(|&(x, y)| (y as usize) * wu + x as usize));
        swings.push([cx, cy, r]);
        closings.push(((cx, cy), far));
    }
    // Each doorway closed as a strip a wall thickness wide, from the hinge to a little
    // past the far jamb.
    let half = tf / 2.0;
    for ((ax, ay), (bx, by)) in closings {
        let (dx, dy) = (bx - ax, by - ay);
        let len = dx.hypot(dy);
        if len <= 0.0 {
            continue;
        }
        let (ux, uy) = (dx / len, dy / len);
        let mut s = 0.0;
        while s <= len + half {
            let mut o = -half;
            while o <= half {
                let (x, y) = (ax + ux * s - uy * o, ay + uy * s + ux * o);
                if x >= 0.0 && y >= 0.0 && x < f64::from(w) && y < f64::from(h) {
                    out[(y as usize) * wu + x as usize] = true;
                }
                o += 0.5;
            }
            s += 0.5;
        }
    }
    arcs
}

/// A fitted circle: centre x and y, radius, root mean square distance of the points
/// kept, and those points.
type ArcFit = (f64, f64, f64, f64, Vec<(f64, f64)>);

/// A circle fitted to a piece of stroke, with what else crossed it (writing, another
/// stroke) left out: where one circle does not fit all the points, the circle through
/// three of them that most others lie on (tried on a fixed sequence of triples), refitted
/// to those. Centre, radius, root mean square distance, and the points kept.
fn fit_arc(points: &[(f64, f64)]) -> Option<ArcFit> {
    const NEAR: f64 = 1.5;
    let (cx, cy, r, rms) = fit_circle(points)?;
    if rms <= NEAR {
        return Some((cx, cy, r, rms, points.to_vec()));
    }
    let n = points.len();
    let on = |cx: f64, cy: f64, r: f64| {
        points
            .iter()
            .filter(|&&(x, y)| ((x - cx).hypot(y - cy) - r).abs() <= NEAR)
            .count()
    };
    let mut state = 0x9e37_79b9_7f4a_7c15u64 ^ n as u64;
    let mut pick = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n as u64) as usize
    };
    let mut best: Option<(usize, f64, f64, f64)> = None;
    for _ in 0..200 {
        let (a, b, c) = (points[pick()], points[pick()], points[pick()]);
        let Some((cx, cy, r, _)) = fit_circle(&[a, b, c]) else {
            continue;
        };
        let count = on(cx, cy, r);
        if best.is_none_or(|b| count > b.0) {
            best = Some((count, cx, cy, r));
        }
    }
    let (_, cx, cy, r) = best?;
    let kept: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .filter(|&(x, y)| ((x - cx).hypot(y - cy) - r).abs() <= NEAR)
        .collect();
    if kept.len() < 8 {
        return None;
    }
    let (cx, cy, r, rms) = fit_circle(&kept)?;
    Some((cx, cy, r, rms, kept))
}

/// The circle through points by least squares (centre, radius, and the points' root
/// mean square distance from it); `None` for points on a line.
fn fit_circle(points: &[(f64, f64)]) -> Option<(f64, f64, f64, f64)> {
    let n = points.len() as f64;
    let (mx, my) = points
        .iter()
        .fold((0.0, 0.0), |(a, b), &(x, y)| (a + x / n, b + y / n));
    // Kasa's fit about the mean: u^2 + v^2 + D u + E v + F = 0.
    let (mut suu, mut svv, mut suv, mut suz, mut svz, mut sz) = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    for &(x, y) in points {
        let (u, v) = (x - mx, y - my);
        let z = u * u + v * v;
        suu += u * u;
        svv += v * v;
        suv += u * v;
        suz += u * z;
        svz += v * z;
        sz += z;
    }
    let det = suu * svv - suv * suv;
    if det.abs() < 1e-9 {
        return None;
    }
    let d = -(suz * svv - svz * suv) / det;
    let e = -(svz * suu - suz * suv) / det;
    let f = -sz / n;
    let (cu, cv) = (-d / 2.0, -e / 2.0);
    let r2 = cu * cu + cv * cv - f;
    if r2 <= 0.0 {
        return None;
    }
    let r = r2.sqrt();
    let (cx, cy) = (cu + mx, cv + my);
    let ss: f64 = points
        .iter()
        .map(|&(x, y)| ((x - cx).hypot(y - cy) - r).powi(2))
        .sum();
    Some((cx, cy, r, (ss / n).sqrt()))
}

/// The fraction of a quarter circle's samples (9 to 81 degrees, about a pixel apart) on
/// `ink`, off-image samples left out: how closely a swing fits the drawing.
fn arc_fit(
    line: f64,
    hinge: f64,
    dir: f64,
    side: f64,
    radius: f64,
    ink: &dyn Fn(f64, f64) -> Option<bool>,
) -> f64 {
    let steps = ((radius * std::f64::consts::FRAC_PI_2).ceil() as usize).max(8);
    let (lo, hi) = (0.15f64, 1.42f64);
    let (mut inside, mut hits) = (0usize, 0usize);
    for k in 0..=steps {
        let th = lo + (hi - lo) * k as f64 / steps as f64;
        let hit = ink(
            line + side * radius * th.sin(),
            hinge + dir * radius * th.cos(),
        );
        if let Some(hit) = hit {
            inside += 1;
            hits += usize::from(hit);
        }
    }
    if inside == 0 {
        0.0
    } else {
        hits as f64 / inside as f64
    }
}

/// How a swing is checked.
#[derive(Clone, Copy)]
struct Check<'a> {
    /// Paper (no ink) at a point, and how far off the curve its sides are looked at.
    paper: &'a dyn Fn(f64, f64) -> Option<bool>,
    beside: f64,
    /// The fraction of samples that must be on thin strokes.
    on_thin: f64,
    /// Whether the swing must be a lone curve (else only one mostly off the sheet must).
    lone: bool,
    /// Whether the swing spans the whole gap (a wall that is all door).
    full: bool,
}

impl<'a> Check<'a> {
    /// An ordinary gap: a swing at least half on thin strokes.
    fn ordinary(paper: &'a dyn Fn(f64, f64) -> Option<bool>, beside: f64) -> Self {
        Self {
            paper,
            beside,
            on_thin: 0.5,
            lone: false,
            full: false,
        }
    }

    /// A wall that is all door: a lone curve spanning the gap, nearly all off the walls.
    fn all_door(paper: &'a dyn Fn(f64, f64) -> Option<bool>, beside: f64) -> Self {
        Self {
            paper,
            beside,
            on_thin: 0.75,
            lone: true,
            full: true,
        }
    }
}

/// Whether a door's swing is drawn: a quarter circle centred on the hinge at
/// `(line, hinge)` (in band or leaf coordinates), from the leaf's end round to the wall. Samples from 9 to 81 degrees must mostly lie on ink (where
/// the swing crosses a wall it is drawn over it), and at least half on thin strokes. `None`
/// when fewer than half the samples are on the image and those that are fit a drawn swing.
/// A lone curve has paper just inside and just outside it (`beside` pixels off) at most
/// samples: a drawn swing, not a patch of writing or hatching that any curve would meet.
#[allow(clippy::too_many_arguments)]
fn swing(
    line: f64,
    hinge: f64,
    dir: f64,
    side: f64,
    radius: f64,
    thin: &dyn Fn(f64, f64) -> Option<bool>,
    ink: &dyn Fn(f64, f64) -> Option<bool>,
    check: Check,
) -> Option<bool> {
    const ON_INK: f64 = 0.85;
    const LONE: f64 = 0.6;
    let steps = ((radius * std::f64::consts::FRAC_PI_2 / 2.0).ceil() as usize).max(8);
    let (lo, hi) = (0.15f64, 1.42f64);
    let allowed = ((steps + 1) as f64 * (1.0 - ON_INK)).ceil() as usize;
    let (mut inside, mut hits, mut thin_hits, mut misses) = (0usize, 0usize, 0usize, 0usize);
    let mut alone = 0usize;
    for k in 0..=steps {
        let th = lo + (hi - lo) * k as f64 / steps as f64;
        let (l, i) = (
            line + side * radius * th.sin(),
            hinge + dir * radius * th.cos(),
        );
        let Some(on_ink) = ink(l, i) else { continue };
        inside += 1;
        if on_ink {
            hits += 1;
            thin_hits += usize::from(thin(l, i) == Some(true));
            let beside = check.beside;
            let clear = [radius - beside, radius + beside].iter().all(|&r| {
                (check.paper)(line + side * r * th.sin(), hinge + dir * r * th.cos()) != Some(false)
            });
            alone += usize::from(clear);
        } else {
            misses += 1;
            if misses > allowed {
                return Some(false);
            }
        }
    }
    let n = inside as f64;
    let drawn = hits as f64 >= ON_INK * n && thin_hits as f64 >= check.on_thin * n;
    let lone = alone as f64 >= LONE * n;
    if inside * 2 < steps + 1 {
        // Mostly off the sheet: what is on it must be a drawn swing, or none is there.
        return if inside == 0 || (drawn && lone) {
            None
        } else {
            Some(false)
        };
    }
    Some(drawn && (!check.lone || lone))
}

/// Closes the gaps found: every run of every band, along its axis.
fn fill_bands(out: &mut [bool], doors: &[(Axis, Band)]) {
    for (axis, g) in doors {
        for &(line, a, b) in &g.runs {
            for i in a..b {
                out[axis.idx(line, i)] = true;
            }
        }
    }
}

/// Whether a door symbol is drawn at a gap: a quarter-circle swing centred on one jamb
/// (and the leaf from that jamb, where the door is long enough to tell it from the wall),
/// or two swings from both jambs (a double door). The swing's radius is searched up to a
/// little over the gap's length, since a gap that runs into a junction is longer than
/// its door. `thin(line, i)` tells thin strokes, `ink(line, i)` any ink, in band
/// coordinates; `None` is off the image, where a sample counts neither way.
fn door_symbol(
    g: &Band,
    t: f64,
    thin: impl Fn(f64, f64) -> Option<bool>,
    ink: impl Fn(f64, f64) -> Option<bool>,
    check: Check,
    record: &dyn Fn(f64, f64, f64),
) -> Option<bool> {
    const LEAF: f64 = 0.6;
    let c = (g.line0 + g.line1) as f64 / 2.0;
    let (ja, jb) = (g.a as f64 - 0.5, g.b as f64 - 0.5);
    let len = jb - ja;
    if len < 4.0 {
        return Some(false);
    }
    let off_sheet = std::cell::Cell::new(false);
    let arc = |hinge: f64, dir: f64, side: f64, radius: f64| match swing(
        c, hinge, dir, side, radius, &thin, &ink, check,
    ) {
        Some(ok) => ok,
        None => {
            off_sheet.set(true);
            false
        }
    };
    // Fraction of the leaf's samples on ink (where it runs along a wall it is drawn over
    // it); 0 when fewer than half are on the image.
    let leaf = |hinge: f64, side: f64, radius: f64| {
        let from = t * 0.75 + 2.0;
        let to = radius * 0.9;
        if to - from < t {
            return 1.0;
        }
        let steps = ((to - from) / 2.0).ceil() as usize;
        let (mut inside, mut hits) = (0usize, 0usize);
        for k in 0..=steps {
            if let Some(hit) = ink(
                c + side * (from + (to - from) * k as f64 / steps as f64),
                hinge,
            ) {
                inside += 1;
                hits += usize::from(hit);
            }
        }
        if inside * 2 < steps + 1 {
            0.0
        } else {
            hits as f64 / inside as f64
        }
    };
    // The swing's radius is the gap's length, or up to a wall thickness and a half less
    // where the gap runs on through a junction.
    let step = (t / 10.0).round().max(1.0);
    let r_max = len + t / 2.0;
    // Checked strictly (a wall that is all door), the swing spans the whole gap.
    let r_min = if check.full {
        (len - t / 2.0).max(t)
    } else {
        (len - 1.5 * t - 2.0).max(t).max(4.0)
    };
    // A swing spanning the gap crosses the diagonal from its hinge somewhere between the
    // two radii: where no thin stroke does, no radius need be tried.
    let crosses_diagonal = |hinge: f64, dir: f64, side: f64| {
        let d = std::f64::consts::FRAC_1_SQRT_2;
        let mut r = r_min;
        while r <= r_max {
            if thin(c + side * r * d, hinge + dir * r * d) == Some(true) {
                return true;
            }
            r += 1.0;
        }
        false
    };
    for side in [-1.0, 1.0] {
        for (hinge, dir) in [(ja, 1.0), (jb, -1.0)] {
            if check.full && !crosses_diagonal(hinge, dir, side) {
                continue;
            }
            let mut r = r_max;
            while r >= r_min {
                if arc(hinge, dir, side, r) && leaf(hinge, side, r) >= LEAF {
                    record(c, hinge, r);
                    return Some(true);
                }
                r -= step;
            }
        }
        let half = len / 2.0;
        if half >= t && arc(ja, 1.0, side, half) && arc(jb, -1.0, side, half) {
            record(c, ja, half);
            record(c, jb, half);
            return Some(true);
        }
    }
    (!off_sheet.get()).then_some(false)
}

/// The fallback for plans drawn without door symbols: a band is a doorway when one of its
/// jambs is a wall end (wall no thicker across than the band). Where both jambs are long
/// perpendicular walls, the band is where two doorways' spans happen to overlap across a
/// room, not a gap in a wall.
fn jamb_rule(
    g: &Band,
    lines: usize,
    len: usize,
    tol: usize,
    wall: impl Fn(usize, usize) -> bool,
) -> bool {
    let (a, b) = jamb_ends(g, lines, len, tol, wall);
    a || b
}

/// Whether each jamb of a band is a wall end (wall no thicker across than the band).
fn jamb_ends(
    g: &Band,
    lines: usize,
    len: usize,
    tol: usize,
    wall: impl Fn(usize, usize) -> bool,
) -> (bool, bool) {
    let across = |mid: usize, i: usize| {
        let up = (0..=mid).rev().take_while(|&l| wall(l, i)).count();
        let down = (mid + 1..lines).take_while(|&l| wall(l, i)).count();
        up + down
    };
    let height = g.runs.len();
    let (line, a, b) = g.runs[height / 2];
    // A diagonal wall's end is thicker across than a square one.
    let slack = 2 * height + 2 * tol + 2;
    (
        a > 0 && across(line, a - 1) <= slack,
        b < len && across(line, b) <= slack,
    )
}

/// Candidate gaps for `lines` lines of `len` pixels where `wall(line, i)` tells a wall
/// pixel: bands of at least `min_band` lines whose free runs (bounded by wall on both
/// sides, at most `gap_len` long) line up within `tol`.
fn bands(
    lines: usize,
    len: usize,
    gap_len: usize,
    min_band: usize,
    tol: usize,
    wall: impl Fn(usize, usize) -> bool,
) -> Vec<Band> {
    struct Open {
        a: usize,
        b: usize,
        last: usize,
        runs: Vec<(usize, usize, usize)>,
    }
    let near = |p: usize, q: usize| p.abs_diff(q) <= tol;
    let mut open: Vec<Open> = Vec::new();
    let mut found = Vec::new();
    let band = |runs: &[(usize, usize, usize)]| {
        let (_, a, b) = runs[runs.len() / 2];
        Band {
            line0: runs[0].0,
            line1: runs[runs.len() - 1].0,
            a,
            b,
            runs: runs.to_vec(),
        }
    };
    let close = |g: Open, found: &mut Vec<Band>| {
        let height = g.runs.len();
        if height >= min_band {
            found.push(band(&g.runs));
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
        let mut next: Vec<Open> = Vec::with_capacity(runs.len());
        for (a, b) in runs {
            let hit = open
                .iter()
                .position(|g| g.last + 1 == line && near(g.a, a) && near(g.b, b));
            match hit {
                Some(j) => {
                    // Ends are compared with the band's first line: a gap between
                    // diagonal walls narrows line by line into a band of its own.
                    let mut g = open.swap_remove(j);
                    g.last = line;
                    g.runs.push((line, a, b));
                    next.push(g);
                }
                None => next.push(Open {
                    a,
                    b,
                    last: line,
                    runs: vec![(line, a, b)],
                }),
            }
        }
        for g in open.drain(..) {
            close(g, &mut found);
        }
        open = next;
    }
    for g in open.drain(..) {
        close(g, &mut found);
    }
    found
}

/// Writing: where a row crosses a line of text it cuts many short strokes close together
/// (letters' stems and diagonals), unlike a fixture's outline, a door's leaf or swing, or
/// a wall. Marks the short runs of thin ink (not wall, not on a recognised door's swing)
/// that come in chains of at least two, each within a wall thickness of the next.
fn marks(
    ink: &[bool],
    walls: &[bool],
    (swings, arcs): (&[[f64; 3]], &[usize]),
    w: u32,
    h: u32,
    t: u32,
) -> Vec<bool> {
    let (wu, hu) = (w as usize, h as usize);
    let short = (t as usize / 3).max(4);
    let gap = (t as usize).max(6);
    let mut out = vec![false; wu * hu];
    // A recognised door's swing is no writing, wherever it crosses other strokes.
    let mut on_swing = vec![false; wu * hu];
    let near = (f64::from(t) / 4.0).max(2.0);
    for &[cx, cy, r] in swings {
        let reach = r + near;
        let (x0, x1) = (
            (cx - reach).max(0.0) as usize,
            ((cx + reach).max(0.0) as usize).min(wu.saturating_sub(1)),
        );
        let (y0, y1) = (
            (cy - reach).max(0.0) as usize,
            ((cy + reach).max(0.0) as usize).min(hu.saturating_sub(1)),
        );
        for y in y0..=y1 {
            for x in x0..=x1 {
                let d = (x as f64 + 0.5 - cx).hypot(y as f64 + 0.5 - cy);
                if (d - r).abs() <= near {
                    on_swing[y * wu + x] = true;
                }
            }
        }
    }
    // Swings found by their arc alone: the arc's own pixels.
    for &i in arcs {
        if let Some(p) = on_swing.get_mut(i) {
            *p = true;
        }
    }
    let thin = |i: usize| ink[i] && !walls[i] && !on_swing[i];
    for y in 0..hu {
        let row = y * wu;
        let mut chain: Vec<(usize, usize)> = Vec::new();
        let flush = |chain: &mut Vec<(usize, usize)>, out: &mut [bool]| {
            if chain.len() >= 2 {
                for &(a, b) in chain.iter() {
                    out[row + a..row + b].fill(true);
                }
            }
            chain.clear();
        };
        let mut x = 0;
        while x < wu {
            if !thin(row + x) {
                // A wall or a free pixel: walls end a chain.
                if walls[row + x] {
                    flush(&mut chain, &mut out);
                }
                x += 1;
                continue;
            }
            let s = x;
            while x < wu && thin(row + x) {
                x += 1;
            }
            let long = x - s > short;
            let far = chain.last().is_some_and(|&(_, b)| s - b > gap);
            if long || far {
                flush(&mut chain, &mut out);
            }
            if !long {
                chain.push((s, x));
            }
        }
        flush(&mut chain, &mut out);
    }
    out
}

/// Pixels of writing a region needs to be a room (a few rows of a short word), on a sheet
/// whose walls are at least as many pixels thick; on one drawn smaller, its writing is
/// smaller too, and a wall thickness of pixels of it will do.
const MIN_MARKS: u32 = 12;

/// Pixels of writing a region needs to be a room: [`MIN_MARKS`] on a sheet whose walls
/// are at least that many pixels thick; on one drawn smaller, its writing is drawn smaller
/// too (a label's letters a wall thickness or so high, a single letter's strokes crossed by
/// few rows), so two thirds of a wall thickness of it, and at least 4 pixels (more than a
/// speck's leftovers).
fn writing_needed(t: u32) -> u32 {
    if t >= MIN_MARKS {
        MIN_MARKS
    } else {
        (2 * t).div_ceil(3).max(4)
    }
}

/// Free-space regions not touching the image border and at least `min_area` pixels; with
/// `marks`, only those with enough writing in them ([`MIN_MARKS`], or `t` pixels when
/// walls are thinner than that).
fn rooms_of(
    walls: &[bool],
    drawn: &[bool],
    marks: Option<&[bool]>,
    (w, h): (u32, u32),
    min_area: u64,
    t: u32,
    epsilon: f64,
) -> (Vec<u32>, Vec<DetectedRoom>) {
    let wu = w as usize;
    // How far each free pixel is from the nearest wall (chessboard): a room is deeper than
    // a niche in a wall, somewhere at least a wall thickness from every wall.
    let wall_img = GrayImage::from_fn(w, h, |x, y| {
        Luma([u8::from(walls[(y as usize) * wu + x as usize]) * 255])
    });
    let depth = imageproc::distance_transform::distance_transform(&wall_img, Norm::LInf);
    let min_depth = ((t / 2).min(255) as u8).max(1);
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
        marks: u32,
        /// Boundary contacts with wall, and of those with a closed doorway (no drawn wall).
        edge: u32,
        closed: u32,
        deep: bool,
    }
    let mut stats = vec![
        Stats {
            area: 0,
            bbox: [u32::MAX, u32::MAX, 0, 0],
            border: false,
            marks: 0,
            edge: 0,
            closed: 0,
            deep: false,
        };
        n + 1
    ];
    for (i, (x, y, p)) in labels.enumerate_pixels().enumerate() {
        let s = &mut stats[p.0[0] as usize];
        s.area += 1;
        s.deep |= depth.as_raw()[i] >= min_depth;
        s.bbox = [
            s.bbox[0].min(x),
            s.bbox[1].min(y),
            s.bbox[2].max(x),
            s.bbox[3].max(y),
        ];
        if x == 0 || y == 0 || x + 1 == w || y + 1 == h {
            s.border = true;
        }
        if p.0[0] != 0 {
            let (xu, yu) = (x as usize, y as usize);
            let around = [
                (xu > 0).then(|| i - 1),
                (xu + 1 < wu).then(|| i + 1),
                (yu > 0).then(|| i - wu),
                (yu + 1 < h as usize).then(|| i + wu),
            ];
            for j in around.into_iter().flatten() {
                if walls[j] {
                    s.edge += 1;
                    s.closed += u32::from(!drawn[j]);
                }
            }
        }
    }
    if let Some(m) = marks {
        for (r, count) in marks_by_region(m, labels.as_raw(), n, w, h, t)
            .into_iter()
            .enumerate()
        {
            stats[r].marks = count;
        }
    }
    let min_marks = writing_needed(t);
    let mut chosen: Vec<(u32, DetectedRoom)> = Vec::new();
    for (label, s) in stats.iter().enumerate().skip(1) {
        if s.border || s.area < min_area || !s.deep || (marks.is_some() && s.marks < min_marks) {
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
        // A room enclosed by doorways the detector closed, rather than by drawn walls, is
        // only as sure as those closures: a third of its outline closed costs a fifth.
        let closed_share = f64::from(s.closed) / f64::from(s.edge.max(1));
        confidence *= 1.0 - 0.6 * closed_share.clamp(0.0, 1.0);
        // Without writing on the sheet, nothing says a region is a room but its size.
        if marks.is_none() {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A mask of `w` x `h` with the given filled rectangles (inclusive corners).
    fn mask(w: u32, h: u32, rects: &[[u32; 4]]) -> Vec<bool> {
        let mut m = vec![false; (w * h) as usize];
        for &[x0, y0, x1, y1] in rects {
            for y in y0..=y1 {
                for x in x0..=x1 {
                    m[(y * w + x) as usize] = true;
                }
            }
        }
        m
    }

    #[test]
    fn a_gap_in_an_outer_wall_is_closed_however_long_and_an_inner_doorway_is_not() {
        // Two rooms, walls 6 px thick. The left room's outer (bottom) wall has a 100 px gap
        // (some 16 wall thicknesses: wider than any door the other rules take) onto the
        // paper round the building; the wall between the rooms has a 30 px doorway.
        let (w, h) = (300u32, 200u32);
        let mut out = mask(
            w,
            h,
            &[
                [20, 20, 279, 25],
                [20, 175, 39, 180],
                [140, 175, 279, 180],
                [20, 20, 25, 180],
                [274, 20, 279, 180],
                [150, 20, 155, 79],
                [150, 110, 155, 180],
            ],
        );
        close_envelope(&mut out, w, h, 6);
        assert!(out[(177 * w + 90) as usize], "the outer gap is closed");
        assert!(
            !out[(95 * w + 152) as usize],
            "the inner doorway is left open"
        );
        assert!(!out[(100 * w + 90) as usize], "the room stays free");
    }

    #[test]
    fn a_slit_between_a_closed_doorway_and_a_wall_end_is_sealed_and_a_doorway_is_not() {
        // Walls 16 px thick: a closed doorway (x 100-115) stops a pixel short of the end
        // of the wall running up to it (x 40-98), leaving a 1 px slit at x 99; a real
        // opening of 40 px further along stays open.
        let (w, h) = (240u32, 80u32);
        let mut bridged = mask(
            w,
            h,
            &[[40, 30, 98, 45], [100, 10, 115, 70], [156, 30, 230, 45]],
        );
        seal_slits(&mut bridged, w, h, 16);
        assert!(bridged[(38 * w + 99) as usize], "the slit is wall now");
        assert!(!bridged[(38 * w + 135) as usize], "the opening is not");
        assert!(
            !bridged[(60 * w + 60) as usize],
            "nor the room beside the wall"
        );
    }

    #[test]
    fn a_wall_stub_between_two_doorways_stays_a_wall_and_a_speck_does_not() {
        // A 12 px stub (as long as the wall is thick) and a 7 px blob, alone.
        let ink = mask(80, 40, &[[10, 10, 21, 21], [50, 10, 56, 16]]);
        let walls = wall_mask(&ink, 80, 40, 12, false);
        assert!(walls[15 * 80 + 15], "the stub is kept");
        assert!(!walls[13 * 80 + 53], "the speck goes");
    }

    #[test]
    fn a_wall_at_an_angle_survives_the_opening_on_outline_sheets() {
        // A 7 px thick wall at 45 degrees: no 5x5 square fits in it, a disk of radius 2
        // does.
        let (w, h) = (60u32, 60u32);
        let ink: Vec<bool> = (0..w * h)
            .map(|i| {
                let (x, y) = ((i % w) as i32, (i / w) as i32);
                (x - y).abs() <= 4 && (10..50).contains(&x)
            })
            .collect();
        let square_only = wall_mask(&ink, w, h, 7, false);
        let any_angle = wall_mask(&ink, w, h, 7, true);
        let kept = |m: &[bool]| m.iter().filter(|&&b| b).count();
        assert!(kept(&any_angle) > kept(&square_only));
        assert!(any_angle[(30 * w + 30) as usize]);
    }

    #[test]
    fn rooms_joined_by_an_open_doorway_are_parted_along_its_leaf_and_swing() {
        // Two rooms, walls 6 px thick, the wall between them with a 30 px doorway left
        // open; the door's leaf and swing are drawn in the right room, and there is
        // writing in both.
        let (w, h) = (200u32, 100u32);
        let walls = mask(
            w,
            h,
            &[
                [10, 10, 189, 15],
                [10, 84, 189, 89],
                [10, 10, 15, 89],
                [184, 10, 189, 89],
                [100, 10, 105, 39],
                [100, 70, 105, 89],
            ],
        );
        let marks = mask(w, h, &[[40, 40, 52, 52], [150, 60, 162, 72]]);
        let mut ink: Vec<bool> = walls.iter().zip(&marks).map(|(&a, &b)| a || b).collect();
        for x in 103..=133 {
            ink[(40 * w + x) as usize] = true;
        }
        for k in 0..=200 {
            let th = f64::from(k) / 200.0 * std::f64::consts::FRAC_PI_2;
            let (x, y) = (103.0 + 30.0 * th.sin(), 40.0 + 30.0 * th.cos());
            ink[(y.round() as u32 * w + x.round() as u32) as usize] = true;
        }
        let region_of = |m: &[bool]| {
            let free = GrayImage::from_fn(w, h, |x, y| {
                Luma([if m[(y * w + x) as usize] { 0 } else { 255 }])
            });
            connected_components(&free, Connectivity::Four, Luma([0u8]))
        };
        let before = region_of(&walls);
        assert_eq!(before.get_pixel(30, 50), before.get_pixel(170, 50));
        let mut bridged = walls.clone();
        split_at_symbols(&mut bridged, &ink, &walls, &marks, w, h, 6);
        let after = region_of(&bridged);
        assert_ne!(after.get_pixel(30, 50), after.get_pixel(170, 50));
        // Writing alone on both sides of a room parts nothing.
        let walls2 = mask(
            w,
            h,
            &[
                [10, 10, 189, 15],
                [10, 84, 189, 89],
                [10, 10, 15, 89],
                [184, 10, 189, 89],
            ],
        );
        let ink2: Vec<bool> = walls2.iter().zip(&marks).map(|(&a, &b)| a || b).collect();
        let mut bridged2 = walls2.clone();
        split_at_symbols(&mut bridged2, &ink2, &walls2, &marks, w, h, 6);
        assert_eq!(bridged2, walls2);
    }

    #[test]
    fn a_wall_that_is_all_door_is_closed_from_its_swing_alone() {
        // Two rooms side by side, walls 8 px thick; the wall between them (x = 150) is all
        // door: nothing of it is drawn but the door's swing, hinged at the top wall
        // (leaf lying along it) and reaching the bottom wall.
        let (w, h) = (280u32, 100u32);
        let walls = mask(
            w,
            h,
            &[
                [10, 10, 269, 17],
                [10, 82, 269, 89],
                [10, 10, 17, 89],
                [262, 10, 269, 89],
            ],
        );
        let mut ink = walls.clone();
        let (cx, cy, r) = (150.0f64, 14.0f64, 72.0f64);
        for k in 0..=400 {
            let th = f64::from(k) / 400.0 * std::f64::consts::FRAC_PI_2;
            let (x, y) = (cx - r * th.sin(), cy + r * th.cos());
            ink[(y.round() as u32 * w + x.round() as u32) as usize] = true;
        }
        // A round fixture in the middle of the right room, no wall near its centre, is
        // no door.
        for k in 0..=200 {
            let th = f64::from(k) / 200.0 * std::f64::consts::FRAC_PI_2;
            let (x, y) = (200.0 + 30.0 * th.cos(), 50.0 + 30.0 * th.sin());
            ink[(y.round() as u32 * w + x.round() as u32) as usize] = true;
        }
        let mut out = walls.clone();
        let mut swings = Vec::new();
        let arcs = arc_doors(&ink, &walls, &mut out, w, h, 8, 320, &mut swings);
        assert_eq!(swings.len(), 1, "one swing: {swings:?}");
        assert!(!arcs.is_empty());
        for y in 20..80 {
            assert!(
                out[(y * w + 150) as usize],
                "the doorway is closed at y = {y}"
            );
        }
        let added = out.iter().zip(&walls).filter(|(o, w)| **o && !**w).count();
        assert!(added <= 80 * 10, "only the doorway is closed: {added} px");
        assert!(!out[(50 * w + 200) as usize], "the fixture closes nothing");
    }

    #[test]
    fn on_a_sheet_drawn_small_a_short_label_is_enough_writing() {
        // Walls 10 px thick round two closets: the left one labelled with two strokes a
        // pixel wide crossed by four rows (8 px of writing, under a wall thickness but over
        // two thirds of one), the right one with a lone stroke (no writing).
        let (w, h) = (200u32, 100u32);
        let walls = mask(
            w,
            h,
            &[
                [10, 10, 189, 19],
                [10, 80, 189, 89],
                [10, 10, 19, 89],
                [180, 10, 189, 89],
                [95, 10, 104, 89],
            ],
        );
        let label =
            |x: u32, y: u32, rows: u32| (y..y + rows).flat_map(move |yy| [(x, yy), (x + 3, yy)]);
        let strokes: Vec<(u32, u32)> = label(55, 47, 4).chain((44..50).map(|y| (140, y))).collect();
        let gray = GrayImage::from_fn(w, h, |x, y| {
            let ink = walls[(y * w + x) as usize] || strokes.contains(&(x, y));
            Luma([if ink { 0 } else { 255 }])
        });
        let d = detect(&gray, &DetectParams::default());
        assert_eq!(d.wall_thickness, 10);
        assert_eq!(d.rooms.len(), 1, "{:?}", d.rooms);
        assert!(d.rooms[0].bbox[2] < 100, "{:?}", d.rooms);
    }

    #[test]
    fn on_a_sheet_with_walls_of_12_px_and_more_a_short_word_is_needed() {
        // The same closets with walls 14 px thick: 8 px of writing is too little.
        let (w, h) = (200u32, 100u32);
        let walls = mask(
            w,
            h,
            &[
                [10, 10, 189, 23],
                [10, 76, 189, 89],
                [10, 10, 23, 89],
                [176, 10, 189, 89],
                [93, 10, 106, 89],
            ],
        );
        let label =
            |x: u32, y: u32, rows: u32| (y..y + rows).flat_map(move |yy| [(x, yy), (x + 3, yy)]);
        let strokes: Vec<(u32, u32)> = label(55, 47, 4).chain(label(140, 47, 7)).collect();
        let gray = GrayImage::from_fn(w, h, |x, y| {
            let ink = walls[(y * w + x) as usize] || strokes.contains(&(x, y));
            Luma([if ink { 0 } else { 255 }])
        });
        let d = detect(&gray, &DetectParams::default());
        assert_eq!(d.wall_thickness, 14);
        assert_eq!(d.rooms.len(), 1, "{:?}", d.rooms);
        assert!(d.rooms[0].bbox[0] > 100, "{:?}", d.rooms);
    }

    #[test]
    fn rooms_cut_off_by_the_sheets_edge_are_closed_by_it() {
        // Two rooms, the right one running off the sheet's right edge (its end wall is
        // beyond the sheet); drawn straight and turned 2 degrees (read through deskew).
        let (w, h) = (400u32, 200u32);
        let rects = [
            [20, 20, 420, 27],
            [20, 172, 420, 179],
            [20, 20, 27, 179],
            [200, 20, 207, 179],
        ];
        for degrees in [0.0f64, 2.0] {
            let (s, c) = degrees.to_radians().sin_cos();
            let gray = GrayImage::from_fn(w, h, |x, y| {
                let (dx, dy) = (f64::from(x) - 200.0, f64::from(y) - 100.0);
                let (u, v) = (dx * c + dy * s + 200.0, -dx * s + dy * c + 100.0);
                let wall = rects.iter().any(|r| {
                    u >= f64::from(r[0])
                        && u < f64::from(r[2]) + 1.0
                        && v >= f64::from(r[1])
                        && v < f64::from(r[3]) + 1.0
                });
                Luma([if wall { 0 } else { 255 }])
            });
            let d = detect(&gray, &DetectParams::default());
            // Both rooms, and not the paper above or below the building.
            assert_eq!(d.rooms.len(), 2, "{degrees}: {:?}", d.rooms);
            assert!(
                d.rooms.iter().all(|r| r.area > 150 * 130),
                "{degrees}: {:?}",
                d.rooms
            );
        }
    }

    #[test]
    fn an_unlabelled_sheet_keeps_only_regions_of_room_size() {
        // Solid walls 8 px thick: a big box (a room) and a small one (a shaft), nothing
        // written anywhere.
        let (w, h) = (400u32, 200u32);
        let walls = mask(
            w,
            h,
            &[
                [20, 20, 379, 27],
                [20, 172, 379, 179],
                [20, 20, 27, 179],
                [372, 20, 379, 179],
                [300, 20, 307, 179],
                [308, 60, 371, 67],
            ],
        );
        let gray = GrayImage::from_fn(w, h, |x, y| {
            Luma([if walls[(y * w + x) as usize] { 0 } else { 255 }])
        });
        let d = detect(&gray, &DetectParams::default());
        assert_eq!(d.wall_thickness, 8);
        // The big room (272 x 144 px) is one; the 64 x 32 px shaft above the small wall is
        // under (8t)^2 and is not; the 64 x 104 px region below it is.
        let areas: Vec<u64> = d.rooms.iter().map(|r| r.area).collect();
        assert_eq!(areas.len(), 2, "{areas:?}");
        assert!(areas.iter().all(|&a| a >= 64 * 64), "{areas:?}");
        // Walls only: every room is less sure than a labelled one would be.
        assert!(d.rooms.iter().all(|r| r.confidence <= 0.9), "{:?}", d.rooms);
    }
}
