# syntax=docker/dockerfile:1
#
# Postern container image.
#
#   docker build -t postern .
#   docker run -d --name postern \
#       -e POSTERN_ADMIN_TOKEN=change-me \
#       -v postern-data:/var/lib/postern \
#       -v "$PWD/container.toml:/etc/postern/postern.toml:ro" \
#       -p 2525:2525 -p 2587:2587 -p 8025:8025 postern
#
# IMPORTANT: the default configuration (config/postern.toml, copied to
# /etc/postern/postern.toml) binds every listener and the API to 127.0.0.1, which nothing
# outside the container can reach. A container needs a configuration that binds 0.0.0.0
# (listeners: bind = "0.0.0.0:2587"; [api] bind = "0.0.0.0:8025"), mounted over
# /etc/postern/postern.toml as above. Note that allow_plaintext_auth is honoured only on a
# loopback bind, so on 0.0.0.0 clients must use STARTTLS or implicit TLS to authenticate;
# and trusted_networks must name the clients' addresses as the container sees them (the
# Docker bridge NATs published ports, so this is often the bridge gateway, not the client).
#
# Set `hostname` in that configuration too: left empty it is the container's host name (a
# random id), which ends up in the greeting, Received fields and the generated certificate.
#
# Relative paths in the configuration resolve against the working directory
# /var/lib/postern (the volume): the store in data/, a self-signed certificate generated
# into certs/ at first start (see certs/README.md for a real one). Without
# POSTERN_ADMIN_TOKEN the admin token is generated at first start and printed once: read it
# with `docker logs postern`.

# ---------------------------------------------------------------- build
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
# Cache mounts keep the registry and the target directory between builds (BuildKit); the
# binary is copied out of the cached target directory because a cache mount does not
# become part of the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
    && install -m 0755 target/release/postern /usr/local/bin/postern

# ---------------------------------------------------------------- runtime
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system postern \
    && useradd --system --gid postern --home-dir /var/lib/postern --shell /usr/sbin/nologin postern \
    && install -d -o postern -g postern -m 0750 /var/lib/postern
COPY --from=build /usr/local/bin/postern /usr/local/bin/postern
COPY config/ /etc/postern/
USER postern
WORKDIR /var/lib/postern
VOLUME /var/lib/postern
# 2525 plain submission (AUTH on loopback only), 2587 STARTTLS submission, 8025 control API.
EXPOSE 2525 2587 8025
# SIGTERM (docker stop) starts a graceful shutdown: no new sessions, sessions in flight get
# shutdown_grace_secs (30 s by default: raise `docker stop --time` to match), store flushed.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/postern"]
CMD ["serve", "--config", "/etc/postern/postern.toml"]
