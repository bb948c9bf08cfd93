# One image per service of Sagittarius, built from this one file:
#   docker build --build-arg SERVICE=orders -t sagittarius-orders .
# SERVICE is a folder of services/ (customers, catalog, orders, inventory, payments, shipping, gateway).
# docker-compose.yml builds every service this way. The image reads the environment described in
# README.md (HTTP_ADDR must listen on 0.0.0.0 inside a container).

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG SERVICE
RUN if [ -z "$SERVICE" ] || [ ! -f "services/$SERVICE/main.go" ]; then \
      echo "build with --build-arg SERVICE=<folder of services/ that has a main.go>" >&2; exit 1; \
    fi
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/service "./services/$SERVICE"

FROM alpine:3.20
# wget (busybox) serves the health checks of docker-compose.yml.
RUN apk add --no-cache ca-certificates tzdata && adduser -D -H -u 10001 sagittarius
COPY --from=build /out/service /usr/local/bin/service
USER sagittarius
ENTRYPOINT ["/usr/local/bin/service"]
