//! What a job costs in dollars: a job's measured counters ([`Cost`]) priced with the price
//! table in `infra/pricing.toml`, per stage and per item (Textract pages, Bedrock tokens,
//! Lambda GB-seconds and requests, Step Functions state transitions, S3 and DynamoDB
//! requests on AWS; vCPU time on a host you run yourself), and the same for a workload
//! that has not run yet ([`estimate`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::job::{Cost, JobStatus};
use crate::stages::Stage;

/// The price table as shipped (`infra/pricing.toml`).
pub const PRICE_TABLE_TOML: &str = include_str!("../../../infra/pricing.toml");

/// Prices by service (see `infra/pricing.toml` for the units and sources).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PriceTable {
    pub as_of: String,
    pub region: String,
    pub currency: String,
    /// Per page, by API (`detect_document_text`, ...).
    pub textract: BTreeMap<String, Decimal>,
    /// By model id.
    pub bedrock: BTreeMap<String, ModelPrice>,
    pub lambda: LambdaPrices,
    pub step_functions: StepFunctionsPrices,
    pub s3: S3Prices,
    pub dynamodb: DynamoPrices,
    pub local: LocalPrices,
    pub deployment: Deployment,
    /// Requests per invocation, by stage name, and `api` for the create request.
    pub requests: BTreeMap<String, Requests>,
    pub estimate: EstimateProfile,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ModelPrice {
    pub input_per_1k: Decimal,
    pub output_per_1k: Decimal,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct LambdaPrices {
    pub gb_second_arm64: Decimal,
    pub gb_second_x86_64: Decimal,
    pub request: Decimal,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct StepFunctionsPrices {
    pub state_transition: Decimal,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct S3Prices {
    pub put: Decimal,
    pub get: Decimal,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct DynamoPrices {
    pub write: Decimal,
    pub read: Decimal,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct LocalPrices {
    pub vcpu_hour: Decimal,
}

/// What the template deploys: architecture and memory sizes.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Deployment {
    /// `arm64` or `x86_64`.
    pub architecture: String,
    pub api_memory_mb: u32,
    /// By stage name.
    pub memory_mb: BTreeMap<String, u32>,
}

/// Requests one invocation makes.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Requests {
    pub s3_put: u32,
    pub s3_get: u32,
    pub dynamodb_write: u32,
    pub dynamodb_read: u32,
    /// The assumed duration (the API's create request only; stages are measured).
    #[serde(default)]
    pub lambda_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct EstimateProfile {
    pub tokens: TokenProfile,
    /// By stage name.
    pub stage_ms: BTreeMap<String, Linear>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TokenProfile {
    pub input_fixed: u64,
    pub input_per_page: u64,
    pub output_fixed: u64,
    pub output_per_page: u64,
}

/// `fixed + per_page * pages`.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct Linear {
    pub fixed: u64,
    pub per_page: u64,
}

impl Linear {
    fn at(self, pages: u32) -> u64 {
        self.fixed
            .saturating_add(self.per_page.saturating_mul(u64::from(pages)))
    }
}

impl PriceTable {
    /// Parses a price table in the shape of `infra/pricing.toml`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let table: Self = toml::from_str(text).map_err(|e| format!("price table: {e}"))?;
        if !matches!(table.deployment.architecture.as_str(), "arm64" | "x86_64") {
            return Err(format!(
                "price table: deployment.architecture {:?} is neither arm64 nor x86_64",
                table.deployment.architecture
            ));
        }
        Ok(table)
    }

    /// The shipped table, parsed once. The file is compiled in and a test parses it, so it
    /// cannot fail at run time.
    pub fn builtin() -> &'static Self {
        static TABLE: OnceLock<PriceTable> = OnceLock::new();
        TABLE.get_or_init(|| {
            #[allow(clippy::expect_used)]
            Self::parse(PRICE_TABLE_TOML).expect("infra/pricing.toml is checked by a unit test")
        })
    }

    /// A model's price; a cross-region inference profile (`us.`, `eu.`, `apac.` ...) is
    /// priced as its model.
    pub fn model(&self, model_id: &str) -> Option<&ModelPrice> {
        self.bedrock.get(model_id).or_else(|| {
            let (prefix, rest) = model_id.split_once('.')?;
            (prefix.len() <= 4 && prefix.bytes().all(|b| b.is_ascii_lowercase()))
                .then(|| self.bedrock.get(rest))
                .flatten()
        })
    }

    fn gb_second(&self) -> Decimal {
        if self.deployment.architecture == "x86_64" {
            self.lambda.gb_second_x86_64
        } else {
            self.lambda.gb_second_arm64
        }
    }
}

/// Which host ran (or will run) the job, and with which model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PricingProfile {
    pub host: Host,
    /// The extraction model (Bedrock model id on AWS; a local chat model's name locally).
    pub model_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Host {
    /// Lambda, Step Functions, Textract, Bedrock, S3, DynamoDB.
    Aws,
    /// The embedded pipeline on a machine of your own, priced as vCPU time.
    Local,
}

impl PricingProfile {
    pub fn aws(model_id: impl Into<String>) -> Self {
        Self {
            host: Host::Aws,
            model_id: Some(model_id.into()),
        }
    }

    pub fn local(model_id: Option<String>) -> Self {
        Self {
            host: Host::Local,
            model_id,
        }
    }
}

/// One priced item: `quantity` of `unit` at `unit_usd` each.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostLine {
    /// A stage name, `api` (the create request) or `pipeline` (the state machine).
    pub stage: String,
    pub item: String,
    pub quantity: Decimal,
    pub unit: String,
    pub unit_usd: Decimal,
    pub usd: Decimal,
}

/// A job's (or a workload's) cost, line by line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostBreakdown {
    pub host: Host,
    /// The model whose tokens are priced, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_id: Option<String>,
    /// The date of the price table.
    pub prices_as_of: String,
    pub lines: Vec<CostLine>,
    pub total_usd: Decimal,
    /// What was used but has no price in the table (e.g. a model not listed): not in the
    /// total.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unpriced: Vec<String>,
}

