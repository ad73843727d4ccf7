//! TextractOcr through the real Textract client, answered with recorded wire responses.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_s3::operation::delete_object::DeleteObjectOutput;
use aws_sdk_s3::operation::put_object::PutObjectOutput;
use aws_sdk_textract::Client;
use aws_sdk_textract::config::retry::RetryConfig;
use aws_sdk_textract::operation::start_document_text_detection::StartDocumentTextDetectionOutput;
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use aws_smithy_runtime_api::http::{Response, StatusCode};
use aws_smithy_types::body::SdkBody;
use docpipe_aws::textract::Staging;
use docpipe_aws::{SystemClock, TextractOcr};
use docpipe_core::{ErrorCode, MediaType, Ocr, TextSource};

fn fixture(name: &str) -> String {
    let path = format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A Textract (awsJson1.1) response: 200 with a body, or an error with `__type`.
fn wire(status: u16, body: String) -> Response {
    let mut r = Response::new(
        StatusCode::try_from(status).expect("status"),
        SdkBody::from(body),
    );
    r.headers_mut()
        .insert("content-type", "application/x-amz-json-1.1");
    r
}

fn error(code: &str) -> Response {
    wire(
        400,
        format!(r#"{{"__type":"{code}","Message":"recorded {code}"}}"#),
    )
}

fn ocr(textract: Client, staging: Option<Staging>) -> TextractOcr {
    TextractOcr::new(
        textract,
        staging,
        Arc::new(SystemClock),
        Duration::from_millis(1),
    )
}

#[tokio::test]
async fn an_image_is_read_synchronously_into_the_model() {
    let detect = mock!(Client::detect_document_text)
        .match_requests(|r| r.document().and_then(|d| d.bytes()).is_some())
        .then_http_response(|| wire(200, fixture("textract_detect_invoice.json")));
    let client = mock_client!(aws_sdk_textract, [&detect]);
    let doc = ocr(client, None)
        .recognize(b"\x89PNG\r\n\x1a\n...".to_vec(), MediaType::Png)
        .await
        .expect("document");
    assert_eq!(detect.num_calls(), 1);
    assert_eq!(doc.source, TextSource::Textract);
    assert_eq!(doc.pages.len(), 1);
    let lines: Vec<String> = doc.pages[0].lines.iter().map(|l| l.text()).collect();
    assert_eq!(lines[1], "Invoice R-2024-001");
    assert_eq!(lines[6], "Total EUR 235.62");
    let w = &doc.pages[0].lines[1].words[1];
    assert_eq!(w.text, "R-2024-001");
    assert!((w.confidence - 0.984).abs() < 1e-3, "{}", w.confidence);
    assert!(w.bbox.x0 > 0.08 && w.bbox.x1 < 1.0 && w.bbox.y0 > 0.11 && w.bbox.y1 < 0.14);
}

#[tokio::test]
async fn a_multi_page_pdf_goes_asynchronous_and_is_paginated() {
    let detect = mock!(Client::detect_document_text)
        .then_http_response(|| error("UnsupportedDocumentException"));
    let start = mock!(Client::start_document_text_detection)
        .match_requests(|r| {
            r.document_location()
                .and_then(|l| l.s3_object())
                .is_some_and(|o| {
                    o.bucket() == Some("docpipe-test-documents")
                        && o.name().is_some_and(|n| n.starts_with("textract/"))
                })
        })
        .then_output(|| {
            StartDocumentTextDetectionOutput::builder()
                .job_id("job-1")
                .build()
        });
    let in_progress = mock!(Client::get_document_text_detection)
        .match_requests(|r| r.next_token().is_none())
        .sequence()
        .http_response(|| wire(200, r#"{"JobStatus":"IN_PROGRESS"}"#.into()))
        .times(2)
        .http_response(|| wire(200, fixture("textract_get_page1.json")))
        .build();
    let page2 = mock!(Client::get_document_text_detection)
        .match_requests(|r| r.next_token() == Some("page-2-token"))
        .then_http_response(|| wire(200, fixture("textract_get_page2.json")));
    let textract = mock_client!(
        aws_sdk_textract,
        RuleMode::MatchAny,
        [&detect, &start, &in_progress, &page2]
    );
    let put = mock!(aws_sdk_s3::Client::put_object)
        .match_requests(|r| r.bucket() == Some("docpipe-test-documents"))
        .then_output(|| PutObjectOutput::builder().build());
    let delete = mock!(aws_sdk_s3::Client::delete_object)
        .then_output(|| DeleteObjectOutput::builder().build());
    let s3 = mock_client!(aws_sdk_s3, RuleMode::MatchAny, [&put, &delete]);
    let staging = Staging {
        s3,
        bucket: "docpipe-test-documents".into(),
    };
    let doc = ocr(textract, Some(staging))
        .recognize(b"%PDF-1.7 two pages".to_vec(), MediaType::Pdf)
        .await
        .expect("document");
    assert_eq!(
        (
            detect.num_calls(),
            start.num_calls(),
            in_progress.num_calls(),
            page2.num_calls()
        ),
        (1, 1, 3, 1)
    );
    assert_eq!(
        (put.num_calls(), delete.num_calls()),
        (1, 1),
        "staged and cleaned up"
    );
    assert_eq!(
        doc.pages.iter().map(|p| p.number).collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert_eq!(doc.pages[1].lines[0].text(), "Payment due 2024-03-31");
}

#[tokio::test]
async fn throttling_is_transient_and_bad_documents_are_invalid() {
    for (code, want, name) in [
        (
            "ProvisionedThroughputExceededException",
            ErrorCode::RateLimited,
            "DocPipe.Transient",
        ),
        (
            "ThrottlingException",
            ErrorCode::RateLimited,
            "DocPipe.Transient",
        ),
        (
            "InternalServerError",
            ErrorCode::ServiceUnavailable,
            "DocPipe.Transient",
        ),
        (
            "BadDocumentException",
            ErrorCode::DocumentUnreadable,
            "DocPipe.InvalidDocument",
        ),
        (
            "DocumentTooLargeException",
            ErrorCode::FileTooLarge,
            "DocPipe.InvalidDocument",
        ),
        (
            "AccessDeniedException",
            ErrorCode::InternalError,
            "DocPipe.Internal",
        ),
    ] {
        let rule = mock!(Client::detect_document_text).then_http_response(move || error(code));
        let client = mock_client!(aws_sdk_textract, RuleMode::Sequential, [&rule], |b| b
            .retry_config(RetryConfig::disabled()));
        let err = ocr(client, None)
            .recognize(b"\xff\xd8\xff".to_vec(), MediaType::Jpeg)
            .await
            .expect_err(code);
        assert_eq!(
            (err.code, err.name().as_str()),
            (want, name),
            "{code}: {err}"
        );
    }
}
