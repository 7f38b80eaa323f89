//! The AWS enrichment adapters (Translate, Comprehend, Rekognition) against a local HTTP
//! stub that answers as the services do (awsJson1_1 for Comprehend and Rekognition, Smithy
//! RPC v2 CBOR for Translate, which is what aws-sdk-translate speaks), since moto does not
//! implement Translate and answers Comprehend/Rekognition with canned data
//! (../shared/MOTO.md); plus one smoke test against moto_server for Rekognition's wire
//! protocol.
//!
//! Run through `scripts/with-moto.sh` (or `make test`): the SDK signs every request, so it
//! needs the fake credentials that script exports.

use std::num::{NonZeroU32, NonZeroUsize};
use std::time::{Duration, Instant};

use gid_core::{BucketName, ObjectKey};
use gid_e2e::{moto_endpoint, StubRequest, StubResponse, StubServer};
use gid_enrich::aws::{AwsComprehend, AwsEnrichSettings, AwsRekognition, AwsTranslator};
use gid_enrich::ports::{
    ImageLabeler, ImageRef, LanguageDetector, Sentiment, SentimentAnalyzer, TextDetector, TextKind,
    Translator,
};
use gid_enrich::EnrichError;
use gid_storage::StorageError;
use serde_json::{json, Value};

/// Sequential requests (so canned answers meet requests in order), tiny backoff.
fn settings(endpoint: &str) -> AwsEnrichSettings {
    AwsEnrichSettings {
        region: Some("us-east-1".into()),
        endpoint_url: Some(endpoint.into()),
        max_attempts: 3,
        initial_backoff: Duration::from_millis(1),
        operation_timeout: Duration::from_secs(10),
        max_concurrency: NonZeroUsize::new(1).unwrap(),
        requests_per_second: None,
    }
}

/// An awsJson1_1 answer (Comprehend, Rekognition).
fn answer(body: Value) -> StubResponse {
    StubResponse::json(&body.to_string())
}

/// A stub answering `responses` in turn, and Translate pointed at it.
async fn translator_at(responses: Vec<StubResponse>) -> (StubServer, AwsTranslator) {
    let stub = StubServer::start(responses);
    let adapter = AwsTranslator::connect(&settings(&stub.endpoint))
        .await
        .expect("AWS configuration");
    (stub, adapter)
}

/// A stub answering `responses` in turn, and Comprehend pointed at it.
async fn comprehend_at(responses: Vec<StubResponse>) -> (StubServer, AwsComprehend) {
    let stub = StubServer::start(responses);
    let adapter = AwsComprehend::connect(&settings(&stub.endpoint))
        .await
        .expect("AWS configuration");
    (stub, adapter)
}

/// A stub answering `responses` in turn, and Rekognition pointed at it.
async fn rekognition_at(responses: Vec<StubResponse>) -> (StubServer, AwsRekognition) {
    let stub = StubServer::start(responses);
    let adapter = AwsRekognition::connect(&settings(&stub.endpoint))
        .await
        .expect("AWS configuration");
    (stub, adapter)
}

fn concurrent(endpoint: &str, n: usize) -> AwsEnrichSettings {
    AwsEnrichSettings {
        max_concurrency: NonZeroUsize::new(n).unwrap(),
        ..settings(endpoint)
    }
}

