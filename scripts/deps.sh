#!/usr/bin/env bash
# Installs what the test suite needs from Debian's packages when it is missing
# and we are root: redis-server, prosody and ejabberd (the integration tests
# start private instances of them on loopback ports; their system services are
# kept from starting), and chromium (headless, for the web client's browser
# test in lempside/webclient). Safe to run again; prints what it does.
set -euo pipefail
need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v prosody >/dev/null 2>&1 || need+=(prosody)
[ -x /usr/sbin/ejabberdctl ] || need+=(ejabberd)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "deps: missing ${need[*]} and not root: install them (apt-get install ${need[*]}); tests that need them will skip" >&2
  exit 0
fi
echo "deps: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# Keep package scripts from starting system services we do not use.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get install -y -qq "${need[@]}" >/dev/null
