#!/bin/bash
# Builds dist/ragd_VERSION_ARCH.deb from the release binaries: `make install` into a staging tree with Debian's
# paths (PREFIX=/usr, units in /lib/systemd/system), binaries stripped, man pages and changelog compressed,
# dependencies from dpkg-shlibdeps, control files from packaging/deb/. Run by `make deb`.
set -euo pipefail

cd "$(dirname "$0")/.."
top=$PWD
version=$(sed -n 's/^let ragdVersion = "\(.*\)"$/\1/p' Sources/ragd/Daemon.swift)
arch=$(dpkg --print-architecture)
[ -n "$version" ] || { echo "make-deb: no ragdVersion in Sources/ragd/Daemon.swift" >&2; exit 1; }
for binary in .build/release/ragd .build/release/ragctl; do
    [ -x "$binary" ] || { echo "make-deb: $binary is missing (make release)" >&2; exit 1; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root"

make -s install DESTDIR="$root" PREFIX=/usr UNITDIR=/lib/systemd/system >/dev/null

# Debian wants stripped binaries, gzipped man pages and changelog, a copyright file, no empty folders.
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$root"/usr/bin/ragd "$root"/usr/bin/ragctl
if [ -d "$root/usr/share/man" ]; then
    find "$root/usr/share/man" -type f ! -name '*.gz' -exec gzip -9n {} +
fi
install -m 0644 packaging/deb/copyright "$root/usr/share/doc/ragd/copyright"
gzip -9n -c packaging/deb/changelog > "$root/usr/share/doc/ragd/changelog.gz"
chmod 0644 "$root/usr/share/doc/ragd/changelog.gz"
find "$root" -type d -empty -delete
find "$root" -type d -exec chmod 0755 {} +
find "$root" -type f ! -path "$root/usr/bin/*" -exec chmod 0644 {} +

# Runtime dependencies of the binaries, as dpkg-shlibdeps finds them (it needs a debian/control to read).
mkdir -p "$work/src/debian"
printf 'Source: ragd\n\nPackage: ragd\nArchitecture: any\n' > "$work/src/debian/control"
depends=$(cd "$work/src" && dpkg-shlibdeps -O -e"$root/usr/bin/ragd" -e"$root/usr/bin/ragctl" 2>/dev/null |
          sed -n 's/^shlibs:Depends=//p')
[ -n "$depends" ] || { echo "make-deb: dpkg-shlibdeps found no dependencies" >&2; exit 1; }

mkdir -p "$root/DEBIAN"
installed_size=$(du -sk --apparent-size "$root" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@INSTALLED_SIZE@/$installed_size/" \
    -e "s/@DEPENDS@/$depends/" packaging/deb/control.in > "$root/DEBIAN/control"
install -m 0755 packaging/deb/postinst packaging/deb/prerm packaging/deb/postrm "$root/DEBIAN/"
(cd "$root" && find etc -type f | sed 's#^#/#' | sort) > "$root/DEBIAN/conffiles"
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) > "$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/conffiles" "$root/DEBIAN/md5sums"

mkdir -p dist
deb=dist/ragd_${version}_${arch}.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$top/$deb"
