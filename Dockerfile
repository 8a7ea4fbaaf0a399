# zarrdav serving the public DANDI Archive (the built-in defaults; see config/dandi.toml).
# The image deploy/kubernetes/ runs. It has not been built in zarrdav's CI,
# which has no container engine (README, "Deployment").
FROM python:3.11-slim

WORKDIR /app
COPY pyproject.toml README.md LICENSE ./
COPY zarrdav ./zarrdav
COPY config ./config
RUN pip install --no-cache-dir . \
    && useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin zarrdav \
    && install -d -o zarrdav /var/cache/zarrdav

USER zarrdav
EXPOSE 8080
# With metrics_address = "0.0.0.0:9090" (deploy/kubernetes/configmap.yaml).
EXPOSE 9090
HEALTHCHECK --interval=30s --timeout=3s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/-/healthz', timeout=2)"]
ENV ZARRDAV_CONFIG=/app/config/dandi.toml
# The user has no home for the default ~/.cache: keep the manifest index here
# (a volume on /var/cache/zarrdav keeps it across containers, too).
ENV ZARRDAV_INDEX_DIR=/var/cache/zarrdav/manifests
CMD ["zarrdav", "serve", "--host", "0.0.0.0", "--port", "8080"]
