"""Network architectures, one file each; `mammogan.catalog` names the module that registers each (imported on lookup)."""
