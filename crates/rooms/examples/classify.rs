// Local diagnostic (not committed): why counts are off (merged vs missed vs split).
use docpipe_rooms::detect::{DetectParams, detect};
use docpipe_rooms::distort::variant;
use docpipe_rooms::eval::{annotation_files, render_variant};
use std::path::Path;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let v = variant(args.get(1).map(|s| s.as_str()).unwrap_or("clean")).unwrap();
    let mut files = Vec::new();
    for d in [
        "/work/shared/data/floorplans/r2v",
        "/work/shared/data/floorplans/r2v-more",
    ] {
        files.extend(annotation_files(Path::new(d)).unwrap());
    }
    let (mut merged_t, mut missed_t, mut split_t, mut extra_t) = (0, 0, 0, 0);
    for p in files {
        let text = std::fs::read_to_string(&p).unwrap();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let r = render_variant(&name, &text, &v).unwrap();
        let d = detect(&r.image, &DetectParams::default());
        let nt = r.room_labels.len();
        let nf = d.rooms.len();
        let mut inter = vec![0u64; (nt + 1) * (nf + 1)];
        for (&a, &b) in r.room_map.iter().zip(&d.room_map) {
            inter[a as usize * (nf + 1) + b as usize] += 1;
        }
        let tarea: Vec<u64> = (0..=nt)
            .map(|i| (0..=nf).map(|j| inter[i * (nf + 1) + j]).sum())
            .collect();
        let farea: Vec<u64> = (0..=nf)
            .map(|j| (0..=nt).map(|i| inter[i * (nf + 1) + j]).sum())
            .collect();
        let mut missed = Vec::new();
        let mut merged = 0;
        let mut split = 0;
        let mut extra = 0;
        for i in 1..=nt {
            let covered: u64 = (1..=nf).map(|j| inter[i * (nf + 1) + j]).sum();
            if (covered as f64) < 0.3 * tarea[i] as f64 {
                missed.push((i, tarea[i]));
            }
            let parts = (1..=nf)
                .filter(|&j| {
                    inter[i * (nf + 1) + j] as f64 > 0.2 * farea[j] as f64
                        && inter[i * (nf + 1) + j] as f64 > 0.1 * tarea[i] as f64
                })
                .count();
            if parts > 1 {
                split += parts - 1;
            }
        }
        for j in 1..=nf {
            let parts = (1..=nt)
                .filter(|&i| inter[i * (nf + 1) + j] as f64 > 0.3 * tarea[i] as f64)
                .count();
            if parts > 1 {
                merged += parts - 1;
            }
            let t_cov: u64 = (1..=nt).map(|i| inter[i * (nf + 1) + j]).sum();
            if (t_cov as f64) < 0.3 * farea[j] as f64 {
                extra += 1;
            }
        }
        if nt != nf || !missed.is_empty() || merged > 0 || extra > 0 || split > 0 {
            println!(
                "{name} truth {nt} found {nf} merged {merged} missed {:?} split {split} extra {extra} t={}",
                missed, d.wall_thickness
            );
        }
        merged_t += merged;
        missed_t += missed.len();
        split_t += split;
        extra_t += extra;
    }
    println!("merged {merged_t} missed {missed_t} split {split_t} extra {extra_t}");
}
