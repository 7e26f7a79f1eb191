# syntax=docker/dockerfile:1
# Build: a static binary, no cgo, no local paths in it.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY cmd ./cmd
COPY internal ./internal
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/iys-sync ./cmd/iys-sync

# Run: distroless static, as the non-root user (uid 65532). The binary embeds
# the time zone database and its migrations, so the image needs nothing else.
FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
LABEL org.opencontainers.image.title="iys-sync" \
      org.opencontainers.image.description="Keeps İYS, Türkiye's consent register, in step with a brand's consents" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="UNLICENSED"
COPY --from=build /out/iys-sync /usr/local/bin/iys-sync
USER nonroot:nonroot
EXPOSE 9090
ENTRYPOINT ["/usr/local/bin/iys-sync"]
CMD ["serve"]
