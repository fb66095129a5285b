#!/usr/bin/env bash
# fleet.sh — a fleet of real Docker engines on one machine, for end-to-end tests.
#
# Every test host is a network namespace named ${PREFIX}1..N with its own
# dockerd. The namespaces hang off a bridge ${PREFIX}br0 in the root namespace
# that holds 10.213.X.254/24 (X chosen free at `up`); host i is 10.213.X.i and
# its engine listens on unix:///run/${PREFIX}/NAME/docker.sock and on
# tcp://10.213.X.i:2375 (plain TCP, no TLS).
#
# Usage (as root):
#   fleet.sh up N        create N hosts (runs `down` first); prints one line per
#                        host on stdout: NAME ADDR tcp://ADDR:2375 unix://SOCKET
#   fleet.sh list        print the same lines for the existing fleet
#   fleet.sh stop NAME   stop one host's dockerd (SIGTERM, wait for exit)
#   fleet.sh kill NAME   crash one host: SIGKILL its dockerd, containerd and
#                        containers, drop its mounts (like a power cut + reboot)
#   fleet.sh start NAME  start it again with the same settings
#   fleet.sh down        remove everything of this prefix (idempotent, also
#                        cleans stale leftovers of killed runs)
#
# Environment:
#   PREFIX                 name prefix (default ce2e): [a-z][a-z0-9]{0,9}
#   FLEET_TLS_DIR          at `up`: engines listen on tcp://ADDR:2376 with
#                          --tlsverify, from ca.pem, server-cert.pem and
#                          server-key.pem in that directory
#   FLEET_STORAGE_DRIVER   storage driver(s) to try, space separated. Default:
#                          the root engine's driver (from `docker info` or
#                          /etc/docker/daemon.json), then overlay2,
#                          fuse-overlayfs, vfs, those whose prerequisites are
#                          there. A driver counts as working once engine 1 runs
#                          a container with it; otherwise the next is tried.
#   FLEET_TIMEOUT          seconds to wait for an engine to answer (default 60)
#   FLEET_SMOKE            1 (default): run `busybox true` on every engine at up
#
# Engines get the labels zone=z<i>, region=r1, storage=ssd (host 1) or
# storage=disk (the others) and fleet-index=<i>; --bip 10.B.i.1/24 (B: a
# /16 free in the root namespace, from 214 up), cgroup parent /testfleet-${PREFIX}/NAME, containerd namespaces NAME
# and NAME-plugins, their own empty config file (the machine's
# /etc/docker/daemon.json is not read) and log to
# /var/lib/${PREFIX}/NAME/dockerd.log. They share /etc/docker/key.json and so
# report the same engine ID. An iptables FORWARD accept rule for the bridge is
# added (needed when the root namespace's engine sets FORWARD to DROP).
#
# All state lives under /var/lib/${PREFIX} and /run/${PREFIX}; both carry a
# .testfleet marker and are never touched by `down` without it. Everything the
# script creates in the root namespace is tagged (link alias / iptables comment
# "testfleet:${PREFIX}...") so that `down` removes exactly that, never the root
# namespace's own dockerd, its bridges, or another prefix's fleet.
# Diagnostics go to stderr; only the host lines go to stdout.
set -euo pipefail

export PATH="$PATH:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

PREFIX=${PREFIX:-ce2e}
FLEET_TIMEOUT=${FLEET_TIMEOUT:-60}
FLEET_SMOKE=${FLEET_SMOKE:-1}

STATE=/var/lib/$PREFIX
RUN=/run/$PREFIX
BR=${PREFIX}br0
ENVF=$RUN/fleet.env
MARK=.testfleet
TAG=testfleet:$PREFIX
LOCKDIR=/run/lock/testfleet
SUBNET_BASE=10.213   # fleet subnets: 10.213.X.0/24
T0=${EPOCHREALTIME/[.,]/}

log() {
	local us=$((${EPOCHREALTIME/[.,]/} - T0))
	printf 'fleet[%s %d.%01ds]: %s\n' "$PREFIX" $((us / 1000000)) $((us / 100000 % 10)) "$*" >&2
}
die() { printf 'fleet[%s]: error: %s\n' "$PREFIX" "$*" >&2; exit 1; }

usage() {
	sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
	exit 2
}

# ---------------------------------------------------------------- checks

