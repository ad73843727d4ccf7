// Local diagnostic (not committed): which annotated doors stay open.
use docpipe_rooms::detect::{DetectParams, debug_masks};
use docpipe_rooms::distort::variant;
use docpipe_rooms::eval::{annotation_files, render_variant};
use docpipe_rooms::r2v::parse;
use std::path::Path;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let v = variant(args.get(1).map(|s| s.as_str()).unwrap_or("clean")).unwrap();
    let filter = args.get(2).cloned();
    let mut files = Vec::new();
    for d in [
        "/work/shared/data/floorplans/r2v",
        "/work/shared/data/floorplans/r2v-more",
    ] {
        files.extend(annotation_files(Path::new(d)).unwrap());
    }
    if let Some(f) = &filter {
        files.retain(|p| p.to_string_lossy().contains(f.as_str()));
    }
    let (mut total, mut open) = (0, 0);
    let mut hist = std::collections::BTreeMap::new();
    for p in files {
        let text = std::fs::read_to_string(&p).unwrap();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let plan = parse(&text).unwrap();
        let r = render_variant(&name, &text, &v).unwrap();
        let (w, h) = r.image.dimensions();
        let (_ink, walls, bridged, _m) = debug_masks(&r.image, &DetectParams::default());
        let s = v.scale;
        let m = 24.0;
        let t = 7.0 * s;
        for d in &plan.doors {
            total += 1;
            let a = [d.a[0] * s + m, d.a[1] * s + m];
            let b = [d.b[0] * s + m, d.b[1] * s + m];
            let len = ((b[0] - a[0]).powi(2) + (b[1] - a[1]).powi(2)).sqrt();
            // closed if along the door line (middle 60%) every sample is wall/bridged
            let mut closed = true;
            for k in 2..=8 {
                let f = k as f64 / 10.0;
                let x = (a[0] + (b[0] - a[0]) * f) as usize;
                let y = (a[1] + (b[1] - a[1]) * f) as usize;
                if x >= w as usize || y >= h as usize {
                    continue;
                }
                if !bridged[y * w as usize + x] {
                    closed = false;
                }
            }
            if !closed {
                open += 1;
                let key = (len / t).round() as i64;
                *hist.entry(key).or_insert(0) += 1;
                let _ = &walls;
                println!(
                    "OPEN {name} door ({:.0},{:.0})-({:.0},{:.0}) len {:.1}t",
                    a[0],
                    a[1],
                    b[0],
                    b[1],
                    len / t
                );
            }
        }
    }
    println!("doors {total} open {open}");
    for (k, n) in hist {
        println!("len~{k}t: {n}");
    }
}
