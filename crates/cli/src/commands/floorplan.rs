//! `docpipe floorplan ...`: room detection on its own: render an r2v annotation to an
//! image (optionally degraded like a scan), score the detector on a folder of annotations
//! (per variant) or of MLSTRUCT-FP sheets, or detect rooms in one image.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use docpipe_core::detect::detect_media_type;
use docpipe_core::stages::verify::apply_room_checks;
use docpipe_ocr::PdfRenderer;
use docpipe_rooms::distort::{Distortion, Variant, distort, encode, variant, variants};
use docpipe_rooms::eval::{RoomsReport, evaluate_r2v_variant, overlay_png_variant};
use docpipe_rooms::mlstruct::{evaluate_mlstruct_dir, is_mlstruct_dir};
use docpipe_rooms::r2v::{RenderOptions, parse, render};
use docpipe_rooms::{RoomOptions, detect_rooms, plan_raster, working_png};
use serde_json::json;

#[derive(Debug, Subcommand)]
pub(crate) enum FloorplanCommand {
    /// Render an r2v annotation (walls, doors, labels, icons) to a PNG (or a JPEG, with
    /// `--jpeg`), optionally degraded like a scan.
    Render(RenderArgs),
    /// Render every annotation in a folder, detect rooms and score them against the
    /// annotation's rooms (room count, IoU); or, for a folder with an MLSTRUCT-FP
    /// `fp.json`, score the detected walls against its wall rectangles.
    Eval(EvalArgs),
    /// Detect rooms in one plan (PNG, JPEG, or a PDF whose page is a JPEG scan).
    Detect(DetectArgs),
}