fn texts(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn body(request: &StubRequest) -> Value {
    serde_json::from_slice(&request.body)
        .unwrap_or_else(|e| panic!("request body is not JSON ({e}): {}", request.body_text()))
}

fn target(request: &StubRequest) -> &str {
    request.header("x-amz-target").expect("X-Amz-Target header")
}

fn image(key: &str) -> ImageRef {
    ImageRef {
        bucket: BucketName::new("gid-images").unwrap(),
        key: ObjectKey::new(key).unwrap(),
    }
}

/// A TranslateText answer into English (see [`translated_into`]).
fn translated(text: &str, source: &str) -> StubResponse {
    translated_into(text, source, "en")
}

/// A TranslateText answer. aws-sdk-translate speaks Smithy RPC v2 CBOR (not awsJson1_1):
/// the request goes to `/service/AWSShineFrontendService_20170701/operation/TranslateText`
/// with a CBOR map body, and the answer is a CBOR map.
pub(crate) fn translated_into(text: &str, source: &str, target: &str) -> StubResponse {
    let mut cbor = aws_smithy_cbor::Encoder::new(Vec::new());
    cbor.map(3)
        .str("TranslatedText")
        .str(text)
        .str("SourceLanguageCode")
        .str(source)
        .str("TargetLanguageCode")
        .str(target);
    StubResponse::cbor(200, cbor.into_writer())
}

/// A Translate error as RPC v2 CBOR sends it (`__type` with the shape's namespace).
pub(crate) fn translate_error(status: u16, error_type: &str, message: &str) -> StubResponse {
    let mut cbor = aws_smithy_cbor::Encoder::new(Vec::new());
    cbor.map(2)
        .str("__type")
        .str(&format!("com.amazonaws.translate#{error_type}"))
        .str("message")
        .str(message);
    StubResponse::cbor(status, cbor.into_writer())
}

/// A CBOR request body as JSON, for assertions (maps, arrays, strings, numbers).
pub(crate) fn cbor_body(request: &StubRequest) -> Value {
    fn read(d: &mut aws_smithy_cbor::Decoder<'_>) -> Value {
        use aws_smithy_cbor::data::Type;
        match d.datatype().expect("CBOR item") {
            Type::String | Type::StringIndef => Value::String(d.string().unwrap()),
            Type::Map | Type::MapIndef => {
                let len = d.map().unwrap();
                let mut map = serde_json::Map::new();
                let mut n = 0;
                while len.map_or(d.datatype().unwrap() != Type::Break, |len| n < len) {
                    let key = d.string().unwrap();
                    map.insert(key, read(d));
                    n += 1;
                }
                if len.is_none() {
                    d.skip().unwrap(); // the break
                }
                Value::Object(map)
            }
            Type::Array | Type::ArrayIndef => {
                let len = d.list().unwrap();
                let mut items = Vec::new();
                while len.map_or(d.datatype().unwrap() != Type::Break, |len| {
                    (items.len() as u64) < len
                }) {
                    items.push(read(d));
                }
                if len.is_none() {
                    d.skip().unwrap();
                }
                Value::Array(items)
            }
            Type::F16 | Type::F32 | Type::F64 => json!(d.double().unwrap()),
            Type::Bool => json!(d.boolean().unwrap()),
            _ => json!(d.long().unwrap()),
        }
    }
    read(&mut aws_smithy_cbor::Decoder::new(&request.body))
}

fn sentiment_item(index: usize, class: &str, scores: [f32; 4]) -> Value {
    json!({
        "Index": index,
        "Sentiment": class,
        "SentimentScore": {
            "Positive": scores[0], "Negative": scores[1], "Neutral": scores[2], "Mixed": scores[3]
        }
    })
}

/// A BatchDetectSentiment answer with `n` results of one class.
fn sentiments(n: usize, class: &str) -> StubResponse {
    let items: Vec<Value> = (0..n)
        .map(|i| sentiment_item(i, class, [0.1, 0.7, 0.1, 0.1]))
        .collect();
    StubResponse::json(&json!({"ResultList": items, "ErrorList": []}).to_string())
}

/// A BatchDetectDominantLanguage answer with `n` results of one language.
fn languages(n: usize, code: &str) -> StubResponse {
    let items: Vec<Value> = (0..n)
        .map(|i| json!({"Index": i, "Languages": [{"LanguageCode": code, "Score": 0.99}]}))
        .collect();
    StubResponse::json(&json!({"ResultList": items, "ErrorList": []}).to_string())
}

fn throttled() -> StubResponse {
    StubResponse::json_error(400, "ThrottlingException", "Rate exceeded")
}

// ---------------------------------------------------------------- Translate

#[tokio::test]
async fn translate_sends_one_auto_to_english_request_per_text() {
    let (stub, translator) = translator_at(vec![
        translated("The scooter blocks the sidewalk", "es"),
        translated("Scooter on the ramp", "en"),
    ])
    .await;
    let got = translator
        .to_english(&texts(&[
            "El patinete bloquea la acera",
            "",
            "Scooter on the ramp",
        ]))
        .await
        .unwrap();

    assert_eq!(translator.engine().0, "aws-translate");
    assert_eq!(got[0].text, "The scooter blocks the sidewalk");
    assert_eq!(got[0].source_language.as_str(), "es");
    // Blank text is answered locally: Translate refuses empty input.
    assert_eq!(got[1].text, "");
    assert!(got[1].source_language.is_english());
    assert_eq!(got[2].source_language.as_str(), "en");

    let requests = stub.requests();
    assert_eq!(requests.len(), 2, "one request per non-blank text");
    assert_eq!(translator.api_calls(), 2);
    for (request, text) in requests
        .iter()
        .zip(["El patinete bloquea la acera", "Scooter on the ramp"])
    {
        assert_eq!(request.method, "POST");
        assert_eq!(
            request.path,
            "/service/AWSShineFrontendService_20170701/operation/TranslateText"
        );
        assert_eq!(request.header("smithy-protocol"), Some("rpc-v2-cbor"));
        assert_eq!(request.header("content-type"), Some("application/cbor"));
        let sent = cbor_body(request);
        assert_eq!(sent["Text"], text);
        assert_eq!(sent["SourceLanguageCode"], "auto");
        assert_eq!(sent["TargetLanguageCode"], "en");
    }
}

#[tokio::test]
async fn translate_cuts_texts_over_10000_bytes_at_a_char_boundary() {
    let (stub, translator) = translator_at(vec![translated("long", "es")]).await;
    // 2 + 3 × 3333 = 10,001 bytes: byte 10,000 falls inside the last euro sign.
    let long = format!("ab{}", "€".repeat(3333));
    translator
        .to_english(std::slice::from_ref(&long))
        .await
        .unwrap();

    let sent = cbor_body(&stub.requests()[0])["Text"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(sent.len(), 9_998);
    assert!(long.starts_with(&sent));
}

#[tokio::test]
async fn translate_retries_too_many_requests_then_succeeds() {
    let (stub, translator) = translator_at(vec![
        translate_error(400, "TooManyRequestsException", "Slow down"),
        translated("Broken scooter", "es"),
    ])
    .await;
    let got = translator
        .to_english(&texts(&["Patinete roto"]))
        .await
        .unwrap();
    assert_eq!(got[0].text, "Broken scooter");
    assert_eq!(stub.requests().len(), 2);
    assert_eq!(translator.api_calls(), 1, "retries are not new operations");
    assert_eq!(translator.api_attempts(), 2);
}

#[tokio::test]
async fn translate_low_confidence_detection_is_unsupported_not_retried() {
    let (stub, translator) = translator_at(vec![translate_error(
        400,
        "DetectedLanguageLowConfidenceException",
        "Could not detect the language",
    )])
    .await;
    let err = translator
        .to_english(&texts(&["zzz qqq"]))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, EnrichError::Unsupported { what, .. }
            if what.contains("text #0") && what.contains("DetectedLanguageLowConfidenceException")),
        "{err}"
    );
    assert_eq!(stub.requests().len(), 1);
}

