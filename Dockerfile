# mailpoller as a small static image: no shell, non-root, config and
# secrets mounted, the embedded store (if used) on a volume.
#
#   docker build -t mailpoller .
#   docker run --rm -v $PWD/mailpoller.yaml:/etc/mailpoller/mailpoller.yaml:ro \
#     -v mailpoller-data:/data -e SUPPORT_CLIENT_SECRET -p 9464:9464 mailpoller
#
# In a container set http.listen: "0.0.0.0:9464" so /metrics, /healthz and
# /readyz are reachable from outside; see deploy/docker/mailpoller.yaml.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags=-s -o /out/mailpoller ./cmd/mailpoller

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/mailpoller /usr/local/bin/mailpoller
COPY deploy/docker/mailpoller.yaml /etc/mailpoller/mailpoller.yaml
USER 65532:65532
WORKDIR /data
VOLUME ["/data"]
EXPOSE 9464
ENTRYPOINT ["/usr/local/bin/mailpoller"]
CMD ["run", "-c", "/etc/mailpoller/mailpoller.yaml"]
