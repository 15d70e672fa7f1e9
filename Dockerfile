# minpcode: Slack, WeCom, the HTTP API and the summary scheduler in one process.
#   docker build -t minpcode .
#   docker run -d --env-file .env -p 127.0.0.1:3000:3000 -v minpcode-data:/data minpcode
# The SQLite history and its images live in the /data volume; back it up with `minpcode backup`.
# The base image is pinned to a Python patch release on a Debian release, so a rebuild never moves either.
# Docker Hub rebuilds this tag for Debian's security fixes; to pin the exact image too, read its digest where
# Docker Hub can be reached (`docker buildx imagetools inspect python:3.11.17-slim-bookworm`, the "Digest:"
# line) and write `FROM python:3.11.17-slim-bookworm@sha256:<digest>`. No digest is written here: it could
# not be read when the tag was chosen, and a digest copied from elsewhere would be a guess.
FROM python:3.11.17-slim-bookworm

# A proxy on the host reaches a published port from the bridge network's gateway (172.17.0.1 on the default
# bridge; Docker's default address pools are in 172.16.0.0/12 and 192.168.0.0/16, podman's and Kubernetes'
# in 10.0.0.0/8: https://docs.docker.com/engine/network/drivers/bridge/), never from 127.0.0.1: its
# X-Forwarded-For is trusted from the private ranges, or every phone would share the proxy's one address.
# Publish the port on loopback only (-p 127.0.0.1:3000:3000), so only the proxy comes from there.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MINPCODE_DATA_DIR=/data \
    MINPCODE_TRUSTED_PROXIES=127.0.0.1,::1,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16 \
    MPLCONFIGDIR=/tmp/matplotlib \
    XDG_CACHE_HOME=/tmp/cache

WORKDIR /app

# The system libraries the documented features load: libcairo2 for SVG logos on posters (cairosvg draws them
# through cairocffi, which dlopens libcairo.so.2; docs/posters.md). Without it `minpcode doctor` warns and
# SVG logos are refused. tests/deploy/test_container.py checks each name is a Debian bookworm package.
RUN apt-get update \
    && apt-get install --yes --no-install-recommends libcairo2 \
    && rm -rf /var/lib/apt/lists/*

# Dependencies in their own layer, rebuilt only when pyproject.toml or uv.lock changes: exactly the versions
# in uv.lock, each download checked against the lock's hashes. uv (the version scripts/uv pins) only turns
# the lock into a requirements file and is removed; pip installs it. They include noto-cjk-sans-otc, the CJK
# font the summary charts draw Chinese names with.
COPY pyproject.toml uv.lock ./
RUN pip install uv==0.13.10 \
    && uv export --frozen --no-dev --no-emit-project --format requirements-txt --output-file /tmp/requirements.txt \
    && pip uninstall --yes uv \
    && pip install --no-deps --require-hashes --requirement /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# The application itself (no editable install: the image has no source tree to edit). The build has no
# .git, so the commit comes as a build argument (docs/deploy.md) and setup.py records it for --version and
# /healthz: docker build --build-arg MINPCODE_COMMIT=$(git rev-parse --short HEAD) -t minpcode .
ARG MINPCODE_COMMIT=
COPY setup.py README.md LICENSE ./
COPY bot ./bot
COPY handlers ./handlers
COPY storage ./storage
RUN pip install --no-deps . && rm -rf build *.egg-info

# A user of its own: the process never runs as root, and only it can read the history.
RUN useradd --system --uid 10001 --create-home --home-dir /home/minpcode --shell /usr/sbin/nologin minpcode \
    && mkdir -p /data && chown minpcode:minpcode /data && chmod 0700 /data
VOLUME /data
USER minpcode

EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:3000/healthz', timeout=4).status != 200)"]
STOPSIGNAL SIGTERM
CMD ["minpcode", "serve", "--host", "0.0.0.0", "--port", "3000"]