impl CostBreakdown {
    /// The total per stage, in the order stages first appear.
    pub fn by_stage(&self) -> Vec<(String, Decimal)> {
        let mut out: Vec<(String, Decimal)> = Vec::new();
        for line in &self.lines {
            match out.iter_mut().find(|(s, _)| *s == line.stage) {
                Some((_, usd)) => *usd += line.usd,
                None => out.push((line.stage.clone(), line.usd)),
            }
        }
        out
    }

    /// Every quantity and amount times `n` (n documents like this one).
    pub fn times(&self, n: u64) -> Self {
        let n = Decimal::from(n);
        Self {
            lines: self
                .lines
                .iter()
                .map(|l| CostLine {
                    quantity: l.quantity * n,
                    usd: l.usd * n,
                    ..l.clone()
                })
                .collect(),
            total_usd: self.total_usd * n,
            ..self.clone()
        }
    }
}

struct Lines {
    lines: Vec<CostLine>,
    unpriced: Vec<String>,
}

impl Lines {
    fn add(&mut self, stage: &str, item: &str, quantity: Decimal, unit: &str, unit_usd: Decimal) {
        if quantity.is_zero() {
            return;
        }
        self.lines.push(CostLine {
            stage: stage.to_owned(),
            item: item.to_owned(),
            quantity: quantity.normalize(),
            unit: unit.to_owned(),
            unit_usd: unit_usd.normalize(),
            usd: (quantity * unit_usd).normalize(),
        });
    }

    fn requests(&mut self, table: &PriceTable, stage: &str, r: &Requests) {
        self.add(
            stage,
            "S3 PUT requests",
            r.s3_put.into(),
            "request",
            table.s3.put,
        );
        self.add(
            stage,
            "S3 GET requests",
            r.s3_get.into(),
            "request",
            table.s3.get,
        );
        self.add(
            stage,
            "DynamoDB writes",
            r.dynamodb_write.into(),
            "write unit",
            table.dynamodb.write,
        );
        self.add(
            stage,
            "DynamoDB reads",
            r.dynamodb_read.into(),
            "read unit",
            table.dynamodb.read,
        );
    }

