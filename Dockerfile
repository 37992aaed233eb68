# syntax=docker/dockerfile:1
# The cardform container image: `cardform` as the entrypoint, run as a non-root user.
#
#   docker build -t cardform --build-arg CARDFORM_GIT_COMMIT=$(git rev-parse --short=12 HEAD) .
#   docker run --rm -v "$PWD:/work" -e CARDFORM_API_URL -e CARDFORM_API_KEY -e CARDFORM_API_SECRET \
#       cardform plan -f cards/
#
# The build context leaves .git out (.dockerignore), so `--version` names the commit given as
# CARDFORM_GIT_COMMIT (the release workflow passes it), else "unknown".

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS build
ARG CARDFORM_GIT_COMMIT=unknown
ARG SOURCE_DATE_EPOCH
# `dist` is what releases ship (stripped, fat LTO); `release` builds several times faster.
ARG CARGO_PROFILE=dist
ENV CARDFORM_GIT_COMMIT=${CARDFORM_GIT_COMMIT} SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH}
WORKDIR /src
COPY . .
# The cache mounts keep the registry and the target dir between builds on one machine; the
# binary is copied out of the cached target dir because a cache mount is not part of the layer.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --profile "${CARGO_PROFILE}" --locked \
    && install -D -m 0755 "target/${CARGO_PROFILE}/cardform" /out/cardform

# Same Debian release as the builder, so the binary's glibc is the one it was linked against.
FROM debian:${DEBIAN_RELEASE}-slim
# reqwest verifies TLS with rustls-platform-verifier, which on Linux trusts the system's roots
# (/etc/ssl/certs): without ca-certificates no HTTPS provider could be reached. Not pinned: the
# roots should be the release's current ones.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 cardform \
    && useradd --system --uid 10001 --gid cardform --home-dir /work --shell /usr/sbin/nologin cardform \
    && install -d -o cardform -g cardform -m 0750 /work
COPY --from=build /out/cardform /usr/local/bin/cardform
# Numeric, so an orchestrator can tell it is not root without reading /etc/passwd.
USER 10001:10001
# Mount the declarations repository here: the default state (state/cardform.db) and a found
# cardform.toml are relative to it.
WORKDIR /work
ENTRYPOINT ["cardform"]
CMD ["--help"]
