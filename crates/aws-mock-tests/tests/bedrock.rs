//! BedrockExtractor through the real Bedrock Runtime client (Converse), answered with
//! recorded wire responses; the request is checked too.

use aws_sdk_bedrockruntime::Client;
use aws_sdk_bedrockruntime::config::retry::RetryConfig;
use aws_sdk_bedrockruntime::types::{
    ContentBlock, ImageFormat, ImageSource, Tool, ToolChoice, ToolInputSchema,
};
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use aws_smithy_runtime_api::http::{Response, StatusCode};
use aws_smithy_types::body::SdkBody;
use docpipe_aws::bedrock::{
    ROOMS_TOOL_NAME, TOOL_NAME, from_document, invoice_schema, rooms_schema,
};
use docpipe_aws::{BedrockExtractor, TokenUsage};
use docpipe_core::{
    BBox, Document, ErrorCode, Extractor, Line, MediaType, Page, ResultSource, TextSource, Word,
};

const MODEL: &str = "anthropic.claude-3-haiku-20240307-v1:0";

fn fixture(name: &str) -> String {
    let path = format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn wire(status: u16, body: String, error_type: Option<&str>) -> Response {
    let mut r = Response::new(
        StatusCode::try_from(status).expect("status"),
        SdkBody::from(body),
    );
    r.headers_mut().insert("content-type", "application/json");
    if let Some(t) = error_type {
        r.headers_mut().insert("x-amzn-errortype", t.to_owned());
    }
    r
}

fn document() -> Document {
    let line = |text: &str, y: f32| {
        Line::from_words(
            text.split(' ')
                .enumerate()
                .map(|(i, w)| Word {
                    text: w.to_owned(),
                    bbox: BBox::new(0.1 + i as f32 * 0.1, y, 0.18 + i as f32 * 0.1, y + 0.01),
                    confidence: 0.99,
                })
                .collect(),
        )
        .expect("words")
    };
    Document {
        source: TextSource::Textract,
        pages: vec![Page {
            number: 1,
            width: 612.0,
            height: 792.0,
            lines: vec![
                line("Invoice R-2024-001", 0.1),
                line("Total EUR 235.62", 0.5),
            ],
        }],
    }
}

#[tokio::test]
async fn a_recorded_reply_becomes_a_result_and_its_tokens_are_counted() {
    let converse = mock!(Client::converse)
        .match_requests(|r| {
            let forced = r
                .tool_config()
                .and_then(|c| c.tool_choice())
                .is_some_and(|c| matches!(c, ToolChoice::Tool(t) if t.name() == TOOL_NAME));
            let schema_is_ours = r.tool_config().is_some_and(|c| {
                c.tools().iter().any(|t| match t {
                    Tool::ToolSpec(s) => matches!(s.input_schema(), Some(ToolInputSchema::Json(d)) if from_document(d) == invoice_schema()),
                    _ => false,
                })
            });
            let text_sent = r.messages().first().is_some_and(|m| {
                m.content().iter().any(|c| matches!(c, ContentBlock::Text(t) if t.contains("Invoice R-2024-001") && t.contains("--- page 1 ---")))
            });
            r.model_id() == Some(MODEL) && forced && schema_is_ours && text_sent
        })
        .then_http_response(|| wire(200, fixture("bedrock_converse_invoice.json"), None));
    let client = mock_client!(aws_sdk_bedrockruntime, [&converse]);
    let extractor = BedrockExtractor::new(client, MODEL, 4096);
    let result = extractor
        .extract_invoice(&document(), None)
        .await
        .expect("result");
    assert_eq!(converse.num_calls(), 1, "the request matched");
    assert_eq!(result.source, ResultSource::Bedrock);
    assert_eq!(result.value("invoice_number"), Some("R-2024-001"));
    assert_eq!(result.value("gross_total"), Some("235.62"));
    assert_eq!(result.fields["due_date"].page, Some(2));
    assert_eq!(result.lines.len(), 1);
    assert_eq!(result.tax_breakdown.len(), 1);
    assert_eq!(
        extractor.take_usage(),
        TokenUsage {
            calls: 1,
            input_tokens: 1385,
            output_tokens: 412
        }
    );
    assert_eq!(extractor.usage(), TokenUsage::default());
}

#[tokio::test]
async fn replies_that_do_not_fit_are_errors_not_half_results() {
    for (name, want) in [
        (
            "bedrock_converse_misfit.json",
            "does not fit the invoice schema",
        ),
        (
            "bedrock_converse_no_tool.json",
            "did not call record_invoice",
        ),
        ("bedrock_converse_max_tokens.json", "cut at max_tokens"),
    ] {
        let rule =
            mock!(Client::converse).then_http_response(move || wire(200, fixture(name), None));
        let extractor =
            BedrockExtractor::new(mock_client!(aws_sdk_bedrockruntime, [&rule]), MODEL, 4096);
        let err = extractor
            .extract_invoice(&document(), None)
            .await
            .expect_err(name);
        assert!(err.message.contains(want), "{name}: {err}");
        assert_eq!(err.code, ErrorCode::ExtractionFailed);
        // Tokens were spent all the same, and are counted.
        assert_eq!(extractor.usage().calls, 1, "{name}");
    }
}

#[tokio::test]
async fn throttling_is_transient() {
    for (status, code, want) in [
        (429, "ThrottlingException", ErrorCode::RateLimited),
        (
            503,
            "ServiceUnavailableException",
            ErrorCode::ServiceUnavailable,
        ),
        (424, "ModelErrorException", ErrorCode::InternalError),
        (403, "AccessDeniedException", ErrorCode::InternalError),
    ] {
        let rule = mock!(Client::converse).then_http_response(move || {
            wire(
                status,
                format!(r#"{{"message":"recorded {code}"}}"#),
                Some(code),
            )
        });
        let client = mock_client!(aws_sdk_bedrockruntime, RuleMode::Sequential, [&rule], |b| b
            .retry_config(RetryConfig::disabled()));
        let err = BedrockExtractor::new(client, MODEL, 4096)
            .extract_invoice(&document(), None)
            .await
            .expect_err(code);
        assert_eq!(err.code, want, "{code}: {err}");
    }
}

fn plan_png() -> Vec<u8> {
    let path = format!("{}/fixtures/plan_200x100.png", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[tokio::test]
async fn a_plan_image_goes_to_the_model_and_its_rooms_come_back_in_pixels() {
    let png = plan_png();
    let sent = png.clone();
    let converse = mock!(Client::converse)
        .match_requests(move |r| {
            let forced = r
                .tool_config()
                .and_then(|c| c.tool_choice())
                .is_some_and(|c| matches!(c, ToolChoice::Tool(t) if t.name() == ROOMS_TOOL_NAME));
            let schema_is_ours = r.tool_config().is_some_and(|c| {
                c.tools().iter().any(|t| match t {
                    Tool::ToolSpec(s) => matches!(s.input_schema(), Some(ToolInputSchema::Json(d)) if from_document(d) == rooms_schema()),
                    _ => false,
                })
            });
            let content = r.messages().first().map(|m| m.content()).unwrap_or_default();
            let image_sent = content.iter().any(|c| match c {
                ContentBlock::Image(i) => {
                    i.format() == &ImageFormat::Png
                        && matches!(i.source(), Some(ImageSource::Bytes(b)) if b.as_ref() == sent.as_slice())
                }
                _ => false,
            });
            let size_told = content
                .iter()
                .any(|c| matches!(c, ContentBlock::Text(t) if t.contains("200 x 100 pixels")));
            r.model_id() == Some(MODEL) && forced && schema_is_ours && image_sent && size_told
        })
        .then_http_response(|| wire(200, fixture("bedrock_converse_rooms.json"), None));
    let client = mock_client!(aws_sdk_bedrockruntime, [&converse]);
    let extractor = BedrockExtractor::new(client, MODEL, 4096);
    let result = extractor
        .extract_rooms(&png, MediaType::Png)
        .await
        .expect("rooms");
    assert_eq!(converse.num_calls(), 1, "the request matched");
    assert_eq!(result.source, ResultSource::Bedrock);
    assert_eq!((result.image.width, result.image.height), (200, 100));
    assert_eq!(result.pixels_per_metre, Some(20.0));
    // Reading order: the kitchen (left) comes first although the model listed it second.
    let labels: Vec<_> = result.rooms.iter().map(|r| r.label.as_deref()).collect();
    assert_eq!(labels, vec![Some("Kitchen"), Some("Living room")]);
    let kitchen = &result.rooms[0];
    assert_eq!(kitchen.id, "room_1");
    assert_eq!(kitchen.polygon[0], [10.0, 10.0]);
    assert_eq!(kitchen.polygon_normalised[2], [0.45, 0.9]);
    assert!(
        (kitchen.area_px - 6400.0).abs() < 1e-6,
        "{}",
        kitchen.area_px
    );
    assert!((kitchen.area_m2.expect("scale") - 16.0).abs() < 1e-9);
    assert_eq!(
        extractor.usage(),
        TokenUsage {
            calls: 1,
            input_tokens: 1642,
            output_tokens: 233
        }
    );
}

#[tokio::test]
async fn rooms_that_do_not_fit_and_plans_bedrock_cannot_take_are_errors() {
    let rule = mock!(Client::converse)
        .then_http_response(|| wire(200, fixture("bedrock_converse_rooms_misfit.json"), None));
    let extractor =
        BedrockExtractor::new(mock_client!(aws_sdk_bedrockruntime, [&rule]), MODEL, 4096);
    let err = extractor
        .extract_rooms(&plan_png(), MediaType::Png)
        .await
        .expect_err("a corner outside the image");
    assert!(
        err.message.contains("does not fit the rooms schema"),
        "{err}"
    );
    assert!(err.message.contains("outside the image"), "{err}");
    assert_eq!(extractor.usage().calls, 1);

    // Refused before any call: a PDF, an unreadable image, an image over Bedrock's limits.
    let mut huge = plan_png();
    huge[16..20].copy_from_slice(&9000u32.to_be_bytes());
    for (bytes, media, want) in [
        (
            b"%PDF-1.7\n".to_vec(),
            MediaType::Pdf,
            ErrorCode::UnsupportedDocument,
        ),
        (
            b"\x89PNG but not".to_vec(),
            MediaType::Png,
            ErrorCode::DocumentUnreadable,
        ),
        (huge, MediaType::Png, ErrorCode::FileTooLarge),
    ] {
        let err = extractor
            .extract_rooms(&bytes, media)
            .await
            .expect_err("refused");
        assert_eq!(err.code, want, "{err}");
    }
    assert_eq!(extractor.usage().calls, 1, "no further calls were made");
}
