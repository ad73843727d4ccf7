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
    (filled > solid_walls).then_some(fill)
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
    fn a_sheet_with_solid_walls_is_left_alone() {
        let (ink, w, h) = outlined_box();
        assert!(fill_outlines(&ink, w, h, w * h).is_none());
        assert!(fill_outlines(&vec![false; w * h], w, h, 0).is_none());
    }
}