#[tokio::test]
async fn translate_requests_are_paced_by_requests_per_second() {
    let stub = StubServer::start(vec![translated("ok", "es")]);
    let translator = AwsTranslator::connect(&AwsEnrichSettings {
        requests_per_second: NonZeroU32::new(20),
        ..concurrent(&stub.endpoint, 4)
    })
    .await
    .expect("AWS configuration");
    let start = Instant::now();
    translator
        .to_english(&texts(&["uno", "dos", "tres", "cuatro", "cinco"]))
        .await
        .unwrap();
    // Five starts 50 ms apart: the last one 200 ms after the first.
    let elapsed = start.elapsed();
    assert!(elapsed >= Duration::from_millis(195), "{elapsed:?}");
    assert_eq!(translator.api_calls(), 5);
}

// ---------------------------------------------------------------- Comprehend

#[tokio::test]
async fn sentiment_sends_60_texts_as_three_batches_of_at_most_25() {
    let (stub, comprehend) = comprehend_at(vec![
        sentiments(25, "NEGATIVE"),
        sentiments(25, "POSITIVE"),
        sentiments(10, "MIXED"),
    ])
    .await;
    let input: Vec<String> = (0..60)
        .map(|i| format!("request text number {i}"))
        .collect();
    let got = comprehend.sentiment(&input).await.unwrap();

    let requests = stub.requests();
    assert_eq!(requests.len(), 3, "ceil(60 / 25) calls");
    assert_eq!(comprehend.api_calls(), 3);
    let sizes: Vec<usize> = requests
        .iter()
        .map(|r| {
            assert_eq!(target(r), "Comprehend_20171127.BatchDetectSentiment");
            let sent = body(r);
            assert_eq!(sent["LanguageCode"], "en");
            sent["TextList"].as_array().unwrap().len()
        })
        .collect();
    assert_eq!(sizes, [25, 25, 10]);
    assert_eq!(body(&requests[1])["TextList"][0], "request text number 25");

    assert_eq!(got.len(), 60);
    assert_eq!(got[24].sentiment, Sentiment::Negative);
    assert_eq!(got[25].sentiment, Sentiment::Positive);
    assert_eq!(got[59].sentiment, Sentiment::Mixed);
}

