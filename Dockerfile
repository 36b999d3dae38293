# raftlite's container image: the static binary (CGO_ENABLED=0, the same
# command as the README's and .ci/run's build) in an empty image, run as
# a non-root user, with the data directory on a volume.
#
#   docker build -t raftlite .
#   docker run -p 4001:4001 -v raftlite-data:/data raftlite
#
# The default command runs a single node advertising loopback addresses.
# For a cluster, give each node its advertised addresses, as
# docker-compose.yml and deploy/k8s/ do; the data directory must come
# last. A test (deploy_test.go) checks that this file's build command and
# flags stay those of the binary.

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=v0.1.0
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/raftlite . \
 && mkdir -p /out/data /out/tmp && chmod 1777 /out/tmp

FROM scratch
COPY --from=build /out/raftlite /raftlite
# SQLite's temporary files (large sorts) go to /tmp, which scratch lacks.
COPY --from=build /out/tmp /tmp
# A new named volume takes the ownership of this directory.
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
VOLUME /data
# 4001: HTTP API and web console (/console); 4002: Raft and node-to-node traffic.
EXPOSE 4001 4002
HEALTHCHECK --interval=10s --timeout=4s --start-period=20s --retries=3 \
  CMD ["/raftlite", "healthcheck", "-H", "127.0.0.1:4001", "-timeout", "3s"]
ENTRYPOINT ["/raftlite", "serve", "-http-addr", "0.0.0.0:4001", "-raft-addr", "0.0.0.0:4002"]
CMD ["-http-adv-addr", "127.0.0.1:4001", "-raft-adv-addr", "127.0.0.1:4002", "/data"]
