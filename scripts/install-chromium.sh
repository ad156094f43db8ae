#!/usr/bin/env bash
# Installs Debian's Chromium for the report's browser test (tests/report.rs
# renders report.html headless and checks the DOM and the console). Does
# nothing when it is already there. Needs root and Debian's package mirror.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
    /usr/bin/chromium --version 2>/dev/null || true
    exit 0
fi
sudo=""
if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
/usr/bin/chromium --version
