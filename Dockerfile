# One Dockerfile for both binaries; BINARY picks which:
#   docker build --build-arg BINARY=loader  -t …/loader:TAG .
#   docker build --build-arg BINARY=planner -t …/planner:TAG .
# The result is a static binary on distroless/static, running as a non-root
# user: no shell, no package manager, CA certificates and tzdata included.

# Base images by digest, not by tag: a tag can be moved to other bytes, a
# digest cannot. The tags say what they are (go.mod's Go version; Debian
# 12); docs/security.md says where each digest was read. Bump both
# deliberately, together with cloudbuild-test.yaml's.
ARG GO_IMAGE=golang:1.26.8-bookworm@sha256:a688600ca24f8a4d3ca77f95b0dd40704a9fc787c826660eb7ba0b641b8b175d
ARG RUNTIME_IMAGE=gcr.io/distroless/static-debian12:nonroot@sha256:d093aa3e30dbadd3efe1310db061a14da60299baff8450a17fe0ccc514a16639

FROM ${GO_IMAGE} AS build
WORKDIR /src
# Modules first: this layer is reused while go.mod and go.sum are unchanged.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG BINARY
RUN case "${BINARY}" in \
      loader|planner) ;; \
      *) echo "build with --build-arg BINARY=loader or BINARY=planner (got '${BINARY}')" >&2; exit 1 ;; \
    esac
ENV CGO_ENABLED=0 GOOS=linux GOFLAGS=-buildvcs=false
# VERSION is what `--version` prints (Cloud Build passes the commit).
ARG VERSION=dev
RUN go build -trimpath -ldflags="-s -w -X github.com/pgbq/pgbq/internal/cli.Version=${VERSION}" -o /out/app "./${BINARY}"

FROM ${RUNTIME_IMAGE}
COPY --from=build /out/app /app
# distroless's nonroot user (65532), by number so that runtimes that check
# for a non-root user without reading /etc/passwd can tell.
USER 65532:65532
ENTRYPOINT ["/app"]
