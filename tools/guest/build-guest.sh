#!/bin/bash
# Build the tiny test guest used by the libvirt functional tests.
#
#   tools/guest/build-guest.sh [OUTDIR]      (default: tools/guest/out)
#
# Everything comes from Debian packages fetched with `apt-get download`
# (cached in $VPD_GUEST_CACHE, default OUTDIR/cache):
#   * linux-image-cloud-amd64 -> the real linux-image-*-cloud-amd64 package:
#     vmlinuz + the virtio modules the NICs need (with their dependencies);
#   * busybox-static: the whole userland.
#
# Outputs in OUTDIR: vmlinuz, initrd.img (gzip'd newc cpio), guest.env
# (KERNEL_VERSION=..., MODULES=...).  A rebuild is skipped when both images
# are newer than this script and its init (tools/guest/init).  Prints
# nothing on success; errors go to stderr.
#
# Needs: apt-get, dpkg-deb, cpio, gzip, modinfo (kmod).  Root is not needed
# for the build itself, but apt-get download and apt-get update may be.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=${1:-$here/out}
init_src=$here/init
mkdir -p "$out"
out=$(cd "$out" && pwd)
cache=${VPD_GUEST_CACHE:-$out/cache}

# Module names (as modinfo knows them) that must be available in the guest.
# Their dependencies are resolved from the package's own modinfo data.
root_modules=(virtio_pci virtio_net)

die() { echo "build-guest: $*" >&2; exit 1; }

up_to_date() {
    local f
    for f in "$out/vmlinuz" "$out/initrd.img" "$out/guest.env"; do
        [[ -s $f && $f -nt ${BASH_SOURCE[0]} && $f -nt $init_src ]] || return 1
    done
}
up_to_date && exit 0

for tool in apt-get dpkg-deb cpio gzip modinfo; do
    command -v "$tool" >/dev/null || die "missing tool: $tool (see bindep-libvirt.txt)"
done

apt_opts=(-qq -o APT::Sandbox::User=root)
mkdir -p "$cache"

