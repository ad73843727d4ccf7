//! Raster-to-Vector (r2v) floor-plan annotations: parse, render to an image a detector can
//! read, and derive the ground-truth rooms.
//!
//! The format is one item per line, tab-separated: `x1 y1 x2 y2 category [a b]`. `wall`
//! and `door` items are segments (walls run through their doors); every other category is
//! a box: a room label (`bedroom`, `kitchen`, ...) or an icon (`toilet`, `bathtub`, ...).
//! A room is the wall-enclosed region around its small label box: the annotation's walls
//! drawn closed (doors ignored), flooded from the box's centre. Labels whose region reaches
//! the sheet's edge are not rooms; several labels in one region make one room.
//!
//! The rendered image is what a scan of such a plan looks like: thick walls, doors cut as
//! gaps with a thin leaf and swing arc, icons as thin outlines and labels as thin strokes.

use image::{GrayImage, Luma};
use imageproc::region_labelling::{Connectivity, connected_components};

/// Categories that name a room (the label map of the r2v dataset, plus `stairs`).
pub const ROOM_LABELS: [&str; 14] = [
    "living_room",
    "kitchen",
    "bedroom",
    "bathroom",
    "restroom",
    "washing_room",
    "office",
    "closet",
    "balcony",
    "corridor",
    "dining_room",
    "laundry_room",
    "PS",
    "stairs",
];

/// A segment in annotation units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Segment {
    pub a: [f64; 2],
    pub b: [f64; 2],
}

/// A labelled box in annotation units.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelBox {
    pub name: String,
    pub x0: f64,
    pub y0: f64,
    pub x1: f64,
    pub y1: f64,
}

/// One annotated plan.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    pub walls: Vec<Segment>,
    pub doors: Vec<Segment>,
    /// Room labels.
    pub labels: Vec<LabelBox>,
    /// Everything else drawn in a room (fixtures, entrances, special symbols).
    pub icons: Vec<LabelBox>,
}

/// Parses an r2v annotation; lines that do not parse are errors with their number.
pub fn parse(text: &str) -> Result<Plan, String> {
    let mut plan = Plan::default();
    for (n, line) in text.lines().enumerate() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.is_empty() {
            continue;
        }
        if cols.len() < 5 {
            return Err(format!("line {}: expected x1 y1 x2 y2 category", n + 1));
        }
        let mut v = [0.0f64; 4];
        for (slot, c) in v.iter_mut().zip(&cols[..4]) {
            *slot = c
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite() && x.abs() < 1e6)
                .ok_or_else(|| format!("line {}: {c:?} is not a coordinate", n + 1))?;
        }
        let [x1, y1, x2, y2] = v;
        let seg = Segment {
            a: [x1, y1],
            b: [x2, y2],
        };
        let boxed = LabelBox {
            name: cols[4].to_owned(),
            x0: x1.min(x2),
            y0: y1.min(y2),
            x1: x1.max(x2),
            y1: y1.max(y2),
        };
        match cols[4] {
            "wall" => plan.walls.push(seg),
            "door" => plan.doors.push(seg),
            name if ROOM_LABELS.contains(&name) => plan.labels.push(boxed),
            _ => plan.icons.push(boxed),
        }
    }
    if plan.walls.is_empty() {
        return Err("no walls".into());
    }
    Ok(plan)
}

/// How a plan is drawn.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderOptions {
    /// Pixels per annotation unit.
    pub scale: f64,
    /// Wall thickness in annotation units (about 15 cm at r2v's scale, where a corridor
    /// is some 45 units wide).
    pub wall_units: f64,
    /// White border around the drawing, pixels.
    pub margin: u32,
}

impl Default for RenderOptions {
    fn default() -> Self {
        Self {
            scale: 2.0,
            wall_units: 7.0,
            margin: 24,
        }
    }
}

