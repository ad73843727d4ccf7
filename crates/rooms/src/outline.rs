//! Walls drawn as outline pairs (two thin parallel lines a wall's thickness apart, as CAD
//! exports draw them) filled solid, so the same wall, door and region rules apply as to
//! walls drawn filled.
//!
//! Between two parallel lines, every line of pixels across them (a column across a
//! horizontal wall, a row across a vertical one) crosses the same short run of paper, for
//! as long as the wall runs: a band much longer than it is wide. The commonest width of
//! such bands (weighted by their length) is the sheet's outline wall thickness; bands up to
//! a little more than that and at least [`ELONGATION`] times as long as wide are filled.
//! A run counts only where the paper beyond both of its strokes is wide: a comb of
//! parallel strokes (writing, hatching, stair treads) is no wall. A sheet is read as
//! drawn in outlines when what this fills outweighs its solid walls.

/// A band is a wall between outlines when it runs at least this many times its width.
pub const ELONGATION: usize = 4;

/// Widest band considered, pixels at working resolution (a 0.5 m wall at 100 px/m).
const MAX_WIDTH: usize = 64;

/// A band of paper runs between ink on consecutive lines.
struct Band {
    runs: Vec<(usize, usize, usize)>,
}

impl Band {
    fn width(&self) -> usize {
        let (_, a, b) = self.runs[self.runs.len() / 2];
        b - a
    }
}

/// Bands along one axis: `lines` lines of `len` pixels, `ink(line, i)`.
fn bands(lines: usize, len: usize, ink: impl Fn(usize, usize) -> bool) -> Vec<Band> {
    let mut found = Vec::new();
    // Open bands: (last line, a, b, band).
    let mut open: Vec<(usize, usize, usize, Band)> = Vec::new();
    for line in 0..lines {
        // Every run of paper on the line; the first and last are open to the edge.
        let mut paper = Vec::new();
        let mut i = 0;
        while i < len {
            let s = i;
            while i < len && !ink(line, i) {
                i += 1;
            }
            if i > s {
                paper.push((s, i));
            }
            while i < len && ink(line, i) {
                i += 1;
            }
        }
        // A run between two strokes is the inside of a wall only where the paper beyond
        // both strokes is wide: a comb of parallel strokes (writing, hatching, stair
        // treads) has narrow paper on every side.
        let wide = |k: usize, width: usize| {
            paper
                .get(k)
                .is_none_or(|&(s, e)| s == 0 || e == len || e - s > 2 * width)
        };
        let mut runs = Vec::new();
        for (k, &(s, e)) in paper.iter().enumerate() {
            let width = e - s;
            if s == 0 || e == len || width > MAX_WIDTH {
                continue;
            }
            if (k == 0 || wide(k - 1, width)) && wide(k + 1, width) {
                runs.push((s, e));
            }
        }
        let mut next = Vec::with_capacity(runs.len());
        for (a, b) in runs {
            // Compared with the previous line, a pixel either way: a slightly turned
            // sheet's outlines drift a pixel every few dozen lines.
            let hit = open.iter().position(|&(last, pa, pb, _)| {
                last + 1 == line && pa.abs_diff(a) <= 1 && pb.abs_diff(b) <= 1
            });
            match hit {
                Some(j) => {
                    let (_, _, _, mut band) = open.swap_remove(j);
                    band.runs.push((line, a, b));
                    next.push((line, a, b, band));
                }
                None => next.push((
                    line,
                    a,
                    b,
                    Band {
                        runs: vec![(line, a, b)],
                    },
                )),
            }
        }
        found.extend(open.drain(..).map(|o| o.3));
        open = next;
    }
    found.extend(open.into_iter().map(|o| o.3));
    found.retain(|b| b.runs.len() >= ELONGATION * b.width().max(1));
    found
}

/// The paper between outline pairs, filled; `None` when the sheet's walls are not drawn
/// as outlines (what would be filled is less than `solid_walls` pixels).
pub fn fill_outlines(ink: &[bool], w: usize, h: usize, solid_walls: usize) -> Option<Vec<bool>> {
    let rows = bands(h, w, |l, i| ink[l * w + i]);
    let cols = bands(w, h, |l, i| ink[i * w + l]);
    let mut weight = [0usize; MAX_WIDTH + 1];
    for b in rows.iter().chain(&cols) {
        weight[b.width().min(MAX_WIDTH)] += b.runs.len();
    }
    let (thickness, _) = weight
        .iter()
        .enumerate()
        .skip(1)
        .max_by_key(|&(width, &n)| (n, std::cmp::Reverse(width)))?;
    if weight[thickness] == 0 {
        return None;
    }
    let widest = thickness + thickness / 2 + 1;
    let mut fill = vec![false; w * h];
    let mut filled = 0usize;
    for (b, by_rows) in rows
        .iter()
        .map(|b| (b, true))
        .chain(cols.iter().map(|b| (b, false)))
    {
        if b.width() > widest || b.runs.len() < ELONGATION * b.width() {
            continue;
        }
        for &(line, a, e) in &b.runs {
            for i in a..e {
                let idx = if by_rows { line * w + i } else { i * w + line };
                filled += usize::from(!fill[idx]);
                fill[idx] = true;
            }
        }
    }
    if filled <= solid_walls {
        return None;
    }
    fill_pockets(ink, &mut fill, w, h, 2 * thickness + 1);
    Some(fill)
}

