# One image for every gro process: the API, workers and the dashboard differ only in their
# command (docker-compose.yml). TORCH picks the PyTorch build: the default wheel from PyPI
# carries CUDA for GPU workers; pass --build-arg TORCH="torch==2.13.0 --index-url
# https://download.pytorch.org/whl/cpu" for a small CPU-only API/dashboard image. EXTRAS: the
# optional extras installed; trackers lets jobs list integrations (TensorBoard, W&B, MLflow),
# hub reads Hugging Face datasets by name.
FROM python:3.11-slim

ARG TORCH="torch==2.13.0"
ARG EXTRAS="trackers,hub"
ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    GRO_CACHE_DIR=/data/cache \
    GRO_STORAGE_DIR=/data/storage

WORKDIR /app
RUN pip install ${TORCH}
COPY pyproject.toml README.md alembic.ini ./
COPY gro_core gro_core
COPY server server
COPY worker worker
COPY dashboard dashboard
COPY client client
COPY stack stack
COPY bench bench
COPY migrations migrations
COPY examples examples
RUN pip install -e ".[${EXTRAS}]" && useradd --create-home --uid 1000 gro && mkdir -p /data && chown gro /data
USER gro
EXPOSE 8000 8501
CMD ["gro", "serve", "--host", "0.0.0.0", "--port", "8000"]
