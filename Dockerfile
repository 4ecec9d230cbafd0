# oms-data-operator: a static (musl) release binary on a distroless, non-root base with CA
# certificates and no shell or package manager.

FROM rust:1.95-bookworm AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends musl-tools=1.2.3-1 \
    && rm -rf /var/lib/apt/lists/* \
    && rustup target add x86_64-unknown-linux-musl
WORKDIR /src
COPY . .
RUN ./hack/static-build.sh /out/oms-data-operator

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/oms-data-operator /oms-data-operator
USER 65532:65532
ENTRYPOINT ["/oms-data-operator"]
CMD ["run"]
