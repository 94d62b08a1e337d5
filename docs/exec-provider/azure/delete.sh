#!/bin/sh
# delete.sh: the exec provider's delete script for Azure: deletes the node's
# VM (its NIC and OS disk go with it: create.sh asked for that). A VM that is
# already gone (evicted Spot VM, manual delete) is not an error.
#
#   env in: AMLD_NODE_NAME AMLD_TARGET AMLD_PROVIDER_ID; AMLD_AZ_RESOURCE_GROUP
set -eu
rg="${AMLD_AZ_RESOURCE_GROUP:?set AMLD_AZ_RESOURCE_GROUP in the head's environment}"
if ! az vm show --resource-group "$rg" --name "$AMLD_NODE_NAME" --only-show-errors --output none 2>/dev/null; then
  exit 0
fi
az vm delete --resource-group "$rg" --name "$AMLD_NODE_NAME" --yes --only-show-errors --output none