#[tokio::test]
async fn sentiment_maps_results_by_index_with_their_scores() {
    // Comprehend lists results in any order; Index says which text each is for.
    let (_stub, comprehend) = comprehend_at(vec![answer(json!({
        "ResultList": [
            sentiment_item(2, "MIXED", [0.4, 0.4, 0.1, 0.1]),
            sentiment_item(0, "NEGATIVE", [0.01, 0.95, 0.03, 0.01]),
            sentiment_item(1, "POSITIVE", [0.9, 0.02, 0.07, 0.01]),
        ],
        "ErrorList": []
    }))])
    .await;
    let got = comprehend
        .sentiment(&texts(&[
            "Scooter dumped in my yard again, terrible",
            "Thanks for the quick pickup",
            "Good crew but the scooter is still there",
        ]))
        .await
        .unwrap();

    assert_eq!(SentimentAnalyzer::engine(&comprehend).0, "aws-comprehend");
    let classes: Vec<Sentiment> = got.iter().map(|r| r.sentiment).collect();
    assert_eq!(
        classes,
        [Sentiment::Negative, Sentiment::Positive, Sentiment::Mixed]
    );
    let s = got[0].scores;
    assert_eq!(
        (s.positive, s.negative, s.neutral, s.mixed),
        (0.01, 0.95, 0.03, 0.01)
    );
    assert_eq!(got[1].scores.positive, 0.9);
}

#[tokio::test]
async fn sentiment_answers_blank_texts_locally_without_sending_them() {
    let (stub, comprehend) = comprehend_at(vec![answer(json!({
        "ResultList": [sentiment_item(0, "NEGATIVE", [0.0, 0.9, 0.1, 0.0])],
        "ErrorList": []
    }))])
    .await;
    let got = comprehend
        .sentiment(&texts(&["", "Scooter blocking the door", "   "]))
        .await
        .unwrap();

    let requests = stub.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        body(&requests[0])["TextList"],
        json!(["Scooter blocking the door"])
    );
    assert_eq!(got[1].sentiment, Sentiment::Negative);
    for blank in [&got[0], &got[2]] {
        assert_eq!(blank.sentiment, Sentiment::Neutral);
        let s = blank.scores;
        assert_eq!([s.positive, s.negative, s.neutral, s.mixed], [0.0; 4]);
    }

    // Nothing to send at all: no call.
    let before = comprehend.api_calls();
    comprehend.sentiment(&texts(&["", " "])).await.unwrap();
    assert_eq!(comprehend.api_calls(), before);
}

#[tokio::test]
async fn sentiment_item_error_names_the_callers_index_and_code() {
    let (_stub, comprehend) = comprehend_at(vec![answer(json!({
        "ResultList": [sentiment_item(0, "NEUTRAL", [0.1, 0.1, 0.7, 0.1])],
        "ErrorList": [{
            "Index": 1,
            "ErrorCode": "INVALID_REQUEST",
            "ErrorMessage": "Document is not valid"
        }]
    }))])
    .await;
    // The blank first text is not sent, so batch Index 1 is the caller's text #2.
    let err = comprehend
        .sentiment(&texts(&["", "fine text", "refused text"]))
        .await
        .unwrap_err();
    match &err {
        EnrichError::Service {
            operation,
            message,
            transient,
            ..
        } => {
            assert_eq!(*operation, "BatchDetectSentiment");
            assert!(message.contains("text #2"), "{message}");
            assert!(message.contains("INVALID_REQUEST"), "{message}");
            assert!(!transient);
        }
        other => panic!("expected a service error, got {other:?}"),
    }
}

