//! From glyphs to words, and from word boxes to lines in reading order.
//!
//! Words come from glyphs in content-stream order (a word is drawn left to right in every
//! PDF we care about). Reading order does not trust the content stream: lines are built
//! from word boxes, and regions are split with an XY-cut that only cuts vertically where
//! the two sides are not rows of one table (their lines do not share baselines), so
//! invoice tables and label/value pairs stay on one line while real columns separate.

use docpipe_core::{BBox, Line, Word};

use super::PageFrame;
use super::interp::PageText;

/// A gap wider than this fraction of the font size starts a new word.
const WORD_GAP: f32 = 0.12;

/// Words of a page in content order, boxes normalised to the displayed page.
pub(crate) fn words(page: &PageText, frame: PageFrame) -> Vec<Word> {
    let mut out = Vec::new();
    let mut text = String::new();
    let mut bbox = [0.0f32; 4];
    let mut prev: Option<usize> = None;

    let flush = |text: &mut String, bbox: &[f32; 4], out: &mut Vec<Word>| {
        if text.is_empty() {
            return;
        }
        let (x0, y0) = frame.normalise(bbox[0], bbox[1]);
        let (x1, y1) = frame.normalise(bbox[2], bbox[3]);
        out.push(Word {
            text: std::mem::take(text),
            bbox: BBox::new(x0, y0, x1, y1),
            confidence: 1.0,
        });
    };

    for (i, g) in page.glyphs.iter().enumerate() {
        if g.space {
            flush(&mut text, &bbox, &mut out);
            prev = None;
            continue;
        }
        let Some(t) = page.text.get(g.text.0 as usize..g.text.1 as usize) else {
            continue;
        };
        if t.is_empty() {
            continue;
        }
        if let Some(p) = prev.and_then(|p| page.glyphs.get(p)) {
            let (dx, dy) = (g.end.0 - g.origin.0, g.end.1 - g.origin.1);
            let len = (dx * dx + dy * dy).sqrt();
            let (ux, uy) = if len > 1e-6 {
                (dx / len, dy / len)
            } else {
                (1.0, 0.0)
            };
            let (gx, gy) = (g.origin.0 - p.end.0, g.origin.1 - p.end.1);
            let along = gx * ux + gy * uy;
            let across = (gy * ux - gx * uy).abs();
            let size = g.size.max(p.size);
            // A glyph drawn again on top of the previous one (fake bold, shadows).
            let dup_x = g.origin.0 - p.origin.0;
            let dup_y = g.origin.1 - p.origin.1;
            let same_text = page.text.get(p.text.0 as usize..p.text.1 as usize) == Some(t);
            if same_text && (dup_x * dup_x + dup_y * dup_y).sqrt() < 0.05 * size {
                continue;
            }
            // A raised or lowered glyph in another size (superscripts, the LaTeX logo) is a word
            // of its own, as in pdftotext.
            let shifted = across > 0.1 * size && (g.size - p.size).abs() > 0.1 * size;
            if along > WORD_GAP * size || along < -0.5 * size || across > 0.5 * size || shifted {
                flush(&mut text, &bbox, &mut out);
            }
        }
        if text.is_empty() {
            bbox = g.bbox;
        } else {
            bbox = [
                bbox[0].min(g.bbox[0]),
                bbox[1].min(g.bbox[1]),
                bbox[2].max(g.bbox[2]),
                bbox[3].max(g.bbox[3]),
            ];
        }
        text.push_str(t);
        prev = Some(i);
    }
    flush(&mut text, &bbox, &mut out);
    out
}

fn overlap(a0: f32, a1: f32, b0: f32, b1: f32) -> f32 {
    (a1.min(b1) - a0.max(b0)).max(0.0)
}

fn median(mut v: Vec<f32>) -> f32 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f32::total_cmp);
    v[v.len() / 2]
}

/// Groups words into rows by vertical overlap; each row's words sorted left to right.
fn rows(words: &[Word], idx: &[usize]) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = idx.to_vec();
    order.sort_by(|&a, &b| {
        words[a]
            .bbox
            .center_y()
            .total_cmp(&words[b].bbox.center_y())
    });
    // (band y0, band y1, members)
    let mut rows: Vec<(f32, f32, Vec<usize>)> = Vec::new();
    for i in order {
        let b = words[i].bbox;
        let h = b.height().max(1e-4);
        // Only the last few rows can still overlap a word sorted by centre.
        let hit = rows.iter_mut().rev().take(4).find(|(y0, y1, _)| {
            overlap(*y0, *y1, b.y0, b.y1) >= 0.5 * h.min((*y1 - *y0).max(1e-4))
        });
        match hit {
            Some((_, _, members)) => members.push(i),
            None => rows.push((b.y0, b.y1, vec![i])),
        }
    }
    rows.into_iter()
        .map(|(_, _, mut m)| {
            m.sort_by(|&a, &b| words[a].bbox.x0.total_cmp(&words[b].bbox.x0));
            m
        })
        .collect()
}

struct Frag {
    bbox: BBox,
    words: Vec<usize>,
}

