#!/usr/bin/env bash
# Launches GCP spot VMs that each run one ftrain node (cloud-init.yaml + ftrain-node.service).
#
# Spot VMs on GCP: when Compute Engine reclaims one it gives 30 s notice as an ACPI shutdown,
# which systemd turns into SIGTERM for ftrain-node.service (the --grace-seconds hand-over), and
# switches the VM off 30 s later. --instance-termination-action=DELETE then deletes it; run this
# script again for replacements, which join the running job as spares.
#
# Nobody joins uninvited: run this where the job's CA is (`ftrain certs init --dir DIR`: DIR keeps
# ca.key, which never leaves this machine). For each VM it issues a certificate named like the
# instance (the node's id), and hands the VM that pair, ca.crt and the job's join token, either
#   secret-manager  (default) as Secret Manager secrets only the VMs' service account may read:
#                   INSTANCE-tls (ca.crt, INSTANCE.crt, INSTANCE.key: a base64 tar.gz, deleted
#                   after --secret-ttl) and the job's token secret (default ftrain-join-token);
#                   cloud-init reads them at first boot with `gcloud secrets versions access`;
#   ssh             through `gcloud compute ssh` once the VM is up (as root, via sudo), while
#                   cloud-init waits for the files.
# Either way they land in /etc/ftrain/tls (0700, files 0600) and /etc/ftrain/join-token (0600),
# owned by the service's user, before ftrain-node.service starts.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)

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
tls_dir=
token_file=
deliver=secret-manager
service_account=
token_secret=ftrain-join-token
secret_ttl=86400s
dry_run=0
gcloud_extra=()

