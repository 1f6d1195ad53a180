# Multi-stage build: a Rust toolchain compiles, a slim Debian runs.
#   docker build -t convergences .
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock rustfmt.toml ./
COPY src src
COPY schema schema
COPY scim scim
# Declared in Cargo.toml, so present for the manifest; not built here.
COPY benches benches
COPY examples examples
RUN cargo build --release --locked --bin convergences

FROM debian:bookworm-slim
# curl: for the health check only.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home-dir /data --shell /usr/sbin/nologin convergences \
    && mkdir -p /data /certs \
    && chown convergences:convergences /data
COPY --from=build /src/target/release/convergences /usr/local/bin/convergences
USER convergences
# Unprivileged ports inside the container; docker-compose.yml maps 389, 636, 443 and 8443 to them.
ENV CONVERGENCES_DATA=/data \
    CONVERGENCES_LDAP=0.0.0.0:3389 \
    CONVERGENCES_LDAPS=0.0.0.0:3636 \
    CONVERGENCES_SCIM=0.0.0.0:8443 \
    CONVERGENCES_SCIM_HTTP=127.0.0.1:8080 \
    CONVERGENCES_CONSOLE=0.0.0.0:9443 \
    CONVERGENCES_CONSOLE_HTTP= \
    CONVERGENCES_LOG_FORMAT=json
VOLUME ["/data"]
EXPOSE 3389 3636 8443 9443
# /readyz on the plain-HTTP listener, which only the container itself reaches.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s \
    CMD curl -fsS http://127.0.0.1:8080/readyz || exit 1
STOPSIGNAL SIGTERM
ENTRYPOINT ["convergences"]
CMD ["serve"]