    fn lambda(&mut self, table: &PriceTable, stage: &str, memory_mb: u32, ms: u64) {
        // GB-seconds: memory in GB (1024 MB) times seconds, as Lambda bills them (per ms).
        let gb_s = Decimal::from(memory_mb) / Decimal::from(1024) * Decimal::from(ms)
            / Decimal::from(1000);
        self.add(
            stage,
            &format!("Lambda {} MB {}", memory_mb, table.deployment.architecture),
            gb_s,
            "GB-s",
            table.gb_second(),
        );
        self.add(
            stage,
            "Lambda requests",
            Decimal::ONE,
            "request",
            table.lambda.request,
        );
    }

    fn tokens(&mut self, table: &PriceTable, model_id: Option<&str>, cost: &Cost) {
        if cost.model_input_tokens == 0 && cost.model_output_tokens == 0 {
            return;
        }
        let model = model_id.unwrap_or("unknown model");
        let Some(price) = model_id.and_then(|m| table.model(m)) else {
            self.unpriced.push(format!(
                "{} input and {} output tokens of {model}",
                cost.model_input_tokens, cost.model_output_tokens
            ));
            return;
        };
        let k = Decimal::from(1000);
        self.add(
            "extract",
            "Bedrock input tokens",
            Decimal::from(cost.model_input_tokens) / k,
            "1k tokens",
            price.input_per_1k,
        );
        self.add(
            "extract",
            "Bedrock output tokens",
            Decimal::from(cost.model_output_tokens) / k,
            "1k tokens",
            price.output_per_1k,
        );
    }

    fn finish(self, profile: &PricingProfile, table: &PriceTable) -> CostBreakdown {
        let total_usd = self
            .lines
            .iter()
            .map(|l| l.usd)
            .sum::<Decimal>()
            .normalize();
        CostBreakdown {
            host: profile.host,
            model_id: profile.model_id.clone(),
            prices_as_of: table.as_of.clone(),
            lines: self.lines,
            total_usd,
            unpriced: self.unpriced,
        }
    }
}

/// Prices a job's counters. `transitions` is the number of state transitions its
/// execution made (see [`state_transitions`]).
pub fn price(
    table: &PriceTable,
    profile: &PricingProfile,
    cost: &Cost,
    transitions: u32,
) -> CostBreakdown {
    let mut out = Lines {
        lines: Vec::new(),
        unpriced: Vec::new(),
    };
    match profile.host {
        Host::Aws => {
            if let Some(api) = table.requests.get("api") {
                out.lambda(table, "api", table.deployment.api_memory_mb, api.lambda_ms);
                out.requests(table, "api", api);
            }
            for (stage, ms) in &cost.stage_ms {
                let name = stage.as_str();
                let memory = table.deployment.memory_mb.get(name).copied().unwrap_or(512);
                out.lambda(table, name, memory, *ms);
                if *stage == Stage::Ocr {
                    out.add(
                        name,
                        "Textract DetectDocumentText pages",
                        cost.ocr_pages.into(),
                        "page",
                        table
                            .textract
                            .get("detect_document_text")
                            .copied()
                            .unwrap_or_default(),
                    );
                }
                if *stage == Stage::Extract {
                    out.tokens(table, profile.model_id.as_deref(), cost);
                }
                if let Some(r) = table.requests.get(name) {
                    out.requests(table, name, r);
                }
            }
            out.add(
                "pipeline",
                "Step Functions state transitions",
                transitions.into(),
                "transition",
                table.step_functions.state_transition,
            );
        }
        Host::Local => {
            // Rounded to a millionth of a millionth of a dollar: exact enough, and printable.
            let per_second = (table.local.vcpu_hour / Decimal::from(3600)).round_dp(12);
            for (stage, ms) in &cost.stage_ms {
                out.add(
                    stage.as_str(),
                    "compute (one vCPU)",
                    Decimal::from(*ms) / Decimal::from(1000),
                    "vCPU-s",
                    per_second,
                );
                if *stage == Stage::Extract {
                    out.tokens(table, profile.model_id.as_deref(), cost);
                }
            }
        }
    }
    out.finish(profile, table)
}

