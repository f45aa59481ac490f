#!/bin/sh
# Prints the source revision for binaries and reports: $MOE_GIT_REVISION when set
# (the GPU host's copy of the tree may carry a .git that is not the copy's revision),
# else `git describe` inside a checkout, else "unknown".
src=${1:-.}
if [ -n "${MOE_GIT_REVISION:-}" ]; then echo "$MOE_GIT_REVISION"; exit 0; fi
git -C "$src" describe --always --dirty --abbrev=12 2>/dev/null && exit 0
echo unknown
