//! `docpipe floorplan ...`: room detection on its own: render an r2v annotation to an
//! image, score the detector on a folder of annotations, or detect rooms in one image.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use docpipe_core::detect::detect_media_type;
use docpipe_core::stages::verify::apply_room_checks;
use docpipe_ocr::PdfRenderer;
use docpipe_rooms::eval::{evaluate_r2v_dir, overlay_png};
use docpipe_rooms::r2v::{RenderOptions, render_png};
use docpipe_rooms::{RoomOptions, detect_rooms, plan_raster, working_png};
use serde_json::json;

#[derive(Debug, Subcommand)]
pub(crate) enum FloorplanCommand {
    /// Render an r2v annotation (walls, doors, labels, icons) to a PNG.
    Render {
        /// The annotation (tab-separated `x1 y1 x2 y2 category`).
        annotation: PathBuf,
        /// The PNG to write.
        out: PathBuf,
    },
    /// Render every annotation in a folder, detect rooms and score them against the
    /// annotation's rooms (room count, IoU).
    Eval(EvalArgs),
    /// Detect rooms in one plan (PNG, JPEG, or a PDF whose page is a JPEG scan).
    Detect(DetectArgs),
}

#[derive(Debug, Args)]
pub(crate) struct EvalArgs {
    /// Folder of r2v `*.txt` annotations.
    pub dir: PathBuf,
    /// Print `{"rooms": {"plans", "count_correct", "mean_iou"}}`.
    #[arg(long)]
    pub json: bool,
    /// Also write `<plan>.png` overlays (detected rooms coloured, missed floor red) here.
    #[arg(long)]
    pub overlays: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct DetectArgs {
    pub file: PathBuf,
    /// Image pixels per metre of the building, for areas in square metres.
    #[arg(long)]
    pub pixels_per_metre: Option<f64>,
    /// Also write the working image (decoded, downscaled) to this PNG.
    #[arg(long)]
    pub working: Option<PathBuf>,
}

pub(crate) async fn floorplan(cmd: FloorplanCommand) -> Result<ExitCode> {
    match cmd {
        FloorplanCommand::Render { annotation, out } => {
            let text = std::fs::read_to_string(&annotation)
                .with_context(|| format!("reading {}", annotation.display()))?;
            let png = match render_png(&text, &RenderOptions::default()) {
                Ok(png) => png,
                Err(e) => bail!("{}: {e}", annotation.display()),
            };
            std::fs::write(&out, png).with_context(|| format!("writing {}", out.display()))?;
            Ok(ExitCode::SUCCESS)
        }
        FloorplanCommand::Eval(args) => {
            let dir = args.dir.clone();
            let report = tokio::task::spawn_blocking(move || evaluate_r2v_dir(&dir))
                .await
                .context("evaluation task")?
                .with_context(|| format!("evaluating {}", args.dir.display()))?;
            if let Some(out) = &args.overlays {
                std::fs::create_dir_all(out)?;
                for d in &report.details {
                    let text = std::fs::read_to_string(args.dir.join(&d.file))?;
                    match overlay_png(&text) {
                        Ok(png) => std::fs::write(out.join(format!("{}.png", d.file)), png)?,
                        Err(e) => eprintln!("{}: {e}", d.file),
                    }
                }
            }
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({ "rooms": report }))?
                );
            } else {
                println!(
                    "{:<48} {:>5} {:>8} {:>7} {:>8} {:>6}",
                    "plan", "truth", "detected", "matched", "mean_iou", "ms"
                );
                for d in &report.details {
                    println!(
                        "{:<48} {:>5} {:>8} {:>7} {:>8.3} {:>6}",
                        d.file, d.truth_rooms, d.detected_rooms, d.matched, d.mean_iou, d.detect_ms
                    );
                }
                println!(
                    "\n{} plans, {} with the right room count, mean IoU {:.3}",
                    report.plans, report.count_correct, report.mean_iou
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        FloorplanCommand::Detect(args) => {
            let bytes = std::fs::read(&args.file)
                .with_context(|| format!("reading {}", args.file.display()))?;
            let Some(media_type) = detect_media_type(&bytes) else {
                bail!("{}: not a PDF, PNG or JPEG", args.file.display());
            };
            // A PDF that is not a single-JPEG scan (a vector drawing) is rendered, as the
            // pipeline does.
            let renderer = PdfRenderer::new("pdftoppm");
            let plan = plan_raster(&bytes, media_type, Some(&renderer), &RoomOptions::default())
                .await
                .map_err(|e| anyhow::anyhow!("{}: {e}", args.file.display()))?;
            let (bytes, media_type) = (plan.bytes.into_owned(), plan.media_type);
            let opts = RoomOptions {
                pixels_per_metre: args.pixels_per_metre,
                ..RoomOptions::default()
            };
            if let Some(path) = &args.working {
                let png = working_png(&bytes, media_type, &opts)?;
                std::fs::write(path, png)?;
            }
            let start = Instant::now();
            let detected = tokio::task::spawn_blocking(move || {
                detect_rooms(&bytes, media_type, &opts).map(|mut r| {
                    apply_room_checks(&mut r, 0.8);
                    r
                })
            })
            .await
            .context("detection task")?;
            let ms = start.elapsed().as_millis() as u64;
            match detected {
                Ok(result) => {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&json!({ "ms": ms, "result": result }))?
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("docpipe: {}: {e}", args.file.display());
                    Ok(ExitCode::from(1))
                }
            }
        }
    }
}
