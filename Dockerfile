# syntax=docker/dockerfile:1.7
# gid's image: the three binaries on a slim Debian runtime, run as a non-root user.
#   DOCKER_BUILDKIT=1 docker build -t gid .
#   docker run --rm --read-only --tmpfs /tmp -v gid-work:/var/lib/gid \
#     -e AWS_REGION -e AWS_PROFILE gid monthly-report --profile aws --month previous
#
# The binaries are built by `make release`, the same target `make test` (CI) runs, so a
# release build that breaks fails CI before it fails here. The cargo registry and the
# target directory are BuildKit cache mounts: a rebuild after a source change recompiles
# gid's crates only, not polars and the AWS SDK. What CI verifies of this image without a
# Docker engine: scripts/runtime-smoke.sh (README, "The container").
FROM rust:1.95-slim-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends make \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/cache/target \
    make release CARGO_TARGET_DIR=/cache/target \
 && mkdir /out \
 && cp /cache/target/release/monthly-report /cache/target/release/scooter-pickups \
       /cache/target/release/gid-admin /out/

FROM debian:bookworm-slim
# ca-certificates: TLS to AWS. Time zones are built into the binaries (--month previous).
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/gid gid \
 && mkdir -p /var/lib/gid && chown gid:gid /var/lib/gid
COPY --from=build /out/ /usr/local/bin/
COPY config/ /etc/gid/config/
USER 10001:10001
# The only place gid writes (the local backend's data root and outbox when it is used;
# nothing on the aws profile): mount a volume or emptyDir here, keep the root read-only.
WORKDIR /var/lib/gid
# Config: /etc/gid/config/{default,<profile>}.toml, then GID__… environment variables.
# Credentials: the standard AWS chain only (IRSA / ECS task role / instance role), never baked in.
ENV GID_CONFIG_DIR=/etc/gid/config
CMD ["monthly-report", "--help"]