/// A rendered plan and its ground truth.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub image: GrayImage,
    pub wall_thickness: f64,
    /// Per pixel: 0 outside every room, `i + 1` inside `room_labels[i]`'s room.
    pub room_map: Vec<u32>,
    /// The label names of each ground-truth room (first label first).
    pub room_labels: Vec<Vec<String>>,
}

/// Draws the plan and derives its rooms.
pub fn render(plan: &Plan, opts: &RenderOptions) -> Result<Rendered, String> {
    let s = opts.scale;
    let m = f64::from(opts.margin);
    let (mut max_x, mut max_y) = (0.0f64, 0.0f64);
    let all_points = plan
        .walls
        .iter()
        .chain(&plan.doors)
        .flat_map(|g| [g.a, g.b])
        .chain(
            plan.labels
                .iter()
                .chain(&plan.icons)
                .flat_map(|b| [[b.x0, b.y0], [b.x1, b.y1]]),
        );
    for p in all_points {
        if p[0] < 0.0 || p[1] < 0.0 {
            return Err("negative coordinates".into());
        }
        max_x = max_x.max(p[0]);
        max_y = max_y.max(p[1]);
    }
    let w = (max_x * s + 2.0 * m).ceil() as u32;
    let h = (max_y * s + 2.0 * m).ceil() as u32;
    if u64::from(w) * u64::from(h) > 64_000_000 {
        return Err(format!("plan too large to render: {w}x{h}"));
    }
    let px = |p: [f64; 2]| [p[0] * s + m, p[1] * s + m];
    let t = opts.wall_units * s;

    // Closed walls: the ground truth's boundaries.
    let mut walls = vec![false; (w as usize) * (h as usize)];
    for seg in &plan.walls {
        fill_quad(
            &mut walls,
            w,
            h,
            &thick(px(seg.a), px(seg.b), t, t / 2.0),
            true,
        );
    }
    let free = GrayImage::from_fn(w, h, |x, y| {
        Luma([if walls[(y as usize) * (w as usize) + x as usize] {
            0
        } else {
            255
        }])
    });
    let components = connected_components(&free, Connectivity::Four, Luma([0u8]));
    let n = components.pixels().map(|p| p.0[0]).max().unwrap_or(0) as usize;
    let mut touches_border = vec![false; n + 1];
    for (x, y, p) in components.enumerate_pixels() {
        if x == 0 || y == 0 || x + 1 == w || y + 1 == h {
            touches_border[p.0[0] as usize] = true;
        }
    }
    let mut room_of_component = vec![0u32; n + 1];
    let mut room_labels: Vec<Vec<String>> = Vec::new();
    for label in &plan.labels {
        let Some(c) = component_under(&components, label, &px) else {
            continue;
        };
        if c == 0 || touches_border[c as usize] {
            continue;
        }
        match room_of_component[c as usize] {
            0 => {
                room_labels.push(vec![label.name.clone()]);
                room_of_component[c as usize] = room_labels.len() as u32;
            }
            r => room_labels[r as usize - 1].push(label.name.clone()),
        }
    }
    let room_map: Vec<u32> = components
        .pixels()
        .map(|p| room_of_component[p.0[0] as usize])
        .collect();

    // The drawing: walls with door gaps, thin door leaves and arcs, icons, label strokes.
    // A door is an opening in its own wall: where it ends on a crossing wall (a door in a
    // corner), the crossing wall stays whole, as a drawn plan shows it, rather than losing
    // the half of its thickness the opening's rectangle overlaps.
    let closed = walls.clone();
    let mut ink = walls;
    let cuts: Vec<[[f64; 2]; 4]> = plan
        .doors
        .iter()
        .map(|d| thick(px(d.a), px(d.b), t + 2.0, 0.0))
        .collect();
    for q in &cuts {
        fill_quad(&mut ink, w, h, q, false);
    }
    for wall in &plan.walls {
        let wq = thick(px(wall.a), px(wall.b), t, t / 2.0);
        for (d, q) in plan.doors.iter().zip(&cuts) {
            // Only a wall the door ends on; one that ends in the middle of the opening
            // (a T into a doorway) loses its end to it.
            if parallel(wall, d) || !(in_quad(&wq, px(d.a)) || in_quad(&wq, px(d.b))) {
                continue;
            }
            for (x, y) in quad_pixels(q, w, h) {
                let p = [f64::from(x) + 0.5, f64::from(y) + 0.5];
                // Not where the wall has a door of its own.
                let own_door = plan
                    .doors
                    .iter()
                    .zip(&cuts)
                    .any(|(d2, q2)| parallel(wall, d2) && in_quad(q2, p));
                if in_quad(&wq, p) && !own_door {
                    ink[(y as usize) * (w as usize) + x as usize] = true;
                }
            }
        }
    }
    let mut image = GrayImage::from_fn(w, h, |x, y| {
        Luma([if ink[(y as usize) * (w as usize) + x as usize] {
            0
        } else {
            255
        }])
    });
    // A door cannot swing through a wall: the annotation does not say to which side a door
    // opens, so it opens to the default side (left of its line) unless its swing there
    // would cross another wall and on the other side would not (a closet whose door is
    // wider than the closet is deep opens outwards). Leaving the drawing is allowed: an
    // entrance may open out of the building.
    let wall_at = |p: [f64; 2]| {
        let (x, y) = (p[0].floor(), p[1].floor());
        x >= 0.0
            && y >= 0.0
            && x < f64::from(w)
            && y < f64::from(h)
            && closed[(y as usize) * (w as usize) + x as usize]
    };
    for door in &plan.doors {
        let (a, b) = (px(door.a), px(door.b));
        let side = if swing_blocked(a, b, 1.0, t, &wall_at) > 0
            && swing_blocked(a, b, -1.0, t, &wall_at) == 0
        {
            -1.0
        } else {
            1.0
        };
        draw_door(&mut image, a, b, side);
    }
    for icon in &plan.icons {
        let (a, b) = (px([icon.x0, icon.y0]), px([icon.x1, icon.y1]));
        for (p, q) in [
            ([a[0], a[1]], [b[0], a[1]]),
            ([b[0], a[1]], [b[0], b[1]]),
            ([b[0], b[1]], [a[0], b[1]]),
            ([a[0], b[1]], [a[0], a[1]]),
        ] {
            stroke(&mut image, p, q, 1.5);
        }
    }
    for label in &plan.labels {
        let (a, b) = (px([label.x0, label.y0]), px([label.x1, label.y1]));
        // Pseudo-text: letter-like strokes, as thin as printed type.
        let letters = ((b[0] - a[0]) / 9.0).floor().max(1.0) as usize;
        for i in 0..letters {
            let x = a[0] + 2.0 + i as f64 * 9.0;
            stroke(&mut image, [x, a[1] + 2.0], [x, b[1] - 2.0], 1.5);
            stroke(&mut image, [x, a[1] + 2.0], [x + 5.0, b[1] - 2.0], 1.5);
        }
    }
    Ok(Rendered {
        image,
        wall_thickness: t,
        room_map,
        room_labels,
    })
}

