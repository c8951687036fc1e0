# paritygate's image: `serve`, `generate` and every other subcommand (docker-compose.yml runs both).
# Stage 1 builds the binary with the features production needs, exactly as `cargo build` does
# anywhere (Cargo.toml): the bundled librdkafka with OpenSSL (TLS, SASL PLAIN/SCRAM), gzip, snappy,
# lz4 and zstd, built by cmake; sqlx with native TLS (OpenSSL) for Postgres `sslmode`. Migrations
# are embedded at compile time (sqlx::migrate!), so stage 2 is the binary on debian-slim with the
# libraries it links (libssl3, zlib; `ldd` lists nothing else), CA certificates for TLS, and curl
# for the health check, running as an unprivileged user.
FROM rust:1-bookworm AS builder
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake pkg-config libssl-dev libcurl4-openssl-dev zlib1g-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
COPY migrations ./migrations
RUN cargo build --release --locked --bin paritygate

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl libssl3 zlib1g \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home paritygate
COPY --from=builder /src/target/release/paritygate /usr/local/bin/paritygate
USER 10001
EXPOSE 8080
ENTRYPOINT ["paritygate"]
CMD ["serve", "--config", "/etc/paritygate/paritygate.toml"]
