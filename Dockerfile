# Multi-stage build: compile the gid binaries, ship them on a slim runtime image.
#   docker build -t gid .
#   docker run --rm -e AWS_REGION -e AWS_ACCESS_KEY_ID -e AWS_SECRET_ACCESS_KEY gid \
#       monthly-report --profile aws --month 2019-01
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bins \
 && mkdir /out \
 && cp target/release/monthly-report target/release/gid-admin /out/

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home /var/lib/gid gid
COPY --from=build /out/ /usr/local/bin/
COPY config/ /etc/gid/config/
USER gid
WORKDIR /var/lib/gid
# Config: /etc/gid/config/{default,<profile>}.toml, then GID__… environment variables.
# Credentials: the standard AWS chain only (IRSA / instance role / env), never baked in.
ENV GID_CONFIG_DIR=/etc/gid/config
CMD ["monthly-report", "--help"]
