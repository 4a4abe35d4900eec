# AIGC Bot: engine + bot in one image. GPU-capable: PyPI's Linux torch wheels bundle the CUDA
# runtime, so with the NVIDIA container toolkit (`docker run --gpus all`) the engine uses the GPU;
# without one it runs on the CPU.
FROM python:3.11-slim-bookworm

# The playground (emulator, no DISCORD_TOKEN) and the bot's /healthz and /metrics listen on
# every address in the container, so `docker run -p 8765:8765 -p 8701:8701` reaches them.
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    AIGC_DATA_DIR=/data AIGC_ENGINE_HOST=127.0.0.1 AIGC_ENGINE_PORT=8700 \
    AIGC_EMULATOR_HOST=0.0.0.0 AIGC_BOT_HTTP_HOST=0.0.0.0 AIGC_BOT_HTTP_PORT=8701

RUN apt-get update \
 && apt-get install -y --no-install-recommends fonts-noto-color-emoji libimage-exiftool-perl \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
# The CUDA build of torch first (a layer of its own: it is most of the image).
RUN pip install "torch==2.13.0"
COPY pyproject.toml README.md ./
COPY aigc ./aigc
COPY aigc_common ./aigc_common
COPY engine ./engine
COPY bot ./bot
COPY emulator ./emulator
COPY plugins ./plugins
RUN pip install .

RUN useradd --create-home --uid 10001 aigc && mkdir -p /data && chown aigc /data
USER aigc
VOLUME ["/data"]
# Discord and engine secrets come from the environment (DISCORD_TOKEN, AIGC_ENGINE_TOKEN).
# `aigc up` runs the engine (loopback only) and the bot; `aigc engine` alone serves the API
# (set AIGC_ENGINE_HOST=0.0.0.0 and AIGC_ENGINE_TOKEN for that; see compose.yaml).
# 8765: playground (emulator), 8701: bot /healthz and /metrics, 8700: engine (`aigc engine`).
EXPOSE 8765 8701 8700
# Engine /readyz and bot /healthz on loopback (`engine` or `bot` alone for split containers).
HEALTHCHECK --interval=30s --timeout=15s --start-period=180s --retries=3 \
    CMD ["python", "-m", "aigc.healthcheck", "all"]
CMD ["aigc", "up"]