/// Prices a job with its own counters and the transitions of the path it took.
pub fn price_job(table: &PriceTable, profile: &PricingProfile, job: &crate::Job) -> CostBreakdown {
    price(
        table,
        profile,
        &job.cost,
        state_transitions(&job.cost, job.status),
    )
}

/// The counters [`estimate`] assumes one document of `pages` pages produces.
pub fn estimated_counters(table: &PriceTable, pages: u32, with_model: bool) -> Cost {
    let p = &table.estimate;
    let mut stage_ms = BTreeMap::new();
    for stage in [
        Stage::Ingest,
        Stage::Ocr,
        Stage::Extract,
        Stage::Verify,
        Stage::Finalize,
    ] {
        if let Some(l) = p.stage_ms.get(stage.as_str()) {
            stage_ms.insert(stage, l.at(pages));
        }
    }
    let pages64 = u64::from(pages);
    Cost {
        pages,
        ocr_pages: pages,
        stage_ms,
        model_input_tokens: if with_model {
            p.tokens.input_fixed + p.tokens.input_per_page * pages64
        } else {
            0
        },
        model_output_tokens: if with_model {
            p.tokens.output_fixed + p.tokens.output_per_page * pages64
        } else {
            0
        },
    }
}

/// What `documents` invoices of `pages` pages each would cost on AWS with `model_id`.
pub fn estimate(table: &PriceTable, model_id: &str, documents: u64, pages: u32) -> CostBreakdown {
    let cost = estimated_counters(table, pages, true);
    let one = price(
        table,
        &PricingProfile::aws(model_id),
        &cost,
        state_transitions(&cost, JobStatus::Completed),
    );
    one.times(documents)
}

/// How many state transitions an execution of the pipeline definition made for a job with
/// these counters: the states on the path from `StartAt` to the terminal state the job's
/// status implies that passes through every stage that ran (shortest such path). Retries
/// (each a transition on Step Functions) are not counted, and a failed job's failing stage
/// only if it recorded its time: for those it is a lower bound.
pub fn state_transitions(cost: &Cost, status: JobStatus) -> u32 {
    static DEFINITION: OnceLock<Option<Value>> = OnceLock::new();
    let Some(def) = DEFINITION
        .get_or_init(|| serde_json::from_str(crate::PIPELINE_DEFINITION).ok())
        .as_ref()
    else {
        return 0;
    };
    let ran: BTreeSet<Stage> = cost.stage_ms.keys().copied().collect();
    let terminal_ok = |name: &str, state: &Value| match status {
        JobStatus::Failed => name == "Failed",
        JobStatus::Cancelled => name == "Cancelled",
        _ => state["Type"] == "Succeed",
    };
    let Some(start) = def["StartAt"].as_str() else {
        return 0;
    };
    let mut best: Option<(usize, usize)> = None; // (stages covered, path length)
    let mut path = vec![start.to_owned()];
    walk(def, &ran, &terminal_ok, &mut path, &mut best);
    best.map_or(0, |(_, len)| len as u32)
}

