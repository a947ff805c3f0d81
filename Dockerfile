# Image for the dashboard and the trainer services of docker-compose.yml.
# PyPI's default torch wheel for Linux x86_64 is the CUDA build, which the GPU trainer needs.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml requirements.lock README.md ./
COPY kgrec kgrec
COPY graph graph
COPY etl etl
COPY gnn gnn
COPY dashboard dashboard
COPY data data
RUN pip install --no-cache-dir torch==2.13.0 \
 && pip install --no-cache-dir -c requirements.lock -e .
WORKDIR /work
EXPOSE 8501