#[derive(Debug, Args)]
pub(crate) struct RenderArgs {
    /// The annotation (tab-separated `x1 y1 x2 y2 category`).
    pub annotation: PathBuf,
    /// The image to write.
    pub out: PathBuf,
    /// Pixels per annotation unit (walls are 7 units thick).
    #[arg(long, default_value_t = 2.0)]
    pub scale: f64,
    /// Turn the sheet by this many degrees clockwise.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub rotate: f64,
    /// Gaussian noise, standard deviation in gray levels.
    #[arg(long, default_value_t = 0.0)]
    pub noise: f64,
    /// Fraction of pixels replaced by black or white specks.
    #[arg(long, default_value_t = 0.0)]
    pub specks: f64,
    /// Write a JPEG at this quality (1-100) instead of a PNG.
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=100))]
    pub jpeg: Option<u8>,
    /// Seed of the noise: the same seed gives the same image.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// A named variant instead of the options above (clean, low-res, high-res, noisy,
    /// rotated, jpeg, scan).
    #[arg(long)]
    pub variant: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct EvalArgs {
    /// Folder of r2v `*.txt` annotations, or of MLSTRUCT-FP sheets with their `fp.json`.
    pub dir: PathBuf,
    /// Print `{"rooms": {"variant", "plans", "count_correct", "mean_iou"}}` (one such
    /// object per variant under `"variants"` when more than one is asked for).
    #[arg(long)]
    pub json: bool,
    /// How the plans are drawn and degraded: clean (the default), low-res, high-res,
    /// noisy, rotated, jpeg, scan, or all. Repeatable.
    #[arg(long = "variant")]
    pub variants: Vec<String>,
    /// Also write `<plan>.png` overlays (detected rooms coloured, missed floor red) here
    /// (`<variant>/<plan>.png` for variants other than clean).
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
        FloorplanCommand::Render(args) => {
            let text = std::fs::read_to_string(&args.annotation)
                .with_context(|| format!("reading {}", args.annotation.display()))?;
            let (scale, distortion) = match &args.variant {
                Some(name) => {
                    let v = named_variant(name)?;
                    let mut d = v.distortion;
                    d.seed = args.seed;
                    (v.scale, d)
                }
                None => (
                    args.scale,
                    Distortion {
                        rotate_degrees: args.rotate,
                        noise_sigma: args.noise,
                        specks: args.specks,
                        jpeg_quality: None,
                        seed: args.seed,
                    },
                ),
            };
            if !(scale.is_finite() && (0.25..=8.0).contains(&scale)) {
                bail!("--scale must be between 0.25 and 8");
            }
            let in_range = args.rotate.is_finite()
                && args.rotate.abs() <= 45.0
                && (0.0..=128.0).contains(&args.noise)
                && (0.0..=1.0).contains(&args.specks);
            if !in_range {
                bail!("--rotate is at most 45 degrees, --noise 0-128, --specks 0-1");
            }
            let jpeg = distortion.jpeg_quality.or(args.jpeg);
            let drawn = parse(&text)
                .and_then(|plan| {
                    render(
                        &plan,
                        &RenderOptions {
                            scale,
                            ..RenderOptions::default()
                        },
                    )
                })
                .and_then(|r| {
                    distort(
                        r,
                        &Distortion {
                            jpeg_quality: None,
                            ..distortion
                        },
                    )
                });
            let rendered = match drawn {
                Ok(r) => r,
                Err(e) => bail!("{}: {e}", args.annotation.display()),
            };
            let bytes = match encode(&rendered.image, jpeg) {
                Ok(b) => b,
                Err(e) => bail!("{e}"),
            };
            std::fs::write(&args.out, bytes)
                .with_context(|| format!("writing {}", args.out.display()))?;
            Ok(ExitCode::SUCCESS)
        }
        FloorplanCommand::Eval(args) if is_mlstruct_dir(&args.dir) => {
            let dir = args.dir.clone();
            if let Some(out) = &args.overlays {
                std::fs::create_dir_all(out)?;
            }
            let overlays = args.overlays.clone();
            let report = tokio::task::spawn_blocking(move || {
                evaluate_mlstruct_dir(&dir, &RoomOptions::default(), overlays.as_deref())
            })
            .await
            .context("evaluation task")?
            .map_err(|e| anyhow::anyhow!("{}: {e}", args.dir.display()))?;
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({ "sheets": report }))?
                );
            } else {
                println!(
                    "{:<48} {:>6} {:>8} {:>7}",
                    "sheet", "rooms", "wall_iou", "ms"
                );
                for d in &report.details {
                    println!(
                        "{:<48} {:>6} {:>8.3} {:>7}",
                        d.image, d.rooms, d.wall_iou, d.ms
                    );
                }
                println!(
                    "\n{} sheets, rooms found on {}, mean wall IoU {:.3}, slowest {} ms",
                    report.sheets, report.with_rooms, report.mean_wall_iou, report.max_ms
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        FloorplanCommand::Eval(args) => {
            let chosen = chosen_variants(&args.variants)?;
            let mut reports: Vec<RoomsReport> = Vec::new();
            for v in &chosen {
                let (dir, v2) = (args.dir.clone(), v.clone());
                let report = tokio::task::spawn_blocking(move || evaluate_r2v_variant(&dir, &v2))
                    .await
                    .context("evaluation task")?
                    .with_context(|| format!("evaluating {}", args.dir.display()))?;
                if let Some(out) = &args.overlays {
                    let out = if v.name == "clean" {
                        out.clone()
                    } else {
                        out.join(v.name)
                    };
                    std::fs::create_dir_all(&out)?;
                    for d in &report.details {
                        let text = std::fs::read_to_string(args.dir.join(&d.file))?;
                        match overlay_png_variant(&d.file, &text, v) {
                            Ok(png) => std::fs::write(out.join(format!("{}.png", d.file)), png)?,
                            Err(e) => eprintln!("{}: {e}", d.file),
                        }
                    }
                }
                reports.push(report);
            }
            if args.json {
                let value = match reports.as_slice() {
                    [one] => json!({ "rooms": one }),
                    many => json!({ "rooms": many.first(), "variants": many }),
                };
                println!("{}", serde_json::to_string_pretty(&value)?);
            } else {
                for report in &reports {
                    if reports.len() > 1 {
                        println!("variant {}", report.variant);
                    }
                    println!(
                        "{:<48} {:>5} {:>8} {:>7} {:>8} {:>6}",
                        "plan", "truth", "detected", "matched", "mean_iou", "ms"
                    );
                    for d in &report.details {
                        println!(
                            "{:<48} {:>5} {:>8} {:>7} {:>8.3} {:>6}",
                            d.file,
                            d.truth_rooms,
                            d.detected_rooms,
                            d.matched,
                            d.mean_iou,
                            d.detect_ms
                        );
                    }
                    println!(
                        "\n{}: {} plans, {} with the right room count, mean IoU {:.3}\n",
                        report.variant, report.plans, report.count_correct, report.mean_iou
                    );
                }
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

/// The variant called `name`, or an error listing the known ones.
fn named_variant(name: &str) -> Result<Variant> {
    variant(name).with_context(|| {
        let known: Vec<&str> = variants().iter().map(|v| v.name).collect();
        format!("unknown variant {name:?}; known: {}", known.join(", "))
    })
}

/// The variants asked for: none means clean, `all` means every one.
pub(crate) fn chosen_variants(names: &[String]) -> Result<Vec<Variant>> {
    if names.is_empty() {
        return named_variant("clean").map(|v| vec![v]);
    }
    if names.iter().any(|n| n == "all") {
        return Ok(variants());
    }
    names.iter().map(|n| named_variant(n)).collect()
}
