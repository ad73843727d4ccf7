//! The floor-plan part of `docpipe eval`: room detection scored on the r2v annotation
//! files (`*.txt`) directly in the folder, drawn cleanly and, on request, as the scan
//! variants (`docpipe_rooms::distort::variants`).

use std::path::Path;

use anyhow::Result;
use docpipe_rooms::eval::{RoomsReport, evaluate_r2v_dir, evaluate_r2v_variant};

/// Whether `dir` holds r2v annotations directly.
fn has_annotations(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut entries| {
        entries.any(|e| {
            e.ok()
                .is_some_and(|e| e.path().extension().is_some_and(|x| x == "txt"))
        })
    })
}

/// The clean drawing's figures, if the folder has plans.
pub(super) fn rooms_report(dir: &Path) -> Option<RoomsReport> {
    if !has_annotations(dir) {
        return None;
    }
    match evaluate_r2v_dir(dir) {
        Ok(r) if r.plans > 0 => Some(r),
        Ok(_) => None,
        Err(e) => {
            tracing::warn!(error = %e, "scoring floor plans");
            None
        }
    }
}

/// The figures of each variant asked for (none when the folder has no plans).
pub(super) fn variant_reports(dir: &Path, names: &[String]) -> Result<Vec<RoomsReport>> {
    if names.is_empty() || !has_annotations(dir) {
        return Ok(Vec::new());
    }
    let variants = crate::commands::floorplan::chosen_variants(names)?;
    variants
        .iter()
        .filter(|v| v.name != "clean")
        .map(|v| evaluate_r2v_variant(dir, v).map_err(anyhow::Error::from))
        .collect()
}

pub(super) fn print(clean: Option<&RoomsReport>, variants: &[RoomsReport]) {
    for r in clean.into_iter().chain(variants) {
        println!(
            "floor plans ({}): {}, room count right on {}, mean IoU {:.3}",
            r.variant, r.plans, r.count_correct, r.mean_iou
        );
    }
    if clean.is_some() {
        println!();
    }
}
