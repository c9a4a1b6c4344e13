#!/bin/sh
# Gathers Debian's redis-server and redis-cli, with the libraries they
# load, under ./redis, for the db stage of kiln.yml to copy (offline: the
# packages come from apt, e.g. apt-get install redis-server redis-tools).
set -eu
cd "$(dirname "$0")"
rm -rf redis
mkdir -p redis/usr/bin
for b in redis-server redis-cli; do
	cp -L "$(command -v "$b")" redis/usr/bin/
	ldd "$(command -v "$b")" | awk '/=>/ {print $3} /ld-linux/ {print $1}' | while read -r lib; do
		mkdir -p "redis$(dirname "$lib")"
		cp -L "$lib" "redis$lib"
	done
done
