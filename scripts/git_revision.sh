#!/bin/sh
# Prints the source revision for binaries and reports: `git describe` inside a
# checkout, else $MOE_GIT_REVISION (set it when building from a copy of the tree
# without .git, as on the offline GPU host), else "unknown".
src=${1:-.}
git -C "$src" describe --always --dirty --abbrev=12 2>/dev/null && exit 0
echo "${MOE_GIT_REVISION:-unknown}"
