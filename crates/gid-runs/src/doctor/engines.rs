//! The AWS engines' checks (`enrich.engines = "aws"`, on either profile): Amazon Translate,
//! Comprehend and Rekognition each answer at the endpoint a run would use and let the
//! identity call the operations scooter-pickups calls.

use gid_core::Config;

use super::Check;

/// One check per AWS engine service. Each asks with a deliberately empty request the
/// service refuses as invalid only after authorising it (see the adapters' `preflight`),
/// so nothing is translated, analysed or billed.
#[cfg(feature = "enrich")]
pub(super) async fn aws_engine_checks(config: &Config) -> Vec<Check> {
    use gid_aws::Service;
    use gid_enrich::aws::{AwsComprehend, AwsRekognition, AwsTranslator};

    let aws = match crate::aws_context(config).await {
        Ok(aws) => aws,
        Err(e) => {
            return vec![Check::warn(
                "engine.aws",
                "engines aws",
                format!("the AWS engines cannot be set up: {e}"),
                "set aws.region (GID__AWS__REGION) or AWS_REGION",
            )]
        }
    };
    let settings = gid_enrich::aws::AwsEnrichSettings {
        // A preflight reports what it meets at once; a run's retries would only delay
        // the answer (a refused connection took 5 attempts and 7 s of backoff).
        max_attempts: 1,
        ..crate::scooter::aws_enrich_settings(config)
    };
    let endpoint = |service| {
        settings
            .endpoint_url
            .clone()
            .or_else(|| aws.endpoint(service))
    };
    let (translate, comprehend, rekognition) = tokio::join!(
        async { AwsTranslator::new(aws, &settings).preflight().await },
        async { AwsComprehend::new(aws, &settings).preflight().await },
        async { AwsRekognition::new(aws, &settings).preflight().await },
    );
    vec![
        engine_check(
            Service::Translate,
            endpoint(Service::Translate),
            &["translate:TranslateText"],
            translate,
        ),
        engine_check(
            Service::Comprehend,
            endpoint(Service::Comprehend),
            &[
                "comprehend:BatchDetectDominantLanguage",
                "comprehend:BatchDetectSentiment",
            ],
            comprehend,
        ),
        engine_check(
            Service::Rekognition,
            endpoint(Service::Rekognition),
            &["rekognition:DetectLabels"],
            rekognition,
        ),
    ]
}

/// Without the engines compiled in there is nothing to ask.
#[cfg(not(feature = "enrich"))]
pub(super) async fn aws_engine_checks(_config: &Config) -> Vec<Check> {
    vec![Check::skipped(
        "engine.aws",
        "engines aws",
        "this build has no AWS engines (gid-runs' `enrich` feature); gid-admin has them",
    )]
}

/// Whether one engine service can be used. A failure warns rather than fails, as for the
/// offline engines: only scooter-pickups needs them, monthly-report does not.
#[cfg(feature = "enrich")]
fn engine_check(
    service: gid_aws::Service,
    endpoint: Option<String>,
    permissions: &[&str],
    answer: Result<(), gid_enrich::EnrichError>,
) -> Check {
    let short = service.summary_name();
    let (id, name) = (format!("engine.{short}"), format!("engine {short}"));
    let at = endpoint.unwrap_or_else(|| "AWS".to_owned());
    let permissions = permissions.join(", ");
    match answer {
        Ok(()) => Check::ok(
            id,
            name,
            format!("Amazon {service} at {at} answers and allows {permissions}"),
        ),
        Err(e) => Check::warn(
            id,
            name,
            format!(
                "Amazon {service} at {at} cannot be used: {e}; scooter-pickups needs it (monthly-report does not)"
            ),
            format!(
                "check enrich.aws.endpoint_url or {} and grant the identity {permissions}",
                service.endpoint_variable()
            ),
        ),
    }
}