usage() {
  cat <<USAGE
Usage: $(basename "$0") --coordinator HOST:PORT --source URL --tls-dir DIR --join-token-file FILE
         [--service-account EMAIL] [options] [-- extra gcloud flags]

Creates COUNT spot VMs on GCP running \`ftrain node --coordinator HOST:PORT\` with mutual TLS and
the job's join token. Run it where the job's CA is: it issues each VM's certificate there.

  --coordinator HOST:PORT  the coordinator the nodes join (required)
  --source URL             https:// or gs:// URL of a tarball of this repository, made with
                             git archive --format=tar.gz --prefix=ftrain/ -o ftrain.tar.gz HEAD
                           (required, except with --dry-run)
  --tls-dir DIR            the job's CA on this machine (ca.crt and ca.key, from
                           \`ftrain certs init --dir DIR\`); each VM gets DIR/INSTANCE.crt and .key,
                           issued here with \`ftrain certs issue --dir DIR --name INSTANCE\`, and
                           ca.crt; never ca.key (required, except with --dry-run)
  --join-token-file FILE   the job's join token: the file the coordinator was given with
                           --join-token-file (16 characters or more; required, except with --dry-run)
  --deliver MODE           how a VM gets its certificate and the token (default: $deliver):
                             secret-manager  Secret Manager secrets, read at first boot by the
                                             VM's service account (needs --service-account)
                             ssh             \`gcloud compute ssh\` to the VM once it is up (needs
                                             SSH from here and sudo on the VMs)
  --service-account EMAIL  secret-manager: the VMs' service account, granted
                           roles/secretmanager.secretAccessor on their secrets only (required with
                           secret-manager, except with --dry-run). A dedicated one, so that other
                           VMs of the project cannot read them:
                             gcloud iam service-accounts create ftrain-node
                           (add roles/storage.objectViewer on the bucket of a gs:// --source)
  --join-token-secret NAME secret-manager: the secret holding the token (default: $token_secret),
                           created or updated from --join-token-file
  --secret-ttl DURATION    secret-manager: each VM's INSTANCE-tls secret is deleted after this; a VM
                           reads it once, at first boot (default: $secret_ttl)
  --count N                VMs to create (default: $count)
  --zone ZONE              (default: $zone)
  --machine-type TYPE      (default: $machine_type)
  --name-prefix PREFIX     VM names are PREFIX-<time>-<i>, also their node ids and certificate
                           names (default: $name_prefix)
  --project PROJECT        (default: gcloud's configured project)
  --image-family FAMILY    an image that runs cloud-init (default: $image_family)
  --image-project PROJECT  (default: $image_project)
  --tags TAGS              network tags, for the firewall rule between nodes (default: $tags)
  --extra-args ARGS        more \`ftrain node\` flags, e.g. "--backend tensorflow" (no commas)
  --dry-run                print the ftrain and gcloud commands instead of running them
  -h, --help               show this help

Anything after -- goes to every \`gcloud compute instances create\` as is
(e.g. -- --accelerator=type=nvidia-tesla-t4,count=1).
Environment: FTRAIN, the command that runs ftrain here (default: node $repo/bin/ftrain.js).
USAGE
}

fail() {
  echo "$(basename "$0"): $*" >&2
  exit 2
}

note() {
  echo "$(basename "$0"): $*" >&2
}

need_value() {
  [[ $# -ge 2 && -n $2 ]] || fail "$1 needs a value (see --help)"
}

while [[ $# -gt 0 ]]; do
  case $1 in
    --coordinator) need_value "$@"; coordinator=$2; shift 2 ;;
    --source) need_value "$@"; source_url=$2; shift 2 ;;
    --tls-dir) need_value "$@"; tls_dir=$2; shift 2 ;;
    --join-token-file) need_value "$@"; token_file=$2; shift 2 ;;
    --deliver) need_value "$@"; deliver=$2; shift 2 ;;
    --service-account) need_value "$@"; service_account=$2; shift 2 ;;
    --join-token-secret) need_value "$@"; token_secret=$2; shift 2 ;;
    --secret-ttl) need_value "$@"; secret_ttl=$2; shift 2 ;;
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
[[ $deliver == secret-manager || $deliver == ssh ]] || fail "--deliver must be secret-manager or ssh, got '$deliver'"
[[ $token_secret =~ ^[A-Za-z0-9_-]{1,200}$ ]] || fail "--join-token-secret must be letters, digits, '_' and '-', got '$token_secret'"

# Every value is checked before anything is issued, stored or created. With --dry-run a missing
# one shows as a placeholder.
placeholder() {
  [[ $dry_run == 1 ]] || fail "$1 is required: $2 (see --help)"
  note "no $1 given; the commands below show $3 in its place"
  printf '%s' "$3"
}
[[ -n $source_url ]] || source_url=$(placeholder --source "a tarball of this repository the VMs can download" SOURCE_URL)
if [[ -n $tls_dir ]]; then
  [[ -f $tls_dir/ca.crt && -f $tls_dir/ca.key ]] || fail "--tls-dir $tls_dir has no ca.crt and ca.key: run this where the CA is (\`ftrain certs init --dir $tls_dir\`)"
else
  tls_dir=$(placeholder --tls-dir "the directory of the job's CA (ca.crt and ca.key), where each VM's certificate is issued" TLS_DIR)
fi
if [[ -n $token_file ]]; then
  [[ -r $token_file ]] || fail "--join-token-file $token_file: cannot read it"
  token=$(<"$token_file")
  token=${token#"${token%%[![:space:]]*}"}
  token=${token%"${token##*[![:space:]]}"}
  [[ ${#token} -ge 16 ]] || fail "--join-token-file $token_file: a join token has 16 characters or more, this one ${#token}"
  [[ ! $token =~ [[:space:]] ]] || fail "--join-token-file $token_file: a join token has no white space"
else
  token_file=$(placeholder --join-token-file "the job's join token, as the coordinator was given it" TOKEN_FILE)
  token=
fi
if [[ $deliver == secret-manager && -z $service_account ]]; then
  service_account=$(placeholder --service-account "the VMs' service account, which may read their secrets" SERVICE_ACCOUNT)
fi

user_data=$here/cloud-init.yaml
[[ -f $user_data ]] || fail "missing $user_data"

if [[ -n ${FTRAIN:-} ]]; then
  read -r -a ftrain <<<"$FTRAIN"
else
  ftrain=(node "$repo/bin/ftrain.js")
fi
project_flag=()
[[ -z $project ]] || project_flag=(--project="$project")

# Runs a command, or prints it with --dry-run. (The +-form keeps bash 3.2, macOS's, from calling
# an empty array unbound.)
run() {
  if [[ $dry_run == 1 ]]; then
    local line
    line=$(printf '%q ' "$@")
    echo "${line% }"
  else
    "$@"
  fi
}

# The VM's TLS directory as a gzipped tar on stdout: ca.crt and its own pair, never ca.key.
# (COPYFILE_DISABLE: macOS's tar would add ._ files.)
bundle() {
  COPYFILE_DISABLE=1 tar -C "$tls_dir" -czf - ca.crt "$1.crt" "$1.key"
}

# Lets the VMs' service account read one secret (and nothing else of Secret Manager).
grant() {
  local cmd=(gcloud secrets add-iam-policy-binding "$1" ${project_flag[@]+"${project_flag[@]}"}
    --member="serviceAccount:$service_account" --role=roles/secretmanager.secretAccessor)
  if [[ $dry_run == 1 ]]; then run "${cmd[@]}"; else "${cmd[@]}" >/dev/null; fi
}

# The job's token, once for all VMs: created, or given a new version when it differs.
if [[ $deliver == secret-manager ]]; then
  if [[ $dry_run == 1 ]]; then
    echo "# unless the secret $token_secret exists and holds this token:"
    run gcloud secrets create "$token_secret" ${project_flag[@]+"${project_flag[@]}"} --replication-policy=automatic
    run gcloud secrets versions add "$token_secret" ${project_flag[@]+"${project_flag[@]}"} --data-file="$token_file"
  else
    gcloud secrets describe "$token_secret" ${project_flag[@]+"${project_flag[@]}"} >/dev/null 2>&1 ||
      gcloud secrets create "$token_secret" ${project_flag[@]+"${project_flag[@]}"} --replication-policy=automatic
    current=$(gcloud secrets versions access latest --secret="$token_secret" ${project_flag[@]+"${project_flag[@]}"} 2>/dev/null || true)
    [[ $current == "$token" ]] || printf '%s' "$token" | gcloud secrets versions add "$token_secret" ${project_flag[@]+"${project_flag[@]}"} --data-file=-
  fi
  grant "$token_secret"
fi

metadata="ftrain-coordinator=$coordinator,ftrain-source=$source_url"
[[ -z $extra_args ]] || metadata+=",ftrain-extra-args=$extra_args"

stamp=$(date -u +%m%d%H%M%S)
for ((i = 1; i <= count; i++)); do
  name=$name_prefix-$stamp-$i
  # The node's certificate, named like the instance: its node id (cloud-init reads the name).
  run "${ftrain[@]}" certs issue --dir "$tls_dir" --name "$name"
  cmd=(gcloud compute instances create "$name"
    --zone="$zone"
    --machine-type="$machine_type"
    --provisioning-model=SPOT
    --instance-termination-action=DELETE
    --image-family="$image_family"
    --image-project="$image_project"
    --tags="$tags")
  if [[ $deliver == secret-manager ]]; then
    tls_secret=$name-tls
    if [[ $dry_run == 1 ]]; then
      echo "tar -C $(printf '%q' "$tls_dir") -czf - ca.crt $name.crt $name.key | base64 | $(run gcloud secrets create "$tls_secret" ${project_flag[@]+"${project_flag[@]}"} --replication-policy=automatic --ttl="$secret_ttl" --data-file=-)"
    else
      bundle "$name" | base64 | gcloud secrets create "$tls_secret" ${project_flag[@]+"${project_flag[@]}"} --replication-policy=automatic --ttl="$secret_ttl" --data-file=-
    fi
    grant "$tls_secret"
    # cloud-platform: Secret Manager needs that scope; IAM then limits the account to its secrets.
    cmd+=(--service-account="$service_account" --scopes=cloud-platform
      --metadata="$metadata,ftrain-secrets=secret-manager,ftrain-tls-secret=$tls_secret,ftrain-join-token-secret=$token_secret")
  else
    cmd+=(--metadata="$metadata,ftrain-secrets=files")
  fi
  cmd+=(--metadata-from-file=user-data="$user_data")
  cmd+=(${project_flag[@]+"${project_flag[@]}"})
  cmd+=(${gcloud_extra[@]+"${gcloud_extra[@]}"})
  run "${cmd[@]}"

  if [[ $deliver == ssh ]]; then
    # cloud-init waits for these files; the token goes last (renamed into place), as the sign
    # that the directory is complete.
    ssh_cmd=(gcloud compute ssh "$name" --zone="$zone" ${project_flag[@]+"${project_flag[@]}"} --quiet --command)
    put_tls="sudo sh -c 'umask 077 && mkdir -p /etc/ftrain/tls && tar -xzf - -C /etc/ftrain/tls --no-same-owner'"
    put_token="sudo sh -c 'umask 077 && mkdir -p /etc/ftrain && cat > /etc/ftrain/join-token.new && mv /etc/ftrain/join-token.new /etc/ftrain/join-token'"
    if [[ $dry_run == 1 ]]; then
      echo "# once $name answers SSH:"
      echo "tar -C $(printf '%q' "$tls_dir") -czf - ca.crt $name.crt $name.key | $(run "${ssh_cmd[@]}" "$put_tls")"
      echo "$(run "${ssh_cmd[@]}" "$put_token") < $(printf '%q' "$token_file")"
    else
      # The VM's SSH server comes up a minute or so after the create: try for 10 minutes.
      for ((try = 1; ; try++)); do
        if bundle "$name" | "${ssh_cmd[@]}" "$put_tls" && "${ssh_cmd[@]}" "$put_token" <"$token_file"; then break; fi
        ((try < 40)) || fail "could not copy the certificate and token to $name over SSH; copy them by hand (deploy/README.md, Security) or delete the VM"
        sleep 15
      done
    fi
  fi
done