/// Orders a page's words into lines.
pub(crate) fn lines(words: Vec<Word>) -> Vec<Line> {
    if words.is_empty() {
        return Vec::new();
    }
    let all: Vec<usize> = (0..words.len()).collect();
    let med_h = median(words.iter().map(|w| w.bbox.height()).collect()).max(1e-3);

    // Fragments: runs of words on one row with ordinary word gaps.
    let mut frags: Vec<Frag> = Vec::new();
    for row in rows(&words, &all) {
        let mut cur: Option<Frag> = None;
        for i in row {
            let b = words[i].bbox;
            if let Some(f) = cur.as_mut() {
                if b.x0 - f.bbox.x1 <= 1.0 * b.height().max(med_h * 0.5) {
                    f.bbox = f.bbox.union(b);
                    f.words.push(i);
                    continue;
                }
                frags.extend(cur.take());
            }
            cur = Some(Frag {
                bbox: b,
                words: vec![i],
            });
        }
        frags.extend(cur);
    }

    let mut leaves = Vec::new();
    let idx: Vec<usize> = (0..frags.len()).collect();
    xy_cut(&frags, idx, med_h, 0, &mut leaves);

    let mut out = Vec::new();
    for leaf in leaves {
        let leaf_words: Vec<usize> = leaf
            .iter()
            .flat_map(|&f| frags[f].words.iter().copied())
            .collect();
        for row in rows(&words, &leaf_words) {
            let ws: Vec<Word> = row.into_iter().map(|i| words[i].clone()).collect();
            out.extend(Line::from_words(ws));
        }
    }
    out
}

/// Gaps in the projection of `idx` on one axis: (gap start, gap end) in ascending order.
fn gaps(frags: &[Frag], idx: &[usize], vertical_axis: bool, min_gap: f32) -> Vec<(f32, f32)> {
    let mut spans: Vec<(f32, f32)> = idx
        .iter()
        .map(|&i| {
            let b = frags[i].bbox;
            if vertical_axis {
                (b.y0, b.y1)
            } else {
                (b.x0, b.x1)
            }
        })
        .collect();
    spans.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut out = Vec::new();
    let mut end = f32::MIN;
    for (s, e) in spans {
        if end > f32::MIN && s - end >= min_gap {
            out.push((end, s));
        }
        end = end.max(e);
    }
    out
}

/// Whether most fragments of the smaller side share a row with the other side.
fn aligned(frags: &[Frag], left: &[usize], right: &[usize]) -> bool {
    let (small, big) = if left.len() <= right.len() {
        (left, right)
    } else {
        (right, left)
    };
    let hits = small
        .iter()
        .filter(|&&a| {
            let ba = frags[a].bbox;
            big.iter().any(|&b| {
                let bb = frags[b].bbox;
                overlap(ba.y0, ba.y1, bb.y0, bb.y1) >= 0.5 * ba.height().min(bb.height()).max(1e-4)
            })
        })
        .count();
    hits * 2 >= small.len().max(1)
}

/// Whether a side of a cut reads like a column of running text: several lines, most of them
/// spanning the column, with several words each (table cells are short).
fn prose(frags: &[Frag], side: &[usize]) -> bool {
    if side.len() < 3 {
        return false;
    }
    let (x0, x1) = side.iter().fold((f32::MAX, f32::MIN), |(a, b), &i| {
        (a.min(frags[i].bbox.x0), b.max(frags[i].bbox.x1))
    });
    let words: usize = side.iter().map(|&i| frags[i].words.len()).sum();
    let width = median(side.iter().map(|&i| frags[i].bbox.width()).collect());
    words >= 4 * side.len() && width >= 0.5 * (x1 - x0)
}

fn xy_cut(frags: &[Frag], idx: Vec<usize>, med_h: f32, depth: usize, out: &mut Vec<Vec<usize>>) {
    if idx.len() <= 1 || depth > 48 {
        out.push(idx);
        return;
    }
    // Vertical cut (columns): widest gap first, skipping gaps between table columns (rows
    // aligned across the gap) unless both sides are running text.
    let mut vgaps = gaps(frags, &idx, false, 1.5 * med_h);
    vgaps.sort_by(|a, b| (b.1 - b.0).total_cmp(&(a.1 - a.0)));
    for (g0, _) in vgaps.into_iter().take(8) {
        let (left, right): (Vec<usize>, Vec<usize>) =
            idx.iter().partition(|&&i| frags[i].bbox.x1 <= g0 + 1e-6);
        if left.is_empty()
            || right.is_empty()
            || aligned(frags, &left, &right) && !(prose(frags, &left) && prose(frags, &right))
        {
            continue;
        }
        xy_cut(frags, left, med_h, depth + 1, out);
        xy_cut(frags, right, med_h, depth + 1, out);
        return;
    }
    // Horizontal cuts, top to bottom: at paragraph-sized gaps first, so that a block of
    // columns stays whole for the vertical cut; then between lines.
    let mut hgaps = gaps(frags, &idx, true, 0.8 * med_h);
    if hgaps.is_empty() {
        hgaps = gaps(frags, &idx, true, 0.05 * med_h);
    }
    if hgaps.is_empty() {
        out.push(idx);
        return;
    }
    let mut stripes: Vec<Vec<usize>> = vec![Vec::new(); hgaps.len() + 1];
    for &i in &idx {
        let y = frags[i].bbox.y0;
        let k = hgaps.partition_point(|&(g0, _)| g0 < y);
        if let Some(s) = stripes.get_mut(k) {
            s.push(i);
        }
    }
    for s in stripes.into_iter().filter(|s| !s.is_empty()) {
        xy_cut(frags, s, med_h, depth + 1, out);
    }
}