fn walk(
    def: &Value,
    ran: &BTreeSet<Stage>,
    terminal_ok: &dyn Fn(&str, &Value) -> bool,
    path: &mut Vec<String>,
    best: &mut Option<(usize, usize)>,
) {
    let Some(name) = path.last().cloned() else {
        return;
    };
    let state = &def["States"][name.as_str()];
    let stage = state["Resource"].as_str().and_then(Stage::from_resource);
    // A stage that did not run is on no path; except the one a failed job failed in,
    // which recorded no time (any stage may be it).
    if state["Type"] == "Task"
        && stage.is_some_and(|s| !ran.contains(&s) && !ran.contains(&Stage::RecordFailure))
    {
        return;
    }
    let mut next: Vec<&str> = Vec::new();
    next.extend(state["Next"].as_str());
    next.extend(state["Default"].as_str());
    for list in ["Choices", "Catch"] {
        for c in state[list].as_array().into_iter().flatten() {
            next.extend(c["Next"].as_str());
        }
    }
    if next.is_empty() {
        if terminal_ok(&name, state) {
            let covered: BTreeSet<Stage> = path
                .iter()
                .filter_map(|n| def["States"][n.as_str()]["Resource"].as_str())
                .filter_map(Stage::from_resource)
                .filter(|s| ran.contains(s))
                .collect();
            let candidate = (covered.len(), path.len());
            let better = match best {
                None => true,
                Some((c, l)) => candidate.0 > *c || (candidate.0 == *c && candidate.1 < *l),
            };
            if better {
                *best = Some(candidate);
            }
        }
        return;
    }
    for n in next {
        if path.iter().any(|p| p == n) || path.len() > 64 {
            continue;
        }
        path.push(n.to_owned());
        walk(def, ran, terminal_ok, path, best);
        path.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).expect("decimal")
    }

    fn invoice_counters() -> Cost {
        Cost {
            pages: 1,
            ocr_pages: 1,
            stage_ms: BTreeMap::from([
                (Stage::Ingest, 200),
                (Stage::Ocr, 1800),
                (Stage::Extract, 3500),
                (Stage::Verify, 25),
                (Stage::Finalize, 100),
            ]),
            model_input_tokens: 1385,
            model_output_tokens: 412,
        }
    }

    #[test]
    fn the_shipped_table_parses_and_names_the_default_model() {
        let t = PriceTable::builtin();
        assert_eq!(t.currency, "USD");
        assert!(t.model("anthropic.claude-3-haiku-20240307-v1:0").is_some());
        assert_eq!(
            t.model("us.anthropic.claude-3-haiku-20240307-v1:0"),
            t.model("anthropic.claude-3-haiku-20240307-v1:0")
        );
        assert!(t.model("qwen2.5:7b-instruct").is_none());
        for stage in Stage::ALL {
            assert!(
                t.deployment.memory_mb.contains_key(stage.as_str()),
                "{stage}"
            );
            assert!(t.requests.contains_key(stage.as_str()), "{stage}");
        }
    }

    #[test]
    fn an_invoice_path_has_nine_transitions() {
        let c = invoice_counters();
        // Ingest, RouteByKind, Ocr, Extract, Verify, RouteVerdict, MarkCompleted,
        // Finalize, Done.
        assert_eq!(state_transitions(&c, JobStatus::Completed), 9);
        assert_eq!(state_transitions(&c, JobStatus::NeedsReview), 9);
        // A blueprint: no Ocr, ExtractBlueprint instead of Extract.
        let mut b = c.clone();
        b.stage_ms.remove(&Stage::Ocr);
        assert_eq!(state_transitions(&b, JobStatus::Completed), 8);
        // Failed in ingest: Ingest, RecordFailure, Failed.
        let f = Cost {
            stage_ms: BTreeMap::from([(Stage::RecordFailure, 5)]),
            ..Cost::default()
        };
        assert_eq!(state_transitions(&f, JobStatus::Failed), 3);
    }

    /// A one-page invoice on AWS, every line computed by hand from infra/pricing.toml.
    #[test]
    fn a_one_page_invoice_on_aws_matches_the_hand_computed_figure() {
        let t = PriceTable::builtin();
        let b = price(
            t,
            &PricingProfile::aws("anthropic.claude-3-haiku-20240307-v1:0"),
            &invoice_counters(),
            9,
        );
        let line = |stage: &str, item: &str| {
            b.lines
                .iter()
                .find(|l| l.stage == stage && l.item.starts_with(item))
                .unwrap_or_else(|| panic!("{stage} {item} in {:#?}", b.lines))
                .usd
        };
        // Textract: 1 page x $0.0015.
        assert_eq!(line("ocr", "Textract"), d("0.0015"));
        // Bedrock Haiku: 1.385k x $0.00025 = 0.00034625; 0.412k x $0.00125 = 0.000515.
        assert_eq!(line("extract", "Bedrock input"), d("0.00034625"));
        assert_eq!(
            b.lines
                .iter()
                .find(|l| l.item.ends_with("output tokens"))
                .map(|l| l.usd),
            Some(d("0.000515"))
        );
        // Lambda arm64: ocr 1024 MB x 1.8 s = 1.8 GB-s x $0.0000133334 = 0.00002400012.
        assert_eq!(line("ocr", "Lambda 1024"), d("0.00002400012"));
        // extract 512 MB x 3.5 s = 1.75 GB-s -> 0.00002333345.
        assert_eq!(line("extract", "Lambda 512"), d("0.00002333345"));
        // Step Functions: 9 x $0.000025.
        assert_eq!(line("pipeline", "Step Functions"), d("0.000225"));
        // Total, by hand:
        //   Textract 0.0015 + Bedrock 0.00086125 + SFN 0.000225
        //   Lambda GB-s: api 0.5x0.06=0.03, ingest 1x0.2=0.2, ocr 1.8, extract 1.75,
        //     verify 0.5x0.025=0.0125, finalize 0.5x0.1=0.05 -> 3.8425 GB-s x 0.0000133334
        //     = 0.0000512335895
        //   Lambda requests: 6 x 0.0000002 = 0.0000012
        //   S3: PUT 6 x 0.000005 = 0.00003; GET 7 x 0.0000004 = 0.0000028
        //   DynamoDB: writes 14 x 0.000000625 = 0.00000875; reads 14 x 0.000000125 = 0.00000175
        // = 0.0026819835895
        assert_eq!(b.total_usd, d("0.0026819835895"));
        assert!(b.unpriced.is_empty());
        let stages: Vec<String> = b.by_stage().into_iter().map(|(s, _)| s).collect();
        assert_eq!(
            stages,
            [
                "api", "ingest", "ocr", "extract", "verify", "finalize", "pipeline"
            ]
        );
    }

    #[test]
    fn a_local_job_is_priced_as_vcpu_time() {
        let t = PriceTable::builtin();
        let mut c = invoice_counters();
        c.model_input_tokens = 0;
        c.model_output_tokens = 0;
        let b = price(t, &PricingProfile::local(None), &c, 9);
        // 5.625 s of one vCPU at $0.03625/h = 5.625 x $0.000010069444 per second.
        assert_eq!(b.total_usd, d("0.0000566406225"));
        assert_eq!(b.host, Host::Local);
        // A local chat model is not in the table: reported, not guessed.
        c.model_input_tokens = 10;
        let b = price(t, &PricingProfile::local(Some("qwen2.5".into())), &c, 9);
        assert_eq!(b.unpriced.len(), 1, "{:?}", b.unpriced);
    }

    #[test]
    fn a_thousand_one_page_invoices_cost_under_three_dollars() {
        let t = PriceTable::builtin();
        let e = estimate(t, "anthropic.claude-3-haiku-20240307-v1:0", 1000, 1);
        assert!(e.total_usd <= d("3"), "{}", e.total_usd);
        assert!(e.total_usd >= d("2"), "{}", e.total_usd);
        // 1000 documents: exactly 1000 Textract pages.
        let pages: Decimal = e
            .lines
            .iter()
            .filter(|l| l.item.starts_with("Textract"))
            .map(|l| l.quantity)
            .sum();
        assert_eq!(pages, d("1000"));
        let one = estimate(t, "anthropic.claude-3-haiku-20240307-v1:0", 1, 1);
        assert_eq!(one.total_usd * d("1000"), e.total_usd);
    }
}