/// Parses and renders an annotation to PNG bytes.
pub fn render_png(annotation: &str, opts: &RenderOptions) -> Result<Vec<u8>, String> {
    let rendered = render(&parse(annotation)?, opts)?;
    let mut out = Vec::new();
    image::DynamicImage::ImageLuma8(rendered.image)
        .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .map_err(|e| format!("encoding PNG: {e}"))?;
    Ok(out)
}

/// The free component under a label box: its centre, else the first free pixel of the box.
fn component_under(
    components: &image::ImageBuffer<Luma<u32>, Vec<u32>>,
    label: &LabelBox,
    px: &impl Fn([f64; 2]) -> [f64; 2],
) -> Option<u32> {
    let (w, h) = components.dimensions();
    let a = px([label.x0, label.y0]);
    let b = px([label.x1, label.y1]);
    let at = |x: f64, y: f64| {
        let (x, y) = (x.floor(), y.floor());
        if x < 0.0 || y < 0.0 || x >= f64::from(w) || y >= f64::from(h) {
            return 0;
        }
        components.get_pixel(x as u32, y as u32).0[0]
    };
    let c = at((a[0] + b[0]) / 2.0, (a[1] + b[1]) / 2.0);
    if c != 0 {
        return Some(c);
    }
    let (mut y, mut found) = (a[1], None);
    while y <= b[1] && found.is_none() {
        let mut x = a[0];
        while x <= b[0] {
            let c = at(x, y);
            if c != 0 {
                found = Some(c);
                break;
            }
            x += 1.0;
        }
        y += 1.0;
    }
    found
}

