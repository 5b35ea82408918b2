#!/usr/bin/env bash
# Installs what the Lambda tests run real functions with, into the ignored .cache/lambda:
# AWS's Lambda Runtime Interface Emulator (a Go module, built with `go install`) and a
# Python venv with awslambdaric. Idempotent: when both are there it only prints the paths.
# Prints two lines for `export`: LAMBDA_RIE=<emulator binary> and LAMBDA_PYTHON=<venv python>.
set -euo pipefail
cd "$(dirname "$0")/../.."

RIE_VERSION="v0.0.0-20261030222936-bef5c4ba774d"
RIC_VERSION="4.2.2"
dir="$PWD/.cache/lambda"
bin="$dir/bin"
venv="$dir/venv"
mkdir -p "$bin"

if [ ! -x "$bin/aws-lambda-rie" ] || [ "$(cat "$dir/rie.version" 2>/dev/null)" != "$RIE_VERSION" ]; then
  echo "building aws-lambda-rie $RIE_VERSION into $bin" >&2
  GOBIN="$bin" go install \
    "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@$RIE_VERSION" >&2
  echo "$RIE_VERSION" > "$dir/rie.version"
fi

if [ ! -x "$venv/bin/python3" ] || [ "$(cat "$dir/ric.version" 2>/dev/null)" != "$RIC_VERSION" ]; then
  echo "installing awslambdaric $RIC_VERSION into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "awslambdaric==$RIC_VERSION" >&2
  echo "$RIC_VERSION" > "$dir/ric.version"
fi

echo "LAMBDA_RIE=$bin/aws-lambda-rie"
echo "LAMBDA_PYTHON=$venv/bin/python3"