#[tokio::test]
async fn sentiment_answer_missing_a_text_is_an_error_not_a_gap() {
    let (_stub, comprehend) = comprehend_at(vec![answer(json!({
        "ResultList": [sentiment_item(0, "POSITIVE", [0.9, 0.0, 0.1, 0.0])],
        "ErrorList": []
    }))])
    .await;
    let err = comprehend
        .sentiment(&texts(&["great", "no answer for this one"]))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, EnrichError::Service { message, transient: false, .. }
            if message.contains("no answer for text #1")),
        "{err}"
    );
}

#[tokio::test]
async fn comprehend_cuts_texts_over_5000_bytes_at_a_char_boundary() {
    let (stub, comprehend) = comprehend_at(vec![sentiments(2, "NEUTRAL")]).await;
    // 1 + 2 × 2500 = 5,001 bytes: byte 5,000 falls inside the last "é".
    let long = format!("a{}", "é".repeat(2500));
    comprehend
        .sentiment(&[long.clone(), "short".into()])
        .await
        .unwrap();

    let sent = body(&stub.requests()[0]);
    let first = sent["TextList"][0].as_str().unwrap();
    assert_eq!(first.len(), 4_999);
    assert!(long.starts_with(first));
    assert_eq!(sent["TextList"][1], "short");
}

#[tokio::test]
async fn language_detection_batches_and_takes_the_top_scoring_language() {
    let (stub, comprehend) = comprehend_at(vec![answer(json!({
        "ResultList": [
            {"Index": 1, "Languages": [{"LanguageCode": "en", "Score": 0.97}]},
            {"Index": 0, "Languages": [
                {"LanguageCode": "pt", "Score": 0.08},
                {"LanguageCode": "es", "Score": 0.91}
            ]}
        ],
        "ErrorList": []
    }))])
    .await;
    let got = comprehend
        .detect(&texts(&[
            "El patinete está en la banqueta",
            "",
            "Scooter on the sidewalk",
        ]))
        .await
        .unwrap();

    let requests = stub.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        target(&requests[0]),
        "Comprehend_20171127.BatchDetectDominantLanguage"
    );
    assert_eq!(
        body(&requests[0]),
        json!({"TextList": ["El patinete está en la banqueta", "Scooter on the sidewalk"]})
    );
    assert_eq!(got[0].code.as_str(), "es");
    assert_eq!(got[0].score, 0.91);
    assert_eq!((got[1].code.as_str(), got[1].score), ("en", 0.0));
    assert_eq!((got[2].code.as_str(), got[2].score), ("en", 0.97));
}

#[tokio::test]
async fn comprehend_throttling_is_retried_then_succeeds() {
    let (stub, comprehend) = comprehend_at(vec![throttled(), sentiments(1, "NEGATIVE")]).await;
    let got = comprehend
        .sentiment(&texts(&["Scooter left in the street"]))
        .await
        .unwrap();
    assert_eq!(got[0].sentiment, Sentiment::Negative);
    assert_eq!(stub.requests().len(), 2);
    assert_eq!(comprehend.api_calls(), 1);
    assert_eq!(comprehend.api_attempts(), 2);
}

#[tokio::test]
async fn comprehend_throttling_past_the_retry_budget_is_a_transient_service_error() {
    let (stub, comprehend) = comprehend_at(vec![throttled()]).await;
    let err = comprehend.sentiment(&texts(&["a", "b"])).await.unwrap_err();
    assert_eq!(stub.requests().len(), 3, "max_attempts = 3");
    assert_eq!(comprehend.api_calls(), 1);
    assert_eq!(comprehend.api_attempts(), 3);
    match &err {
        EnrichError::Service {
            engine,
            operation,
            message,
            transient,
            ..
        } => {
            assert_eq!(engine, "aws-comprehend");
            assert_eq!(*operation, "BatchDetectSentiment");
            assert!(*transient);
            assert!(message.contains("texts #0–#1"), "{message}");
            assert!(message.contains("ThrottlingException"), "{message}");
            assert!(message.contains("max_attempts = 3"), "{message}");
            assert!(message.contains("requests_per_second"), "{message}");
        }
        other => panic!("expected a service error, got {other:?}"),
    }
    println!("throttled past the budget: {err}");
}

