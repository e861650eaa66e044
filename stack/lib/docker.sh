# Docker: the engine answering at DOCKER_HOST or the default socket; otherwise Debian's dockerd,
# without a bridge or iptables (this machine has neither), so every container uses host networking.
# No image registry is reachable: the test images are built here from local files and cached.

docker_healthy() { docker info >/dev/null 2>&1; }

docker_up() {
  docker_healthy && return
  ensure_packages dockerd:docker.io
  command -v docker >/dev/null 2>&1 || die "no docker client on PATH (Debian package docker.io provides one)"
  log "starting dockerd (--bridge=none --iptables=false)"
  start_bg dockerd dockerd --bridge=none --iptables=false --ip6tables=false --host unix:///var/run/docker.sock
  touch "$STACK_DIR/dockerd.ours"
  wait_for dockerd 60 docker_healthy
}

docker_down() {
  [ -f "$STACK_DIR/dockerd.ours" ] || return 0
  stop_pid dockerd
  rm -f "$STACK_DIR/dockerd.ours"
}

docker_status() {
  if docker_healthy; then status_line docker "${DOCKER_HOST:-unix:///var/run/docker.sock}" up
  else status_line docker "${DOCKER_HOST:-unix:///var/run/docker.sock}" down; fi
}

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

# busybox-static rootfs: an HTTP service whose /health answers 200 and /metrics is Prometheus text.
build_busybox_image() {
  image_exists "$BUSYBOX_IMAGE" && return
  ensure_packages /bin/busybox:busybox-static
  log "building $BUSYBOX_IMAGE from busybox-static"
  local root; root=$(mktemp -d)
  mkdir -p "$root/bin" "$root/www" "$root/tmp" "$root/etc"
  cp /bin/busybox "$root/bin/busybox"
  local app; for app in sh httpd sleep echo cat kill ls ps wget tee; do ln -s busybox "$root/bin/$app"; done
  echo ok > "$root/www/health"
  printf '# TYPE demo_up gauge\ndemo_up 1\n' > "$root/www/metrics"
  # sh as PID 1 with a TERM trap, so `docker stop` and `docker restart` take milliseconds, not the stop timeout.
  cat > "$root/bin/serve" <<'SH'
#!/bin/sh
trap 'kill "$child" 2>/dev/null; exit 0' TERM INT
/bin/busybox httpd -f -p "127.0.0.1:${PORT:-18080}" -h "${WWW:-/www}" &
child=$!
wait "$child"
SH
  chmod +x "$root/bin/serve"
  tar -C "$root" -c . | docker import -c 'CMD ["/bin/serve"]' - "$BUSYBOX_IMAGE" >/dev/null
  rm -rf "$root"
}

# A Debian rootfs running systemd as PID 1, with a demo unit; the host agent runs inside it.
build_systemd_image() {
  image_exists "$SYSTEMD_IMAGE" && return
  ensure_packages debootstrap:debootstrap
  log "building $SYSTEMD_IMAGE with debootstrap (minutes, once; cached as a Docker image)"
  local root; root=$(mktemp -d)
  # logrotate: the `logrotate` step forces a rotation of a configured file on the host.
  debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,busybox,libstdc++6,ca-certificates,logrotate \
    bookworm "$root" http://deb.debian.org/debian >>"$LOG_DIR/debootstrap.log" 2>&1 \
    || { rm -rf "$root"; die "debootstrap failed; see $LOG_DIR/debootstrap.log"; }
  mkdir -p "$root/www"
  echo ok > "$root/www/health"
  printf '# TYPE demo_up gauge\ndemo_up 1\n' > "$root/www/metrics"
  cat > "$root/etc/systemd/system/demo-web.service" <<UNIT
[Unit]
Description=Demo web service watched by the remediation engine

[Service]
ExecStart=/bin/busybox httpd -f -p 127.0.0.1:$SYSTEMD_DEMO_PORT -h /www
Restart=no

[Install]
WantedBy=multi-user.target
UNIT
  ln -sf /etc/systemd/system/demo-web.service "$root/etc/systemd/system/multi-user.target.wants/demo-web.service"
  # Units that have nothing to do in a container and only slow its boot.
  local unit; for unit in getty@tty1.service console-getty.service systemd-udevd.service systemd-udev-trigger.service \
    systemd-remount-fs.service systemd-firstboot.service sys-kernel-config.mount sys-kernel-debug.mount \
    systemd-modules-load.service apt-daily.timer apt-daily-upgrade.timer e2scrub_reap.service; do
    ln -sf /dev/null "$root/etc/systemd/system/$unit"
  done
  echo remediation-host > "$root/etc/hostname"
  rm -rf "$root/var/cache/apt/archives/"*.deb "$root/var/lib/apt/lists/"*
  tar -C "$root" -c . | docker import -c 'CMD ["/lib/systemd/systemd"]' -c 'ENV container=docker' - "$SYSTEMD_IMAGE" >/dev/null
  rm -rf "$root"
}