# Download one package (NAME or NAME=VERSION) into the cache unless a .deb of
# it is already there; print the path of the .deb.
fetch() {
    local spec=$1 name=${1%%=*} ver="" deb
    [[ $spec == *=* ]] && ver=${spec#*=}
    if [[ -z $ver ]]; then
        ver=$(apt-cache policy "$name" 2>/dev/null | awk '/Candidate:/ {print $2}')
        [[ $ver == "(none)" ]] && ver=""
    fi
    # apt-get download names files NAME_VERSION_ARCH.deb with ':' -> '%3a'.
    if [[ -n $ver ]]; then
        deb=$(compgen -G "$cache/${name}_${ver//:/%3a}_*.deb" | head -n1 || true)
        [[ -n $deb ]] && { echo "$deb"; return; }
    fi
    if ! apt-cache show "$name" >/dev/null 2>&1; then
        apt-get update -qq >/dev/null 2>&1 || true
        apt-cache show "$name" >/dev/null 2>&1 || die "apt cannot find $name"
    fi
    (cd "$cache" && apt-get download "${apt_opts[@]}" "$spec" >/dev/null 2>&1) \
        || die "apt-get download $spec failed"
    if [[ -z $ver ]]; then
        ver=$(apt-cache policy "$name" | awk '/Candidate:/ {print $2}')
    fi
    deb=$(compgen -G "$cache/${name}_${ver//:/%3a}_*.deb" | head -n1 || true)
    [[ -n $deb ]] || die "downloaded $spec but cannot find its .deb in $cache"
    echo "$deb"
}

work=$(mktemp -d "${TMPDIR:-/tmp}/vpd-guest.XXXXXX")
trap 'rm -rf "$work"' EXIT

# --- kernel: the meta package names the real image package -----------------
meta_deb=$(fetch linux-image-cloud-amd64)
kpkg=""
IFS=',' read -ra deps <<<"$(dpkg-deb -f "$meta_deb" Depends)"
for d in "${deps[@]}"; do
    d=${d# }
    if [[ $d =~ ^(linux-image-[^ ]+)( \(= ([^\)]+)\))? ]]; then
        kpkg=${BASH_REMATCH[1]}
        [[ -n ${BASH_REMATCH[3]:-} ]] && kpkg+="=${BASH_REMATCH[3]}"
        break
    fi
done
[[ -n $kpkg ]] || die "cannot find the kernel package behind linux-image-cloud-amd64"
kernel_deb=$(fetch "$kpkg")
bb_deb=$(fetch busybox-static)

dpkg-deb -x "$kernel_deb" "$work/k"
dpkg-deb -x "$bb_deb" "$work/bb"
vmlinuz=$(compgen -G "$work/k/boot/vmlinuz-*" | head -n1 || true)
[[ -n $vmlinuz ]] || die "no vmlinuz in $kernel_deb"
kver=${vmlinuz##*/vmlinuz-}
moddir=$work/k/lib/modules/$kver
[[ -d $moddir ]] || die "no modules for $kver in $kernel_deb"

# --- modules: dependency closure, in load order -----------------------------
declare -A mod_path=() builtin=() done_mod=()
while IFS= read -r f; do
    n=${f##*/}; n=${n%%.ko*}; n=${n//-/_}
    mod_path[$n]=$f
done < <(find "$moddir" -name '*.ko*')
if [[ -f $moddir/modules.builtin ]]; then
    while IFS= read -r f; do
        n=${f##*/}; n=${n%%.ko*}; builtin[${n//-/_}]=1
    done <"$moddir/modules.builtin"
fi
order=()
resolve() {
    local m=${1//-/_} d deps
    [[ -n ${done_mod[$m]:-} ]] && return 0
    done_mod[$m]=1
    [[ -n ${builtin[$m]:-} ]] && return 0
    [[ -n ${mod_path[$m]:-} ]] || die "module $m is neither built in nor in $kernel_deb"
    deps=$(modinfo -F depends "${mod_path[$m]}")
    for d in ${deps//,/ }; do resolve "$d"; done
    order+=("$m")
}
for m in "${root_modules[@]}"; do resolve "$m"; done

# --- initramfs tree ------------------------------------------------------------
root=$work/root
mkdir -p "$root"/{bin,dev,proc,sys,tmp,etc/vpd,lib/modules}
cp "$work/bb/bin/busybox" "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list); do
    [[ $applet == busybox ]] || ln -sf busybox "$root/bin/$applet"
done
for m in "${order[@]}"; do
    src=${mod_path[$m]}
    case $src in
        *.ko) cp "$src" "$root/lib/modules/$m.ko" ;;
        *.ko.xz) xz -dc "$src" >"$root/lib/modules/$m.ko" ;;
        *.ko.zst) zstd -qdc "$src" >"$root/lib/modules/$m.ko" ;;
        *.ko.gz) gzip -dc "$src" >"$root/lib/modules/$m.ko" ;;
        *) die "unknown module format: $src" ;;
    esac
done
printf '%s\n' "${order[@]}" >"$root/etc/vpd/modules"
echo "$kver" >"$root/etc/vpd/kernel-version"
install -m 0755 "$init_src" "$root/init"

(cd "$root" && find . -print0 | LC_ALL=C sort -z |
    cpio --quiet --null -o -H newc -R 0:0) | gzip -1 -n >"$work/initrd.img"

install -m 0644 "$vmlinuz" "$out/vmlinuz.new"
install -m 0644 "$work/initrd.img" "$out/initrd.img.new"
{
    echo "KERNEL_VERSION=$kver"
    echo "KERNEL_PACKAGE=${kpkg}"
    echo "MODULES=${order[*]}"
} >"$out/guest.env.new"
mv -f "$out/vmlinuz.new" "$out/vmlinuz"
mv -f "$out/initrd.img.new" "$out/initrd.img"
mv -f "$out/guest.env.new" "$out/guest.env"
