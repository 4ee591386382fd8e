#!/usr/bin/env bash
# Install everything the project needs on a fresh Debian machine (run as root
# or with sudo): PostgreSQL 15 and its server headers, sudo, cargo-pgrx.
source "$(dirname "$0")/common.sh"
ensure_deps
log "set-up complete"
