# One image for the whole mesh: the four services, the operator and slicectl. The entrypoint is
# chosen per container (the Helm chart sets `command`):
#   slicebroker-inventory | slicebroker-quota | slicebroker-broker | slicebroker-accounting
#   slicebroker-operator  | slicectl
# Not built in this repository's CI (no container engine there); see README "Kubernetes".
FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY protos ./protos
COPY services ./services
COPY clients ./clients
COPY examples ./examples
RUN python -m pip wheel --wheel-dir /wheels .

FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY --from=build /wheels /wheels
RUN python -m pip install /wheels/*.whl && rm -rf /wheels \
 && useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin slicebroker
USER 10001
EXPOSE 50051 50052 50053 50054 9443
CMD ["slicebroker-broker"]