check_prefix() {
	[[ $PREFIX =~ ^[a-z][a-z0-9]{0,9}$ ]] ||
		die "PREFIX '$PREFIX' must match [a-z][a-z0-9]{0,9} (interface names are limited to 15 bytes)"
	case $PREFIX in
	docker | containerd | dockershim | lib | lock | log | user | systemd | netns | mount | apt | dpkg | dbus)
		die "PREFIX '$PREFIX' would collide with system state directories" ;;
	esac
}

need() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || die "required command '$c' not found"
	done
}

# A state dir is ours if it is absent, empty, or carries the marker.
check_owned() {
	local d
	for d in "$STATE" "$RUN"; do
		if [[ -d $d && ! -e $d/$MARK ]] && [[ -n $(ls -A "$d" 2>/dev/null) ]]; then
			die "$d exists and was not made by fleet.sh (no $MARK marker); refusing to touch it"
		fi
	done
}

# ---------------------------------------------------------------- locking

lock_prefix() {
	mkdir -p "$LOCKDIR"
	exec 9>"$LOCKDIR/$PREFIX.lock"
	flock -w 120 9 || die "another fleet.sh is busy with prefix $PREFIX"
}

# ---------------------------------------------------------------- addresses

ip2int() {
	local a b c d
	IFS=. read -r a b c d <<<"$1"
	echo $(((a << 24) | (b << 16) | (c << 8) | d))
}

# overlaps CIDR1 CIDR2: true if the two networks share an address.
overlaps() {
	local n1=${1%/*} l1=${1#*/} n2=${2%/*} l2=${2#*/}
	[[ $1 == */* ]] || l1=32
	[[ $2 == */* ]] || l2=32
	local l=$((l1 < l2 ? l1 : l2))
	local mask=$(((0xffffffff << (32 - l)) & 0xffffffff))
	(($(($(ip2int "$n1") & mask)) == $(($(ip2int "$n2") & mask))))
}

# Every IPv4 network/address the root namespace knows (routes of all tables,
# interface addresses), plus what other fleets on this machine have claimed.
used_nets() {
	{
		ip -4 -o route show table all 2>/dev/null
		ip -4 -o addr show 2>/dev/null
	} | grep -oE '(^|[[:space:]])[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+(/[0-9]+)?' | tr -d ' \t' |
		grep -vE '/0$' | sort -u
	local f
	for f in /run/*/fleet.env; do
		[[ -e $f && $f != "$ENVF" && -e ${f%/fleet.env}/$MARK ]] || continue
		sed -n 's/^FLEET_CLAIM=//p' "$f" | tr -d '"' | tr ' ' '\n'
	done
}

is_free() {
	local net=$1 u
	while read -r u; do
		[[ -n $u ]] || continue
		if overlaps "$net" "$u"; then return 1; fi
	done <<<"$USED"
	return 0
}

# Pick a free 10.213.X.0/24 for the bridge and a free 10.B.0.0/16 from which
# every host's docker0 gets 10.B.i.1/24. Writes the fleet env file.
allocate() {
	local n=$1 x b start i
	exec 8>"$LOCKDIR/alloc.lock"
	flock -w 60 8 || die "could not take $LOCKDIR/alloc.lock"
	USED=$(used_nets)
	# Start the scan at a point derived from the prefix, so that different
	# prefixes tend to get different subnets.
	start=$(($(printf '%s' "$PREFIX" | cksum | cut -d' ' -f1) % 200 + 20))
	X=
	for ((i = 0; i < 250; i++)); do
		x=$(((start + i) % 250 + 1))
		if is_free "$SUBNET_BASE.$x.0/24"; then X=$x; break; fi
	done
	[[ -n $X ]] || die "no free $SUBNET_BASE.X.0/24 subnet"
	B=
	for ((b = 214; b <= 254; b++)); do
		if is_free "10.$b.0.0/16"; then B=$b; break; fi
	done
	[[ -n $B ]] || die "no free 10.B.0.0/16 for the engines' docker0 networks"
	cat >"$ENVF" <<EOF
FLEET_N=$n
FLEET_X=$X
FLEET_B=$B
FLEET_DRIVER=
FLEET_CLAIM="$SUBNET_BASE.$X.0/24 10.$B.0.0/16"
EOF
	# The bridge holds the subnet from now on; the env file covers the gap.
	ip link add "$BR" type bridge
	ip link set "$BR" alias "$TAG:bridge"
	ip addr add "$SUBNET_BASE.$X.254/24" dev "$BR"
	ip link set "$BR" up
	flock -u 8
	exec 8>&-
	log "subnet $SUBNET_BASE.$X.0/24 on $BR, docker0 networks 10.$B.i.0/24"
}

load_env() {
	[[ -r $ENVF && -e $RUN/$MARK ]] || die "no fleet with prefix $PREFIX (missing $ENVF); run 'up' first"
	# shellcheck disable=SC1090
	. "$ENVF"
	X=$FLEET_X B=$FLEET_B N=$FLEET_N DRIVER=$FLEET_DRIVER
}

set_driver() {
	DRIVER=$1
	sed -i "s/^FLEET_DRIVER=.*/FLEET_DRIVER=$DRIVER/" "$ENVF"
}