/// Fills pockets of paper shut in by outline strokes and filled wall, at most `widest`
/// (twice the outline spacing) across one way: a corner or junction of two outline walls
/// (a square where neither wall's band runs), a piece of wall too short to be a band of
/// its own between two junctions, a pier drawn a little thicker than the wall it ends. A
/// pocket touching no filled wall (a letter's counter, a fixture) stays.
fn fill_pockets(ink: &[bool], fill: &mut [bool], w: usize, h: usize, widest: usize) {
    let mut seen = vec![false; w * h];
    let mut stack = Vec::new();
    let mut pocket = Vec::new();
    for start in 0..w * h {
        if seen[start] || ink[start] || fill[start] {
            continue;
        }
        // One 4-connected piece of paper, its box, and whether it touches the sheet's edge
        // or filled wall.
        seen[start] = true;
        stack.push(start);
        pocket.clear();
        let (mut x0, mut y0, mut x1, mut y1) = (usize::MAX, usize::MAX, 0, 0);
        let (mut edge, mut touches_wall) = (false, false);
        while let Some(i) = stack.pop() {
            pocket.push(i);
            let (x, y) = (i % w, i / w);
            (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
            edge |= x == 0 || y == 0 || x + 1 == w || y + 1 == h;
            let around = [
                (x > 0).then(|| i - 1),
                (x + 1 < w).then(|| i + 1),
                (y > 0).then(|| i - w),
                (y + 1 < h).then(|| i + w),
            ];
            for j in around.into_iter().flatten() {
                if fill[j] {
                    touches_wall = true;
                } else if !ink[j] && !seen[j] {
                    seen[j] = true;
                    stack.push(j);
                }
            }
        }
        let thin = (x1 - x0 + 1).min(y1 - y0 + 1) <= widest;
        if !edge && touches_wall && thin {
            for &i in &pocket {
                fill[i] = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 200 x 120 sheet with a rectangle of walls drawn as outline pairs 6 px apart.
    fn outlined_box() -> (Vec<bool>, usize, usize) {
        let (w, h) = (200usize, 120usize);
        let mut ink = vec![false; w * h];
        let mut rect = |x0: usize, y0: usize, x1: usize, y1: usize| {
            for x in x0..=x1 {
                ink[y0 * w + x] = true;
                ink[y1 * w + x] = true;
            }
            for y in y0..=y1 {
                ink[y * w + x0] = true;
                ink[y * w + x1] = true;
            }
        };
        rect(10, 10, 190, 110);
        rect(17, 17, 183, 103);
        (ink, w, h)
    }

    #[test]
    fn the_paper_between_outline_pairs_is_filled() {
        let (ink, w, h) = outlined_box();
        let fill = fill_outlines(&ink, w, h, 0).expect("outlines");
        // Inside the top wall, inside the left wall, not in the room or outside.
        assert!(fill[13 * w + 100] && fill[60 * w + 13]);
        assert!(!fill[60 * w + 100] && !fill[5 * w + 100]);
    }

    #[test]
    fn corners_and_short_pieces_between_junctions_are_filled_and_rooms_are_not() {
        let (mut ink, w, h) = outlined_box();
        // A cross wall drawn as an outline pair from the top wall to the bottom one, and a
        // short piece off the left wall (shorter than a band of its own) capped at its free
        // end; where they meet a wall, its inner stroke is broken.
        for y in 17..=103 {
            ink[y * w + 100] = true;
            ink[y * w + 107] = true;
        }
        for x in 101..=106 {
            ink[17 * w + x] = false;
            ink[103 * w + x] = false;
        }
        for x in 17..=30 {
            ink[60 * w + x] = true;
            ink[67 * w + x] = true;
        }
        for y in 60..=67 {
            ink[y * w + 30] = true;
        }
        for y in 61..=66 {
            ink[y * w + 17] = false;
        }
        let fill = fill_outlines(&ink, w, h, 0).expect("outlines");
        // The box's corner, the cross wall's junction with the top wall, the short piece
        // and its junction.
        assert!(fill[13 * w + 13] && fill[13 * w + 103] && fill[63 * w + 25]);
        assert!(fill[63 * w + 13] && fill[106 * w + 103]);
        // Neither room, nor the paper outside.
        assert!(!fill[40 * w + 60] && !fill[40 * w + 150] && !fill[5 * w + 5]);
    }

    #[test]
    fn a_sheet_with_solid_walls_is_left_alone() {
        let (ink, w, h) = outlined_box();
        assert!(fill_outlines(&ink, w, h, w * h).is_none());
        assert!(fill_outlines(&vec![false; w * h], w, h, 0).is_none());
    }
}