#[tokio::test]
async fn comprehend_invalid_request_is_not_retried_and_not_transient() {
    let (stub, comprehend) = comprehend_at(vec![StubResponse::json_error(
        400,
        "InvalidRequestException",
        "The request is not valid",
    )])
    .await;
    let err = comprehend.detect(&texts(&["hola"])).await.unwrap_err();
    assert_eq!(stub.requests().len(), 1);
    assert!(
        matches!(&err, EnrichError::Service { transient: false, message, .. }
            if message.contains("InvalidRequestException")),
        "{err}"
    );
}

// ---------------------------------------------------------------- Rekognition

#[tokio::test]
async fn detect_labels_sends_the_s3_object_and_limits_and_maps_labels() {
    let (stub, rekognition) = rekognition_at(vec![answer(json!({
            "Labels": [
                {"Name": "Scooter", "Confidence": 97.25, "Instances": [], "Parents": [{"Name": "Vehicle"}]},
                {"Name": "Sidewalk", "Confidence": 81.5, "Instances": [], "Parents": []}
            ],
            "LabelModelVersion": "3.0"
        }))]).await;
    let labels = rekognition
        .labels(&image("2019/jan/12345.jpg"), 10, 55.0)
        .await
        .unwrap();

    assert_eq!(ImageLabeler::engine(&rekognition).0, "aws-rekognition");
    let request = &stub.requests()[0];
    assert_eq!(target(request), "RekognitionService.DetectLabels");
    assert_eq!(
        body(request),
        json!({
            "Image": {"S3Object": {"Bucket": "gid-images", "Name": "2019/jan/12345.jpg"}},
            "MaxLabels": 10,
            "MinConfidence": 55.0
        })
    );
    let got: Vec<(&str, f32)> = labels
        .iter()
        .map(|l| (l.name.as_str(), l.confidence))
        .collect();
    assert_eq!(got, [("Scooter", 97.25), ("Sidewalk", 81.5)]);
    assert_eq!(rekognition.api_calls(), 1);
}

#[tokio::test]
async fn detect_text_maps_lines_words_confidence_and_boxes() {
    let detection = |text: &str, kind: &str, id: u32, conf: f32, left: f32| {
        json!({
            "DetectedText": text, "Type": kind, "Id": id, "Confidence": conf,
            "Geometry": {
                "BoundingBox": {"Width": 0.25, "Height": 0.05, "Left": left, "Top": 0.6},
                "Polygon": [{"X": left, "Y": 0.6}]
            }
        })
    };
    let (stub, rekognition) = rekognition_at(vec![answer(json!({
        "TextDetections": [
            detection("NO PARKING", "LINE", 0, 98.5, 0.1),
            detection("NO", "WORD", 1, 99.0, 0.1),
            detection("PARKING", "WORD", 2, 97.0, 0.2)
        ],
        "TextModelVersion": "3.0"
    }))])
    .await;
    let found = rekognition
        .detect_text(&image("2019/jan/sign.png"))
        .await
        .unwrap();

    let request = &stub.requests()[0];
    assert_eq!(target(request), "RekognitionService.DetectText");
    assert_eq!(
        body(request),
        json!({"Image": {"S3Object": {"Bucket": "gid-images", "Name": "2019/jan/sign.png"}}})
    );
    assert_eq!(found.len(), 3);
    assert_eq!(
        (found[0].text.as_str(), found[0].kind, found[0].confidence),
        ("NO PARKING", TextKind::Line, 98.5)
    );
    assert_eq!(found[1].kind, TextKind::Word);
    assert_eq!(found[2].text, "PARKING");
    let b = found[2].bounding_box;
    assert_eq!((b.left, b.top, b.width, b.height), (0.2, 0.6, 0.25, 0.05));
}

#[tokio::test]
async fn rekognition_retries_throughput_and_server_errors_then_succeeds() {
    let (stub, rekognition) = rekognition_at(vec![
        StubResponse::json_error(
            400,
            "ProvisionedThroughputExceededException",
            "Provisioned rate exceeded",
        ),
        StubResponse::json_error(500, "InternalServerError", "Internal error"),
        StubResponse::json(
            &json!({"Labels": [{"Name": "Scooter", "Confidence": 90.0}]}).to_string(),
        ),
    ])
    .await;
    let labels = rekognition
        .labels(&image("retry.jpg"), 5, 50.0)
        .await
        .unwrap();
    assert_eq!(labels[0].name, "Scooter");
    assert_eq!(stub.requests().len(), 3);
    assert_eq!(
        (rekognition.api_calls(), rekognition.api_attempts()),
        (1, 3)
    );
}