/// The four corners of a segment drawn `width` wide, extended by `cap` at both ends.
fn thick(a: [f64; 2], b: [f64; 2], width: f64, cap: f64) -> [[f64; 2]; 4] {
    let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
    let len = (dx * dx + dy * dy).sqrt();
    let (ux, uy) = if len > 0.0 {
        (dx / len, dy / len)
    } else {
        (1.0, 0.0)
    };
    let (nx, ny) = (-uy * width / 2.0, ux * width / 2.0);
    let a2 = [a[0] - ux * cap, a[1] - uy * cap];
    let b2 = [b[0] + ux * cap, b[1] + uy * cap];
    [
        [a2[0] + nx, a2[1] + ny],
        [b2[0] + nx, b2[1] + ny],
        [b2[0] - nx, b2[1] - ny],
        [a2[0] - nx, a2[1] - ny],
    ]
}

/// Sets (or clears) the pixels whose centres lie in a convex quad.
fn fill_quad(mask: &mut [bool], w: u32, h: u32, q: &[[f64; 2]; 4], value: bool) {
    for (x, y) in quad_pixels(q, w, h) {
        mask[(y as usize) * (w as usize) + x as usize] = value;
    }
}

/// The pixels whose centres lie in a convex quad.
fn quad_pixels(q: &[[f64; 2]; 4], w: u32, h: u32) -> impl Iterator<Item = (u32, u32)> + '_ {
    let lo = |i: usize| {
        q.iter()
            .map(|p| p[i])
            .fold(f64::INFINITY, f64::min)
            .floor()
            .max(0.0) as u32
    };
    let hi = |i: usize, limit: u32| {
        (q.iter().map(|p| p[i]).fold(0.0, f64::max).ceil() as u32).min(limit)
    };
    let (x0, y0, x1, y1) = (lo(0), lo(1), hi(0, w), hi(1, h));
    (y0..y1)
        .flat_map(move |y| (x0..x1).map(move |x| (x, y)))
        .filter(|&(x, y)| in_quad(q, [f64::from(x) + 0.5, f64::from(y) + 0.5]))
}

/// Whether `p` lies in the convex quad `q` (either winding).
fn in_quad(q: &[[f64; 2]; 4], p: [f64; 2]) -> bool {
    let mut sign = 0i8;
    for i in 0..4 {
        let (a, b) = (q[i], q[(i + 1) % 4]);
        let cross = (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0]);
        let s = if cross > 1e-9 {
            1
        } else if cross < -1e-9 {
            -1
        } else {
            0
        };
        if s != 0 {
            if sign == 0 {
                sign = s;
            } else if s != sign {
                return false;
            }
        }
    }
    true
}

/// Whether two segments run within 30 degrees of each other.
fn parallel(a: &Segment, b: &Segment) -> bool {
    let (ax, ay) = (a.b[0] - a.a[0], a.b[1] - a.a[1]);
    let (bx, by) = (b.b[0] - b.a[0], b.b[1] - b.a[1]);
    let (la, lb) = ((ax * ax + ay * ay).sqrt(), (bx * bx + by * by).sqrt());
    if la == 0.0 || lb == 0.0 {
        return true;
    }
    ((ax * by - ay * bx) / (la * lb)).abs() < 0.5
}

