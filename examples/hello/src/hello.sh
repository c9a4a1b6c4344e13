#!/bin/sh
cat /greeting
echo "colors: $(tr '\n' ' ' < /colors)"
cat /etc/motd