host_index() {
	local name=$1
	[[ $name =~ ^${PREFIX}([0-9]+)$ ]] || die "'$name' is not a host of prefix $PREFIX"
	local i=${BASH_REMATCH[1]}
	((i >= 1 && i <= N)) || die "'$name' is not a host of this fleet (1..$N)"
	echo "$i"
}

host_line() {
	local i=$1 name=$PREFIX$1 addr=$SUBNET_BASE.$X.$1
	echo "$name $addr tcp://$addr:$(tcp_port) unix://$RUN/$name/docker.sock"
}

# tcp_port: 2376 with TLS (--tlsverify), 2375 plain, as Docker's convention.
tcp_port() { if [[ -e $STATE/tls/ca.pem ]]; then echo 2376; else echo 2375; fi; }

sock() { echo "unix://$RUN/$1/docker.sock"; }

# ---------------------------------------------------------------- processes

# pid_alive PID: the process exists and is not a zombie.
pid_alive() {
	[[ -n ${1:-} ]] && kill -0 "$1" 2>/dev/null || return 1
	local st
	st=$(cut -d')' -f2 "/proc/$1/stat" 2>/dev/null | awk '{print $1}') || return 1
	[[ -n $st && $st != Z ]]
}

# our_dockerd PID NAME: PID is the dockerd of host NAME (guards against a
# stale pid file whose pid now belongs to another process).
our_dockerd() {
	local p=$1 name=$2 c='' cmd
	[[ -n $p ]] && pid_alive "$p" || return 1
	{ read -r c <"/proc/$p/comm"; } 2>/dev/null || return 1
	[[ $c == dockerd ]] || return 1
	cmd=$( { tr '\0' ' ' <"/proc/$p/cmdline"; } 2>/dev/null) || return 1
	[[ $cmd == *" $RUN/$name/docker.pid "* ]]
}

# read_pid NAME: the pid of host NAME's running dockerd, or nothing.
read_pid() {
	local name=$1 p
	for p in "$({ tr -dc 0-9 <"$RUN/$name/docker.pid"; } 2>/dev/null)" \
		"$({ tr -dc 0-9 <"$RUN/$name/launch.pid"; } 2>/dev/null)"; do
		if our_dockerd "$p" "$name"; then
			echo "$p"
			return 0
		fi
	done
	return 0
}

# Processes (dockerd, containerd, shims, fuse-overlayfs, runc, docker-proxy…)
# whose command line names one of this prefix's state directories. $1 narrows
# it to one host.
state_pids() {
	local host=${1:-} pat p cmd
	if [[ -n $host ]]; then
		pat="($RUN/$host/|$STATE/$host/)"
	else
		pat="($RUN/|$STATE/)"
	fi
	local c
	for p in /proc/[0-9]*; do
		p=${p#/proc/}
		[[ $p != "$$" ]] || continue
		c=
		{ read -r c <"/proc/$p/comm"; } 2>/dev/null || continue
		case $c in
		dockerd | containerd | containerd-shim* | fuse-overlayfs | runc | docker-proxy | docker-init) ;;
		*) continue ;;
		esac
		cmd=$( { tr '\0' ' ' <"/proc/$p/cmdline"; } 2>/dev/null) || continue
		if [[ $cmd =~ $pat ]]; then echo "$p"; fi
	done
}

# wait_gone SECONDS PID... : true once none of the pids is alive.
wait_gone() {
	local t=$1 p alive
	shift
	local end=$(($(date +%s) + t))
	while :; do
		alive=
		for p in "$@"; do pid_alive "$p" && alive=1 && break; done
		[[ -n $alive ]] || return 0
		(($(date +%s) < end)) || return 1
		sleep 0.1
	done
}