#[tokio::test]
async fn rekognition_missing_object_is_no_such_key_like_the_local_labeller() {
    let (stub, rekognition) = rekognition_at(vec![StubResponse::json_error(
        400,
        "InvalidS3ObjectException",
        "Unable to get object metadata from S3. Check object key, region and/or access permissions.",
    )]).await;
    let err = rekognition
        .labels(&image("2019/jan/missing.jpg"), 10, 50.0)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, EnrichError::Storage(StorageError::NoSuchKey { bucket, key })
            if bucket.as_str() == "gid-images" && key == "2019/jan/missing.jpg"),
        "{err}"
    );
    assert_eq!(stub.requests().len(), 1, "not retried");
}

// ---------------------------------------------------------------- Cost

/// Measures the calls per 1000 texts / images each adapter makes (printed for the report)
/// and runs the batches concurrently, which must keep every answer in place.
#[tokio::test]
async fn calls_per_1000_texts() {
    let input: Vec<String> = (0..1000).map(|i| format!("request {i}")).collect();

    let stub = StubServer::start(vec![sentiments(25, "NEGATIVE")]);
    let comprehend = AwsComprehend::connect(&concurrent(&stub.endpoint, 4))
        .await
        .expect("AWS configuration");
    let got = comprehend.sentiment(&input).await.unwrap();
    assert!(got.iter().all(|r| r.sentiment == Sentiment::Negative));
    let sentiment_calls = comprehend.api_calls();

    let stub = StubServer::start(vec![languages(25, "es")]);
    let comprehend = AwsComprehend::connect(&concurrent(&stub.endpoint, 4))
        .await
        .expect("AWS configuration");
    let got = comprehend.detect(&input).await.unwrap();
    assert!(got.iter().all(|l| l.code.as_str() == "es"));
    let language_calls = comprehend.api_calls();

    let stub = StubServer::start(vec![translated("scooter", "es")]);
    let translator = AwsTranslator::connect(&concurrent(&stub.endpoint, 4))
        .await
        .expect("AWS configuration");
    translator.to_english(&input).await.unwrap();
    let translate_calls = translator.api_calls();

    let stub = StubServer::start(vec![StubResponse::json(
        &json!({"Labels": [{"Name": "Scooter", "Confidence": 90.0}]}).to_string(),
    )]);
    let rekognition = AwsRekognition::connect(&concurrent(&stub.endpoint, 4))
        .await
        .expect("AWS configuration");
    for i in 0..100 {
        rekognition
            .labels(&image(&format!("img/{i}.jpg")), 10, 50.0)
            .await
            .unwrap();
    }
    let label_calls = rekognition.api_calls() * 10;

    println!(
        "calls per 1000 texts: sentiment {sentiment_calls}, language {language_calls}, \
         translate {translate_calls}; per 1000 images: labels {label_calls}"
    );
    assert_eq!(sentiment_calls, 40);
    assert_eq!(language_calls, 40);
    assert_eq!(translate_calls, 1000);
    assert_eq!(label_calls, 1000);
}

// ---------------------------------------------------------------- moto_server

/// moto answers Rekognition with canned data (even for a missing object): this proves only
/// that the adapter speaks the wire protocol of a real endpoint and parses its answers.
#[tokio::test]
async fn rekognition_speaks_the_wire_protocol_of_moto_server() {
    let rekognition = AwsRekognition::connect(&AwsEnrichSettings {
        max_attempts: 2,
        ..settings(&moto_endpoint())
    })
    .await
    .expect("AWS configuration");
    let photo = image(&gid_e2e::unique("smoke/photo"));

    let labels = rekognition.labels(&photo, 10, 50.0).await.unwrap();
    assert!(!labels.is_empty(), "moto answers a canned label");
    assert!(!labels[0].name.is_empty());
    assert!(labels[0].confidence > 0.0);

    let text = rekognition.detect_text(&photo).await.unwrap();
    assert!(!text.is_empty(), "moto answers a canned text");
    assert!(text.iter().any(|t| t.kind == TextKind::Line));
    assert!(!text[0].text.is_empty());
    assert_eq!(rekognition.api_calls(), 2);
}
