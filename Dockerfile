# One Dockerfile for both binaries; BINARY picks which:
#   docker build --build-arg BINARY=loader  -t …/loader:TAG .
#   docker build --build-arg BINARY=planner -t …/planner:TAG .
# The result is a static binary on distroless/static, running as a non-root
# user: no shell, no package manager, CA certificates and tzdata included.

ARG GO_VERSION=1.26.8

FROM golang:${GO_VERSION} AS build
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

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/app /app
# distroless's nonroot user (65532), by number so that runtimes that check
# for a non-root user without reading /etc/passwd can tell.
USER 65532:65532
ENTRYPOINT ["/app"]