# ---------------------------------------------------------------- storage driver

root_driver() {
	local d=
	d=$(timeout 5 docker -H unix:///run/docker.sock info --format '{{.Driver}}' 2>/dev/null) || d=
	if [[ -z $d && -r /etc/docker/daemon.json ]]; then
		d=$(grep -oE '"storage-driver"[[:space:]]*:[[:space:]]*"[^"]+"' /etc/docker/daemon.json | sed 's/.*"\([^"]*\)"$/\1/') || d=
	fi
	echo "$d"
}

driver_candidates() {
	if [[ -n ${FLEET_STORAGE_DRIVER:-} ]]; then
		echo "$FLEET_STORAGE_DRIVER"
		return
	fi
	local r c seen=" "
	r=$(root_driver)
	for c in $r overlay2 fuse-overlayfs vfs; do
		case $c in
		fuse-overlayfs) command -v fuse-overlayfs >/dev/null 2>&1 && [[ -e /dev/fuse ]] || continue ;;
		overlay2) grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null || continue ;;
		vfs) ;;
		*) continue ;; # other root drivers (btrfs, zfs, devicemapper) are not tried nested
		esac
		[[ $seen == *" $c "* ]] && continue
		seen+="$c "
		echo "$c"
	done
}

# ---------------------------------------------------------------- hosts

make_host() {
	local i=$1 name=$PREFIX$1 addr=$SUBNET_BASE.$X.$1
	local outer=${PREFIX}${i}h
	mkdir -p "$STATE/$name/data" "$RUN/$name"
	ip netns add "$name"
	ip link add "$outer" type veth peer name eth0 netns "$name"
	ip link set "$outer" alias "$TAG:$name"
	ip link set "$outer" master "$BR"
	ip link set "$outer" up
	ip -n "$name" link set lo up
	ip -n "$name" link set eth0 alias "$TAG:$name"
	ip -n "$name" addr add "$addr/24" dev eth0
	ip -n "$name" link set eth0 up
	ip -n "$name" route add default via "$SUBNET_BASE.$X.254"
}

launch_engine() {
	local i=$1 name=$PREFIX$1 addr=$SUBNET_BASE.$X.$1
	local dir=$STATE/$name run=$RUN/$name p
	# Engine labels for placement tests: zone z<i>, one ssd host (the first).
	local storage=disk
	((i == 1)) && storage=ssd
	p=$(read_pid "$name")
	[[ -z $p ]] || die "$name: dockerd already runs (pid $p)"
	rm -f "$run/docker.pid"
	mkdir -p "$dir/data" "$run/exec"
	# Our own (empty) config file: the machine's /etc/docker/daemon.json must
	# not leak in (it would clash with our flags).
	[[ -e $dir/daemon.json ]] || echo '{}' >"$dir/daemon.json"
	local tcp=(-H "tcp://$addr:2375" --tls=false)
	if [[ -e $STATE/tls/ca.pem ]]; then
		tcp=(-H "tcp://$addr:2376" --tlsverify --tlscacert "$STATE/tls/ca.pem"
			--tlscert "$STATE/tls/server-cert.pem" --tlskey "$STATE/tls/server-key.pem")
	fi
	echo "=== $(date -Is) starting dockerd ($DRIVER)" >>"$dir/dockerd.log"
	# setsid: own session, so nothing of the caller's terminal or process
	# group reaches it. All fds are redirected: a caller reading our stdout
	# (e.g. Go's exec) must not wait for dockerd. fds 8/9 hold our locks.
	setsid nsenter --net="/var/run/netns/$name" \
		unshare --uts \
		sh -c 'echo "$1" >/proc/sys/kernel/hostname && shift && exec "$@"' sh "$name" \
		dockerd \
		--config-file "$dir/daemon.json" \
		--data-root "$dir/data" \
		--exec-root "$run/exec" \
		--pidfile "$run/docker.pid" \
		-H "unix://$run/docker.sock" \
		"${tcp[@]}" \
		--bip "10.$B.$i.1/24" \
		--storage-driver "$DRIVER" \
		--cgroup-parent "/testfleet-$PREFIX/$name" \
		--containerd-namespace "$name" \
		--containerd-plugins-namespace "$name-plugins" \
		--shutdown-timeout 3 \
		--log-level info \
		--label "zone=z$i" --label "region=r1" --label "storage=$storage" --label "fleet-index=$i" \
		</dev/null >>"$dir/dockerd.log" 2>&1 8>&- 9>&- &
	echo $! >"$run/launch.pid"
}

