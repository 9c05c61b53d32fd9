#!/usr/bin/env bash
# Generates the man pages from the binary's own --help (help2man): fapiao(1)
# from `fapiao --help` and fapiao-CMD(1) from `fapiao CMD --help` for every
# command `fapiao --help` lists, so a new command gets its page without an
# edit here.  Run by debian/rules at package build time; nothing is checked in.
#   scripts/gen-man.sh BIN OUTDIR VERSION
set -euo pipefail
bin=$(realpath "$1") out=$2 version=$3
mkdir -p "$out"
wrap=$(mktemp -d)
trap 'rm -rf "$wrap"' EXIT
# C.UTF-8: the help text in both languages (neither zh* nor en*), and help2man
# keeps the UTF-8 with -L C.UTF-8 (else every Chinese character becomes "?")
export LANG=C.UTF-8 LC_ALL=C.UTF-8
see="The full documentation is in /usr/share/doc/fapiao (operations.md: install, configure, run).
完整文档见 /usr/share/doc/fapiao（operations.md：安装、配置、运行）。"

# help2man takes "NAME - what it does" for the NAME section; the command
# table of `fapiao --help` gives it ("  serve    run the HTTPS invoicing service")
help2man -L C.UTF-8 -N --no-discard-stderr --version-string="$version" \
  -n "self-hosted 数电票 (fully digital e-invoice) issuing service" \
  --include=<(printf '[SEE ALSO]\n%s\n' "$see") -o "$out/fapiao.1" "$bin"

"$bin" --help | sed -n 's/^  \([a-z][a-z0-9-]*\)  *\(.*\)$/\1\t\2/p' |
while IFS=$'\t' read -r cmd what; do
  case $cmd in help | version) continue ;; esac
  printf '#!/bin/sh\nexec "%s" %s "$@"\n' "$bin" "$cmd" >"$wrap/fapiao-$cmd"
  chmod +x "$wrap/fapiao-$cmd"
  help2man -L C.UTF-8 -N --no-discard-stderr --version-string="$version" -n "$what" \
    --include=<(printf '[SEE ALSO]\nfapiao(1)\n\n%s\n' "$see") \
    -o "$out/fapiao-$cmd.1" "$wrap/fapiao-$cmd"
done
