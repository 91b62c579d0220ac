#!/bin/sh
# Writes the ACL file Redis loads (`aclfile`) from deploy/redis/users.acl, with each
# user's password hash filled in:
#
#   REDIS_PASSWORD_VOTESVC=... REDIS_PASSWORD_OPS=... sh render-acl.sh users.acl /etc/redis/users.acl
#
# users.acl holds no secret: where a user's password goes it says #<sha256:NAME>, which
# Redis refuses to load as it is. This script replaces it with the SHA-256 of the
# password in the environment variable REDIS_PASSWORD_<NAME> (NAME upper-cased, '-' as
# '_'). A password is at least 32 characters; make one with `openssl rand -hex 32` (hex
# needs no escaping in VOTESVC_REDIS_URL). A user whose variable is unset is written
# `off`, without a password: it cannot log in (compose's single Redis has no replica).
# The passwords come from the environment, never from the command line, where `ps`
# would show them. The file is written with mode 0600 and replaced whole.
set -eu

template=${1:?usage: render-acl.sh TEMPLATE OUTPUT}
output=${2:?usage: render-acl.sh TEMPLATE OUTPUT}
umask 077
partial="$output.part"
: >"$partial"
while IFS= read -r line || [ -n "$line" ]; do
  case $line in
    *'#<sha256:'*)
      name=${line#*'#<sha256:'}
      name=${name%%'>'*}
      case $name in
        '' | *[!a-z0-9_-]*)
          echo "render-acl: $template: bad placeholder #<sha256:$name>" >&2
          rm -f "$partial"
          exit 2
          ;;
      esac
      variable=REDIS_PASSWORD_$(printf '%s' "$name" | tr 'a-z-' 'A-Z_')
      eval "password=\${$variable-}"
      if [ -z "$password" ]; then
        echo "render-acl: $variable is not set: user $name is written off" >&2
        line=$(printf '%s\n' "$line" | sed "s/ on / off /; s/ #<sha256:$name>//")
      elif [ ${#password} -lt 32 ]; then
        echo "render-acl: $variable is shorter than 32 characters" >&2
        rm -f "$partial"
        exit 2
      else
        hash=$(printf '%s' "$password" | sha256sum | cut -c1-64)
        line=$(printf '%s\n' "$line" | sed "s/#<sha256:$name>/#$hash/")
      fi
      ;;
  esac
  printf '%s\n' "$line" >>"$partial"
done <"$template"
mv "$partial" "$output"