# wait_engines NAME... : every engine answers `docker info` (bounded).
wait_engines() {
	local end=$(($(date +%s) + FLEET_TIMEOUT)) name pending
	pending=("$@")
	while ((${#pending[@]})); do
		local next=()
		for name in "${pending[@]}"; do
			if timeout 5 docker -H "$(sock "$name")" info --format '{{.Name}}' >/dev/null 2>&1; then
				continue
			fi
			# Just launched, it may still be nsenter/unshare/sh on its way
			# to exec dockerd: the launch pid alive counts as starting.
			if [[ -z $(read_pid "$name") ]] && ! pid_alive "$({ cat "$RUN/$name/launch.pid"; } 2>/dev/null)"; then
				engine_failed "$name" "dockerd exited"
				return 1
			fi
			next+=("$name")
		done
		pending=("${next[@]}")
		((${#pending[@]})) || break
		if (($(date +%s) >= end)); then
			engine_failed "${pending[0]}" "no answer from $(sock "${pending[0]}") after ${FLEET_TIMEOUT}s"
			return 1
		fi
		sleep 0.2
	done
}

engine_failed() {
	local name=$1 why=$2
	{
		echo "fleet[$PREFIX]: $name: $why; last lines of $STATE/$name/dockerd.log:"
		grep -v 'module=grpc' "$STATE/$name/dockerd.log" 2>/dev/null | tail -n 25 | sed 's/^/    /'
	} >&2
}

stop_engine() {
	local name=$1 p
	p=$(read_pid "$name")
	if [[ -n $p ]]; then
		kill -TERM "$p" 2>/dev/null || true
		if ! wait_gone 30 "$p"; then
			log "$name: dockerd $p ignored SIGTERM for 30s, killing it"
			kill -KILL "$p" 2>/dev/null || true
			wait_gone 5 "$p" || true
		fi
	fi
	# Leftovers of this engine (its containerd, shims, …).
	local left
	left=$(state_pids "$name")
	if [[ -n $left ]]; then
		# shellcheck disable=SC2086
		kill -KILL $left 2>/dev/null || true
		# shellcheck disable=SC2086
		wait_gone 5 $left || true
	fi
	rm -f "$RUN/$name/docker.pid" "$RUN/$name/launch.pid"
}

# clear_leftovers NAME: before a restart, make sure nothing of the engine's
# last life runs on (a containerd still exiting on a loaded machine makes
# the new dockerd wait for it and give up: "containerd is still running"),
# and drop a containerd pid file whose process is gone.
clear_leftovers() {
	local name=$1 left cpid
	left=$(state_pids "$name")
	if [[ -n $left ]]; then
		# shellcheck disable=SC2086
		kill -KILL $left 2>/dev/null || true
		# shellcheck disable=SC2086
		wait_gone 20 $left || log "$name: leftovers $left still there"
	fi
	cpid=$({ tr -dc 0-9 <"$RUN/$name/exec/containerd/containerd.pid"; } 2>/dev/null) || cpid=
	if [[ -n $cpid ]] && ! pid_alive "$cpid"; then
		rm -f "$RUN/$name/exec/containerd/containerd.pid"
	fi
}

# Crash one host: SIGKILL its dockerd, containerd, shims, containers and
# everything else in its namespace, then drop its mounts (as a reboot would),
# so that `start` brings it back like a rebooted machine.
kill_engine() {
	local name=$1 left
	for _ in 1 2 3 4 5; do
		left=$(
			read_pid "$name"
			state_pids "$name"
			ip netns pids "$name" 2>/dev/null || true
			cgroup_pids "$name"
		)
		left=$(echo "$left" | grep -E '^[0-9]+$' | grep -vx "$$" | sort -u || true)
		[[ -n $left ]] || break
		# shellcheck disable=SC2086
		kill -KILL $left 2>/dev/null || true
		# shellcheck disable=SC2086
		wait_gone 3 $left || true
	done
	umount_under "$RUN/$name/exec"
	umount_under "$STATE/$name"
	rm -f "$RUN/$name/docker.pid" "$RUN/$name/launch.pid"
}

# ---------------------------------------------------------------- image

make_busybox() {
	local first=$1 bb='' c root
	# Only a static busybox (Debian's busybox-static) runs in an empty image.
	for c in "$(command -v busybox || true)" /bin/busybox /usr/bin/busybox; do
		if [[ -x $c ]] && file_is_static "$c"; then bb=$c; break; fi
	done
	[[ -n $bb ]] || die "no static busybox found (apt-get install busybox-static)"
	root=$STATE/busybox-root
	rm -rf "$root"
	mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/root"
	chmod 1777 "$root/tmp"
	cp "$bb" "$root/bin/busybox"
	local a
	for a in $("$bb" --list); do
		[[ $a == busybox ]] || ln -s busybox "$root/bin/$a"
	done
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
	printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
	tar --numeric-owner -C "$root" -c . |
		docker -H "$(sock "$first")" import -c 'CMD ["sh"]' - busybox:latest >/dev/null || return 1
	rm -rf "$root"
}

# busybox-static's binary is static; a dynamic busybox would not run in the image.
file_is_static() {
	! grep -q 'ld-linux' <(head -c 4096 "$1" | tr -c '[:print:]' '\n')
}

# ---------------------------------------------------------------- up / down

cmd_up() {
	local n=${1:-}
	[[ $n =~ ^[0-9]+$ ]] && ((n >= 1 && n <= 50)) || die "usage: fleet.sh up N (1 <= N <= 50)"
	need ip nsenter unshare setsid flock dockerd docker busybox tar timeout
	check_owned
	if [[ -e $STATE || -e $RUN ]] || ip link show "$BR" >/dev/null 2>&1 ||
		ip netns list 2>/dev/null | grep -qE "^${PREFIX}[0-9]+( |$)"; then
		log "a fleet with prefix $PREFIX exists; taking it down first"
		do_down
	fi
	mkdir -p "$STATE" "$RUN"
	touch "$STATE/$MARK" "$RUN/$MARK"
	if [[ -n ${FLEET_TLS_DIR:-} ]]; then
		# Engines with --tlsverify: the CA and the server certificate
		# (valid for every fleet address) are kept for later starts.
		mkdir -p "$STATE/tls"
		cp "$FLEET_TLS_DIR/ca.pem" "$FLEET_TLS_DIR/server-cert.pem" "$FLEET_TLS_DIR/server-key.pem" "$STATE/tls/" ||
			die "FLEET_TLS_DIR=$FLEET_TLS_DIR: want ca.pem, server-cert.pem, server-key.pem"
	fi
	allocate "$n"
	N=$n
	local i
	for ((i = 1; i <= n; i++)); do make_host "$i"; done
	add_iptables
	log "namespaces ready"

	local names=() cand ok='' name
	for ((i = 1; i <= n; i++)); do names+=("$PREFIX$i"); done
	for cand in $(driver_candidates); do
		set_driver "$cand"
		log "starting $n engines (storage driver $cand)"
		for ((i = 1; i <= n; i++)); do launch_engine "$i"; done
		if wait_engines "${names[@]}" && [[ $(docker -H "$(sock "${names[0]}")" info --format '{{.Driver}}') == "$cand" ]]; then
			log "engines answer; making busybox:latest on ${names[0]}"
			if make_busybox "${names[0]}" &&
				docker -H "$(sock "${names[0]}")" run --rm --net none busybox:latest true >&2; then
				ok=1
				break
			fi
			log "storage driver $cand: could not run a container"
		fi
		log "storage driver $cand does not work here; trying the next one"
		for name in "${names[@]}"; do stop_engine "$name"; done
		for name in "${names[@]}"; do
			umount_under "$STATE/$name/data"
			rm -rf --one-file-system "$STATE/$name/data"
		done
	done
	[[ -n $ok ]] || die "no storage driver works for a nested dockerd (tried: $(driver_candidates | tr '\n' ' '))"

	local pids=() rc=0
	if ((n > 1)); then
		local tarf=$STATE/busybox.tar
		docker -H "$(sock "${names[0]}")" save -o "$tarf" busybox:latest
		for name in "${names[@]:1}"; do
			docker -H "$(sock "$name")" load -q -i "$tarf" >/dev/null &
			pids+=($!)
		done
		for i in "${pids[@]}"; do wait "$i" || rc=1; done
		rm -f "$tarf"
		((rc == 0)) || die "docker load of busybox:latest failed"
		local id0 id
		id0=$(docker -H "$(sock "${names[0]}")" image inspect -f '{{.Id}}' busybox:latest)
		for name in "${names[@]:1}"; do
			id=$(docker -H "$(sock "$name")" image inspect -f '{{.Id}}' busybox:latest)
			[[ $id == "$id0" ]] || die "$name: busybox:latest is $id, expected $id0"
		done
		log "busybox:latest ($id0) on every engine"
	fi
	if [[ $FLEET_SMOKE == 1 ]]; then
		# A container on the default bridge network of every engine.
		pids=()
		for name in "${names[@]}"; do
			docker -H "$(sock "$name")" run --rm busybox:latest true >&2 &
			pids+=($!)
		done
		for i in "${pids[@]}"; do wait "$i" || rc=1; done
		((rc == 0)) || die "running busybox failed on some engine"
		log "busybox runs on every engine"
	fi
	log "fleet up: $n hosts, storage driver $DRIVER"
	for ((i = 1; i <= n; i++)); do host_line "$i"; done
}

add_iptables() {
	local ipt
	for ipt in iptables iptables-legacy; do
		command -v "$ipt" >/dev/null 2>&1 || continue
		# iptables-legacy only matters if something put rules there.
		if [[ $ipt == iptables-legacy ]] && ! "$ipt" -S FORWARD 2>/dev/null | grep -qE '^-P FORWARD DROP|^-A FORWARD'; then
			continue
		fi
		"$ipt" -C FORWARD -i "$BR" -o "$BR" -m comment --comment "$TAG" -j ACCEPT 2>/dev/null ||
			"$ipt" -I FORWARD -i "$BR" -o "$BR" -m comment --comment "$TAG" -j ACCEPT 2>/dev/null ||
			log "warning: could not add the $ipt FORWARD rule for $BR"
	done
}

del_iptables() {
	local ipt rule
	for ipt in iptables iptables-legacy; do
		command -v "$ipt" >/dev/null 2>&1 || continue
		# Delete every rule carrying our tag (whatever bridge it names).
		while read -r rule; do
			[[ -n $rule ]] || continue
			# shellcheck disable=SC2086
			eval "$ipt -D ${rule#-A }" 2>/dev/null || true
		done < <("$ipt" -S FORWARD 2>/dev/null | grep -E -- "--comment \"?$TAG\"?( |$)" || true)
	done
}

# Unmount everything at or below $1, deepest first (lazy if busy).
umount_under() {
	local base=$1 m
	for _ in 1 2 3; do
		local mounts
		mounts=$(awk -v b="$base" '{ m=$5; gsub(/\\040/, " ", m); if (m == b || index(m, b "/") == 1) print length(m) "\t" m }' /proc/self/mountinfo |
			sort -rn | cut -f2-)
		[[ -n $mounts ]] || return 0
		while IFS= read -r m; do
			umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
		done <<<"$mounts"
	done
}

our_netns() {
	local ns
	for ns in $(ip netns list 2>/dev/null | awk '{print $1}'); do
		[[ $ns =~ ^${PREFIX}[0-9]+$ ]] || continue
		if [[ -d $RUN/$ns ]] || ip -n "$ns" -o link show dev eth0 2>/dev/null | grep -q "alias $TAG:$ns\b"; then
			echo "$ns"
		fi
	done
}

our_links() {
	ip -o link show 2>/dev/null | awk -v t="$TAG:" '{ for (i = 1; i < NF; i++) if ($i == "alias" && index($(i+1), t) == 1) { n=$2; sub(/@.*/, "", n); sub(/:$/, "", n); print n } }'
}

do_down() {
	check_owned
	local p pids=() name ns d

	# 1. SIGTERM the dockerds (they stop containerd and clean up after
	# themselves) while SIGKILLing their containers through the cgroups, so
	# that no dockerd waits for a container's stop timeout and none restarts
	# a container (restart policies) before it sees the signal.
	if [[ -d $RUN ]]; then
		for d in "$RUN"/*/; do
			[[ -d $d ]] || continue
			name=$(basename "$d")
			p=$(read_pid "$name")
			[[ -z $p ]] || pids+=("$p")
		done
	fi
	for p in $(state_pids); do
		[[ $(cat "/proc/$p/comm" 2>/dev/null) == dockerd ]] && pids+=("$p")
	done
	if ((${#pids[@]})); then
		mapfile -t pids < <(printf '%s\n' "${pids[@]}" | sort -u)
		log "stopping dockerd ${pids[*]}"
		kill -TERM "${pids[@]}" 2>/dev/null || true
		local end=$((SECONDS + 15)) cp
		while :; do
			cp=$(cgroup_pids)
			# shellcheck disable=SC2086
			[[ -z $cp ]] || kill -KILL $cp 2>/dev/null || true
			wait_gone 0 "${pids[@]}" && break
			if ((SECONDS >= end)); then
				kill -KILL "${pids[@]}" 2>/dev/null || true
				break
			fi
			sleep 0.1
		done
	fi

	# 2. Whatever is left: processes naming our state dirs, processes in our
	# namespaces, and containers in our cgroups.
	local nss
	nss=$(our_netns)
	local left
	for _ in 1 2 3 4 5; do
		left=$(
			state_pids
			for ns in $nss; do ip netns pids "$ns" 2>/dev/null || true; done
			cgroup_pids
		)
		left=$(echo "$left" | grep -E '^[0-9]+$' | grep -vx "$$" | sort -u || true)
		[[ -n $left ]] || break
		# shellcheck disable=SC2086
		kill -KILL $left 2>/dev/null || true
		# shellcheck disable=SC2086
		wait_gone 3 $left || true
	done

	# 3. Mounts, namespaces, links, iptables, cgroups, state dirs.
	log "removing mounts, namespaces, links, rules, state"
	[[ -d $RUN ]] && umount_under "$RUN"
	[[ -d $STATE ]] && umount_under "$STATE"
	for ns in $nss; do ip netns del "$ns" 2>/dev/null || true; done
	for name in $(our_links); do ip link del "$name" 2>/dev/null || true; done
	del_iptables
	rm_cgroups
	rm -rf --one-file-system "$RUN" "$STATE" 2>/dev/null || {
		umount_under "$RUN"
		umount_under "$STATE"
		rm -rf --one-file-system "$RUN" "$STATE"
	}
}

# cgroup_dirs [HOST]: the cgroups holding this prefix's (or one host's) containers.
cgroup_dirs() {
	local d sub=${1:+/$1}
	for d in /sys/fs/cgroup/testfleet-"$PREFIX$sub" /sys/fs/cgroup/*/testfleet-"$PREFIX$sub"; do
		[[ -d $d ]] && echo "$d"
	done
	return 0
}

cgroup_pids() {
	local d
	for d in $(cgroup_dirs "${1:-}"); do
		find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null || true
	done
}

rm_cgroups() {
	local d
	for d in $(cgroup_dirs); do
		find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || true
	done
}

cmd_down() {
	need ip
	local t=$SECONDS
	do_down
	log "fleet down ($((SECONDS - t))s)"
}

cmd_stop() {
	local name=${1:-}
	[[ -n $name ]] || die "usage: fleet.sh stop NAME"
	load_env
	host_index "$name" >/dev/null
	stop_engine "$name"
	log "$name stopped"
}

cmd_kill() {
	local name=${1:-}
	[[ -n $name ]] || die "usage: fleet.sh kill NAME"
	load_env
	host_index "$name" >/dev/null
	kill_engine "$name"
	log "$name killed"
}

cmd_start() {
	local name=${1:-} i
	[[ -n $name ]] || die "usage: fleet.sh start NAME"
	load_env
	i=$(host_index "$name")
	[[ -n $DRIVER ]] || die "fleet has no storage driver recorded"
	[[ -e /var/run/netns/$name ]] || die "namespace $name is gone; run 'up' again"
	if [[ -n $(read_pid "$name") ]]; then
		wait_engines "$name" || die "$name runs but does not answer"
		log "$name already runs"
		return 0
	fi
	clear_leftovers "$name"
	launch_engine "$i"
	wait_engines "$name" || die "$name did not start"
	log "$name started"
}

cmd_list() {
	load_env
	local i
	for ((i = 1; i <= N; i++)); do host_line "$i"; done
}

# ---------------------------------------------------------------- main

[[ $# -ge 1 ]] || usage
check_prefix
[[ $(id -u) == 0 ]] || die "must run as root"
cmd=$1
shift
case $cmd in
up) lock_prefix; cmd_up "$@" ;;
down) lock_prefix; cmd_down ;;
stop) lock_prefix; cmd_stop "$@" ;;
start) lock_prefix; cmd_start "$@" ;;
kill) lock_prefix; cmd_kill "$@" ;;
list) cmd_list ;;
-h | --help | help) usage ;;
*) usage ;;
esac
