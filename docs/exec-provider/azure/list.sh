#!/bin/sh
# list.sh: the exec provider's list script for Azure: one line per VM of this
# target (by the tags create.sh set): "NODE_NAME VM_ID".
#
#   env in: AMLD_TARGET; AMLD_AZ_RESOURCE_GROUP
set -eu
rg="${AMLD_AZ_RESOURCE_GROUP:?set AMLD_AZ_RESOURCE_GROUP in the head's environment}"
az vm list --resource-group "$rg" \
  --query "[?tags.\"amld-target\"=='$AMLD_TARGET'].[tags.\"amld-node\", id]" \
  --only-show-errors --output tsv
