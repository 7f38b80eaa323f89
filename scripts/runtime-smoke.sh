#!/usr/bin/env bash
# The container's runtime as the Dockerfile defines it, without a Docker engine (none runs
# here, and no base image can be pulled): a Debian bookworm root made with debootstrap (the
# runtime stage's base and its one package, ca-certificates), the release binaries in
# /usr/local/bin and config/ in /etc/gid/config, a non-root uid (10001), the root file
# system read-only but for the work dir /var/lib/gid and /tmp — then one month on the local
# backend and one on moto_server (GID_TEST_MOTO_ENDPOINT; run under scripts/with-moto.sh).
#
#   scripts/runtime-smoke.sh TARGET_DIR/release
#
# Not verified here: the image build itself (Dockerfile syntax, BuildKit cache mounts,
# layer contents) and anything a container engine adds (cgroups, seccomp, networking).
set -euo pipefail

bins=${1:?usage: runtime-smoke.sh DIR_WITH_RELEASE_BINARIES}
repo=$(cd "$(dirname "$0")/.." && pwd)
rootfs=${GID_RUNTIME_ROOTFS:-$HOME/.cache/gid-runtime/bookworm}
moto=${GID_TEST_MOTO_ENDPOINT:?run under scripts/with-moto.sh}

for b in monthly-report scooter-pickups gid-admin; do
  [ -x "$bins/$b" ] || { echo "runtime-smoke: $bins/$b is not built (make release)" >&2; exit 1; }
done

# The runtime stage's base, made once and reused (debootstrap fetches ~40 MB of packages).
if [ ! -x "$rootfs/usr/bin/env" ] || [ ! -f "$rootfs/etc/ssl/certs/ca-certificates.crt" ]; then
  rm -rf "$rootfs.partial"
  mkdir -p "$(dirname "$rootfs")"
  echo "runtime-smoke: debootstrap bookworm (minbase + ca-certificates) into $rootfs"
  debootstrap --variant=minbase --include=ca-certificates bookworm "$rootfs.partial" \
    http://deb.debian.org/debian >"$rootfs.log" 2>&1 \
    || { tail -20 "$rootfs.log" >&2; exit 1; }
  rm -rf "$rootfs" && mv "$rootfs.partial" "$rootfs"
fi
# What the Dockerfile's runtime stage adds: the user and the folders the mounts land on.
grep -q '^gid:' "$rootfs/etc/passwd" \
  || chroot "$rootfs" useradd --system --uid 10001 --user-group --home-dir /var/lib/gid gid
mkdir -p "$rootfs/var/lib/gid" "$rootfs/etc/gid/config"
for b in monthly-report scooter-pickups gid-admin; do touch "$rootfs/usr/local/bin/$b"; done

# Inside a mount and PID namespace of its own: nothing here outlives the script or is seen
# outside it. The host network is shared, so moto_server on 127.0.0.1 is reachable.
unshare --mount --pid --fork --propagation private bash -s "$rootfs" "$bins" "$repo" "$moto" <<'INNER'
set -euo pipefail
rootfs=$1 bins=$2 repo=$3 moto=$4
image=$(mktemp -d)
mount --bind "$rootfs" "$image"
for b in monthly-report scooter-pickups gid-admin; do
  mount --bind "$bins/$b" "$image/usr/local/bin/$b"
done
mount --bind "$repo/config" "$image/etc/gid/config"
mount --rbind /dev "$image/dev"
mount -t proc proc "$image/proc"
mount -t tmpfs -o mode=1777 tmpfs "$image/tmp"
mount -t tmpfs -o mode=0755,uid=10001,gid=10001 tmpfs "$image/var/lib/gid"
# readOnlyRootFilesystem: everything but the two tmpfs mounts.
mount -o remount,bind,ro "$image"
mount -o remount,bind,ro "$image/etc/gid/config"

run() {  # as the image runs: uid 10001, the image's env, cwd = the work dir
  chroot "$image" setpriv --reuid=10001 --regid=10001 --clear-groups --no-new-privs \
    env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/var/lib/gid GID_CONFIG_DIR=/etc/gid/config \
    sh -c 'cd /var/lib/gid && exec "$@"' sh "$@"
}
fail() { echo "runtime-smoke: FAILED: $*" >&2; exit 1; }

[ "$(run id -u)" = 10001 ] || fail "not running as uid 10001"
run touch /usr/local/bin/x 2>/dev/null && fail "the root file system is writable"
run touch /var/lib/gid/probe || fail "the work dir is not writable"

# One month on the local backend (the data root is created in the work dir).
run gid-admin sample --month 2019-01 >/dev/null || fail "gid-admin sample (local)"
run env GID__NOTIFY__ALLOW_UNSUBSCRIBED=true monthly-report --month 2019-01 \
  || fail "monthly-report (local)"
[ -s "$image/var/lib/gid/gid-data/gid-reports/2019/jan/final_report.csv" ] \
  || fail "no final_report.csv on the local backend"
[ -s "$image/var/lib/gid/gid-data/gid-reports/index.html" ] || fail "no index.html"

# One month on the aws profile against moto_server.
suffix=$(date +%s%N | tail -c 9)
aws=(env AWS_ENDPOINT_URL="$moto" AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=smoke
     AWS_SECRET_ACCESS_KEY=smoke-secret GID__PROFILE=aws
     GID__BUCKETS__REQUESTS=smoke-req-$suffix GID__BUCKETS__WORK=smoke-work-$suffix
     GID__BUCKETS__REPORTS=smoke-rep-$suffix GID__BUCKETS__STAGING=smoke-stg-$suffix
     GID__NOTIFY__ALLOW_UNSUBSCRIBED=true)
for b in req work rep stg; do
  run "${aws[@]}" gid-admin bucket create "smoke-$b-$suffix" >/dev/null || fail "bucket create on moto"
done
run "${aws[@]}" gid-admin sample --month 2019-01 >/dev/null || fail "gid-admin sample (aws)"
run "${aws[@]}" monthly-report --month 2019-01 || fail "monthly-report (aws on moto)"
run "${aws[@]}" gid-admin object head "smoke-rep-$suffix" 2019/jan/final_report.csv >/dev/null \
  || fail "no final_report.csv on moto"
echo "runtime-smoke: ok (uid 10001, read-only root, work dir /var/lib/gid, config /etc/gid/config; one month local, one on moto)"
INNER
