# gemq: one image for every process of the Procfile (web, worker, flower, emulator); the command picks one.
# Build: docker build -t gemq .        Run: see docker-compose.yml and docs/deploy.md.

# -- build: the production lock (every version pinned, hash-checked; no dev or test package), then gemq
#    itself without dependencies. All have wheels: no compiler. The lock layer is cached until it changes.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
WORKDIR /src
COPY requirements.lock ./
RUN /opt/venv/bin/pip install --require-hashes -r requirements.lock
COPY pyproject.toml README.md ./
COPY worker ./worker
COPY web ./web
COPY emulator ./emulator
COPY cli ./cli
# Every module of the four packages must import with the production set alone (tests/test_dependencies.py
# checks the function-local imports too).
RUN /opt/venv/bin/pip install --no-deps . \
 && /opt/venv/bin/pip check \
 && /opt/venv/bin/python -c "import importlib, pkgutil, worker, web, emulator, cli; \
[importlib.import_module(m.name) for p in (worker, web, emulator, cli) for m in pkgutil.walk_packages(p.__path__, p.__name__ + '.')]"

# -- runtime: the virtualenv, the Procfile, gunicorn's and Flower's config files; no build tools, no source tree, not root
FROM python:3.11-slim AS runtime
RUN groupadd --system --gid 10001 gemq \
 && useradd --system --uid 10001 --gid gemq --home-dir /app --shell /usr/sbin/nologin gemq
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY Procfile gunicorn.conf.py ./
COPY deploy/flowerconfig.py ./deploy/
# run/ holds Flower's state (a volume in compose); owned by the app user, the only writable place.
RUN mkdir -p /app/run && chown gemq:gemq /app/run
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    GEMQ_RUN_DIR=run \
    WEB_PORT=8000
USER 10001:10001
EXPOSE 8000 5555 8090
# The default command is the web; compose gives each other process its own check (worker: its heartbeat).
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-m", "worker.healthcheck", "http://127.0.0.1:8000/healthz"]
CMD ["gunicorn", "web:create_served_app()", "--config", "gunicorn.conf.py", "--bind", "0.0.0.0:8000"]