/// A thin dark line, `width` pixels wide.
fn stroke(image: &mut GrayImage, a: [f64; 2], b: [f64; 2], width: f64) {
    let (w, h) = image.dimensions();
    let q = thick(a, b, width, width / 2.0);
    let mut mask = Vec::new();
    let x0 = q
        .iter()
        .map(|p| p[0])
        .fold(f64::INFINITY, f64::min)
        .floor()
        .max(0.0) as u32;
    let y0 = q
        .iter()
        .map(|p| p[1])
        .fold(f64::INFINITY, f64::min)
        .floor()
        .max(0.0) as u32;
    let x1 = (q.iter().map(|p| p[0]).fold(0.0, f64::max).ceil() as u32).min(w);
    let y1 = (q.iter().map(|p| p[1]).fold(0.0, f64::max).ceil() as u32).min(h);
    if x1 <= x0 || y1 <= y0 {
        return;
    }
    let (bw, bh) = (x1 - x0, y1 - y0);
    mask.resize((bw as usize) * (bh as usize), false);
    let local = q.map(|p| [p[0] - f64::from(x0), p[1] - f64::from(y0)]);
    fill_quad(&mut mask, bw, bh, &local, true);
    for y in 0..bh {
        for x in 0..bw {
            if mask[(y as usize) * (bw as usize) + x as usize] {
                image.put_pixel(x0 + x, y0 + y, Luma([0]));
            }
        }
    }
}

/// A door as plans draw it: the leaf, open at 90 degrees from the jamb at `a`, to the
/// left of `a -> b` (`side` 1) or to its right (-1), and its swing.
fn draw_door(image: &mut GrayImage, a: [f64; 2], b: [f64; 2], side: f64) {
    let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
    let len = (dx * dx + dy * dy).sqrt();
    if len < 1.0 {
        return;
    }
    let leaf = [a[0] - side * dy, a[1] + side * dx];
    stroke(image, a, leaf, 2.0);
    let mut prev = b;
    for p in swing_points(a, b, side).skip(1) {
        stroke(image, prev, p, 1.0);
        prev = p;
    }
}

/// Points along a door's swing, from the far jamb `b` round to the open leaf's end.
fn swing_points(a: [f64; 2], b: [f64; 2], side: f64) -> impl Iterator<Item = [f64; 2]> {
    let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
    let len = (dx * dx + dy * dy).sqrt();
    let steps = (len * 1.6).ceil().max(1.0) as usize;
    let start = dy.atan2(dx);
    (0..=steps).map(move |i| {
        let ang = start + side * std::f64::consts::FRAC_PI_2 * i as f64 / steps as f64;
        [a[0] + len * ang.cos(), a[1] + len * ang.sin()]
    })
}

