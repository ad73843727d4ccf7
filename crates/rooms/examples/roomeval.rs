// Local evaluation loop (not committed).
use docpipe_rooms::distort::variant;
use docpipe_rooms::eval::{annotation_files, overlay_png_variant, score_plan_variant, summarise};
use std::path::Path;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // roomeval VARIANT[,VARIANT] [overlay_dir] [filter]
    let names = args.get(1).cloned().unwrap_or_else(|| "clean".into());
    let overlay = args.get(2).filter(|s| !s.is_empty() && *s != "-").cloned();
    let filter = args.get(3).cloned();
    if names == "mlstruct" {
        let dir = Path::new("/work/shared/data/floorplans/mlstruct-fp");
        if let Some(o) = &overlay {
            std::fs::create_dir_all(o).unwrap();
        }
        let r = docpipe_rooms::mlstruct::evaluate_mlstruct_dir(
            dir,
            &docpipe_rooms::RoomOptions::default(),
            overlay.as_deref().map(Path::new),
        )
        .unwrap();
        for d in &r.details {
            println!(
                "{:<48} rooms {:>4} wall_iou {:.3} ms {}",
                d.image, d.rooms, d.wall_iou, d.ms
            );
        }
        println!(
            "mlstruct: with rooms {}/{} wall iou {:.3} max ms {}",
            r.with_rooms, r.sheets, r.mean_wall_iou, r.max_ms
        );
        return;
    }
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
    let threads: usize = std::env::var("THREADS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    for name in names.split(',') {
        let v = variant(name).unwrap();
        let next = std::sync::atomic::AtomicUsize::new(0);
        let results = std::sync::Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(p) = files.get(i) else { break };
                        let text = std::fs::read_to_string(p).unwrap();
                        let fname = p.file_name().unwrap().to_string_lossy().into_owned();
                        let sc = score_plan_variant(&fname, &text, &v).unwrap();
                        if let Some(o) = &overlay {
                            if sc.truth_rooms != sc.detected_rooms || sc.mean_iou < 0.9 {
                                let dir = Path::new(o).join(name);
                                std::fs::create_dir_all(&dir).unwrap();
                                let png = overlay_png_variant(&fname, &text, &v).unwrap();
                                std::fs::write(dir.join(format!("{fname}.png")), png).unwrap();
                            }
                        }
                        let set = if p.to_string_lossy().contains("r2v-more") {
                            1
                        } else {
                            0
                        };
                        results.lock().unwrap().push((set, sc));
                    }
                });
            }
        });
        let mut res = results.into_inner().unwrap();
        res.sort_by(|a, b| a.1.file.cmp(&b.1.file));
        if std::env::var("VERBOSE").is_ok() {
            for (_, d) in &res {
                let mark = if d.truth_rooms == d.detected_rooms {
                    " "
                } else {
                    "X"
                };
                println!(
                    "{mark} {:<44} {:>3} {:>3} {:>3} {:.3} {}ms",
                    d.file, d.truth_rooms, d.detected_rooms, d.matched, d.mean_iou, d.detect_ms
                );
            }
        }
        let r2v = summarise(
            name,
            res.iter()
                .filter(|r| r.0 == 0)
                .map(|r| r.1.clone())
                .collect(),
        );
        let more = summarise(
            name,
            res.iter()
                .filter(|r| r.0 == 1)
                .map(|r| r.1.clone())
                .collect(),
        );
        let all = summarise(name, res.iter().map(|r| r.1.clone()).collect());
        let over = res
            .iter()
            .filter(|r| r.1.detected_rooms > r.1.truth_rooms)
            .count();
        let under = res
            .iter()
            .filter(|r| r.1.detected_rooms < r.1.truth_rooms)
            .count();
        println!(
            "{name:>8}: r2v {}/{} {:.3} | more {}/{} {:.3} | all {}/{} {:.3} (over {over} under {under})",
            r2v.count_correct,
            r2v.plans,
            r2v.mean_iou,
            more.count_correct,
            more.plans,
            more.mean_iou,
            all.count_correct,
            all.plans,
            all.mean_iou
        );
    }
}
