#!/bin/sh
# Shows how parameters reach a command: as shell-quoted {name} substitutions and as
# SRD_PARAM_<NAME> environment variables. Prints a JSON line srd parses.
printf 'argument: %s\n' "$1"
printf 'env: %s\n' "$SRD_PARAM_LABEL"
printf '{"chars": %d, "ext_label": "%s"}\n' "${#1}" "ok"