/// How many of a door's swing points, clear of its own wall (`t` thick) and of the leaf's
/// end, are `blocked` (on another wall) when it opens to `side`. The leaf itself may lie
/// along a wall (a door hinged in a corner opens flat against it), and the swing may start
/// along one (a door whose far jamb is a corner).
fn swing_blocked(
    a: [f64; 2],
    b: [f64; 2],
    side: f64,
    t: f64,
    blocked: &dyn Fn([f64; 2]) -> bool,
) -> usize {
    let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
    let len = (dx * dx + dy * dy).sqrt();
    if len < 1.0 {
        return 0;
    }
    let (nx, ny) = (-side * dy / len, side * dx / len);
    // Off its own wall: more than its half thickness from the door's line; short of the
    // leaf's end: more than a wall thickness from the leaf's line; clear of a wall through
    // the far jamb, which the swing's start runs along rather than crosses.
    let clear = |p: &[f64; 2]| {
        let (vx, vy) = (p[0] - a[0], p[1] - a[1]);
        let along = (vx * dx + vy * dy) / len;
        vx * nx + vy * ny > t / 2.0 + 1.0 && along > t && along < len - t / 2.0 - 1.0
    };
    swing_points(a, b, side)
        .filter(clear)
        .filter(|&p| blocked(p))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO_ROOMS: &str = "0\t0\t200\t0\twall\t1\t1\n\
        200\t0\t200\t100\twall\t1\t1\n\
        200\t100\t0\t100\twall\t1\t1\n\
        0\t100\t0\t0\twall\t1\t1\n\
        100\t0\t100\t100\twall\t1\t1\n\
        100\t30\t100\t70\tdoor\t1\t1\n\
        40\t45\t60\t55\tbedroom\t1\t1\n\
        140\t45\t160\t55\tkitchen\t1\t1\n\
        150\t20\t170\t30\ttoilet\t1\t1\n";

    #[test]
    fn parses_and_renders_two_rooms() {
        let plan = parse(TWO_ROOMS).expect("parses");
        assert_eq!(plan.walls.len(), 5);
        assert_eq!(plan.doors.len(), 1);
        assert_eq!(plan.labels.len(), 2);
        assert_eq!(plan.icons.len(), 1);
        let r = render(&plan, &RenderOptions::default()).expect("renders");
        assert_eq!(
            r.room_labels,
            vec![vec!["bedroom".to_owned()], vec!["kitchen".to_owned()]]
        );
        assert_eq!(r.image.dimensions(), (448, 248));
        // The door is a gap in the drawing but not in the ground truth's walls.
        let door_px = r.image.get_pixel(224, 124).0[0];
        assert_eq!(door_px, 255);
        assert_eq!(r.room_map[124 * 448 + 224], 0);
    }

    /// A 50 x 180 strip cut by a wall at `y` that is all door (hinge at x 3, 44 wide);
    /// whether its swing is drawn at 60 degrees above and below the wall.
    fn swing_above_below(y: f64) -> (bool, bool) {
        let plan = format!(
            "0\t0\t50\t0\twall\n50\t0\t50\t180\twall\n50\t180\t0\t180\twall\n\
             0\t180\t0\t0\twall\n0\t{y}\t50\t{y}\twall\n3\t{y}\t47\t{y}\tdoor\n"
        );
        let opts = RenderOptions::default();
        let rendered = render(&parse(&plan).expect("parses"), &opts).expect("renders");
        let (s, m) = (opts.scale, f64::from(opts.margin));
        // Any dark pixel within two pixels of the point.
        let ink = |x: f64, y: f64| {
            (-2i32..=2).any(|dx| {
                (-2i32..=2).any(|dy| {
                    let px = (x * s + m).round() as i32 + dx;
                    let py = (y * s + m).round() as i32 + dy;
                    rendered.image.get_pixel(px as u32, py as u32).0[0] < 128
                })
            })
        };
        let (dx, dy) = (22.0, 44.0 * 3f64.sqrt() / 2.0);
        (ink(3.0 + dx, y - dy), ink(3.0 + dx, y + dy))
    }

    /// A door wider than the closet it closes is deep opens the other way: its swing is
    /// drawn in the corridor, not through the closet's far wall; where both sides are
    /// clear it opens to the default side (left of its line, here downwards).
    #[test]
    fn a_door_opens_to_the_side_where_it_has_room() {
        assert_eq!(swing_above_below(150.0), (true, false));
        assert_eq!(swing_above_below(90.0), (false, true));
    }

    #[test]
    fn bad_lines_are_errors() {
        assert!(parse("1 2 3 wall").is_err());
        assert!(parse("a 2 3 4 wall").is_err());
        assert!(parse("1 2 3 4 bedroom").is_err(), "no walls");
    }
}
