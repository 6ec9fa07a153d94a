#!/usr/bin/env bash
# Launches GCP spot VMs that each run one ftrain node (cloud-init.yaml + ftrain-node.service).
#
# Spot VMs on GCP: when Compute Engine reclaims one it gives 30 s notice as an ACPI shutdown,
# which systemd turns into SIGTERM for ftrain-node.service (the --grace-seconds hand-over), and
# switches the VM off 30 s later. --instance-termination-action=DELETE then deletes it; run this
# script again for replacements, which join the running job as spares.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

usage() {
  cat <<USAGE
Usage: $(basename "$0") --coordinator HOST:PORT [options] [-- extra gcloud flags]

Creates COUNT spot VMs on GCP running \`ftrain node --coordinator HOST:PORT\`.

  --coordinator HOST:PORT  the coordinator the nodes join (required)
  --source URL             https:// or gs:// URL of a tarball of this repository, made with
                             git archive --format=tar.gz --prefix=ftrain/ -o ftrain.tar.gz HEAD
                           (required, except with --dry-run)
  --count N                VMs to create (default: $count)
  --zone ZONE              (default: $zone)
  --machine-type TYPE      (default: $machine_type)
  --name-prefix PREFIX     VM names are PREFIX-<time>-<i> (default: $name_prefix)
  --project PROJECT        (default: gcloud's configured project)
  --image-family FAMILY    an image that runs cloud-init (default: $image_family)
  --image-project PROJECT  (default: $image_project)
  --tags TAGS              network tags, for the firewall rule between nodes (default: $tags)
  --extra-args ARGS        more \`ftrain node\` flags, e.g. "--backend tensorflow" (no commas)
  --dry-run                print the gcloud commands instead of running them
  -h, --help               show this help

Anything after -- goes to every \`gcloud compute instances create\` as is
(e.g. -- --accelerator=type=nvidia-tesla-t4,count=1).
USAGE
}

fail() {
  echo "$(basename "$0"): $*" >&2
  exit 2
}

count=1
zone=us-central1-a
machine_type=e2-standard-4
name_prefix=ftrain-node
project=
image_family=ubuntu-2204-lts
image_project=ubuntu-os-cloud
tags=ftrain-node
coordinator=
source_url=
extra_args=
dry_run=0
gcloud_extra=()

need_value() {
  [[ $# -ge 2 && -n $2 ]] || fail "$1 needs a value (see --help)"
}

while [[ $# -gt 0 ]]; do
  case $1 in
    --coordinator) need_value "$@"; coordinator=$2; shift 2 ;;
    --source) need_value "$@"; source_url=$2; shift 2 ;;
    --count) need_value "$@"; count=$2; shift 2 ;;
    --zone) need_value "$@"; zone=$2; shift 2 ;;
    --machine-type) need_value "$@"; machine_type=$2; shift 2 ;;
    --name-prefix) need_value "$@"; name_prefix=$2; shift 2 ;;
    --project) need_value "$@"; project=$2; shift 2 ;;
    --image-family) need_value "$@"; image_family=$2; shift 2 ;;
    --image-project) need_value "$@"; image_project=$2; shift 2 ;;
    --tags) need_value "$@"; tags=$2; shift 2 ;;
    --extra-args) need_value "$@"; extra_args=$2; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    -h | --help) usage; exit 0 ;;
    --) shift; gcloud_extra=("$@"); break ;;
    *) fail "unknown argument '$1' (see --help)" ;;
  esac
done

[[ -n $coordinator ]] || fail "--coordinator HOST:PORT is required: the address of \`ftrain coordinator --listen\`"
[[ $coordinator =~ ^[A-Za-z0-9.-]+:[0-9]{1,5}$ ]] || fail "--coordinator must be HOST:PORT, got '$coordinator'"
[[ $count =~ ^[1-9][0-9]*$ ]] || fail "--count must be a positive integer, got '$count'"
[[ $name_prefix =~ ^[a-z]([-a-z0-9]{0,40}[a-z0-9])?$ ]] || fail "--name-prefix must be lower-case letters, digits and dashes, got '$name_prefix'"
[[ $extra_args != *,* && $source_url != *,* ]] || fail "--extra-args and --source cannot contain commas (gcloud's --metadata separator)"
if [[ -z $source_url ]]; then
  [[ $dry_run == 1 ]] || fail "--source URL is required: a tarball of this repository the VMs can download (see --help)"
  echo "$(basename "$0"): no --source given; the commands below show SOURCE_URL in its place" >&2
  source_url=SOURCE_URL
fi

user_data=$here/cloud-init.yaml
[[ -f $user_data ]] || fail "missing $user_data"

metadata="ftrain-coordinator=$coordinator,ftrain-source=$source_url"
[[ -z $extra_args ]] || metadata+=",ftrain-extra-args=$extra_args"

stamp=$(date -u +%m%d%H%M%S)
for ((i = 1; i <= count; i++)); do
  cmd=(gcloud compute instances create "$name_prefix-$stamp-$i"
    --zone="$zone"
    --machine-type="$machine_type"
    --provisioning-model=SPOT
    --instance-termination-action=DELETE
    --image-family="$image_family"
    --image-project="$image_project"
    --tags="$tags"
    --metadata="$metadata"
    --metadata-from-file=user-data="$user_data")
  [[ -z $project ]] || cmd+=(--project="$project")
  # (the +-form keeps bash 3.2, macOS's, from calling an empty array unbound)
  cmd+=(${gcloud_extra[@]+"${gcloud_extra[@]}"})
  if [[ $dry_run == 1 ]]; then
    line=$(printf '%q ' "${cmd[@]}")
    echo "${line% }"
  else
    "${cmd[@]}"
  fi
done
