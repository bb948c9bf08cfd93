# One image holds every service of Sagittarius (the services of scripts/services.conf, each a static
# binary named after its folder: /usr/local/bin/orders, /usr/local/bin/gateway, ...) and httpcheck,
# the health-check probe. A container runs one of them, chosen by its command:
#   docker build -t sagittarius .
#   docker run --rm sagittarius orders        (with the environment of README.md)
# One image rather than one per service: the services share the event bus and the contracts and are
# released together, so one tag names one consistent version of the platform; one build compiles
# the module once; and a node pulls one image (about 76 MB: 10-12 MB per binary, 2 MB of base)
# whatever mix of pods it runs, where seven images would weigh the same in total.
# docker-compose.yml and deploy/k8s use this image. For an image of one service only (about 12 MB):
#   docker build --build-arg SERVICES=orders -t sagittarius-orders .
#
# Small and non-root: CGO_ENABLED=0 binaries (no libc) on distroless/static (CA certificates, tzdata,
# /etc/passwd; no shell, no package manager), running as uid 65532 ("nonroot"). HTTP_ADDR must
# listen on 0.0.0.0 inside a container.

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# SERVICES: folders of services/, space-separated; empty means every service of services.conf.
ARG SERVICES=""
# The services and the probe; -o DIR/ names each binary after its folder.
# (No BuildKit cache mounts: the file builds with the classic builder of docker-compose 1.x too.)
RUN set -eu; \
    dirs=${SERVICES:-$(awk '$1 !~ /^#/ && NF >= 3 { print $1 }' scripts/services.conf)}; \
    pkgs=; for d in $dirs; do \
      [ -f "services/$d/main.go" ] || { echo "SERVICES: no services/$d/main.go" >&2; exit 1; }; \
      pkgs="$pkgs ./services/$d"; \
    done; \
    test -n "$pkgs"; \
    mkdir -p /out; \
    CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/ $pkgs ./deploy/httpcheck; \
    ls -l /out

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ /usr/local/bin/
USER 65532:65532
# No ENTRYPOINT: the command names the service (compose: command, Kubernetes: command).
CMD ["/usr/local/bin/gateway"]
