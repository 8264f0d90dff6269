"""What a run was asked to do, frozen: settings, targets, components, policy. Below everything that reads them."""
