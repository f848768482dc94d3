#!/bin/sh
# Fails when docs/configuration.md is not what the settings table generates.
set -eu
BUILD=${1:-build}
TOP=$(cd "$(dirname "$0")/.." && pwd)
if ! "$TOP/$BUILD/rampart" config-doc | diff -u "$TOP/docs/configuration.md" -; then
    echo "docs/configuration.md is out of date: run 'make docs'" >&2
    exit 1
fi
echo "docs/configuration.md matches the settings table"
