#!/usr/bin/env bash
# Regenerate patches/ from the commits on top of the base in build/assemble
# (the project-files commit that scripts/assemble.sh adds is left out).
#
# Workflow for changing an upstream file:
#   scripts/assemble.sh --patches-only     # build/assemble = base + patches
#   cd build/assemble; edit; git commit -as (or --amend / rebase -i)
#   scripts/export-patches.sh
. "$(dirname "$0")/common.sh"

head=$(git -C "$ASM" rev-parse HEAD)
subject=$(git -C "$ASM" log -1 --format=%s HEAD)
if [[ "$subject" == "netfile: project files"* ]]; then
	head=$(git -C "$ASM" rev-parse HEAD~1)
fi
rm -f "$TOP"/patches/*.patch
git -C "$ASM" format-patch -q --zero-commit --no-numbered -o "$TOP/patches" "base..$head"
ls "$TOP/patches"
