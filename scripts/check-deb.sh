#!/bin/bash
# Installs dist/ragd_*.deb on this machine and checks it: dpkg -i, dpkg -L, systemd-analyze verify of the installed
# units, the installed ragd indexing examples/docs and answering ragctl, then dpkg -r and dpkg -P with a list of
# anything left behind (must be nothing after the purge). Needs root; run by `make check-deb` after `make deb`.
set -uo pipefail
cd "$(dirname "$0")/.."
deb=$(ls dist/ragd_*_"$(dpkg --print-architecture)".deb | tail -1)
dpkg -s ragd >/dev/null 2>&1 && { echo "check-deb: ragd is already installed; remove it first" >&2; exit 1; }
units=(/lib/systemd/system/ragd.service /lib/systemd/system/ragd.socket /lib/systemd/system/ragd-metrics.service
       /lib/systemd/system/ragd-metrics.timer)
scratch=$(mktemp -d)
trap 'pkill -f -- "--state-dir $scratch/state" 2>/dev/null; rm -rf "$scratch"' EXIT
failed=0
step() { echo; echo "\$ $*"; "$@"; local rc=$?; [ $rc -eq 0 ] || { echo "(exit $rc)"; failed=1; }; return $rc; }

step dpkg -i "$deb" || exit 1
step dpkg -L ragd
dpkg -L ragd | grep -v '^/\.$' > "$scratch/files"
step systemd-analyze verify "${units[@]}"
echo; echo "\$ systemd-analyze security --offline=true ragd.service | tail -1"
systemd-analyze security --offline=true /lib/systemd/system/ragd.service 2>&1 | tail -1

echo; echo "\$ /usr/bin/ragd --source examples/docs …; ragctl status; ragctl search -k 1 'reload the configuration'"
env -u OPENBLAS_CORETYPE /usr/bin/ragd --source "$PWD/examples/docs" --state-dir "$scratch/state" --socket "$scratch/ragd.sock" \
    >"$scratch/log" 2>&1 &
export RAGD_SOCKET=$scratch/ragd.sock
until ragctl ping >/dev/null 2>&1; do kill -0 $! 2>/dev/null || { cat "$scratch/log"; failed=1; break; }; sleep 0.1; done
ragctl status --watch --until-ready --interval 0.2 | tail -1
ragctl status && ragctl search -k 1 "reload the configuration" || failed=1
kill $! 2>/dev/null; wait $! 2>/dev/null

step dpkg -r ragd
step dpkg -P ragd
echo; echo "# left behind after the purge:"
left=0
while read -r path; do
    # Folders shared with other packages (/lib, /usr/share/man/man1 …) stay; the package's files and its own folders must go.
    if [ -d "$path" ] && [ ! -L "$path" ] || [ "$path" = /lib ]; then
        case "$path" in *ragd*) ;; *) continue ;; esac
    fi
    if [ -e "$path" ] || [ -L "$path" ]; then echo "  $path"; left=$((left + 1)); fi
done < <(cat "$scratch/files"; printf '%s\n' /etc/ragd /var/lib/ragd /var/lib/private/ragd /run/ragd)
echo "  $left path(s)"
[ $left -eq 0 ] && [ $failed -eq 0 ]
