#!/bin/sh
# create.sh: the exec provider's create script for Azure. Each node is a VM
# made by `az vm create` (a Spot VM when the cluster's vm_priority is
# lowpriority) whose cloud-init downloads amld and starts `amld agent` as a
# systemd unit; the agent joins the heads like any node.
#
# The head runs it with (see docs/exec-provider.md):
#   AMLD_NODE_NAME AMLD_TARGET AMLD_VM_SIZE AMLD_VM_PRIORITY AMLD_CPUS
#   AMLD_MEMORY_MB AMLD_GPUS AMLD_HEAD_ADDRS AMLD_JOIN_TOKEN_FILE
# and these settings in the head's environment:
#   AMLD_AZ_RESOURCE_GROUP  resource group of the node VMs (required)
#   AMLD_AZ_SUBNET_ID       subnet from which the VMs reach the heads (required)
#   AMLD_AZ_AMLD_URL        where VMs download the amld binary, e.g. a
#                           storage blob with a SAS token (required)
#   AMLD_AZ_LOCATION        region (default: the resource group's)
#   AMLD_AZ_IMAGE           image (default Ubuntu2204)
# The head must be logged in to Azure: `az login --identity` on an Azure VM
# with a managed identity that may create VMs in the resource group.
#
# The join token reaches the VM in its custom data, which Azure shows to
# anyone who may read the VM: keep the resource group's readers to those who
# may join nodes, or fetch the token from Key Vault in cloud-init instead.
set -eu
rg="${AMLD_AZ_RESOURCE_GROUP:?set AMLD_AZ_RESOURCE_GROUP in the head's environment}"
subnet="${AMLD_AZ_SUBNET_ID:?set AMLD_AZ_SUBNET_ID in the head's environment}"
amld_url="${AMLD_AZ_AMLD_URL:?set AMLD_AZ_AMLD_URL in the head's environment}"
image="${AMLD_AZ_IMAGE:-Ubuntu2204}"

# amld's vm_size catalogue → Azure VM sizes.
case "$AMLD_VM_SIZE" in
  cpu-1)  size=Standard_D2als_v6 ;;
  cpu-2)  size=Standard_D2s_v5 ;;
  cpu-4)  size=Standard_D4s_v5 ;;
  cpu-8)  size=Standard_D8s_v5 ;;
  cpu-16) size=Standard_D16s_v5 ;;
  gpu-1)  size=Standard_NC6s_v3 ;;
  gpu-2)  size=Standard_NC12s_v3 ;;
  gpu-4)  size=Standard_NC24s_v3 ;;
  *) echo "no Azure VM size for vm_size $AMLD_VM_SIZE: add it to $0" >&2; exit 2 ;;
esac

set -- --priority Regular
if [ "$AMLD_VM_PRIORITY" = lowpriority ]; then
  # Spot: Azure may evict it; amld sees the node go and requeues its runs.
  set -- --priority Spot --eviction-policy Delete --max-price -1
fi
if [ -n "${AMLD_AZ_LOCATION:-}" ]; then
  set -- "$@" --location "$AMLD_AZ_LOCATION"
fi

token=$(cat "$AMLD_JOIN_TOKEN_FILE")
# When the heads speak TLS, the agent checks them against the cluster CA.
ca_flag=""
ca_file_entry=""
if [ -n "${AMLD_CA_FILE:-}" ]; then
  ca_flag="--ca-file /etc/amld/ca.crt"
  ca_file_entry="  - path: /etc/amld/ca.crt
    permissions: '0644'
    encoding: b64
    content: $(base64 -w0 < "$AMLD_CA_FILE")"
fi
umask 077
cloud_init=$(mktemp)
trap 'rm -f "$cloud_init"' EXIT
cat > "$cloud_init" <<EOF_CLOUD_INIT
#cloud-config
write_files:
  - path: /etc/amld/join.token
    permissions: '0600'
    content: "$token"
$ca_file_entry
  - path: /etc/systemd/system/amld-agent.service
    permissions: '0644'
    content: |
      [Unit]
      Description=amld agent of node $AMLD_NODE_NAME
      After=network-online.target
      Wants=network-online.target
      [Service]
      ExecStart=/usr/local/bin/amld agent --head $AMLD_HEAD_ADDRS --node-id $AMLD_NODE_NAME --target $AMLD_TARGET --join-token-file /etc/amld/join.token --work-dir /var/lib/amld-agent --cpus $AMLD_CPUS --memory-mb $AMLD_MEMORY_MB --gpus $AMLD_GPUS $ca_flag
      Restart=on-failure
      RestartSec=2
      KillMode=mixed
      TimeoutStopSec=30
      [Install]
      WantedBy=multi-user.target
runcmd:
  - [ sh, -c, 'curl -fsSL --retry 5 -o /usr/local/bin/amld "$amld_url" && chmod 755 /usr/local/bin/amld' ]
  - [ systemctl, daemon-reload ]
  - [ systemctl, enable, --now, amld-agent.service ]
EOF_CLOUD_INIT

az vm create \
  --resource-group "$rg" \
  --name "$AMLD_NODE_NAME" \
  --image "$image" \
  --size "$size" \
  "$@" \
  --subnet "$subnet" \
  --public-ip-address "" \
  --nsg "" \
  --admin-username amld \
  --generate-ssh-keys \
  --nic-delete-option Delete \
  --os-disk-delete-option Delete \
  --custom-data "$cloud_init" \
  --tags "amld-target=$AMLD_TARGET" "amld-node=$AMLD_NODE_NAME" \
  --only-show-errors \
  --output none
echo "$AMLD_NODE_NAME"
