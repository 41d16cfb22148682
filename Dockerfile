FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY streams streams
COPY windows windows
COPY agents agents
COPY examples examples
RUN pip install --no-cache-dir .
EXPOSE 6066
ENTRYPOINT []
