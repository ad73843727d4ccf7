//! `docpipe cost estimate|job`: dollars from the price table in `infra/pricing.toml`, for
//! a workload that has not run (the AWS deployment, per stage) or for a job that has (its
//! measured counters, priced for this host and for AWS).

use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::Subcommand;
use docpipe_core::JobId;
use docpipe_core::pricing::{CostBreakdown, PriceTable, PricingProfile, estimate, price_job};
use rust_decimal::Decimal;

use super::outln;
use crate::settings::Settings;

#[derive(Debug, Subcommand)]
pub(crate) enum CostCommand {
    /// What N documents of P pages each cost on AWS, per stage and item.
    Estimate {
        #[arg(long, default_value_t = 1000)]
        documents: u64,
        #[arg(long, default_value_t = 1)]
        pages: u32,
        /// Bedrock model id (default: the deployment's default model).
        #[arg(long)]
        model: Option<String>,
        /// The breakdown as JSON.
        #[arg(long)]
        json: bool,
    },
    /// What a job of the local data folder cost here, and what its counters cost on AWS.
    Job {
        job_id: String,
        /// Bedrock model id to price the AWS figure with.
        #[arg(long)]
        model: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

/// The Bedrock model the template deploys by default (`BedrockModelId`).
pub(crate) const DEFAULT_AWS_MODEL: &str = "anthropic.claude-3-haiku-20240307-v1:0";

pub(crate) async fn cost(settings: &Settings, cmd: CostCommand) -> Result<ExitCode> {
    let table = PriceTable::builtin();
    match cmd {
        CostCommand::Estimate {
            documents,
            pages,
            model,
            json,
        } => {
            if documents == 0 || pages == 0 || pages > 10_000 {
                bail!("--documents must be at least 1 and --pages in 1..=10000");
            }
            let model = model.unwrap_or_else(|| DEFAULT_AWS_MODEL.to_owned());
            if table.model(&model).is_none() {
                bail!(
                    "model {model} is not in the price table (known: {})",
                    table.bedrock.keys().cloned().collect::<Vec<_>>().join(", ")
                );
            }
            let b = estimate(table, &model, documents, pages);
            if json {
                outln!("{}", serde_json::to_string_pretty(&b)?)?;
            } else {
                outln!(
                    "{documents} documents of {pages} page{} on AWS ({}, {} prices of {}), model {model}",
                    if pages == 1 { "" } else { "s" },
                    table.deployment.architecture,
                    table.region,
                    table.as_of
                )?;
                print_breakdown(&b)?;
                outln!(
                    "per document: ${}   per 1,000 documents: ${}",
                    usd(b.total_usd / Decimal::from(documents), 6),
                    usd(
                        b.total_usd / Decimal::from(documents) * Decimal::from(1000),
                        2
                    )
                )?;
            }
        }
        CostCommand::Job {
            job_id,
            model,
            json,
        } => {
            let id = JobId::parse(&job_id)?;
            let pipeline = super::open_pipeline(settings)?;
            let job = pipeline.job(&id).await?;
            let here = price_job(table, &super::pricing_profile(settings), &job);
            let aws = price_job(
                table,
                &PricingProfile::aws(model.unwrap_or_else(|| DEFAULT_AWS_MODEL.to_owned())),
                &job,
            );
            if json {
                outln!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({"local": here, "aws": aws}))?
                )?;
            } else {
                outln!("job {id} on this host:")?;
                print_breakdown(&here)?;
                outln!("\nthe same counters on AWS (Textract only for OCR pages):")?;
                print_breakdown(&aws)?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `amount` rounded to `dp` decimals, zero-padded.
fn usd(amount: Decimal, dp: u32) -> String {
    format!("{:.*}", dp as usize, amount.round_dp(dp))
}

/// The lines, a subtotal after each stage, and the total.
fn print_breakdown(b: &CostBreakdown) -> std::io::Result<()> {
    outln!(
        "{:<10} {:<36} {:>10} {:<11} {:>13} {:>10}",
        "STAGE",
        "ITEM",
        "QUANTITY",
        "UNIT",
        "UNIT USD",
        "USD"
    )?;
    for (stage, subtotal) in b.by_stage() {
        for l in b.lines.iter().filter(|l| l.stage == stage) {
            outln!(
                "{:<10} {:<36} {:>10} {:<11} {:>13} {:>10}",
                l.stage,
                l.item,
                l.quantity.round_dp(4).normalize().to_string(),
                l.unit,
                l.unit_usd.normalize().to_string(),
                usd(l.usd, 6)
            )?;
        }
        outln!(
            "{:<10} {:>85}",
            "",
            format!("{stage} subtotal {}", usd(subtotal, 6))
        )?;
    }
    outln!("{:<10} {:>85}", "TOTAL", usd(b.total_usd, 6))?;
    for u in &b.unpriced {
        outln!("not priced: {u}")?;
    }
    Ok(())
}