# The image is named after its recipe: a change to build_systemd_image (a package added) is a new tag,
# which `up` builds, and a container made from another tag is replaced by systemd_container_up.
SYSTEMD_IMAGE=remediation/systemd:$(declare -f build_systemd_image | sha256sum | cut -c1-12)

container_running() { [ "$(docker inspect -f '{{.State.Running}}' "$1" 2>/dev/null)" = true ]; }

demo_up() {
  if ! container_running "$DEMO_CONTAINER"; then
    docker rm -f "$DEMO_CONTAINER" >/dev/null 2>&1 || true
    docker run -d --name "$DEMO_CONTAINER" --network host -e PORT="$DEMO_PORT" --label remediation.stack=1 "$BUSYBOX_IMAGE" >/dev/null
  fi
  wait_for demo 30 http_ok "http://127.0.0.1:$DEMO_PORT/health"
}

systemd_container_up() {
  # The host agent inside runs this checkout's code, so a container made from another checkout is replaced.
  local node_bin; node_bin=$(readlink -f "$(command -v node)")
  if container_running "$SYSTEMD_CONTAINER" &&
     [ "$(docker inspect -f '{{index .Config.Labels "remediation.repo"}}' "$SYSTEMD_CONTAINER")" = "$REPO" ] &&
     [ "$(docker inspect -f '{{.Config.Image}}' "$SYSTEMD_CONTAINER")" = "$SYSTEMD_IMAGE" ]; then
    :
  else
    docker rm -f "$SYSTEMD_CONTAINER" >/dev/null 2>&1 || true
    docker run -d --name "$SYSTEMD_CONTAINER" --network host \
      --cap-add SYS_ADMIN --security-opt seccomp=unconfined --tmpfs /run --tmpfs /run/lock \
      --cgroupns=host -v /sys/fs/cgroup:/sys/fs/cgroup:rw \
      -v "$REPO:/opt/engine:ro" -v "$node_bin:/usr/local/bin/node:ro" -v "$STACK_DIR:$STACK_DIR:ro" \
      --label remediation.stack=1 --label "remediation.repo=$REPO" "$SYSTEMD_IMAGE" >/dev/null
  fi
  wait_for systemd 60 systemd_unit_active
  wait_for systemd 30 http_ok "http://127.0.0.1:$SYSTEMD_DEMO_PORT/health"
}

systemd_unit_active() { docker exec "$SYSTEMD_CONTAINER" systemctl is-active demo-web.service | grep -qx active; }

containers_down() {
  docker_healthy || return 0
  local ids; ids=$(docker ps -aq --filter label=remediation.stack=1)
  [ -n "$ids" ] && docker rm -f $ids >/dev/null
  return 0
}

containers_status() {
  if container_running "$DEMO_CONTAINER" && http_ok "http://127.0.0.1:$DEMO_PORT/health"; then
    status_line demo "http://127.0.0.1:$DEMO_PORT" up; else status_line demo "http://127.0.0.1:$DEMO_PORT" down; fi
  if container_running "$SYSTEMD_CONTAINER" && systemd_unit_active; then
    status_line systemd "$SYSTEMD_CONTAINER (demo-web.service)" up; else status_line systemd "$SYSTEMD_CONTAINER" down; fi
}
