//! `docpipe eval --from-reviews`: production review work as ground truth. Every job a
//! reviewer approved or corrected holds the machine's result and the reviewed one; the
//! reviewed fields are the answers, scored the same way as answer files (amounts as
//! decimals, dates as dates, identifiers and names normalised).

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::Result;
use docpipe_core::{
    InvoiceResult, Job, JobFilter, JobStatus, JobStore, ObjectKey, ObjectStore, OperatorAction,
};
use serde::Serialize;

use super::{FIELDS, Tally, actual, same, share};
use crate::commands::outln;
use crate::settings::Settings;

/// One reviewed job's comparison.
#[derive(Debug, Serialize)]
struct ReviewedJob {
    job_id: String,
    action: OperatorAction,
    by: String,
    /// Fields whose machine value differs from the reviewed one.
    wrong: Vec<String>,
}

#[derive(Debug, Serialize)]
struct ReviewsReport {
    /// Jobs decided by a reviewer (approved or corrected).
    reviewed: usize,
    approved: usize,
    corrected: usize,
    /// Reviewed jobs whose every scored field the machine had right.
    machine_right: usize,
    fields: BTreeMap<String, Tally>,
    per_job: Vec<ReviewedJob>,
}

async fn read_invoice(objects: &dyn ObjectStore, key: &ObjectKey) -> Option<InvoiceResult> {
    let bytes = objects.get(key).await.ok()??;
    serde_json::from_slice(&bytes).ok()
}

/// Every completed job of the data folder, oldest first.
async fn completed_jobs(jobs: &dyn JobStore) -> Result<Vec<Job>> {
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let page = jobs
            .list(&JobFilter {
                status: Some(JobStatus::Completed),
                limit: Some(100),
                cursor,
                ..JobFilter::default()
            })
            .await?;
        out.extend(page.jobs);
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    out.reverse();
    Ok(out)
}

pub(super) async fn eval_reviews(settings: &Settings, json: bool) -> Result<ExitCode> {
    let pipeline = super::super::open_pipeline(settings)?;
    let ports = pipeline.ports();
    let mut report = ReviewsReport {
        reviewed: 0,
        approved: 0,
        corrected: 0,
        machine_right: 0,
        fields: BTreeMap::new(),
        per_job: Vec::new(),
    };
    for job in completed_jobs(&*ports.jobs).await? {
        let history = ports.jobs.history(&job.id).await?;
        let Some(decision) = history.iter().rev().find_map(|c| c.operator.as_ref()) else {
            continue;
        };
        if !matches!(
            decision.action,
            OperatorAction::Approve | OperatorAction::Correct
        ) {
            continue;
        }
        let (Some(reviewed_key), Some(machine_key)) = (&job.keys.result, &job.keys.machine_result)
        else {
            continue;
        };
        let (Some(reviewed), Some(machine)) = (
            read_invoice(&*ports.objects, reviewed_key).await,
            read_invoice(&*ports.objects, machine_key).await,
        ) else {
            // Blueprints, or results gone: nothing to score field by field.
            continue;
        };
        report.reviewed += 1;
        match decision.action {
            OperatorAction::Approve => report.approved += 1,
            _ => report.corrected += 1,
        }
        let mut wrong = Vec::new();
        for (name, kind) in FIELDS {
            let Some(want) = actual(&reviewed, name, kind) else {
                continue;
            };
            let tally = report.fields.entry(name.to_owned()).or_default();
            tally.total += 1;
            match actual(&machine, name, kind) {
                Some(got) if same(kind, &got, &want) => tally.correct += 1,
                _ => wrong.push(name.to_owned()),
            }
        }
        if wrong.is_empty() {
            report.machine_right += 1;
        }
        report.per_job.push(ReviewedJob {
            job_id: job.id.to_string(),
            action: decision.action,
            by: decision.by.clone(),
            wrong,
        });
    }
    if json {
        outln!("{}", serde_json::to_string_pretty(&report)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    outln!(
        "{} reviewed jobs ({} approved, {} corrected): the machine had every field right on {} ({})",
        report.reviewed,
        report.approved,
        report.corrected,
        report.machine_right,
        share(report.machine_right, report.reviewed)
    )?;
    for (name, tally) in &report.fields {
        outln!(
            "  {name:<16} {:>5}/{:<5} {}",
            tally.correct,
            tally.total,
            share(tally.correct, tally.total)
        )?;
    }
    for job in report.per_job.iter().filter(|j| !j.wrong.is_empty()) {
        outln!(
            "  {} corrected by {}: {}",
            job.job_id,
            job.by,
            job.wrong.join(", ")
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
