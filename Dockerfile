# syntax=docker/dockerfile:1
#
# verdict: coordinator (verdictd), example participant (verdict-bank) and load
# generator (verdict-bench) in one image. See docs/deployment.md.
#
#   docker build -t verdict .
#   docker run -p 7070:7070 -v verdict-data:/var/lib/verdict verdict            # --insecure (default CMD)
#   docker run -p 7070:7070 -v verdict-data:/var/lib/verdict verdict \
#       --api-token "$API_TOKEN" --admin-token "$ADMIN_TOKEN"                      # production
#
# Validation note: no Docker engine was available where this file was written.
# The build stage's commands were validated by running them verbatim outside
# Docker on Debian 12 (the apt-get line was skipped there because the packages
# were already installed; the same package names are checked by
# scripts/lib/deps.sh), and the runtime package list was derived from `ldd` of
# the built binaries mapped to Debian packages with `dpkg -S`.

############################ build stage ############################
FROM debian:12 AS build

RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      cmake ninja-build g++ pkg-config \
      libpqxx-dev libcpp-httplib-dev nlohmann-json3-dev libleveldb-dev libsnappy-dev \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY . .
RUN cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF \
 && cmake --build build --target verdictd verdict-bank verdict-bench \
 && strip build/bin/verdictd build/bin/verdict-bank build/bin/verdict-bench

########################### runtime stage ###########################
FROM debian:12-slim

# Shared libraries the binaries link (libpq5, libssl3, brotli... come as
# dependencies); curl for health checks.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libcpp-httplib0.11 libpqxx-6.4 libleveldb1d libsnappy1v5 curl ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home-dir /var/lib/verdict --shell /usr/sbin/nologin verdict \
 && mkdir -p /var/lib/verdict \
 && chown verdict:verdict /var/lib/verdict

COPY --from=build /src/build/bin/ /usr/local/bin/

USER verdict
VOLUME ["/var/lib/verdict"]
EXPOSE 7070

HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD curl -fsS http://127.0.0.1:7070/healthz || exit 1

# verdictd refuses a non-loopback --listen without tokens unless --insecure is
# given. The default CMD passes --insecure so `docker run verdict` works for a
# try-out; in production replace the CMD with
#   --api-token T1 --admin-token T2 [--advertise-url http://<name>:7070]
# (arguments given to `docker run IMAGE ...` replace the CMD, not the ENTRYPOINT).
ENTRYPOINT ["verdictd", "--listen", "0.0.0.0:7070", "--data-dir", "/var/lib/verdict"]
CMD ["--insecure"]
