#!/bin/sh
# Stand-in for the official redis image's entrypoint: that image builds Redis with protected mode off (it is
# reached over the container network, not loopback); Debian's binary has it on, so switch it off here.
if [ "${1:-}" = redis-server ]; then
  shift
  exec redis-server "$@" --protected-mode no
fi
exec "$@"
